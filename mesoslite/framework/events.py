"""What happens to a framework: the events its core (``FrameworkCore.handle``) takes.

Typed and immutable.  The runner makes them from the driver's callbacks (subscribed,
offers, status updates ...), from the outcome of its own calls (``AcceptDone``) and of
placement (``Placed``), and from time passing (``Tick``).  The core never sees
anything else, so a test can drive it through any sequence without a master.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from mesoslite.messages.mesos import MasterInfo, Offer, TaskStatus
from mesoslite.placement import Placement


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The master accepted SUBSCRIBE (first time or again after a drop)."""

    framework_id: str
    master_info: MasterInfo | None = None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The event stream was lost: held offers are void, calls fail until re-subscribed."""


@dataclass(frozen=True, slots=True)
class Offers:
    offers: tuple[Offer, ...]


@dataclass(frozen=True, slots=True)
class Rescind:
    offer_id: str


@dataclass(frozen=True, slots=True)
class Update:
    """A task status update; one with a ``uuid`` waits for an acknowledgement."""

    status: TaskStatus


@dataclass(frozen=True, slots=True)
class Failure:
    """An agent was lost (``executor_id`` None) or an executor ended (``status``)."""

    agent_id: str | None
    executor_id: str | None
    status: int | None


@dataclass(frozen=True, slots=True)
class Message:
    """A framework message from one of the framework's executors."""

    agent_id: str
    executor_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Error:
    """The master refused the framework (an ERROR event, or SUBSCRIBE refused)."""

    message: str


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed or something changed: plan, place, reconcile, expire what is due."""


@dataclass(frozen=True, slots=True)
class Placed:
    """The placement engine answered round ``round_id`` (``answer`` None: it failed,
    ``error`` says why)."""

    round_id: int
    answer: Placement | None
    error: str | None = None


class CallOutcome(Enum):
    OK = "ok"  # the master took the call (202)
    REFUSED = "refused"  # it certainly did not act on it (4xx, or never sent)
    UNKNOWN = "unknown"  # it may or may not have arrived (connection lost)


@dataclass(frozen=True, slots=True)
class AcceptDone:
    """How the ACCEPT ``accept_id`` went."""

    accept_id: int
    outcome: CallOutcome
    message: str = ""


Event = (Subscribed | Disconnected | Offers | Rescind | Update | Failure | Message | Error
         | Tick | Placed | AcceptDone)
