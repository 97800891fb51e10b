"""Maintenance: the schedule, each machine's mode, and the inverse offers' books.

Pure: no I/O, no clock (times are arguments).  ``MaintenanceBook`` is held by the
master's state (``MasterState.maintenance``); the operations that change the rest of
the master live in ``maintenance_ops``.

A machine is **DRAINING** while it is in a window of the schedule, **DOWN** after
START_MAINTENANCE (until STOP_MAINTENANCE, which also takes it out of the
schedule), **UP** otherwise.  An agent runs on a machine when the machine's
``hostname`` (compared without case) and ``ip``, those of the two it gives, are the
agent's: Mesos wants both, mesoslite lets a machine name just one (several agents
on one host differ only by hostname).

Validation follows Mesos (``master/maintenance.cpp``) and refuses, besides, a
window that has already ended: a ``Refusal`` names the offending field, and the
caller changes nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

import msgspec

from mesoslite.master.stimuli import Refusal
from mesoslite.messages.maintenance import (
    InverseOfferStatus,
    MachineMode,
    Schedule,
)
from mesoslite.messages.mesos import MachineID, Unavailability

# (hostname in lower case or "", ip or ""): how machines are compared
MachineKey = tuple[str, str]

# How many removed agent ids are remembered (to refuse their old tasks back).
REMOVED_AGENTS_KEPT = 1000


def machine_key(machine: MachineID) -> MachineKey:
    return ((machine.hostname or "").lower(), machine.ip or "")


def runs_on(machine: MachineID, hostname: str, ip: str) -> bool:
    """Whether an agent announcing ``hostname`` and ``ip`` runs on ``machine``."""
    host, addr = machine_key(machine)
    return (not host or host == hostname.lower()) and (not addr or addr == ip)


def show(machine: MachineID) -> str:
    """The machine as Mesos prints it in errors (its JSON)."""
    return msgspec.json.encode(machine).decode()


@dataclass
class InverseOfferRecord:
    id: str
    framework_id: str
    agent_id: str
    stream_id: str | None  # the event stream it went out on
    created: float  # monotonic


@dataclass
class MaintenanceBook:
    schedule: Schedule = field(default_factory=Schedule)
    down: dict[MachineKey, MachineID] = field(default_factory=dict)
    # agents removed because their machine went DOWN (oldest first)
    removed_agents: list[str] = field(default_factory=list)
    inverse_offers: dict[str, InverseOfferRecord] = field(default_factory=dict)
    # (framework id, agent id) -> the outstanding inverse offer's id
    outstanding: dict[tuple[str, str], str] = field(default_factory=dict)
    # agent id -> framework id -> the framework's latest answer (UNKNOWN: none yet)
    statuses: dict[str, dict[str, InverseOfferStatus]] = field(default_factory=dict)
    # (framework id, agent id) -> monotonic time until which no inverse offer is made
    refused: dict[tuple[str, str], float] = field(default_factory=dict)

    # -- machines --------------------------------------------------------------

    def machines(self) -> list[MachineID]:
        """Every machine in the schedule, in its order."""
        return [m for w in self.schedule.windows for m in w.machine_ids]

    def window_of(self, hostname: str, ip: str) -> tuple[MachineID, Unavailability] | None:
        """The agent's machine in the schedule and its unavailability (None: UP)."""
        for window in self.schedule.windows:
            for machine in window.machine_ids:
                if runs_on(machine, hostname, ip):
                    return machine, window.unavailability
        return None

    def mode(self, hostname: str, ip: str) -> MachineMode:
        found = self.window_of(hostname, ip)
        if found is None:
            return MachineMode.UP
        return MachineMode.DOWN if machine_key(found[0]) in self.down else MachineMode.DRAINING

    def draining(self, hostname: str, ip: str) -> Unavailability | None:
        """The unavailability of an agent's machine while it is DRAINING."""
        found = self.window_of(hostname, ip)
        if found is None or machine_key(found[0]) in self.down:
            return None
        return found[1]

    def remember_removed(self, agent_id: str) -> None:
        self.removed_agents.append(agent_id)
        del self.removed_agents[:-REMOVED_AGENTS_KEPT]

    def forget_removed(self, agent_id: str) -> bool:
        """Whether ``agent_id`` was removed for maintenance (forgotten now)."""
        if agent_id in self.removed_agents:
            self.removed_agents.remove(agent_id)
            return True
        return False

    # -- inverse offers ----------------------------------------------------------

    def add_offer(self, record: InverseOfferRecord) -> None:
        self.inverse_offers[record.id] = record
        self.outstanding[(record.framework_id, record.agent_id)] = record.id

    def pop_offer(self, offer_id: str) -> InverseOfferRecord | None:
        record = self.inverse_offers.pop(offer_id, None)
        if record is not None:
            self.outstanding.pop((record.framework_id, record.agent_id), None)
        return record

    def forget_agent(self, agent_id: str) -> None:
        """Answers and filters about an agent whose unavailability changed or went."""
        self.statuses.pop(agent_id, None)
        for key in [k for k in self.refused if k[1] == agent_id]:
            del self.refused[key]

    # -- the store -------------------------------------------------------------------

    def to_store(self) -> str:
        """The schedule, the DOWN machines and the removed agents, as JSON (the
        answers to inverse offers are not kept: Mesos loses them on failover too)."""
        return msgspec.json.encode({
            "schedule": self.schedule, "down": list(self.down.values()),
            "removed_agents": self.removed_agents}).decode()

    def load(self, text: str) -> None:
        doc = msgspec.json.decode(text, type=_Stored)
        self.schedule = doc.schedule
        self.down = {machine_key(m): m for m in doc.down}
        self.removed_agents = list(doc.removed_agents)


class _Stored(msgspec.Struct):
    schedule: Schedule = msgspec.field(default_factory=Schedule)
    down: list[MachineID] = []
    removed_agents: list[str] = []


# ---------------------------------------------------------------- validation


def check_machine(machine: MachineID, path: str) -> Refusal | None:
    if not machine.hostname and not machine.ip:
        return Refusal(400, "Both 'hostname' and 'ip' for a machine are empty", path)
    if machine.ip:
        try:
            ipaddress.IPv4Address(machine.ip)
        except ValueError:
            return Refusal(400, f"'{machine.ip}' is not an IPv4 address", f"{path}.ip")
    return None


def check_machines(machines: list[MachineID], path: str) -> Refusal | None:
    """A START/STOP list: not empty, each machine valid and given once."""
    if not machines:
        return Refusal(400, "List of machines is empty", path)
    seen: set[MachineKey] = set()
    for i, machine in enumerate(machines):
        refusal = check_machine(machine, f"{path}[{i}]")
        if refusal is not None:
            return refusal
        if machine_key(machine) in seen:
            return Refusal(400, f"Machine '{show(machine)}' appears more than once in the list",
                           f"{path}[{i}]")
        seen.add(machine_key(machine))
    return None


def check_schedule(schedule: Schedule, down: dict[MachineKey, MachineID], now: float,
                   path: str) -> Refusal | None:
    """A new schedule: windows with machines, each machine once, no window that
    has ended by ``now`` (wall seconds), every DOWN machine still in it."""
    seen: set[MachineKey] = set()
    for i, window in enumerate(schedule.windows):
        where = f"{path}.windows[{i}]"
        if not window.machine_ids:
            return Refusal(400, "List of machines in the maintenance window is empty",
                           f"{where}.machine_ids")
        refusal = _check_unavailability(window.unavailability, now, f"{where}.unavailability")
        if refusal is not None:
            return refusal
        for j, machine in enumerate(window.machine_ids):
            refusal = check_machine(machine, f"{where}.machine_ids[{j}]")
            if refusal is not None:
                return refusal
            if machine_key(machine) in seen:
                return Refusal(400, f"Machine '{show(machine)}' appears more than once in the "
                                    "schedule", f"{where}.machine_ids[{j}]")
            seen.add(machine_key(machine))
    for key, machine in down.items():
        if key not in seen:
            return Refusal(400, f"Machine '{show(machine)}' is deactivated and cannot be "
                                "removed from the schedule", f"{path}.windows")
    return None


def _check_unavailability(unavailability: Unavailability, now: float, path: str
                          ) -> Refusal | None:
    if unavailability.duration is None:
        return None  # no end
    if unavailability.duration.nanoseconds < 0:
        return Refusal(400, "Unavailability 'duration' is negative", f"{path}.duration")
    end = unavailability.start.nanoseconds + unavailability.duration.nanoseconds
    if end <= int(now * 1e9):
        return Refusal(400, "The maintenance window has already ended (its start plus its "
                            "duration is in the past)", path)
    return None
