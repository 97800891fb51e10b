"""What can happen to the master (stimuli) and what its state machine answers.

Every input to ``MasterState`` is one of these, handed to its single entry point
``MasterState.handle(stimulus, now, mono)``; the HTTP, WebSocket and timer code only
builds them from what arrived and executes the commands that come out.  Answers are
typed: ``Admitted`` (the id a SUBSCRIBE or an agent registration got), ``Refusal``
(what went wrong, with the HTTP status it maps to) or None (nothing to say).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesoslite.messages.agent import AgentMessage, Register
from mesoslite.messages.maintenance import Schedule
from mesoslite.messages.mesos import MachineID, Resource
from mesoslite.messages.scheduler import Call, Subscribe

# ---------------------------------------------------------------- agents


@dataclass(frozen=True)
class AgentRegisters:
    """The first frame on a new agent link (``connection`` numbers the link)."""

    message: Register
    connection: int


@dataclass(frozen=True)
class AgentSent:
    """Any later frame on an agent's link: status updates, pongs, usage."""

    agent_id: str
    connection: int
    message: AgentMessage


@dataclass(frozen=True)
class AgentLinkClosed:
    agent_id: str
    connection: int


# ---------------------------------------------------------------- frameworks


@dataclass(frozen=True)
class FrameworkSubscribes:
    """A SUBSCRIBE whose event stream will be ``stream_id``."""

    subscribe: Subscribe
    stream_id: str


@dataclass(frozen=True)
class FrameworkCalls:
    """Any other scheduler call; ``stream_id`` is its ``Mesos-Stream-Id`` header."""

    call: Call
    stream_id: str | None


@dataclass(frozen=True)
class FrameworkStreamClosed:
    framework_id: str
    stream_id: str


@dataclass(frozen=True)
class MalformedCall:
    """A scheduler call that did not decode (counted as an invalid call)."""

    error: str


# ---------------------------------------------------------------- operators


@dataclass(frozen=True)
class OperatorReserves:
    """``RESERVE_RESOURCES`` (operator API) by ``principal``."""

    agent_id: str
    resources: list[Resource]
    principal: str | None


@dataclass(frozen=True)
class OperatorUnreserves:
    """``UNRESERVE_RESOURCES`` (operator API)."""

    agent_id: str
    resources: list[Resource]


@dataclass(frozen=True)
class OperatorSchedulesMaintenance:
    """``UPDATE_MAINTENANCE_SCHEDULE``: the new schedule replaces the old one."""

    schedule: Schedule


@dataclass(frozen=True)
class OperatorStartsMaintenance:
    """``START_MAINTENANCE``: the machines go DOWN."""

    machines: list[MachineID]


@dataclass(frozen=True)
class OperatorStopsMaintenance:
    """``STOP_MAINTENANCE``: the machines come back UP."""

    machines: list[MachineID]


@dataclass(frozen=True)
class OperatorDrainsAgent:
    """``DRAIN_AGENT``: ``max_grace_period`` in seconds (None: each task's own)."""

    agent_id: str
    max_grace_period: float | None
    mark_gone: bool


@dataclass(frozen=True)
class OperatorDeactivatesAgent:
    """``DEACTIVATE_AGENT``."""

    agent_id: str


@dataclass(frozen=True)
class OperatorReactivatesAgent:
    """``REACTIVATE_AGENT``."""

    agent_id: str


@dataclass(frozen=True)
class OperatorMarksAgentGone:
    """``MARK_AGENT_GONE``."""

    agent_id: str


# ---------------------------------------------------------------- time and the store


@dataclass(frozen=True)
class Tick:
    """Time passed: offer, agent and failover timeouts."""


@dataclass(frozen=True)
class AllocationRound:
    """Offer free resources: every agent's (``full``) or those that changed."""

    full: bool


@dataclass(frozen=True)
class Recover:
    """This master now leads with ``epoch``; ``snapshot`` is what the store holds
    (``MasterStore.load``'s shape)."""

    snapshot: dict[str, Any]
    epoch: int


Stimulus = (AgentRegisters | AgentSent | AgentLinkClosed | FrameworkSubscribes
            | FrameworkCalls | FrameworkStreamClosed | MalformedCall | OperatorReserves
            | OperatorUnreserves | OperatorSchedulesMaintenance | OperatorStartsMaintenance
            | OperatorStopsMaintenance | OperatorDrainsAgent | OperatorDeactivatesAgent
            | OperatorReactivatesAgent | OperatorMarksAgentGone | Tick | AllocationRound
            | Recover)


# ---------------------------------------------------------------- answers


@dataclass(frozen=True)
class Admitted:
    """The framework id a SUBSCRIBE got, or the agent id a registration got."""

    id: str


@dataclass(frozen=True)
class Refusal:
    """Why a stimulus was refused: ``status`` is the HTTP status it maps to (400 bad
    input, 403 not allowed or not subscribed, 404 unknown agent, 409 not possible
    now); ``path`` names the offending field when there is one."""

    status: int
    message: str
    path: str | None = None


Result = Admitted | Refusal | None
