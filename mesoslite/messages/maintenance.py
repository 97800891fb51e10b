"""Mesos' maintenance messages (``mesos/v1/maintenance/maintenance.proto`` and
``InverseOfferStatus`` from ``mesos/v1/allocator/allocator.proto``), JSON as Mesos
writes them."""

from __future__ import annotations

import enum

from mesoslite.messages.mesos import ID, Base, MachineID, TimeInfo, Unavailability


class Window(Base):
    """Machines that go into maintenance in the same ``unavailability``."""

    unavailability: Unavailability
    machine_ids: list[MachineID] = []


class Schedule(Base):
    """The cluster's one maintenance schedule (a machine is in one window at most)."""

    windows: list[Window] = []


class InverseOfferAnswer(str, enum.Enum):
    """``InverseOfferStatus.Status``: UNKNOWN until the framework answers."""

    UNKNOWN = "UNKNOWN"
    ACCEPT = "ACCEPT"
    DECLINE = "DECLINE"


class InverseOfferStatus(Base):
    status: InverseOfferAnswer
    framework_id: ID
    timestamp: TimeInfo


class DrainingMachine(Base):
    id: MachineID
    statuses: list[InverseOfferStatus] = []


class ClusterStatus(Base):
    draining_machines: list[DrainingMachine] = []
    down_machines: list[MachineID] = []


class MachineMode(str, enum.Enum):
    """``MachineInfo.Mode``."""

    UP = "UP"
    DRAINING = "DRAINING"
    DOWN = "DOWN"
