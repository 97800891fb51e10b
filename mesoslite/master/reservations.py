"""Dynamic reservations and persistent volumes in the master (pure).

Mesos' model (``RESERVE`` / ``UNRESERVE`` / ``CREATE`` / ``DESTROY`` offer
operations): a framework reserves part of an agent's unreserved resources for its
role; the master then offers those resources to frameworks of that role only, and
keeps them set aside across task ends, agent restarts and master failovers.  A
persistent volume is a named part of the role's reserved disk; a task uses it with a
disk resource carrying ``disk.persistence.id`` (and ``disk.volume.container_path``).

This module holds the per-agent books (``AgentReservations``, stored inside the
agent's record in the master store), the reading of Mesos resources into unreserved
and reserved parts (``split``), the operations on an accepted offer (``Ledger``:
what the offer still has while the ACCEPT's operations run in order, each checked
and applied or refused with a sentence meant for the framework author) and the Mesos
JSON forms for offers and ``/master/state``.  Reservations are *exact-role*: a
reservation for ``eng`` is offered to frameworks subscribed in ``eng`` (not to
``eng/web``).  No I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from mesoslite.messages.mesos import (
    ContainerInfo,
    ContainerType,
    PersistentVolumeSource,
    ReservationInfo,
    Resource,
    TaskInfo,
    Volume,
    VolumeMode,
    VolumeSource,
    from_resources,
)
from mesoslite.resources import ResourceError, Resources

EMPTY = Resources()
VOLUME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # the agent's rule too


@dataclass(frozen=True)
class VolumeRecord:
    """A persistent volume on an agent: ``size`` MB of ``role``'s reserved disk."""

    id: str
    role: str
    size: float
    container_path: str
    mode: str = "RW"
    principal: str | None = None


@dataclass
class AgentReservations:
    """One agent's reserved resources per role and its persistent volumes.  A
    volume's disk is part of its role's reserved disk."""

    reserved: dict[str, Resources] = field(default_factory=dict)
    principals: dict[str, str | None] = field(default_factory=dict)
    volumes: dict[str, VolumeRecord] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.reserved or self.volumes)

    def role_volumes(self, role: str) -> list[VolumeRecord]:
        return [v for v in self.volumes.values() if v.role == role]

    def volume_disk(self, role: str) -> float:
        return sum(v.size for v in self.role_volumes(role))

    def to_store(self) -> dict[str, Any]:
        return {"reserved": {r: res.to_mapping() for r, res in self.reserved.items()},
                "principals": dict(self.principals),
                "volumes": [dataclasses.asdict(v) for v in self.volumes.values()]}

    @classmethod
    def from_store(cls, doc: Mapping[str, Any] | None) -> AgentReservations:
        if not doc:
            return cls()
        volumes = [VolumeRecord(**v) for v in doc.get("volumes", [])]
        return cls(reserved={r: Resources.from_mapping(m)
                             for r, m in doc.get("reserved", {}).items()},
                   principals=dict(doc.get("principals", {})),
                   volumes={v.id: v for v in volumes})


# ---------------------------------------------------------------- reading resources


class VolumeRef(NamedTuple):
    """A persistent volume named by a disk resource."""

    id: str
    role: str | None
    size: float
    container_path: str | None
    mode: str


class Split(NamedTuple):
    """Mesos resources read apart: unreserved, reserved per role, volumes named."""

    unreserved: Resources
    reserved: dict[str, Resources]
    volumes: list[VolumeRef]
    principals: dict[str, str | None]


def reservation_role(resource: Resource) -> str | None:
    """The role a resource is reserved for (the last of ``reservations``, or the
    pre-refinement ``role``), None when unreserved."""
    if resource.reservations:
        return resource.reservations[-1].role or None
    if resource.role not in (None, "*"):
        return resource.role
    return None


def _principal(resource: Resource) -> str | None:
    if resource.reservations:
        return resource.reservations[-1].principal
    return resource.reservation.principal if resource.reservation else None


def is_plain(items: Iterable[Resource]) -> bool:
    """No reservation and no volume anywhere (the common, fast case)."""
    return all(not r.reservations and r.role in (None, "*") and r.disk is None
               for r in items)


def split(items: list[Resource], path: str = "resources") -> Split:
    """Read Mesos resources; raises ``ResourceError`` naming the offending entry."""
    unreserved = EMPTY
    reserved: dict[str, Resources] = {}
    principals: dict[str, str | None] = {}
    volumes: list[VolumeRef] = []
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        role = reservation_role(item)
        if role == "*":
            raise ResourceError("resources cannot be reserved for role '*'", f"{where}.role")
        plain = msgspec.to_builtins(msgspec.structs.replace(
            item, role=None, reservations=[], reservation=None, disk=None,
            allocation_info=None))
        value = Resources.from_json([plain], where)
        if role is None:
            if item.disk is not None and item.disk.persistence is not None:
                raise ResourceError("a persistent volume must be on reserved disk",
                                    f"{where}.disk")
            unreserved = unreserved + value
            continue
        reserved[role] = reserved.get(role, EMPTY) + value
        principals.setdefault(role, _principal(item))
        disk = item.disk
        if disk is not None and disk.persistence is not None:
            if item.name != "disk":
                raise ResourceError("only disk resources can be persistent volumes", where)
            volumes.append(VolumeRef(
                id=disk.persistence.id, role=role, size=value.scalar("disk"),
                container_path=disk.volume.container_path if disk.volume else None,
                mode=disk.volume.mode if disk.volume else "RW"))
    return Split(unreserved, reserved, volumes, principals)


def normalize(items: list[Resource]) -> list[Resource]:
    """Reserved resources in the post-refinement form (``reservations``, no
    ``role``), which every part of mesoslite reads; plain ones unchanged."""
    out = []
    for r in items:
        if not r.reservations and r.role not in (None, "*"):
            principal = r.reservation.principal if r.reservation else None
            r = msgspec.structs.replace(r, role=None, reservation=None, reservations=[
                ReservationInfo(role=r.role, principal=principal)])
        elif r.reservations and r.role is not None:
            r = msgspec.structs.replace(r, role=None, reservation=None)
        out.append(r)
    return out


def task_reserved(items: list[Resource]) -> Resources:
    """The reserved part of a (normalized) task's resources, all roles together (a
    task's reservations are its own role's)."""
    if is_plain(items):
        return EMPTY
    try:
        parts = split(items)
    except ResourceError:
        return EMPTY
    total = EMPTY
    for value in parts.reserved.values():
        total = total + value
    return total


def task_volume_ids(items: list[Resource]) -> list[str]:
    return [r.disk.persistence.id for r in items
            if r.disk is not None and r.disk.persistence is not None]


# ---------------------------------------------------------------- JSON forms


def reserved_json(resources: Resources, role: str, principal: str | None,
                  allocation_role: str | None = None,
                  volumes: Iterable[VolumeRecord] = ()) -> list[dict[str, Any]]:
    """Reserved resources as Mesos JSON (``reservations`` list); ``volumes`` are
    listed as disk resources of their own with ``disk.persistence`` and
    ``disk.volume`` (their disk is taken out of the plain reserved disk)."""
    reservation = {"type": "DYNAMIC", "role": role}
    if principal:
        reservation["principal"] = principal
    rest = resources
    out: list[dict[str, Any]] = []
    for v in volumes:
        rest = rest - Resources(scalars={"disk": v.size})
        persistence: dict[str, Any] = {"id": v.id}
        if v.principal:
            persistence["principal"] = v.principal
        out.append({"name": "disk", "type": "SCALAR", "scalar": {"value": v.size},
                    "reservations": [dict(reservation)],
                    "disk": {"persistence": persistence,
                             "volume": {"container_path": v.container_path,
                                        "mode": v.mode}}})
    for entry in rest.to_json():
        entry["reservations"] = [dict(reservation)]
        out.append(entry)
    if allocation_role is not None:
        for entry in out:
            entry["allocation_info"] = {"role": allocation_role}
    return out


def offer_resources(unreserved: Resources, reserved: Resources, role: str,
                    book: AgentReservations | None, volume_ids: Iterable[str]
                    ) -> list[Resource]:
    """An offer's resources in Mesos' form: unreserved (``role: "*"``), then the
    role's reserved resources and its free persistent volumes."""
    out = from_resources(unreserved, role)
    if reserved:
        principal = book.principals.get(role) if book else None
        vols = [book.volumes[v] for v in volume_ids if book and v in book.volumes]
        out += msgspec.convert(reserved_json(reserved, role, principal, role, vols),
                               list[Resource])
    return out


def state_json(book: AgentReservations) -> tuple[dict[str, Any], dict[str, Any]]:
    """``reserved_resources`` (role -> Mesos' summary: scalars, ports as text) and
    ``reserved_resources_full`` (role -> Mesos resource list) of ``/master/state``."""
    summary: dict[str, Any] = {}
    full: dict[str, Any] = {}
    for role in sorted(book.reserved):
        res = book.reserved[role]
        s: dict[str, Any] = {k: res.scalar(k) for k in ("cpus", "mem", "disk", "gpus")}
        for name, ranges in res.ranges.items():
            s[name] = "[" + ",".join(f"{b}-{e}" for b, e in ranges) + "]"
        summary[role] = s
        full[role] = reserved_json(res, role, book.principals.get(role),
                                   volumes=sorted(book.role_volumes(role),
                                                  key=lambda v: v.id))
    return summary, full


# ---------------------------------------------------------------- operations


@dataclass
class Ledger:
    """What an accepted offer (or offers) still holds as the operations run:
    ``unreserved``, ``reserved`` (for ``role``) and the free volumes offered."""

    role: str
    principal: str | None
    unreserved: Resources
    reserved: Resources
    volumes: set[str]

    def copy(self) -> Ledger:
        return dataclasses.replace(self, volumes=set(self.volumes))

    def plain_reserved(self, book: AgentReservations) -> Resources:
        """Reserved resources of the offer that are not in one of its volumes."""
        disk = sum(book.volumes[v].size for v in self.volumes if v in book.volumes)
        return self.reserved - Resources(scalars={"disk": disk})


def _read(items: list[Resource], what: str) -> tuple[Split | None, str | None]:
    if not items:
        return None, f"Invalid {what}: no resources given"
    try:
        return split(items, f"{what.lower()}.resources"), None
    except ResourceError as exc:
        return None, f"Invalid {what}: {exc} (at {exc.path})"


def _role_error(parts: Split, ledger: Ledger, what: str) -> str | None:
    if parts.unreserved:
        return (f"Invalid {what}: {parts.unreserved} carry no reservation"
                f" (set 'reservations': [{{'type': 'DYNAMIC', 'role': '{ledger.role}'}}])")
    for role in parts.reserved:
        if role != ledger.role:
            return (f"Invalid {what}: resources are reserved for role '{role}', the offer"
                    f" is allocated to role '{ledger.role}'")
    return None


def reserve(ledger: Ledger, book: AgentReservations, items: list[Resource]
            ) -> tuple[Resources, str | None]:
    """RESERVE: unreserved resources of the offer become ``ledger.role``'s."""
    parts, error = _read(items, "RESERVE")
    if parts is None:
        return EMPTY, error
    if ledger.role == "*":
        return EMPTY, "Invalid RESERVE: a framework in role '*' cannot reserve resources"
    error = _role_error(parts, ledger, "RESERVE")
    if error:
        return EMPTY, error
    if parts.volumes:
        return EMPTY, "Invalid RESERVE: persistent volumes are made with CREATE"
    principal = parts.principals.get(ledger.role)
    if principal is not None and ledger.principal is not None and principal != ledger.principal:
        return EMPTY, (f"Invalid RESERVE: principal '{principal}' is not the framework's"
                       f" principal '{ledger.principal}'")
    wanted = parts.reserved[ledger.role]
    if not ledger.unreserved.contains(wanted):
        return EMPTY, (f"Invalid RESERVE: {wanted} is more than the offer's unreserved"
                       f" resources ({ledger.unreserved or 'none'})")
    ledger.unreserved = ledger.unreserved - wanted
    ledger.reserved = ledger.reserved + wanted
    role = ledger.role
    book.reserved[role] = book.reserved.get(role, EMPTY) + wanted
    book.principals[role] = principal or ledger.principal
    return wanted, None


def unreserve(ledger: Ledger, book: AgentReservations, items: list[Resource]
              ) -> tuple[Resources, str | None]:
    """UNRESERVE: reserved resources of the offer (not in a volume) go back to the
    unreserved pool."""
    parts, error = _read(items, "UNRESERVE")
    if parts is None:
        return EMPTY, error
    error = _role_error(parts, ledger, "UNRESERVE")
    if error:
        return EMPTY, error
    if parts.volumes:
        return EMPTY, (f"Invalid UNRESERVE: persistent volume '{parts.volumes[0].id}' must be"
                       " destroyed (DESTROY) before its disk is unreserved")
    wanted = parts.reserved[ledger.role]
    plain = ledger.plain_reserved(book)
    if not plain.contains(wanted):
        return EMPTY, (f"Invalid UNRESERVE: {wanted} is more than the offer's reserved"
                       f" resources outside volumes ({plain or 'none'})")
    ledger.reserved = ledger.reserved - wanted
    ledger.unreserved = ledger.unreserved + wanted
    left = book.reserved.get(ledger.role, EMPTY) - wanted
    if left:
        book.reserved[ledger.role] = left
    else:
        book.reserved.pop(ledger.role, None)
        book.principals.pop(ledger.role, None)
    return wanted, None


def create(ledger: Ledger, book: AgentReservations, items: list[Resource]
           ) -> tuple[list[VolumeRecord], str | None]:
    """CREATE: persistent volumes on the offer's reserved disk."""
    if not items:
        return [], "Invalid CREATE: no volumes given"
    for i, item in enumerate(items):
        disk = item.disk
        if disk is None or disk.persistence is None:
            return [], f"Invalid CREATE: volumes[{i}] has no 'disk.persistence.id'"
        vid = disk.persistence.id
        if reservation_role(item) is None:
            return [], (f"Invalid CREATE: the disk of volume '{vid}' is not reserved"
                        " (RESERVE it for the framework's role first)")
        if not VOLUME_ID.match(vid):
            return [], (f"Invalid CREATE: volume id '{vid}' must be 1-200 letters, digits,"
                        " '.', '_' or '-' (not starting with a symbol)")
        if disk.volume is None or not disk.volume.container_path:
            return [], f"Invalid CREATE: volume '{vid}' has no 'disk.volume.container_path'"
        if vid in book.volumes:
            return [], f"Invalid CREATE: persistent volume '{vid}' already exists"
    parts, error = _read(items, "CREATE")
    if parts is None:
        return [], error
    error = _role_error(parts, ledger, "CREATE")
    if error:
        return [], error
    ids = [v.id for v in parts.volumes]
    if len(set(ids)) != len(ids):
        return [], "Invalid CREATE: a volume id is given twice"
    wanted = parts.reserved[ledger.role]
    plain = ledger.plain_reserved(book)
    if not plain.contains(wanted):
        return [], (f"Invalid CREATE: the volumes need {wanted} of reserved disk, the"
                    f" offer has {plain.scalar('disk'):g} reserved disk outside volumes")
    made = []
    for ref in parts.volumes:
        record = VolumeRecord(id=ref.id, role=ledger.role, size=ref.size,
                              container_path=ref.container_path or "",
                              mode=ref.mode or "RW", principal=ledger.principal)
        book.volumes[ref.id] = record
        ledger.volumes.add(ref.id)
        made.append(record)
    return made, None


def destroy(ledger: Ledger, book: AgentReservations, items: list[Resource],
            in_use: Mapping[str, str]) -> tuple[list[str], str | None]:
    """DESTROY: persistent volumes go (their disk stays reserved); ``in_use``:
    volume id -> the live task using it."""
    if not items:
        return [], "Invalid DESTROY: no volumes given"
    ids = []
    for i, item in enumerate(items):
        disk = item.disk
        if disk is None or disk.persistence is None:
            return [], f"Invalid DESTROY: volumes[{i}] has no 'disk.persistence.id'"
        vid = disk.persistence.id
        record = book.volumes.get(vid)
        if record is None:
            return [], f"Invalid DESTROY: persistent volume '{vid}' does not exist on the agent"
        if record.role != ledger.role:
            return [], (f"Invalid DESTROY: persistent volume '{vid}' belongs to role"
                        f" '{record.role}', the offer to role '{ledger.role}'")
        if vid in in_use:
            return [], (f"Invalid DESTROY: persistent volume '{vid}' is in use by task"
                        f" '{in_use[vid]}'")
        if vid not in ledger.volumes:
            return [], f"Invalid DESTROY: persistent volume '{vid}' is not in the offer"
        ids.append(vid)
    for vid in ids:
        del book.volumes[vid]
        ledger.volumes.discard(vid)
    return ids, None


def take_for_task(ledger: Ledger, book: AgentReservations, items: list[Resource],
                  full: Resources) -> str | None:
    """A task's resources out of the ledger (or why they do not fit)."""
    if is_plain(items):
        if not ledger.unreserved.contains(full):
            return f"Task uses more resources {full} than available {ledger.unreserved}"
        ledger.unreserved = ledger.unreserved - full
        return None
    try:
        parts = split(items)
    except ResourceError as exc:
        return f"Task uses invalid resources: {exc} (at {exc.path})"
    for role in parts.reserved:
        if role != ledger.role:
            return (f"Task uses resources reserved for role '{role}', the offer is"
                    f" allocated to role '{ledger.role}'")
    reserved = parts.reserved.get(ledger.role, EMPTY)
    for ref in parts.volumes:
        record = book.volumes.get(ref.id)
        if record is None:
            return f"Task uses persistent volume '{ref.id}', which does not exist (CREATE it)"
        if ref.id not in ledger.volumes:
            return f"Task uses persistent volume '{ref.id}', which is not in the offer"
        if abs(record.size - ref.size) > 1e-6:
            return (f"Task uses persistent volume '{ref.id}' with disk {ref.size:g},"
                    f" the volume has {record.size:g}")
    if not ledger.unreserved.contains(parts.unreserved):
        return (f"Task uses more unreserved resources {parts.unreserved} than available"
                f" {ledger.unreserved}")
    in_volumes = sum(ref.size for ref in parts.volumes)
    plain_wanted = reserved - Resources(scalars={"disk": in_volumes})
    plain = ledger.plain_reserved(book)
    if not plain.contains(plain_wanted):
        return (f"Task uses more reserved resources {plain_wanted} than the offer has"
                f" reserved outside volumes ({plain or 'none'})")
    ledger.unreserved = ledger.unreserved - parts.unreserved
    ledger.reserved = ledger.reserved - reserved
    ledger.volumes -= {ref.id for ref in parts.volumes}
    return None


def mount_volumes(info: TaskInfo, book: AgentReservations) -> TaskInfo:
    """The task with a ``PERSISTENT`` container volume for each persistent volume its
    resources name (how the agent mounts them), unless the task already has it."""
    ids = task_volume_ids(info.resources)
    if not ids:
        return info
    container = info.container or ContainerInfo(type=ContainerType.MESOS)
    have = {v.source.persistent.id for v in container.volumes
            if v.source is not None and v.source.persistent is not None}
    extra = []
    for vid in ids:
        record = book.volumes.get(vid)
        if record is None or vid in have:
            continue
        mode = VolumeMode.RO if record.mode == "RO" else VolumeMode.RW
        extra.append(Volume(container_path=record.container_path, mode=mode,
                            source=VolumeSource(type="PERSISTENT", persistent=(
                                PersistentVolumeSource(id=vid, size_mb=record.size)))))
    if not extra:
        return info
    return msgspec.structs.replace(info, container=msgspec.structs.replace(
        container, volumes=[*container.volumes, *extra]))


def container_volume_ids(info: TaskInfo) -> list[str]:
    container = info.container
    if container is None:
        return []
    return [v.source.persistent.id for v in container.volumes
            if v.source is not None and v.source.persistent is not None]
