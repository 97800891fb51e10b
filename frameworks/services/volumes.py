"""Local persistent volumes of apps: reservations that tie an instance to an agent.

An app is *resident* when one of its ``container.volumes`` is ``persistent``
(Marathon's shape: ``{"containerPath": "data", "persistent": {"size": 64}}``).  Each
instance of a resident app holds a ``Reservation``: an agent and, per persistent
volume, a volume id (``<app>.<reservation>.<path>``) that the agent creates on the
first launch and keeps until it is destroyed.  An offer round places an instance with
a free reservation (no live task) only on that reservation's agent, so the
replacement of a killed, failed or upgraded task finds its data again; a new
reservation is made only while the app has fewer than ``instances``.  Scaling down
keeps the reservations of the killed tasks (scaling up reuses them first).

Reservations go only when the app is deleted with ``wipe=true`` (``wipe``): they are
marked ``destroying`` and, once no task uses them, a DESTROY operation on an offer of
their agent removes the volumes with their data; then the records go.

An upgrade of a resident app must free a volume before its new task can use it, so
the rolling rule runs with ``maximumOverCapacity`` 0 and a healthy floor of at most
``instances - 1`` (``effective_strategy``): one instance at a time is stopped and
started again on its volume.

Everything here is pure (state in, state changes out); ``volume_ops`` does the I/O.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from typing import Any

import msgspec

from frameworks.services.model import App, ContainerVolume
from mesoslite.messages.mesos import (
    Create,
    Destroy,
    DiskInfo,
    DiskVolume,
    DockerVolumeSource,
    Operation,
    OperationType,
    Persistence,
    PersistentVolumeSource,
    ReservationInfo,
    Reserve,
    Resource,
    Scalar,
    Unreserve,
    ValueType,
    Volume,
    VolumeMode,
    VolumeSource,
)
from mesoslite.resources import Resources


class Reservation(msgspec.Struct, omit_defaults=True):
    """One instance's claim on an agent and its persistent volumes there."""

    id: str
    app_id: str
    agent_id: str
    hostname: str
    created_at: float
    task_id: str | None = None  # the task launched on it last (live or not)
    destroying: bool = False
    attributes: dict[str, str] = {}
    volumes: list[str] = []  # every volume id launched on it (what a wipe destroys)
    # what the master holds reserved for it (cpus, mem, disk incl. the volumes), in
    # ``role``; empty for records made before reservations were the master's
    resources: dict[str, float] = {}
    role: str | None = None


def persistent_volumes(app: App) -> list[ContainerVolume]:
    c = app.container
    return [v for v in c.volumes if v.persistent is not None] if c else []


def is_resident(app: App) -> bool:
    return bool(persistent_volumes(app))


def effective_strategy(app: App) -> tuple[float, float]:
    """(minimumHealthCapacity, maximumOverCapacity) the rolling rule uses: the app's,
    except for resident apps, whose new tasks need the volume an old one frees."""
    s = app.upgrade_strategy
    if not is_resident(app):
        return s.minimum_health_capacity, s.maximum_over_capacity
    n = app.instances
    cap = (n - 1) / n if n > 0 else 0.0
    # floor(ceil(n * m)) <= n - 1: the rule can always stop one instance first
    low = min(s.minimum_health_capacity, math.floor(cap * 1000) / 1000)
    return low, 0.0


def volume_id(app_id: str, reservation_id: str, container_path: str) -> str:
    """The agent-side id of one persistent volume (letters, digits, ``._-``)."""
    app = re.sub(r"[^A-Za-z0-9_-]+", "_", app_id.strip("/"))[:80]
    path = re.sub(r"[^A-Za-z0-9_-]+", "_", container_path).strip("_")[:40] or "root"
    digest = hashlib.sha1(container_path.encode()).hexdigest()[:6]
    return f"{app}.{reservation_id}.{path}-{digest}"


def new_reservation(app_id: str, agent_id: str, hostname: str, now: float,
                    attributes: dict[str, str] | None = None) -> Reservation:
    return Reservation(id=uuid.uuid4().hex[:12], app_id=app_id, agent_id=agent_id,
                       hostname=hostname, created_at=now, attributes=dict(attributes or {}))


def mesos_volumes(app: App, reservation: Reservation | None) -> list[Volume]:
    """The task's volumes: host paths, named Docker volumes (Marathon's ``external``
    with the ``dvdi`` provider) and, with ``reservation``, its persistent volumes."""
    out = []
    for v in app.container.volumes if app.container else []:
        mode = VolumeMode.RO if v.mode.upper() == "RO" else VolumeMode.RW
        if v.persistent is not None:
            if reservation is None:
                continue
            source = VolumeSource(type="PERSISTENT", persistent=PersistentVolumeSource(
                id=volume_id(app.id, reservation.id, v.container_path),
                size_mb=float(v.persistent.size)))
            out.append(Volume(container_path=v.container_path, mode=mode, source=source))
        elif v.external is not None:
            driver = v.external.options.get("dvdi/driver") or None
            out.append(Volume(container_path=v.container_path, mode=mode, source=VolumeSource(
                type="DOCKER_VOLUME", docker_volume=DockerVolumeSource(
                    name=v.external.name or "", driver=driver))))
        elif v.host_path:
            out.append(Volume(container_path=v.container_path, mode=mode, host_path=v.host_path))
    return out


def reservation_amounts(app: App) -> dict[str, float]:
    """What a new instance of resident ``app`` reserves: its cpus, mem and disk plus
    its persistent volumes' sizes."""
    disk = app.disk + sum(v.persistent.size for v in persistent_volumes(app)
                          if v.persistent is not None)
    return {k: v for k, v in (("cpus", app.cpus), ("mem", app.mem), ("disk", disk)) if v}


def _reserved(name: str, value: float, role: str, principal: str | None) -> Resource:
    return Resource(name=name, type=ValueType.SCALAR, scalar=Scalar(value=value),
                    reservations=[ReservationInfo(role=role, principal=principal)])


def _volume_resources(app: App, r: Reservation, role: str, principal: str | None
                      ) -> list[Resource]:
    out = []
    for v in persistent_volumes(app):
        assert v.persistent is not None
        disk = _reserved("disk", float(v.persistent.size), role, principal)
        disk.disk = DiskInfo(persistence=Persistence(id=volume_id(app.id, r.id,
                                                                  v.container_path),
                                                     principal=principal),
                             volume=DiskVolume(container_path=v.container_path,
                                               mode="RO" if v.mode.upper() == "RO" else "RW"))
        out.append(disk)
    return out


def reserve_operations(app: App, r: Reservation, role: str, principal: str | None
                       ) -> list[Operation]:
    """RESERVE the instance's resources and CREATE its volumes (Marathon's way)."""
    return [Operation(type=OperationType.RESERVE, reserve=Reserve(resources=[
                _reserved(k, v, role, principal) for k, v in sorted(r.resources.items())])),
            Operation(type=OperationType.CREATE, create=Create(
                volumes=_volume_resources(app, r, role, principal)))]


def resident_resources(app: App, r: Reservation, role: str, principal: str | None,
                       plain: list[Resource]) -> tuple[list[Resource], Resources]:
    """A resident task's resources: cpus, mem and scratch disk from its reservation
    (what the app needs beyond it unreserved), its volumes, and the other ``plain``
    resources (ports, gpus) as they are.  Also returns the unreserved part."""
    volume_disk = sum(v.persistent.size for v in persistent_volumes(app)
                      if v.persistent is not None)
    held = dict(r.resources)
    held["disk"] = max(0.0, held.get("disk", 0.0) - volume_disk)
    out: list[Resource] = []
    extra: dict[str, float] = {}
    for name, need in (("cpus", app.cpus), ("mem", app.mem), ("disk", app.disk)):
        mine = min(need, held.get(name, 0.0))
        if mine > 0:
            out.append(_reserved(name, mine, role, principal))
        if need - mine > 1e-9:
            extra[name] = need - mine
            out.append(Resource(name=name, type=ValueType.SCALAR,
                                scalar=Scalar(value=round(need - mine, 3))))
    out += _volume_resources(app, r, role, principal)
    out += [p for p in plain if p.name not in ("cpus", "mem", "disk")]
    return out, Resources(scalars=extra)


def release_operations(app_volumes: dict[str, list[Resource]], reserved: Resources, role: str
                       ) -> list[Operation]:
    """``wipe``: DESTROY the volumes, then UNRESERVE what they and their instances
    held."""
    ops = [Operation(type=OperationType.DESTROY, destroy=Destroy(
        volumes=[v for vols in app_volumes.values() for v in vols]))]
    if reserved:
        ops.append(Operation(type=OperationType.UNRESERVE, unreserve=Unreserve(resources=[
            _reserved(k, v, role, None) for k, v in sorted(reserved.scalars.items())])))
    return ops


def local_volumes_json(app: App, reservation: Reservation) -> list[dict[str, str]]:
    """Marathon's ``localVolumes`` of a resident task."""
    return [{"containerPath": v.container_path,
             "persistenceId": volume_id(app.id, reservation.id, v.container_path)}
            for v in persistent_volumes(app)]


# ---------------------------------------------------------------- queries on records


def app_reservations(reservations: dict[str, Reservation], app_id: str) -> list[Reservation]:
    return sorted((r for r in reservations.values() if r.app_id == app_id),
                  key=lambda r: (r.created_at, r.id))


def free_reservations(reservations: dict[str, Reservation], live_tasks: set[str],
                      app_id: str) -> list[Reservation]:
    """The app's reservations no live task uses (relaunch targets), oldest first."""
    return [r for r in app_reservations(reservations, app_id)
            if not r.destroying and (r.task_id is None or r.task_id not in live_tasks)]


def volume_resources_of(app: App | None, r: Reservation) -> list[Resource]:
    """The disk resources naming ``r``'s volumes (for DESTROY); by id when the app
    is gone (sizes unknown: 0, which the master does not check on DESTROY)."""
    role = r.role or "*"
    if app is not None and persistent_volumes(app):
        return _volume_resources(app, r, role, None)
    return [Resource(name="disk", type=ValueType.SCALAR, scalar=Scalar(value=0.0),
                     reservations=[ReservationInfo(role=role)],
                     disk=DiskInfo(persistence=Persistence(id=v))) for v in r.volumes]


def launch_budget(app: App, reservations: dict[str, Reservation], live_tasks: set[str],
                  wanted: int) -> tuple[list[Reservation], int]:
    """For ``wanted`` launches of resident ``app``: the free reservations to launch on
    (pinned) and how many new reservations may be made (the app holds at most
    ``instances`` that are not being destroyed)."""
    free = free_reservations(reservations, live_tasks, app.id)[:wanted]
    held = sum(1 for r in reservations.values() if r.app_id == app.id and not r.destroying)
    new = max(0, min(wanted - len(free), app.instances - held))
    return free, new


def new_slots(app: App, wanted: int, reservations: dict[str, Reservation],
              live_tasks: set[str]) -> int:
    """How many of ``wanted`` launches the placement engine may place this round:
    all for a plain app; for a resident one only new reservations (an instance with a
    free reservation waits for its reserved offer, see ``offer_round``)."""
    if not is_resident(app):
        return wanted
    _, new = launch_budget(app, reservations, live_tasks, wanted)
    return new


def mark_wipe(reservations: dict[str, Reservation], app_id: str) -> list[Reservation]:
    """``wipe=true``: the app's reservations are to be destroyed (returns them)."""
    marked = []
    for r in app_reservations(reservations, app_id):
        if not r.destroying:
            r.destroying = True
            marked.append(r)
    return marked


def destroy_ready(reservations: dict[str, Reservation], live_tasks: set[str]
                  ) -> list[Reservation]:
    """Reservations being destroyed that no live task uses any more."""
    return [r for r in reservations.values()
            if r.destroying and (r.task_id is None or r.task_id not in live_tasks)]


def reservation_json(app: App | None, r: Reservation, live_tasks: set[str],
                     disk: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per persistent volume of ``r`` for ``GET /v2/apps/{id}/volumes``;
    ``disk``: volume id -> the agent's latest report (``disk_used_mb``, ``timestamp``)."""
    state = ("destroying" if r.destroying else
             "attached" if r.task_id is not None and r.task_id in live_tasks else "free")
    rows = []
    for v in persistent_volumes(app) if app is not None else []:
        assert v.persistent is not None
        vid = volume_id(r.app_id, r.id, v.container_path)
        report = disk.get(vid, {})
        rows.append({
            "persistenceId": vid, "containerPath": v.container_path, "reservationId": r.id,
            "agentId": r.agent_id, "host": r.hostname, "state": state,
            "taskId": r.task_id if state == "attached" else None,
            "sizeMb": float(v.persistent.size), "diskUsedMb": report.get("disk_used_mb"),
            "measuredAt": report.get("timestamp"),
        })
    return rows


# ---------------------------------------------------------------- validation

_DOCKER_VOLUME_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def volume_errors(app: App) -> list[tuple[str, str]]:
    """(path, message) for the app's volumes, Marathon's paths
    (``/container/volumes(0)/persistent/size``)."""
    out: list[tuple[str, str]] = []
    docker = app.docker_image is not None
    for i, v in enumerate(app.container.volumes if app.container else []):
        where = f"/container/volumes({i})"
        kinds = [k for k, on in (("hostPath", bool(v.host_path)),
                                 ("persistent", v.persistent is not None),
                                 ("external", v.external is not None),
                                 ("secret", v.secret is not None)) if on]
        if len(kinds) != 1:
            out.append((where, "give exactly one of hostPath, persistent, external or secret"))
            continue
        relative = not v.container_path.startswith("/")
        if relative and (not v.container_path or ".." in v.container_path.split("/")):
            out.append((f"{where}/containerPath", "must stay inside the sandbox"))
        if not docker and not relative:
            out.append((f"{where}/containerPath", ("volumes of command tasks are placed in "
                                                  "the sandbox: use a relative path")))
        if v.persistent is not None:
            if not (math.isfinite(v.persistent.size) and v.persistent.size > 0):
                out.append((f"{where}/persistent/size",
                            f"got {v.persistent.size}, expected a size in MB > 0"))
            if v.persistent.type != "root":
                out.append((f"{where}/persistent/type", "only root volumes are supported"))
        if v.external is not None:
            if v.external.provider != "dvdi":
                out.append((f"{where}/external/provider",
                            "only dvdi (named Docker volumes) is supported"))
            if not v.external.name or not _DOCKER_VOLUME_NAME.match(v.external.name):
                out.append((f"{where}/external/name", "must be a Docker volume name"))
            if not docker:
                out.append((f"{where}/external", ("named Docker volumes need a Docker "
                                                 "container")))
    return out
