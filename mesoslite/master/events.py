"""The master's event stream: what changed, in the shapes of Mesos' operator API
``Event`` (``mesos/v1/master/master.proto``), with ids for resuming.

Where events come from.  The state machine already records which agents, frameworks
and tasks changed in a tick (``MasterState.dirty_*``, written to the store by the
flusher).  ``EventSource.collect()`` runs in the flusher just before those sets are
cleared: for each dirty record it compares a small digest (states, health, info)
with what it last reported and appends an event holding a shallow snapshot of the
record.  Nothing is rendered or encoded there; a tick without dirty records costs
nothing.  The flusher hands the batch to ``EventLog.publish`` only after the commit
of the same tick succeeded, so an event is never seen before the change is durable.

Event types: ``TASK_ADDED``, ``TASK_UPDATED``, ``AGENT_ADDED`` (first registration,
or back after being unreachable or after a master failover), ``AGENT_UPDATED`` (a
mesoslite extension: an agent disconnected, reconnected, re-registered with other
resources or attributes, or was deactivated, drained or reactivated), ``AGENT_REMOVED``
(marked unreachable: Mesos sends AGENT_REMOVED then too; or marked gone), ``FRAMEWORK_ADDED``, ``FRAMEWORK_UPDATED`` (re-subscribed,
failed over, disconnected, suppressed/revived, updated its info), ``FRAMEWORK_REMOVED``.

Resume.  ``EventLog`` keeps the last ``capacity`` events in memory.  Ids are
``<stream>-<seq>``: ``stream`` is new for every master process, so an id from another
run is recognised instead of compared with unrelated numbers.  A reader that asks for
events no longer held (or from another stream) is told so (``reset``) and continues
from the newest event.  Readers share the one buffer: nothing is queued per reader,
and a reader that falls behind by more than ``capacity`` events sees a reset.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import itertools
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from mesoslite.master.model import AgentRecord, AgentState, FrameworkRecord, TaskRecord
from mesoslite.master.operator_views import agent_json, framework_json, status_json, task_json
from mesoslite.master.state import MasterState
from mesoslite.messages.mesos import TaskState, TaskStatus

DEFAULT_CAPACITY = 10_000
_encoder = msgspec.json.Encoder()


class EventType(str, enum.Enum):
    SUBSCRIBED = "SUBSCRIBED"
    TASK_ADDED = "TASK_ADDED"
    TASK_UPDATED = "TASK_UPDATED"
    AGENT_ADDED = "AGENT_ADDED"
    AGENT_UPDATED = "AGENT_UPDATED"
    AGENT_REMOVED = "AGENT_REMOVED"
    FRAMEWORK_ADDED = "FRAMEWORK_ADDED"
    FRAMEWORK_UPDATED = "FRAMEWORK_UPDATED"
    FRAMEWORK_REMOVED = "FRAMEWORK_REMOVED"
    HEARTBEAT = "HEARTBEAT"


# What a task event needs, as it was in the tick that made it: the record (for what
# never changes: ids, TaskInfo, role), its status (replaced, never mutated, by the
# state machine), its latest state and the length of its history (append-only).
TaskSnapshot = tuple[TaskRecord, TaskStatus, TaskState, int]


def task_snapshot(task: TaskRecord) -> TaskSnapshot:
    return (task, task.status, task.latest_state, len(task.statuses))


class MasterEvent:
    """One event.  ``snapshot`` is a ``TaskSnapshot``, a copy of an ``AgentRecord`` or
    of a ``FrameworkRecord``; the JSON is rendered on first use and cached."""

    __slots__ = ("_body", "at", "seq", "snapshot", "type")

    def __init__(self, kind: EventType, snapshot: Any) -> None:
        self.type = kind
        self.snapshot = snapshot
        self.seq = 0
        self.at = 0.0  # wall-clock seconds when published
        self._body: bytes | None = None

    def __repr__(self) -> str:
        return f"MasterEvent({self.type.value}, seq={self.seq})"

    def to_dict(self) -> dict[str, Any]:
        """Mesos' ``Event`` JSON: ``{"type": T, "<t>": {...}}``."""
        return {"type": self.type.value, **_payload(self.type, self.snapshot)}

    def body(self) -> bytes:
        if self._body is None:
            self._body = _encoder.encode(self.to_dict())
        return self._body

    def body_with_time(self) -> bytes:
        """``body()`` plus ``"at"`` (publication time): the SSE form."""
        return self.body()[:-1] + b',"at":' + f"{self.at:.3f}".encode() + b"}"


def _payload(kind: EventType, snap: Any) -> dict[str, Any]:
    if kind == EventType.TASK_ADDED:
        r, status, latest, n = snap
        return {"task_added": {"task": task_json(r.framework_id, r.agent_id, r._info_builtins(),
                                                 r.role, status, latest, r.statuses[:n])}}
    if kind == EventType.TASK_UPDATED:
        r, status, latest, _ = snap
        return {"task_updated": {"framework_id": {"value": r.framework_id},
                                 "status": status_json(status), "state": latest.value}}
    if kind in (EventType.AGENT_ADDED, EventType.AGENT_UPDATED):
        return {kind.value.lower(): {"agent": agent_json(snap)}}
    if kind == EventType.AGENT_REMOVED:
        return {"agent_removed": {"agent_id": {"value": snap.id}}}
    if kind in (EventType.FRAMEWORK_ADDED, EventType.FRAMEWORK_UPDATED):
        return {kind.value.lower(): {"framework": framework_json(snap)}}
    if kind == EventType.FRAMEWORK_REMOVED:
        return {"framework_removed": {"framework_info": msgspec.to_builtins(snap.info)}}
    return {}


# ---------------------------------------------------------------- deriving events


@dataclass(frozen=True)
class RemovedAgent:
    """What AGENT_REMOVED tells of an agent no longer in the master's records."""

    id: str


class EventSource:
    """Turns the state machine's dirty sets into events (see module docstring)."""

    def __init__(self, state: MasterState) -> None:
        self.state = state
        # last reported: record and digest, per record id
        self._tasks: dict[tuple[str, str], tuple[TaskRecord, TaskState, TaskState, bool | None]] = {}
        self._agents: dict[str, tuple[Any, ...]] = {}
        self._frameworks: dict[str, tuple[FrameworkRecord, Any, Any, frozenset[str]]] = {}
        # tasks that entered each state, for /metrics
        self.task_transitions: Counter[TaskState] = Counter()

    def prime(self) -> None:
        """Take the current records as already reported (after recovery: readers get
        them from a snapshot, not as events)."""
        s = self.state
        self._tasks = {k: (t, *_task_digest(t)) for k, t in s.tasks.items()}
        self._agents = {a.id: _agent_digest(a) for a in s.agents.values()}
        self._frameworks = {f.id: (f, *_framework_digest(f)) for f in s.frameworks.values()}

    def collect(self) -> list[MasterEvent]:
        """The events of this tick; call before the dirty sets are cleared."""
        s = self.state
        if not (s.dirty_tasks or s.dirty_agents or s.dirty_frameworks):
            return []
        early: list[MasterEvent] = []  # frameworks and agents added/updated first
        late: list[MasterEvent] = []  # removals after the tasks' last updates
        tasks: list[MasterEvent] = []
        for fid in s.dirty_frameworks:
            self._framework(fid, early, late)
        for aid in s.dirty_agents:
            self._agent(aid, early, late)
        for key in s.dirty_tasks:
            self._task(key, tasks)
        return early + tasks + late

    def _task(self, key: tuple[str, str], out: list[MasterEvent]) -> None:
        current = self.state.tasks.get(key)
        known = self._tasks.get(key)
        if current is not None and (known is None or known[0] is not current):
            self._tasks[key] = (current, *_task_digest(current))
            out.append(MasterEvent(EventType.TASK_ADDED, task_snapshot(current)))
            self.task_transitions[current.latest_state] += 1
            return
        if known is None:
            return  # added and retired within one tick: never seen
        task = known[0]
        digest = _task_digest(task)
        if current is None:
            del self._tasks[key]  # retired this tick: report its last change, forget it
        elif digest != known[1:]:
            self._tasks[key] = (task, *digest)
        if digest == known[1:]:
            return
        if known[2] != task.latest_state:
            self.task_transitions[task.latest_state] += 1
        out.append(MasterEvent(EventType.TASK_UPDATED, task_snapshot(task)))

    def _agent(self, aid: str, early: list[MasterEvent], late: list[MasterEvent]) -> None:
        agent = self.state.agents.get(aid)
        if agent is None:  # removed (its machine went DOWN, or it is gone)
            gone = self.state.gone_agents.get(aid)
            if self._agents.pop(aid, None) is not None:
                late.append(MasterEvent(EventType.AGENT_REMOVED, copy.copy(gone)
                                        if gone is not None else RemovedAgent(aid)))
            return
        digest = _agent_digest(agent)
        known = self._agents.get(aid)
        if known == digest:
            return
        self._agents[aid] = digest
        before = known[0] if known is not None else None
        if agent.state == AgentState.UNREACHABLE:
            if before not in (None, AgentState.UNREACHABLE, AgentState.RECOVERED):
                late.append(MasterEvent(EventType.AGENT_REMOVED, copy.copy(agent)))
        elif agent.state == AgentState.RECOVERED:
            return
        elif before in (None, AgentState.RECOVERED, AgentState.UNREACHABLE):
            early.append(MasterEvent(EventType.AGENT_ADDED, copy.copy(agent)))
        else:
            early.append(MasterEvent(EventType.AGENT_UPDATED, copy.copy(agent)))

    def _framework(self, fid: str, early: list[MasterEvent], late: list[MasterEvent]) -> None:
        fw = self.state.frameworks.get(fid)
        known = self._frameworks.get(fid)
        if fw is None:
            if known is not None:
                del self._frameworks[fid]
                late.append(MasterEvent(EventType.FRAMEWORK_REMOVED, copy.copy(known[0])))
            return
        digest = _framework_digest(fw)
        if known is not None and known[0] is fw and known[1:] == digest:
            return
        self._frameworks[fid] = (fw, *digest)
        kind = EventType.FRAMEWORK_ADDED if known is None else EventType.FRAMEWORK_UPDATED
        early.append(MasterEvent(kind, copy.copy(fw)))


def _task_digest(task: TaskRecord) -> tuple[TaskState, TaskState, bool | None]:
    return (task.status.state, task.latest_state, task.status.healthy)


def _agent_digest(agent: AgentRecord) -> tuple[Any, ...]:
    return (agent.state, agent.total, agent.attributes, agent.hostname, agent.port,
            agent.deactivated, agent.drain)


def _framework_digest(fw: FrameworkRecord) -> tuple[Any, Any, frozenset[str]]:
    return (fw.state, fw.info, frozenset(fw.suppressed_roles))


# ---------------------------------------------------------------- the replay buffer


class EventLog:
    """Published events with ids, the newest ``capacity`` kept for resuming."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY, stream: str | None = None) -> None:
        self.capacity = capacity
        self.stream = stream or uuid.uuid4().hex[:12]
        self.last_seq = 0
        self.closed = False
        self.readers = 0  # open streams, for /metrics
        self.published: Counter[str] = Counter()
        self._buffer: deque[MasterEvent] = deque(maxlen=capacity)
        self._waiter: asyncio.Future[None] | None = None

    def event_id(self, seq: int) -> str:
        return f"{self.stream}-{seq}"

    @property
    def first_seq(self) -> int:
        """Sequence number of the oldest event held (last_seq + 1 when none is)."""
        return self._buffer[0].seq if self._buffer else self.last_seq + 1

    def publish(self, events: list[MasterEvent], now: float = 0.0) -> None:
        """Number the events, keep them, wake the readers.  Never blocks."""
        if not events:
            return
        for event in events:
            self.last_seq += 1
            event.seq = self.last_seq
            event.at = now
            self._buffer.append(event)
            self.published[event.type.value] += 1
        self._wake()

    def close(self) -> None:
        """Readers return what is left, then see ``closed``."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def resume(self, last_event_id: str | None, backlog: int = 0) -> tuple[int, str | None]:
        """Where a reader that last saw ``last_event_id`` continues: ``(cursor,
        reset_reason)``; with a reason, the events since that id are not all held and
        the cursor is the newest event.  No id: start with the ``backlog`` newest
        events held (0: only new ones)."""
        if not last_event_id:
            return max(self.first_seq - 1, self.last_seq - max(0, backlog)), None
        stream, _, number = last_event_id.strip().rpartition("-")
        if stream != self.stream or not number.isdigit():
            return self.last_seq, "the event id is from another master or an earlier run"
        seq = int(number)
        if seq > self.last_seq:
            return self.last_seq, "the event id is newer than any event of this master"
        if seq < self.first_seq - 1:
            return self.last_seq, "the events since that id are no longer held"
        return seq, None

    def since(self, cursor: int) -> list[MasterEvent] | None:
        """Events after ``cursor``; None when some of them are no longer held."""
        if cursor < self.first_seq - 1:
            return None
        missing = self.last_seq - cursor
        if missing <= 0:
            return []
        return list(itertools.islice(self._buffer, len(self._buffer) - missing, None))

    async def wait(self, cursor: int, timeout: float) -> list[MasterEvent] | None:
        """Events after ``cursor``, waiting up to ``timeout`` s for one (``[]`` when
        none came or the log closed; None as in ``since``)."""
        events = self.since(cursor)
        if events or events is None or self.closed:
            return events
        if self._waiter is None:
            self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):  # keeps cancellations, unlike wait_for
                await asyncio.shield(self._waiter)
        except TimeoutError:
            pass
        return self.since(cursor)


class MasterEvents:
    """The master's event stream: the source wired to the log (one per server)."""

    def __init__(self, state: MasterState, capacity: int = DEFAULT_CAPACITY,
                 clock: Callable[[], float] = time.time) -> None:
        self.source = EventSource(state)
        self.log = EventLog(capacity)
        self._clock = clock

    def prime(self) -> None:
        self.source.prime()

    def collect(self) -> list[MasterEvent]:
        return self.source.collect()

    def publish(self, events: list[MasterEvent]) -> None:
        """After the commit of the tick that made ``events``."""
        self.log.publish(events, self._clock())
