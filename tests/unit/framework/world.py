"""A small world around the kit's core, for tests: a workload that keeps N instances
running, a store on "disk" (a dict), and a master that knows what was launched.

``World`` plays the runner's part exactly as ``FrameworkRunner`` does: instructions
are carried out only after the journal's generation of the same moment is written
(``step``), and acknowledgements are the ones the journal releases.  ``crash`` loses
everything in memory (the open generation, held offers, the core) and starts over from
the disk.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mesoslite.framework import (
    AgentLaunch,
    AgentOffers,
    FrameworkCore,
    Journal,
    KitSettings,
    LaunchBackoff,
    Outcome,
    Plan,
    Round,
    Workload,
    placement_agents,
)
from mesoslite.framework.events import (
    AcceptDone,
    CallOutcome,
    Event,
    Offers,
    Placed,
    Tick,
    Update,
)
from mesoslite.framework.instructions import (
    Accept,
    Acknowledge,
    Decline,
    Instruction,
    Kill,
    Place,
    Reconcile,
    Revive,
    Suppress,
    Teardown,
)
from mesoslite.messages.mesos import ID, Offer, Reason, TaskState, TaskStatus
from mesoslite.placement import Placement, Problem, Task
from mesoslite.resources import Resources
from mesoslite.scheduler import calls, resource_list, task_info

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
            "TASK_DROPPED", "TASK_GONE"}
RANK = {"TASK_STAGING": 0, "TASK_STARTING": 1, "TASK_RUNNING": 2}
TASK_IDS = itertools.count(1)  # unique across crashes, as real task ids are


def rank(state: str) -> int:
    return RANK.get(state, 3)


class Instances(Workload):
    """Keep ``count`` instances, one live task each; a task ending leaves its instance
    to be launched again.  Records live in the journal's ``tasks`` table."""

    def __init__(self, count: int, journal: Journal, disk: dict[str, tuple[int, str]]) -> None:
        self.count = count
        self.journal = journal
        self.tasks: dict[str, tuple[int, str]] = dict(disk)  # task -> (instance, state)

    def _put(self, task_id: str, instance: int, state: str) -> None:
        self.tasks[task_id] = (instance, state)
        self.journal.put("tasks", task_id, (task_id, instance, state))

    def live(self) -> dict[int, str]:
        return {i: t for t, (i, s) in self.tasks.items() if s not in TERMINAL}

    def missing(self) -> list[int]:
        live = self.live()
        return [i for i in range(self.count) if i not in live]

    def known_tasks(self) -> Iterable[tuple[str, str | None]]:
        return [(t, None) for t, (_, s) in self.tasks.items() if s not in TERMINAL]

    def on_update(self, status: TaskStatus, now: float) -> Outcome:
        task_id = status.task_id.value
        if task_id not in self.tasks:
            return Outcome(known=False)
        instance, state = self.tasks[task_id]
        if state in TERMINAL:
            return Outcome(known=status.state.terminal)
        if rank(status.state.value) >= rank(state):
            self._put(task_id, instance, status.state.value)
        return Outcome()

    def plan(self, now: float, ready: bool, backoff: LaunchBackoff) -> Plan:
        return Plan(demand=len(self.missing()) if ready else 0)

    def question(self, offers: Sequence[AgentOffers], now: float) -> Round | None:
        agents = placement_agents(offers)
        tasks = [Task(f"slot{i}", {"cpus": 1.0}) for i in self.missing()]
        return Round(Problem(agents, tasks), context=list(self.missing()))

    def placed(self, round: Round, answer: Placement, now: float) -> list[AgentLaunch]:
        out: dict[str, list] = {}
        live = self.live()
        for slot, agent in sorted(answer.assignments.items()):
            instance = int(slot.removeprefix("slot"))
            if instance in live:
                continue  # launched meanwhile
            task_id = f"i{instance}-t{next(TASK_IDS)}"
            self._put(task_id, instance, "TASK_STAGING")
            live[instance] = task_id
            out.setdefault(agent, []).append(task_info(task_id, task_id, agent, cmd="sleep 9",
                                                       cpus=1.0))
        return [AgentLaunch(a, (calls.launch_operation(infos),)) for a, infos in out.items()]

    def launch_refused(self, launch: AgentLaunch, message: str, now: float) -> None:
        for task_id in launch.task_ids:
            instance, _ = self.tasks[task_id]
            self._put(task_id, instance, "TASK_DROPPED")


def greedy(problem: Problem) -> Placement:
    """First fit on cpus: enough of an engine for these tests."""
    free = {a.id: a.resources.get("cpus", 0.0) for a in problem.agents}
    assignments, unplaced = {}, {}
    for task in problem.tasks:
        need = task.resources.get("cpus", 0.0)
        agent = next((a for a, c in free.items() if c + 1e-9 >= need), None)
        if agent is None:
            unplaced[task.id] = "insufficient cpus"
            continue
        free[agent] -= need
        assignments[task.id] = agent
    return Placement(assignments=assignments, ports={}, unplaced=unplaced, agents_used=0,
                     lower_bound=0, greedy_agents_used=0, solve_ms=0.0, status="greedy")


def offer(offer_id: str, agent: str, cpus: float) -> Offer:
    return Offer(id=ID(offer_id), framework_id=ID("fw"), agent_id=ID(agent), hostname=agent,
                 resources=resource_list(Resources.of(cpus=cpus, mem=1024)))


@dataclass
class MasterTask:
    agent: str
    state: str = "TASK_STAGING"
    unacked: list[tuple[bytes, str]] = field(default_factory=list)  # updates resent until acked


class World:
    """The core, its workload and journal, a disk, and a master (see module docstring)."""

    def __init__(self, count: int = 3, settings: KitSettings | None = None) -> None:
        self.count = count
        self.settings = settings or KitSettings(reconcile_wait_s=5.0, launch_grace_s=2.0)
        self.disk: dict[str, tuple[int, str]] = {}
        self.master: dict[str, MasterTask] = {}
        self.acked: list[tuple[str, bytes, str]] = []  # (task, uuid, the update's state)
        self.suppressed: bool | None = None  # as the master last heard
        self.demand_at_tick = 0
        self.sent: list[Instruction] = []
        self.pending_places: list[Place] = []
        self.pending_accepts: list[Accept] = []
        self.uuids = itertools.count(1)
        self.now = 1000.0
        self.answers_reconciliation = True  # False: the master never answers
        self.boot()

    def boot(self) -> None:
        self.journal = Journal({"tasks": lambda row: {"id": row[0], "row": row}})
        self.workload = Instances(self.count, self.journal, self.disk)
        self.core = FrameworkCore(self.workload, self.journal, self.settings)
        self.todo: list[Instruction] = []
        self.pending_places, self.pending_accepts = [], []

    def crash(self) -> None:
        """Everything in memory is lost; the disk stays."""
        self.boot()

    # ------------------------------------------------------------ the runner's part

    def feed(self, event: Event) -> None:
        self.todo += self.core.handle(event, self.now)

    def step(self) -> list[Instruction]:
        """Tick, write the generation, then carry out what was decided."""
        self.begin_write()
        return self.end_write()

    def begin_write(self) -> None:
        """Tick and take the generation for writing; events may come in meanwhile."""
        self.feed(Tick())
        self.demand_at_tick = len(self.workload.missing())  # what the plan saw
        self.writing = (self.todo, self.journal.take())
        self.todo = []

    def end_write(self) -> list[Instruction]:
        """The write lands; then what was decided before it began is carried out."""
        todo, batch = self.writing
        acks: list[Instruction] = []
        if batch is not None:
            for rows in batch.rows.values():
                for (task_id,), row in rows.items():
                    assert row is not None
                    _, instance, state = row["row"]
                    self.disk[task_id] = (instance, state)
            acks = list(self.journal.committed(batch))
        for instruction in [*acks, *todo]:
            self.execute(instruction)
        return [*acks, *todo]

    def execute(self, i: Instruction) -> None:
        self.sent.append(i)
        if isinstance(i, Acknowledge):
            task = self.master.get(i.task_id)
            if task is not None:
                states = [s for u, s in task.unacked if u == i.uuid]
                task.unacked = [(u, s) for u, s in task.unacked if u != i.uuid]
                self.acked += [(i.task_id, i.uuid, s) for s in states]
        elif isinstance(i, Place):
            self.pending_places.append(i)
        elif isinstance(i, Accept):
            self.pending_accepts.append(i)
        elif isinstance(i, Revive):
            self.suppressed = False
        elif isinstance(i, Suppress):
            self.suppressed = True
        elif isinstance(i, Reconcile):
            self.reconcile(i)
        elif isinstance(i, Kill):
            task = self.master.get(i.task_id)
            if task is not None and task.state not in TERMINAL:
                self.agent_update(i.task_id, "TASK_KILLED")
        elif not isinstance(i, (Decline, Teardown)):
            raise TypeError(f"unexpected {i!r}")

    def answer_place(self) -> None:
        place = self.pending_places.pop(0)
        self.feed(Placed(place.round_id, greedy(place.problem)))

    def finish_accept(self, outcome: CallOutcome) -> None:
        accept = self.pending_accepts.pop(0)
        if outcome != CallOutcome.REFUSED:  # OK, or UNKNOWN that did arrive
            for task_id in accept.task_ids:
                self.master[task_id] = MasterTask(accept.agent_id)
        message = "offer rescinded" if outcome == CallOutcome.REFUSED else ""
        self.feed(AcceptDone(accept.accept_id, outcome, message))

    # ------------------------------------------------------------ the master's part

    def agent_update(self, task_id: str, state: str) -> None:
        task = self.master[task_id]
        task.state = state
        task.unacked.append((str(next(self.uuids)).encode(), state))

    def deliver(self, task_id: str, index: int = 0) -> None:
        """Deliver (or deliver again) one unacknowledged update of ``task_id``."""
        task = self.master[task_id]
        uuid, state = task.unacked[index % len(task.unacked)]
        self.feed(Update(TaskStatus(task_id=ID(task_id), state=TaskState(state),
                                    agent_id=ID(task.agent), uuid=uuid)))

    def reconcile(self, call: Reconcile) -> None:
        if not self.answers_reconciliation:
            return
        asked = [t for t, _ in call.tasks] if call.tasks else list(self.master)
        for task_id in asked:
            task = self.master.get(task_id)
            state = task.state if task is not None else "TASK_LOST"
            self.feed(Update(TaskStatus(task_id=ID(task_id), state=TaskState(state),
                                        reason=Reason.REASON_RECONCILIATION)))

    def offers(self, *offers: Offer) -> None:
        self.feed(Offers(tuple(offers)))
