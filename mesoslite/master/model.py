"""The master's in-memory records and the commands its state machine emits.

Records are plain mutable dataclasses owned by ``MasterState``; nothing outside the
state machine mutates them.  Commands are what the state machine asks the I/O edge
to do; the server executes them in order, after the durable writes of the same tick
have committed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import msgspec

from mesoslite.master.reservations import AgentReservations, task_reserved
from mesoslite.messages.agent import AgentTask, MasterMessage
from mesoslite.messages.mesos import (
    ExecutorInfo,
    ExecutorType,
    FrameworkInfo,
    TaskInfo,
    TaskState,
    TaskStatus,
)
from mesoslite.messages.scheduler import Event
from mesoslite.resources import Resources


class AgentState(str, enum.Enum):
    ACTIVE = "active"  # connected, heartbeating, offered
    DISCONNECTED = "disconnected"  # link dropped or pings missed; waiting for it to return
    RECOVERED = "recovered"  # loaded from the store after a master restart; not yet back
    UNREACHABLE = "unreachable"  # timed out; its tasks were reported UNREACHABLE/LOST


class DrainState(str, enum.Enum):
    """Mesos' ``DrainState`` (``DRAIN_AGENT``): killing the agent's tasks, then done."""

    DRAINING = "DRAINING"
    DRAINED = "DRAINED"  # every task terminal and its terminal update acknowledged


@dataclass(frozen=True)
class DrainRecord:
    """An agent's drain (Mesos' ``DrainInfo``); replaced, never changed in place, so
    the snapshots the event stream keeps stay what they were."""

    state: DrainState
    max_grace_period: float | None = None  # seconds; caps each task's kill grace
    mark_gone: bool = False  # once DRAINED, the agent is marked gone

    def to_store(self) -> dict:
        return {"state": self.state.value, "max_grace_period": self.max_grace_period,
                "mark_gone": self.mark_gone}

    @classmethod
    def from_store(cls, data: dict | None) -> DrainRecord | None:
        if not data:
            return None
        return cls(DrainState(data["state"]), data.get("max_grace_period"),
                   bool(data.get("mark_gone")))


class FrameworkState(str, enum.Enum):
    SUBSCRIBED = "subscribed"
    DISCONNECTED = "disconnected"  # stream gone, failover timer running
    RECOVERED = "recovered"  # loaded from the store after a master restart


@dataclass
class AgentRecord:
    id: str
    hostname: str
    address: str
    port: int
    total: Resources
    attributes: dict[str, str] = field(default_factory=dict)
    containerizers: list[str] = field(default_factory=list)
    version: str = ""
    state: AgentState = AgentState.ACTIVE
    registered_time: float = 0.0
    reregistered_time: float | None = None
    # monotonic instant of the last sign of life (pong or any message)
    last_seen: float = 0.0
    missed_pings: int = 0
    # monotonic instant the agent left ACTIVE (for the unreachable timeout)
    down_since: float | None = None
    unreachable_time: float | None = None
    connection: int = 0  # which link the agent is on; stale links are ignored
    # dynamic reservations and persistent volumes (kept with the agent in the store)
    reservations: AgentReservations = field(default_factory=AgentReservations)
    # no offers by the operator's word (DEACTIVATE_AGENT, or draining); kept in the store
    deactivated: bool = False
    drain: DrainRecord | None = None
    # wall time the operator marked it gone (MARK_AGENT_GONE, a drain with mark_gone):
    # it is then out of ``agents`` and refused if it registers again
    gone_time: float | None = None

    @property
    def offerable(self) -> bool:
        """Connected, and the operator has not turned its offers off."""
        return self.state == AgentState.ACTIVE and not self.deactivated

    def to_store(self) -> dict:
        return {
            "id": self.id,
            "hostname": self.hostname,
            "address": self.address,
            "port": self.port,
            "total": self.total.to_mapping(),
            "attributes": self.attributes,
            "containerizers": self.containerizers,
            "version": self.version,
            "unreachable": self.state == AgentState.UNREACHABLE,
            "registered_time": self.registered_time,
            "unreachable_time": self.unreachable_time,
            "reservations": self.reservations.to_store() if self.reservations else None,
            "deactivated": self.deactivated,
            "drain": self.drain.to_store() if self.drain else None,
            "gone_time": self.gone_time,
        }


@dataclass
class FrameworkRecord:
    id: str
    info: FrameworkInfo
    state: FrameworkState = FrameworkState.SUBSCRIBED
    stream_id: str | None = None
    suppressed_roles: set[str] = field(default_factory=set)
    registered_time: float = 0.0
    reregistered_time: float | None = None
    # monotonic instant the framework disconnected (failover timer start)
    disconnected_at: float | None = None
    unregistered_time: float | None = None

    @property
    def roles(self) -> list[str]:
        return self.info.effective_roles()

    @property
    def connected(self) -> bool:
        return self.state == FrameworkState.SUBSCRIBED

    def to_store(self) -> dict:
        return {
            "id": self.id,
            "info": msgspec.to_builtins(self.info),
            "suppressed_roles": sorted(self.suppressed_roles),
            "registered_time": self.registered_time,
            "removed": self.unregistered_time is not None,
        }


ExecutorKey = tuple[str, str, str]  # (agent id, framework id, executor id)


@dataclass
class ExecutorRecord:
    agent_id: str
    framework_id: str
    info: ExecutorInfo
    role: str
    resources: Resources
    released: bool = False

    @property
    def id(self) -> str:
        return self.info.executor_id.value if self.info.executor_id else ""

    @property
    def key(self) -> ExecutorKey:
        return (self.agent_id, self.framework_id, self.id)

    @property
    def default(self) -> bool:
        return self.info.type == ExecutorType.DEFAULT



@dataclass
class TaskRecord:
    framework_id: str
    agent_id: str
    info: TaskInfo
    role: str
    resources: Resources
    status: TaskStatus  # the latest state the master knows
    statuses: list[tuple[str, float]] = field(default_factory=list)  # (state, timestamp)
    # the task's current state as the agent last reported it; may be ahead of
    # ``status`` (the update being delivered to the framework)
    latest_state: TaskState = TaskState.TASK_STAGING
    # uuid of the terminal update: its acknowledgement removes the task
    terminal_uuid: bytes | None = None
    # resources given back to the allocator (latest state is terminal)
    released: bool = False
    # a kill arrived while the agent was away; sent when it returns
    kill_pending: bool = False
    group_id: str | None = None
    # TaskInfo never changes: its JSON-ready form (for views) and its encoded JSON
    # (for the store, written again at every status change) are computed once
    _info_doc: dict | None = field(default=None, repr=False, compare=False)
    _info_raw: msgspec.Raw | None = field(default=None, repr=False, compare=False)
    # the part of ``resources`` reserved for ``role`` (returned to that reservation)
    reserved: Resources = field(default_factory=Resources, compare=False)

    def __post_init__(self) -> None:
        self.reserved = task_reserved(self.info.resources)
        if self.terminal_uuid is None and self.status.state.terminal:
            # A record made from a terminal status (recovered from the store, adopted
            # from a re-registering agent): that update's acknowledgement retires it.
            self.terminal_uuid = self.status.uuid

    @property
    def id(self) -> str:
        return self.info.task_id.value

    @property
    def state(self) -> TaskState:
        return self.status.state

    @property
    def key(self) -> tuple[str, str]:
        return (self.framework_id, self.id)

    def to_store(self) -> dict:
        """The stored document; its values are ready for msgspec's JSON encoder (the
        info as pre-encoded JSON, the status as its Struct), not plain builtins."""
        if self._info_raw is None:
            self._info_raw = msgspec.Raw(msgspec.json.encode(self.info))
        return {
            "framework_id": self.framework_id,
            "agent_id": self.agent_id,
            "info": self._info_raw,
            "role": self.role,
            "status": self.status,
            "latest_state": self.latest_state.value,
            "statuses": self.statuses,
            "group_id": self.group_id,
        }

    def _info_builtins(self) -> dict:
        if self._info_doc is None:
            self._info_doc = msgspec.to_builtins(self.info)
        return self._info_doc

    def as_agent_task(self) -> AgentTask:
        return AgentTask(framework_id=self.framework_id, task=self.info, status=self.status)


@dataclass
class OfferRecord:
    id: str
    framework_id: str
    agent_id: str
    role: str
    resources: Resources  # unreserved
    created: float  # monotonic
    reserved: Resources = field(default_factory=Resources)  # reserved for ``role``
    volumes: tuple[str, ...] = ()  # free persistent volumes offered (in ``reserved``)


# ---------------------------------------------------------------- commands


@dataclass(frozen=True)
class SendToFramework:
    framework_id: str
    event: Event


@dataclass(frozen=True)
class SendToAgent:
    agent_id: str
    message: MasterMessage


@dataclass(frozen=True)
class CloseStream:
    """End a framework's event stream (failover to a new stream, teardown, removal),
    sending an ERROR event with ``error`` first when given."""

    framework_id: str
    stream_id: str
    error: str | None = None


@dataclass(frozen=True)
class CloseAgentLink:
    """Drop an agent's link (it was marked unreachable): it must re-register."""

    agent_id: str
    connection: int


Command = SendToFramework | SendToAgent | CloseStream | CloseAgentLink
