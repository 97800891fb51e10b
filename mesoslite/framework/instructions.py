"""What the framework core asks the runner to do: its output, typed.

The runner carries them out with the scheduler driver after the journal's writes of
the same moment are durable (an ACCEPT never goes out before the task records it
launches are stored, a KILL never before its reason).  ``Acknowledge`` is made by
the journal alone (see ``journal.py``); ``Place`` asks for the placement engine's
answer, which comes back as a ``Placed`` event.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.framework.journal import Acknowledge
from mesoslite.messages.mesos import Operation
from mesoslite.placement import Problem


@dataclass(frozen=True, slots=True)
class Accept:
    """ACCEPT every held offer of ``agent_id`` with ``operations``; what they leave
    unused is refused to the framework for ``refuse_seconds``."""

    accept_id: int
    agent_id: str
    offer_ids: tuple[str, ...]
    operations: tuple[Operation, ...]
    refuse_seconds: float
    task_ids: tuple[str, ...] = ()  # the tasks its LAUNCH / LAUNCH_GROUP operations start


@dataclass(frozen=True, slots=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclass(frozen=True, slots=True)
class Kill:
    task_id: str
    agent_id: str | None
    reason: str
    grace_period: float | None = None


@dataclass(frozen=True, slots=True)
class Revive:
    roles: tuple[str, ...] = ()  # () : every role of the framework


@dataclass(frozen=True, slots=True)
class Suppress:
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Ask for the latest state of ``tasks`` ((task id, agent id)); () asks for every
    task the master knows of the framework (implicit reconciliation)."""

    tasks: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True, slots=True)
class Teardown:
    """Remove the framework from the master (its tasks are killed) and stop."""


@dataclass(frozen=True, slots=True)
class Place:
    """Run the placement engine on ``problem`` (off the event loop); the answer comes
    back as ``Placed(round_id, ...)``."""

    round_id: int
    problem: Problem


Instruction = (Accept | Decline | Kill | Acknowledge | Revive | Suppress | Reconcile | Teardown
               | Place)
