"""Simulated agents and frameworks for driving ``MasterState`` without I/O.

They behave as the real ones do towards the master, as far as the state machine can
tell: an agent keeps its tasks, sends each task's updates one at a time (the oldest
unacknowledged first, carrying the task's latest state), re-sends them when it
registers again, kills what it is told to and forgets a task once its terminal update
is acknowledged; a framework keeps the offers it was sent and the updates it must
acknowledge.  ``deliver`` is what the server does with one command, returning the
stimuli that follow from it (a closed link or stream, an agent's answers).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from mesoslite.master.model import (
    CloseAgentLink,
    CloseStream,
    Command,
    SendToAgent,
    SendToFramework,
)
from mesoslite.master.stimuli import (
    AgentLinkClosed,
    AgentSent,
    FrameworkStreamClosed,
    Stimulus,
)
from mesoslite.messages.agent import (
    AckUpdates,
    AgentTask,
    KillTask,
    Refused,
    Register,
    Registered,
    RunTasks,
    ShutdownFramework,
    StatusUpdate,
    StatusUpdates,
)
from mesoslite.messages.mesos import (
    ID,
    FrameworkInfo,
    Offer,
    Source,
    TaskInfo,
    TaskState,
    TaskStatus,
    from_resources,
)
from mesoslite.messages.scheduler import EventType
from mesoslite.resources import Resources

_uuids = itertools.count(1)


def new_uuid() -> bytes:
    return next(_uuids).to_bytes(16, "big")


@dataclass
class SimTask:
    framework: FrameworkInfo
    info: TaskInfo
    status: TaskStatus  # the latest
    pending: deque[TaskStatus] = field(default_factory=deque)  # unacknowledged, oldest first

    @property
    def terminal(self) -> bool:
        return self.status.state.terminal


@dataclass
class SimAgent:
    hostname: str
    total: Resources
    id: str | None = None
    connection: int | None = None  # the link the master knows it on; None: no link
    tasks: dict[tuple[str, str], SimTask] = field(default_factory=dict)

    def register(self) -> Register:
        frameworks = {t.framework.id.value: t.framework for t in self.tasks.values()
                      if t.framework.id is not None}
        return Register(
            agent_id=self.id, hostname=self.hostname, address="127.0.0.1", port=5051,
            resources=from_resources(self.total),
            tasks=[AgentTask(framework_id=fid, task=t.info, status=t.status)
                   for (fid, _), t in sorted(self.tasks.items())],
            frameworks=[frameworks[f] for f in sorted(frameworks)])

    def update(self, key: tuple[str, str], state: TaskState, now: float) -> list[Stimulus]:
        """The task reaches ``state``: a new update, sent now if it is the only one
        waiting for its acknowledgement."""
        task = self.tasks[key]
        task.status = TaskStatus(task_id=task.info.task_id, state=state,
                                 source=Source.SOURCE_EXECUTOR, agent_id=ID(self.id or ""),
                                 timestamp=now, uuid=new_uuid())
        task.pending.append(task.status)
        return self.send_head(key) if len(task.pending) == 1 else []

    def send_head(self, key: tuple[str, str]) -> list[Stimulus]:
        task = self.tasks.get(key)
        if task is None or not task.pending or self.connection is None or self.id is None:
            return []
        update = StatusUpdate(framework_id=key[0], status=task.pending[0],
                              latest_state=task.status.state)
        return [AgentSent(self.id, self.connection, StatusUpdates(updates=[update]))]

    def resend_all(self) -> list[Stimulus]:
        return [s for key in sorted(self.tasks) for s in self.send_head(key)]

    def kill(self, key: tuple[str, str], now: float) -> list[Stimulus]:
        task = self.tasks.get(key)
        if task is None or task.terminal:
            return []
        return self.update(key, TaskState.TASK_KILLED, now)

    def receive(self, message: object, now: float) -> list[Stimulus]:
        """One command from the master on the current link."""
        out: list[Stimulus] = []
        if isinstance(message, Registered):
            for key in sorted(self.tasks):
                if key[1] in message.kill_task_ids:
                    out += self.kill(key, now)
            out += self.resend_all()
        elif isinstance(message, RunTasks):
            for launch in message.launches:
                assert launch.framework.id is not None
                fid = launch.framework.id.value
                for info in launch.tasks:
                    self.tasks.setdefault((fid, info.task_id.value), SimTask(
                        launch.framework, info, TaskStatus(
                            task_id=info.task_id, state=TaskState.TASK_STAGING,
                            agent_id=ID(self.id or ""))))
        elif isinstance(message, KillTask):
            out += self.kill((message.framework_id, message.task_id), now)
        elif isinstance(message, ShutdownFramework):
            for key in sorted(self.tasks):
                if key[0] == message.framework_id:
                    out += self.kill(key, now)
        elif isinstance(message, AckUpdates):
            for ack in message.acks:
                out += self._acknowledged((ack.framework_id, ack.task_id), ack.uuid)
        elif isinstance(message, Refused) and self.connection is not None:
            # Told it may not stay (marked gone): it hangs up.
            connection, self.connection = self.connection, None
            out.append(AgentLinkClosed(self.id or "", connection))
        return out

    def _acknowledged(self, key: tuple[str, str], uuid: bytes) -> list[Stimulus]:
        task = self.tasks.get(key)
        if task is None or not task.pending or task.pending[0].uuid != uuid:
            return []  # stale or duplicate: harmless
        acked = task.pending.popleft()
        if task.pending:
            return self.send_head(key)
        if acked.state.terminal:
            del self.tasks[key]
        return []


@dataclass
class SimFramework:
    name: str
    partition_aware: bool
    id: str | None = None
    stream: str | None = None  # the current event stream; None: not connected
    offers: dict[str, Offer] = field(default_factory=dict)
    to_ack: list[tuple[str, str, bytes]] = field(default_factory=list)  # agent, task, uuid
    told: dict[str, list[TaskState]] = field(default_factory=dict)  # task id -> updates

    def disconnected(self) -> None:
        self.stream = None
        self.offers.clear()


@dataclass
class Cluster:
    """The simulated side of the master: its agents and frameworks by id."""

    agents: dict[str, SimAgent]
    frameworks: dict[str, SimFramework]

    def agent(self, agent_id: str) -> SimAgent | None:
        return next((a for a in self.agents.values() if a.id == agent_id), None)

    def framework(self, framework_id: str) -> SimFramework | None:
        return next((f for f in self.frameworks.values() if f.id == framework_id), None)

    def deliver(self, command: Command, now: float) -> list[Stimulus]:
        """What the server does with ``command``; the stimuli it leads to."""
        if isinstance(command, SendToFramework):
            fw = self.framework(command.framework_id)
            if fw is not None and fw.stream is not None:
                self._event(fw, command.event)
        elif isinstance(command, SendToAgent):
            agent = self.agent(command.agent_id)
            if agent is not None and agent.connection is not None:
                return agent.receive(command.message, now)
        elif isinstance(command, CloseStream):
            # The stream's HTTP response ends; the server says so to the master (for
            # a stream already replaced, too: the master ignores that).
            fw = self.framework(command.framework_id)
            if fw is not None and fw.stream == command.stream_id:
                fw.disconnected()
            return [FrameworkStreamClosed(command.framework_id, command.stream_id)]
        elif isinstance(command, CloseAgentLink):
            agent = self.agent(command.agent_id)
            if agent is not None and agent.connection == command.connection:
                agent.connection = None
                return [AgentLinkClosed(command.agent_id, command.connection)]
        return []

    @staticmethod
    def _event(fw: SimFramework, event: object) -> None:
        kind = getattr(event, "type", None)
        if kind == EventType.OFFERS:
            for offer in event.offers.offers:  # type: ignore[attr-defined]
                fw.offers[offer.id.value] = offer
        elif kind == EventType.RESCIND:
            fw.offers.pop(event.rescind.offer_id.value, None)  # type: ignore[attr-defined]
        elif kind == EventType.UPDATE:
            status = event.update.status  # type: ignore[attr-defined]
            fw.told.setdefault(status.task_id.value, []).append(status.state)
            if status.uuid is not None and status.agent_id is not None:
                fw.to_ack.append((status.agent_id.value, status.task_id.value, status.uuid))
