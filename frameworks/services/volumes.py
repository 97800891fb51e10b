"""Local persistent volumes of apps: reservations that tie an instance to an agent.

An app is *resident* when one of its ``container.volumes`` is ``persistent``
(Marathon's shape: ``{"containerPath": "data", "persistent": {"size": 64}}``).  Each
instance of a resident app holds a ``Reservation``: an agent and, per persistent
volume, a volume id (``<app>.<reservation>.<path>``) that the agent creates on the
first launch and keeps until it is destroyed.  The launcher places an instance with
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
    DockerVolumeSource,
    PersistentVolumeSource,
    Volume,
    VolumeMode,
    VolumeSource,
)

PIN_ATTRIBUTE = "mesoslite_volume_agent"  # placement attribute pinning an instance


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


def launch_budget(app: App, reservations: dict[str, Reservation], live_tasks: set[str],
                  wanted: int) -> tuple[list[Reservation], int]:
    """For ``wanted`` launches of resident ``app``: the free reservations to launch on
    (pinned) and how many new reservations may be made (the app holds at most
    ``instances`` that are not being destroyed)."""
    free = free_reservations(reservations, live_tasks, app.id)[:wanted]
    held = sum(1 for r in reservations.values() if r.app_id == app.id and not r.destroying)
    new = max(0, min(wanted - len(free), app.instances - held))
    return free, new


def resident_slots(app: App, wanted: int, reservations: dict[str, Reservation],
                   live_tasks: set[str]) -> tuple[int, dict[int, Reservation]]:
    """How many of ``wanted`` launches can be placed this round, and which of them
    (by index) are pinned to a free reservation.  Non-resident apps: all, none."""
    if not is_resident(app):
        return wanted, {}
    free, new = launch_budget(app, reservations, live_tasks, wanted)
    return len(free) + new, dict(enumerate(free))


def pinned_group(app_id: str, reservation: Reservation) -> tuple[str, tuple[tuple[str, ...], ...]]:
    """The placement group and constraints of an instance pinned to its reservation's
    agent (a group of its own: its agent is fixed, the app's constraints held when
    the reservation was made)."""
    return (f"{app_id}#{reservation.id}",
            ((PIN_ATTRIBUTE, "IS", reservation.agent_id),))


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
