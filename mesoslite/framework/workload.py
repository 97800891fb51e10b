"""What a framework supplies to the kit: what should run, and the tasks that run it.

Subclass ``Workload`` and override what your framework needs; every default does
nothing.  The kit's core calls these methods synchronously, on the event loop, and
only from its own ``handle``: they must not block or do I/O.  A workload records its
durable changes in the journal it was given (``Journal.put``) and the runner writes
them before anything they protect is sent.

The contract, in the order of an offer cycle:

1. ``plan(now, ready, backoff)``: what should happen now.  ``ready`` is False until
   the framework is subscribed and the master has answered its reconciliation;
   until then return no kills and no demand (bookkeeping such as cron may go on).
   ``demand`` is how many tasks would launch if offers came: the kit revives offers
   when it grows and suppresses them when it is 0 (and nothing is ``pending``).
2. ``question(offers, now)``: offers are held and there is demand: which tasks could
   go where?  Return a ``Round`` with a placement ``Problem`` (the kit runs the
   engine off the event loop) and anything of your own in ``context``.
3. ``placed(round, answer, now)``: the engine answered (assignments to agents whose
   offers have since gone are already removed).  Check the answer against the state
   as it is now, *record every task you launch* (journal), and return one
   ``AgentLaunch`` per agent with the operations to ACCEPT.
4. ``launch_refused(launch, message, now)``: the master certainly did not carry
   ``launch`` out (the ACCEPT was refused or never sent).  Forget or retry its tasks
   (``launch.task_ids``).
5. ``on_update(status, now)``: fold a status update in.  Return ``Outcome(known=
   False)`` for a task you do not know (or wrote off): the kit kills it if it lives.
   A failure you want to delay relaunches by (Marathon's launch backoff) is
   ``Outcome(failure=(key, BackoffPolicy))``.
6. ``known_tasks()``: every task that may be live, for reconciliation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesoslite.framework.backoff import BackoffPolicy, LaunchBackoff
from mesoslite.framework.instructions import Kill
from mesoslite.framework.offers import AgentOffers
from mesoslite.messages.mesos import Operation, OperationType, TaskStatus
from mesoslite.placement import Placement, Problem


@dataclass(frozen=True, slots=True)
class Plan:
    """The workload's decision at one moment (see the module docstring)."""

    kills: Sequence[Kill] = ()
    demand: int = 0  # tasks that would launch now if offers came
    pending: bool = False  # work that will want offers later (e.g. in backoff): keep them
    wake_at: float | None = None  # plan again by then at the latest
    done: bool = False  # nothing is left to do: tear the framework down


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a status update meant to the workload."""

    known: bool = True  # False: not one of ours (or written off): kill it if it lives
    failure: tuple[str, BackoffPolicy] | None = None  # delay launches of this key


@dataclass
class Round:
    """One placement question.  ``id`` and ``offers`` are filled in by the core."""

    problem: Problem | None
    context: Any = None
    id: int = 0
    offers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # agent -> offer ids


@dataclass(frozen=True, slots=True)
class AgentLaunch:
    """ACCEPT the offers of ``agent_id`` with ``operations`` (LAUNCH, RESERVE ...).
    ``context`` is the workload's own, handed back if the ACCEPT is refused."""

    agent_id: str
    operations: tuple[Operation, ...]
    context: Any = None

    @property
    def task_ids(self) -> tuple[str, ...]:
        """The tasks its LAUNCH and LAUNCH_GROUP operations start."""
        return launched_task_ids(self.operations)


class Workload:
    """Base class with do-nothing defaults; see the module docstring."""

    def known_tasks(self) -> Iterable[tuple[str, str | None]]:
        return ()

    def on_update(self, status: TaskStatus, now: float) -> Outcome:
        return Outcome()

    def plan(self, now: float, ready: bool, backoff: LaunchBackoff) -> Plan:
        return Plan()

    def question(self, offers: Sequence[AgentOffers], now: float) -> Round | None:
        return None

    def placed(self, round: Round, answer: Placement, now: float) -> Sequence[AgentLaunch]:
        return ()

    def launch_refused(self, launch: AgentLaunch, message: str, now: float) -> None:
        """The master certainly did not carry ``launch`` out (its tasks never
        started).  Default: nothing (the next plan sees the tasks still missing)."""

    def on_failure(self, agent_id: str | None, executor_id: str | None, status: int | None,
                   now: float) -> None:
        """An agent was lost or an executor ended."""

    def on_message(self, agent_id: str, executor_id: str, data: bytes, now: float) -> None:
        """A framework message from an executor."""


def launched_task_ids(operations: Sequence[Operation]) -> tuple[str, ...]:
    """The ids of the tasks LAUNCH and LAUNCH_GROUP operations start."""
    out: list[str] = []
    for op in operations:
        if op.type == OperationType.LAUNCH and op.launch is not None:
            out += [t.task_id.value for t in op.launch.task_infos]
        elif op.type == OperationType.LAUNCH_GROUP and op.launch_group is not None:
            out += [t.task_id.value for t in op.launch_group.task_group.tasks]
    return tuple(out)
