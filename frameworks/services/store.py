"""The services framework's durable state: its tables and how records become rows.

Eleven tables: apps (current definitions), versions (every stored version), deployments,
tasks (pod instances too), reservations (persistent volumes), groups, group versions and
group deployment plans (groups.py), pods and pod versions (``pod_model``), and a
key/value ``meta`` (the framework id).
Each row is a JSON document keyed by its id.  Records are written through the
framework kit's journal (``services_journal``): ``ServicesState`` puts what changed,
the kit's runner writes one generation per transaction (``DocumentStore.apply``) and
publishes the events noted with it only once it is durable.  ``ServicesStore.load``
reads everything back when the framework starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
from sqlalchemy import Column, MetaData, String, select

from frameworks.services.deployments import Deployment
from frameworks.services.groups import GroupPlan, GroupRecord, GroupVersion
from frameworks.services.model import App, decode_app, encode_app
from frameworks.services.pod_model import Pod, decode_pod, encode_pod
from frameworks.services.tasks import TaskRecord
from frameworks.services.volumes import Reservation
from mesoslite.framework import DocumentStore, Journal
from mesoslite.framework.store import document_table, meta_table, to_json

metadata = MetaData()
META = "services_meta"
APPS = "services_apps"
VERSIONS = "services_versions"
DEPLOYMENTS = "services_deployments"
TASKS = "services_tasks"
RESERVATIONS = "services_reservations"
GROUPS = "services_groups"
GROUP_VERSIONS = "services_group_versions"
PLANS = "services_plans"
PODS = "services_pods"
POD_VERSIONS = "services_pod_versions"

meta = meta_table(META, metadata)
apps_table = document_table(APPS, metadata, 512)
versions_table = document_table(VERSIONS, metadata, 512, keys=("app_id", "version"))
deployments_table = document_table(DEPLOYMENTS, metadata, 64)
tasks_table = document_table(TASKS, metadata, 600,
                             Column("app_id", String(512), nullable=False, index=True))
reservations_table = document_table(RESERVATIONS, metadata, 64,
                                    Column("app_id", String(512), nullable=False))
groups_table = document_table(GROUPS, metadata, 512)
group_versions_table = document_table(GROUP_VERSIONS, metadata, 512,
                                      keys=("group_id", "version"))
plans_table = document_table(PLANS, metadata, 64)
pods_table = document_table(PODS, metadata, 512)
pod_versions_table = document_table(POD_VERSIONS, metadata, 512, keys=("app_id", "version"))


def services_journal() -> Journal:
    """A journal for these tables (what each put value becomes as a row)."""
    return Journal({
        APPS: lambda app: {"id": app.id, "data": to_json(encode_app(app))},
        VERSIONS: lambda app: {"app_id": app.id, "version": app.version,
                               "data": to_json(encode_app(app))},
        DEPLOYMENTS: lambda d: {"id": d.id, "data": to_json(msgspec.to_builtins(d))},
        TASKS: lambda t: {"id": t.id, "app_id": t.app_id, "data": to_json(msgspec.to_builtins(t))},
        RESERVATIONS: lambda r: {"id": r.id, "app_id": r.app_id,
                                 "data": to_json(msgspec.to_builtins(r))},
        GROUPS: lambda g: {"id": g.id, "data": to_json(msgspec.to_builtins(g))},
        GROUP_VERSIONS: lambda v: {"group_id": v.id, "version": v.version,
                                   "data": to_json(msgspec.to_builtins(v))},
        PLANS: lambda p: {"id": p.id, "data": to_json(msgspec.to_builtins(p))},
        PODS: lambda pod: {"id": pod.id, "data": to_json(encode_pod(pod))},
        POD_VERSIONS: lambda pod: {"app_id": pod.id, "version": pod.version,
                                   "data": to_json(encode_pod(pod))},
    }, meta_table=META)


@dataclass
class Snapshot:
    apps: list[App]
    versions: list[App]
    deployments: list[Deployment]
    tasks: list[TaskRecord]
    meta: dict[str, str]
    reservations: list[Reservation] = field(default_factory=list)
    groups: list[GroupRecord] = field(default_factory=list)
    group_versions: list[GroupVersion] = field(default_factory=list)
    plans: list[GroupPlan] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    pod_versions: list[Pod] = field(default_factory=list)


class ServicesStore(DocumentStore):
    """Blocking store calls (run them off the event loop)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, metadata)

    def load(self) -> Snapshot:
        dec = msgspec.json.decode
        with self.engine.connect() as conn:
            apps = [decode_app(dec(r[0])) for r in conn.execute(select(apps_table.c.data))]
            versions = [decode_app(dec(r[0]))
                        for r in conn.execute(select(versions_table.c.data))]
            deployments = [msgspec.convert(dec(r[0]), Deployment)
                           for r in conn.execute(select(deployments_table.c.data))]
            tasks = [dec(r[0], type=TaskRecord) for r in conn.execute(select(tasks_table.c.data))]
            pairs = dict(conn.execute(select(meta.c.key, meta.c.value)).all())
            reservations = [dec(r[0], type=Reservation)
                            for r in conn.execute(select(reservations_table.c.data))]
            groups = [dec(r[0], type=GroupRecord)
                      for r in conn.execute(select(groups_table.c.data))]
            group_versions = [dec(r[0], type=GroupVersion)
                              for r in conn.execute(select(group_versions_table.c.data))]
            plans = [dec(r[0], type=GroupPlan) for r in conn.execute(select(plans_table.c.data))]
            pods = [decode_pod(dec(r[0])) for r in conn.execute(select(pods_table.c.data))]
            pod_versions = [decode_pod(dec(r[0]))
                            for r in conn.execute(select(pod_versions_table.c.data))]
        return Snapshot(apps, versions, deployments, tasks, pairs, reservations, groups,
                        group_versions, plans, pods, pod_versions)
