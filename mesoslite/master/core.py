"""The master's shared state and the small helpers every part of it uses.

``MasterCore`` holds the records (agents, frameworks, tasks, offers), the outbox of
commands, and the sets of records changed since the last durable flush.  Task
records change only through ``add_task``, ``transition`` and ``retire_task``.  The
operations live in mixins (``agents.py``, ``frameworks.py``, ``tasks.py``,
``offers.py``) combined by ``state.MasterState``, whose ``handle`` is the one entry
point.  No method here does I/O or reads a clock: times arrive as arguments (``now``
wall seconds, ``mono`` monotonic).
"""

from __future__ import annotations

import itertools
import uuid as uuidlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from mesoslite.master.allocator import Allocator, Quota
from mesoslite.master.model import (
    AgentRecord,
    AgentState,
    CloseStream,
    Command,
    ExecutorRecord,
    FrameworkRecord,
    OfferRecord,
    SendToAgent,
    SendToFramework,
    TaskRecord,
)
from mesoslite.master.operations import OperationRecord
from mesoslite.messages.agent import MasterMessage, Usage
from mesoslite.messages.mesos import (
    ID,
    CapabilityType,
    FrameworkInfo,
    Reason,
    Source,
    TaskInfo,
    TaskState,
    TaskStatus,
    TimeInfo,
)
from mesoslite.messages.scheduler import Event, EventType, Update
from mesoslite.store.master_store import Writes

# Why one of a task's secret references cannot resolve now (None: they all can).
# Pure: it reads the in-memory catalog (``MasterSecrets.check``) and opens no value.
SecretsCheck = Callable[[FrameworkInfo, TaskInfo], str | None]


@dataclass
class MasterConfig:
    """Tunables, with Mesos' defaults where Mesos has one."""

    hostname: str = "127.0.0.1"
    port: int = 5050
    agent_ping_timeout: float = 15.0
    max_agent_ping_timeouts: int = 5
    agent_reregister_timeout: float = 600.0
    offer_timeout: float | None = 60.0
    heartbeat_interval: float = 15.0
    allocation_interval: float = 1.0
    role_weights: dict[str, float] = field(default_factory=dict)
    max_completed_frameworks: int = 50
    max_completed_tasks: int = 1000
    agent_secret: str | None = None
    # the URL other masters redirect to while this one leads (default http://host:port)
    advertise_url: str | None = None
    # how long a request may wait for this master, elected, to finish loading the
    # state before it is answered 503
    recovery_hold: float = 10.0


class MasterCore:
    """Records, indexes, the outbox and dirty tracking (see module docstring)."""

    def __init__(self, master_id: str, config: MasterConfig, allocator: Allocator,
                 secrets_check: SecretsCheck | None = None) -> None:
        self.master_id = master_id
        self.config = config
        self.allocator = allocator
        self.secrets_check = secrets_check
        self.epoch = 0
        self.start_mono = 0.0
        self.agents: dict[str, AgentRecord] = {}
        # agents the operator marked gone (their last record): refused if they return
        self.gone_agents: dict[str, AgentRecord] = {}
        # draining agents that lost a task: ``MasterState.handle`` sees if they are drained
        self.drain_candidates: set[str] = set()
        self.frameworks: dict[str, FrameworkRecord] = {}
        self.completed_frameworks: deque[FrameworkRecord] = deque(
            maxlen=config.max_completed_frameworks
        )
        self.removed_framework_ids: set[str] = set()
        self.tasks: dict[tuple[str, str], TaskRecord] = {}
        # (agent id, framework id, executor id) -> ExecutorRecord (master/executors.py)
        self.executors: dict[tuple[str, str, str], ExecutorRecord] = {}
        self.tasks_by_agent: dict[str, set[tuple[str, str]]] = {}
        self.tasks_by_framework: dict[str, set[tuple[str, str]]] = {}
        self.completed_tasks: deque[TaskRecord] = deque(maxlen=config.max_completed_tasks)
        self.offers: dict[str, OfferRecord] = {}
        # each agent's latest resource usage report (for /master/state and /metrics)
        self.usage: dict[str, Usage] = {}
        self.outbox: list[Command] = []
        self.dirty_agents: set[str] = set()
        self.dirty_frameworks: set[str] = set()
        self.dirty_tasks: set[tuple[str, str]] = set()
        # agents whose available resources changed: the next partial round offers them
        self.changed_agents: set[str] = set()
        # agents the allocator knows (unreachable and recovered agents are not in it)
        self.in_allocator: set[str] = set()
        # role weights: the --weights flag's, overridden by those set at run time
        # (``stored_weights``, durable), and quota per role (``operator_quota.py``)
        self.role_weights: dict[str, float] = dict(config.role_weights)
        self.stored_weights: dict[str, float] = {}
        self.quotas: dict[str, Quota] = {}
        self.meta_writes: dict[str, str] = {}  # meta table rows for the next flush
        # offer operations with an id, by (framework id, operation id): operations.py
        self.operations: dict[tuple[str, str], OperationRecord] = {}
        self._ids: dict[str, itertools.count[int]] = {}
        self.counters: dict[str, int] = {
            "offers_sent": 0,
            "offers_declined": 0,
            "offers_rescinded": 0,
            "offers_accepted": 0,
            "tasks_launched": 0,
            "tasks_dropped": 0,
            "tasks_error": 0,
            "status_updates": 0,
            "calls_invalid": 0,
            "operations_finished": 0,
            "operations_invalid": 0,
            "allocation_rounds": 0,
        }

    # -- ids ----------------------------------------------------------------

    def next_id(self, kind: str) -> str:
        """Mesos-shaped ids: ``<master>-0003`` frameworks, ``<master>-S3`` agents..."""
        n = next(self._ids.setdefault(kind, itertools.count()))
        return f"{self.master_id}-{kind}{n:04d}" if kind else f"{self.master_id}-{n:04d}"

    # -- outbox --------------------------------------------------------------

    def drain(self) -> list[Command]:
        """The commands queued since the last drain, in order."""
        out, self.outbox = self.outbox, []
        return out

    def take_writes(self) -> Writes:
        """The records changed since the last call, as the store keeps them (a
        retired task, a removed agent as a deletion); the dirty sets start over.  The
        server commits this before it executes the commands drained in the same flush."""
        writes = Writes()
        for aid in self.dirty_agents:
            agent = self.agents.get(aid) or self.gone_agents.get(aid)
            if agent is not None:
                writes.agents[aid] = agent.to_store()
            else:
                writes.deleted_agents.add(aid)
        for fid in self.dirty_frameworks:
            fw = self.frameworks.get(fid) or next(
                (f for f in self.completed_frameworks if f.id == fid), None)
            if fw is not None:
                writes.frameworks[fid] = fw.to_store()
        for key in self.dirty_tasks:
            task = self.tasks.get(key)
            if task is not None:
                writes.tasks[key] = task.to_store()
            else:
                writes.deleted_tasks.add(key)
        writes.meta, self.meta_writes = self.meta_writes, {}
        self.dirty_agents.clear()
        self.dirty_frameworks.clear()
        self.dirty_tasks.clear()
        return writes

    @property
    def pending(self) -> bool:
        """Whether a flush has anything to do: commands, records to store, or agents
        whose free resources changed (a partial allocation round)."""
        return bool(self.outbox or self.dirty_agents or self.dirty_frameworks
                    or self.dirty_tasks or self.changed_agents or self.meta_writes)

    def to_framework(self, framework_id: str, event: Event) -> None:
        fw = self.frameworks.get(framework_id)
        if fw is not None and fw.connected:
            self.outbox.append(SendToFramework(framework_id, event))

    def to_agent(self, agent_id: str, message: MasterMessage) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None and agent.state == AgentState.ACTIVE:
            message.epoch = self.epoch
            self.outbox.append(SendToAgent(agent_id, message))

    def close_stream(self, framework_id: str, stream_id: str, error: str | None = None) -> None:
        self.outbox.append(CloseStream(framework_id, stream_id, error))

    # -- task records: the only code that adds, changes and retires them ----------

    def add_task(self, task: TaskRecord) -> None:
        """A task the master now holds (launched, adopted from an agent, recovered)."""
        self.tasks[task.key] = task
        self.tasks_by_agent.setdefault(task.agent_id, set()).add(task.key)
        self.tasks_by_framework.setdefault(task.framework_id, set()).add(task.key)
        self.dirty_tasks.add(task.key)

    def transition(self, task: TaskRecord, status: TaskStatus, mono: float, *,
                   latest: TaskState | None = None, at: float | None = None) -> bool:
        """Record ``status`` (the update being delivered) and ``latest`` (the task's
        current state, default ``status.state``): the only place a task's state
        changes.  Returns False, changing nothing, when the task's state is terminal
        and ``latest`` is another one (terminal states are final) or when ``status``
        is the one recorded (a retransmission).

        ``at``: also add the state to the task's history at that time (unless it is
        the last one there).  A terminal ``latest`` gives the task's resources back;
        a terminal ``status`` with a uuid is the one whose acknowledgement retires it.
        """
        latest = latest or status.state
        if task.latest_state.terminal and latest != task.latest_state:
            return False
        if status.uuid is not None and status.uuid == task.status.uuid and (
                latest == task.latest_state):
            return False
        if at is not None and (not task.statuses or task.statuses[-1][0] != status.state.value):
            task.statuses.append((status.state.value, at))
        task.status = status
        task.latest_state = latest
        if status.state.terminal and status.uuid:
            task.terminal_uuid = status.uuid
        if latest.terminal:
            self._release(task, mono)
        self.dirty_tasks.add(task.key)
        return True

    def retire_task(self, task: TaskRecord, mono: float) -> None:
        """Out of the live tasks (its resources given back) into the completed ones."""
        self._release(task, mono)
        self.tasks.pop(task.key, None)
        self.tasks_by_agent.get(task.agent_id, set()).discard(task.key)
        self.tasks_by_framework.get(task.framework_id, set()).discard(task.key)
        self.dirty_tasks.add(task.key)
        self.completed_tasks.append(task)
        agent = self.agents.get(task.agent_id)
        if agent is not None and agent.drain is not None:
            self.drain_candidates.add(agent.id)

    def _release(self, task: TaskRecord, mono: float) -> None:
        """Give a task's resources back to the allocator, once."""
        if task.released:
            return
        task.released = True
        if task.agent_id in self.in_allocator:
            if task.reserved:  # the reserved part goes back to its reservation
                self.allocator.recover(task.framework_id, task.role, task.agent_id,
                                       task.reserved, mono, reservation=task.role)
                unreserved = task.resources - task.reserved
            else:
                unreserved = task.resources
            self.allocator.recover(
                task.framework_id, task.role, task.agent_id, unreserved, mono
            )
            self.changed_agents.add(task.agent_id)

    def agent_tasks(self, agent_id: str) -> list[TaskRecord]:
        return [self.tasks[k] for k in sorted(self.tasks_by_agent.get(agent_id, ()))]

    def framework_tasks(self, framework_id: str) -> list[TaskRecord]:
        return [self.tasks[k] for k in sorted(self.tasks_by_framework.get(framework_id, ()))]

    # -- status updates ------------------------------------------------------

    def partition_aware(self, framework_id: str) -> bool:
        fw = self.frameworks.get(framework_id)
        return fw is not None and fw.info.has_capability(CapabilityType.PARTITION_AWARE)

    def master_update(
        self,
        framework_id: str,
        task_id: str,
        agent_id: str | None,
        state: TaskState,
        reason: Reason,
        message: str,
        now: float,
        healthy: bool | None = None,
        unreachable_time: float | None = None,
    ) -> TaskStatus:
        """A status generated by the master (no uuid: nothing to acknowledge)."""
        return TaskStatus(
            task_id=ID(task_id),
            state=state,
            message=message,
            source=Source.SOURCE_MASTER,
            reason=reason,
            agent_id=ID(agent_id) if agent_id else None,
            timestamp=now,
            healthy=healthy,
            unreachable_time=(
                TimeInfo(nanoseconds=int(unreachable_time * 1e9))
                if unreachable_time is not None
                else None
            ),
        )

    def send_update(self, framework_id: str, status: TaskStatus) -> None:
        self.to_framework(framework_id, Event(type=EventType.UPDATE, update=Update(status=status)))

    def lost_state(self, framework_id: str, partition_aware_state: TaskState) -> TaskState:
        """What a non-PARTITION_AWARE framework is told instead of the newer states."""
        return partition_aware_state if self.partition_aware(framework_id) else TaskState.TASK_LOST

    # -- helpers -------------------------------------------------------------

    @staticmethod
    def new_uuid() -> bytes:
        return uuidlib.uuid4().bytes

    def mark_changed(self, agent_ids: Iterable[str]) -> None:
        self.changed_agents.update(agent_ids)
