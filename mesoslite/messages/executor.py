"""Mesos v1 executor API (``mesos/v1/executor/executor.proto``): Call and Event.

An executor talks to its agent at ``POST /api/v1/executor``: SUBSCRIBE opens a
RecordIO stream of events (SUBSCRIBED first, then LAUNCH, LAUNCH_GROUP, KILL,
ACKNOWLEDGED, MESSAGE, SHUTDOWN, ERROR and HEARTBEAT); UPDATE and MESSAGE are
one-shot calls answered ``202 Accepted``.  Field names and nesting follow Mesos' JSON
encoding, so an executor written with any Mesos client library's driver decodes and
encodes the same bytes.

``decode_call`` is the only way a request body becomes a ``Call``: it checks that the
sub-message for the call's type is present and raises ``CallError`` (with the field
path) otherwise.
"""

from __future__ import annotations

import enum

import msgspec

from mesoslite.messages.mesos import (
    ID,
    AgentInfo,
    Base,
    ContainerID,
    ExecutorInfo,
    FrameworkInfo,
    KillPolicy,
    TaskGroupInfo,
    TaskInfo,
    TaskStatus,
)
from mesoslite.messages.scheduler import MAX_MESSAGE_BYTES, CallError, decode_json, record

# ---------------------------------------------------------------- calls


class CallType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    SUBSCRIBE = "SUBSCRIBE"
    UPDATE = "UPDATE"
    MESSAGE = "MESSAGE"
    HEARTBEAT = "HEARTBEAT"


class Update(Base):
    status: TaskStatus


class Subscribe(Base):
    """On re-subscription (after an agent restart) the executor names the tasks it
    was given and the updates the agent has not acknowledged, so neither is lost."""

    unacknowledged_tasks: list[TaskInfo] = []
    unacknowledged_updates: list[Update] = []


class Message(Base):
    data: bytes


class Call(Base):
    executor_id: ID
    framework_id: ID
    type: CallType = CallType.UNKNOWN
    subscribe: Subscribe | None = None
    update: Update | None = None
    message: Message | None = None


_REQUIRED_FIELD = {
    CallType.SUBSCRIBE: "subscribe",
    CallType.UPDATE: "update",
    CallType.MESSAGE: "message",
}

_call_decoder = msgspec.json.Decoder(Call)


def decode_call(body: bytes) -> Call:
    """Decode and structurally validate a JSON executor call."""
    call: Call = decode_json(_call_decoder, body, "executor::Call")
    if call.type == CallType.UNKNOWN:
        raise CallError("Expecting 'type' to be present", "$.type")
    field = _REQUIRED_FIELD.get(call.type)
    if field and getattr(call, field) is None:
        raise CallError(f"Expecting '{field}' to be present", f"$.{field}")
    if call.type == CallType.UPDATE:
        status = call.update.status  # type: ignore[union-attr]
        if status.uuid is None:
            raise CallError("Expecting 'uuid' to be present", "$.update.status.uuid")
    return call


def encode_call(call: Call) -> bytes:
    return _encoder.encode(call)


# ---------------------------------------------------------------- events


class EventType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    SUBSCRIBED = "SUBSCRIBED"
    LAUNCH = "LAUNCH"
    LAUNCH_GROUP = "LAUNCH_GROUP"
    KILL = "KILL"
    ACKNOWLEDGED = "ACKNOWLEDGED"
    MESSAGE = "MESSAGE"
    ERROR = "ERROR"
    SHUTDOWN = "SHUTDOWN"
    HEARTBEAT = "HEARTBEAT"


class Subscribed(Base):
    executor_info: ExecutorInfo
    framework_info: FrameworkInfo
    agent_info: AgentInfo
    container_id: ContainerID | None = None


class Launch(Base):
    task: TaskInfo


class LaunchGroup(Base):
    task_group: TaskGroupInfo


class Kill(Base):
    task_id: ID
    kill_policy: KillPolicy | None = None


class Acknowledged(Base):
    task_id: ID
    uuid: bytes


class Error(Base):
    message: str


class Event(Base):
    type: EventType
    subscribed: Subscribed | None = None
    acknowledged: Acknowledged | None = None
    launch: Launch | None = None
    launch_group: LaunchGroup | None = None
    kill: Kill | None = None
    message: Message | None = None
    error: Error | None = None


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)


def encode_record(event: Event) -> bytes:
    """The event as one RecordIO record."""
    return record(_encoder.encode(event))


def decode_event(body: bytes) -> Event:
    return _event_decoder.decode(body)


HEARTBEAT = Event(type=EventType.HEARTBEAT)
SHUTDOWN = Event(type=EventType.SHUTDOWN)

__all__ = [
    "HEARTBEAT",
    "MAX_MESSAGE_BYTES",
    "SHUTDOWN",
    "Acknowledged",
    "Call",
    "CallError",
    "CallType",
    "Error",
    "Event",
    "EventType",
    "Kill",
    "Launch",
    "LaunchGroup",
    "Message",
    "Subscribe",
    "Subscribed",
    "Update",
    "decode_call",
    "decode_event",
    "encode_call",
    "encode_record",
]
