"""Mesos v1 scheduler API (``mesos/v1/scheduler/scheduler.proto``): Call and Event.

``decode_call`` is the only way a request body becomes a ``Call``; it checks that the
sub-message for the call's type is present and raises ``CallError`` with the field
path otherwise.  ``encode_record`` frames an ``Event`` as RecordIO (``<len>\\n<json>``).
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from mesoslite.messages.mesos import (
    ID,
    Base,
    ExecutorInfo,
    Filters,
    FrameworkInfo,
    InverseOffer,
    KillPolicy,
    MasterInfo,
    Offer,
    Operation,
    OperationStatus,
    TaskStatus,
)


class CallType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    SUBSCRIBE = "SUBSCRIBE"
    TEARDOWN = "TEARDOWN"
    ACCEPT = "ACCEPT"
    DECLINE = "DECLINE"
    ACCEPT_INVERSE_OFFERS = "ACCEPT_INVERSE_OFFERS"
    DECLINE_INVERSE_OFFERS = "DECLINE_INVERSE_OFFERS"
    REVIVE = "REVIVE"
    KILL = "KILL"
    SHUTDOWN = "SHUTDOWN"
    ACKNOWLEDGE = "ACKNOWLEDGE"
    ACKNOWLEDGE_OPERATION_STATUS = "ACKNOWLEDGE_OPERATION_STATUS"
    RECONCILE = "RECONCILE"
    RECONCILE_OPERATIONS = "RECONCILE_OPERATIONS"
    MESSAGE = "MESSAGE"
    REQUEST = "REQUEST"
    SUPPRESS = "SUPPRESS"
    UPDATE_FRAMEWORK = "UPDATE_FRAMEWORK"


class PseudoattributeType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    HOSTNAME = "HOSTNAME"
    REGION = "REGION"
    ZONE = "ZONE"


class ConstraintSelector(Base):
    """``AttributeConstraint.Selector``: one of the two must be set."""

    pseudoattribute_type: PseudoattributeType | None = None
    attribute_name: str | None = None


class TextValue(Base):
    value: str


class TextRegex(Base):
    regex: str


class Empty(Base):
    pass


class ConstraintPredicate(Base):
    """``AttributeConstraint.Predicate``: exactly one of these is set."""

    exists: Empty | None = None
    not_exists: Empty | None = None
    text_equals: TextValue | None = None
    text_not_equals: TextValue | None = None
    text_matches: TextRegex | None = None
    text_not_matches: TextRegex | None = None


class AttributeConstraint(Base):
    selector: ConstraintSelector
    predicate: ConstraintPredicate


class ConstraintGroup(Base):
    attribute_constraints: list[AttributeConstraint] = []


class RoleConstraints(Base):
    groups: list[ConstraintGroup] = []


class OfferConstraints(Base):
    """Which agents a framework wants offers from, per role: an agent passes a role's
    constraints when every constraint of at least one group holds for it
    (master/allocator/offer_constraints.py)."""

    role_constraints: dict[str, RoleConstraints] = {}


class Subscribe(Base):
    framework_info: FrameworkInfo
    suppressed_roles: list[str] = []
    offer_constraints: OfferConstraints | None = None


class Accept(Base):
    offer_ids: list[ID] = []
    operations: list[Operation] = []
    filters: Filters | None = None


class Decline(Base):
    offer_ids: list[ID] = []
    filters: Filters | None = None


class AcceptInverseOffers(Base):
    inverse_offer_ids: list[ID] = []
    filters: Filters | None = None


class DeclineInverseOffers(Base):
    inverse_offer_ids: list[ID] = []
    filters: Filters | None = None


class Revive(Base):
    roles: list[str] = []


class Suppress(Base):
    roles: list[str] = []


class Kill(Base):
    task_id: ID
    agent_id: ID | None = None
    kill_policy: KillPolicy | None = None


class Shutdown(Base):
    executor_id: ID
    agent_id: ID


class Acknowledge(Base):
    agent_id: ID
    task_id: ID
    uuid: bytes


class ReconcileTask(Base):
    task_id: ID
    agent_id: ID | None = None


class Reconcile(Base):
    tasks: list[ReconcileTask] = []


class AcknowledgeOperationStatus(Base):
    """Acknowledges the operation status update carrying ``uuid`` (docs/storage.md)."""

    uuid: bytes
    operation_id: ID
    agent_id: ID | None = None
    resource_provider_id: ID | None = None


class ReconcileOperation(Base):
    operation_id: ID
    agent_id: ID | None = None
    resource_provider_id: ID | None = None


class ReconcileOperations(Base):
    """The latest status of each listed operation; none listed: of every operation the
    framework has not acknowledged as terminal."""

    operations: list[ReconcileOperation] = []


class Message(Base):
    agent_id: ID
    executor_id: ID
    data: bytes


class UpdateFramework(Base):
    framework_info: FrameworkInfo
    suppressed_roles: list[str] = []
    offer_constraints: OfferConstraints | None = None


class Call(Base):
    type: CallType = CallType.UNKNOWN
    framework_id: ID | None = None
    subscribe: Subscribe | None = None
    accept: Accept | None = None
    decline: Decline | None = None
    accept_inverse_offers: AcceptInverseOffers | None = None
    decline_inverse_offers: DeclineInverseOffers | None = None
    revive: Revive | None = None
    suppress: Suppress | None = None
    kill: Kill | None = None
    shutdown: Shutdown | None = None
    acknowledge: Acknowledge | None = None
    acknowledge_operation_status: AcknowledgeOperationStatus | None = None
    reconcile: Reconcile | None = None
    reconcile_operations: ReconcileOperations | None = None
    message: Message | None = None
    update_framework: UpdateFramework | None = None


# Calls whose payload field must be present (Mesos' validation::scheduler::call).
_REQUIRED_FIELD = {
    CallType.SUBSCRIBE: "subscribe",
    CallType.ACCEPT: "accept",
    CallType.DECLINE: "decline",
    CallType.ACCEPT_INVERSE_OFFERS: "accept_inverse_offers",
    CallType.DECLINE_INVERSE_OFFERS: "decline_inverse_offers",
    CallType.KILL: "kill",
    CallType.SHUTDOWN: "shutdown",
    CallType.ACKNOWLEDGE: "acknowledge",
    CallType.ACKNOWLEDGE_OPERATION_STATUS: "acknowledge_operation_status",
    CallType.RECONCILE: "reconcile",
    CallType.RECONCILE_OPERATIONS: "reconcile_operations",
    CallType.MESSAGE: "message",
    CallType.UPDATE_FRAMEWORK: "update_framework",
}


# The most a framework message may carry, either way (scheduler -> executor and
# executor -> scheduler): larger ones are refused with a 400 naming the limit.
MAX_MESSAGE_BYTES = 1 * 2**20


class CallError(ValueError):
    """A call that cannot be accepted; ``path`` names the field."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


_call_decoder = msgspec.json.Decoder(Call)


def decode_json(decoder: msgspec.json.Decoder[Any], body: bytes, what: str) -> Any:
    """``body`` decoded by ``decoder``, or ``CallError`` naming the field's path
    (``what``: the message's name, e.g. "scheduler::Call")."""
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        path = text.rsplit(" - at `", 1)[1].rstrip("`") if " - at `" in text else ""
        raise CallError(f"Failed to validate {what}: {text}", path) from None
    except msgspec.DecodeError as exc:
        raise CallError(f"Failed to parse body into JSON: {exc}") from None


def record(body: bytes) -> bytes:
    """RecordIO framing: the body's byte length, a newline, then the body."""
    return str(len(body)).encode() + b"\n" + body


def decode_call(body: bytes) -> Call:
    """Decode and structurally validate a JSON call body.  A field of Mesos' schema
    the model does not have is refused (``CallError`` naming it and why), never
    dropped: see ``unmodelled``."""
    call: Call = decode_json(_call_decoder, body, "scheduler::Call")
    _refuse_unmodelled(body)
    if call.type == CallType.UNKNOWN:
        raise CallError("Expecting 'type' to be present", "$.type")
    field = _REQUIRED_FIELD.get(call.type)
    if field and getattr(call, field) is None:
        raise CallError(f"Expecting '{field}' to be present", f"$.{field}")
    if call.type == CallType.MESSAGE and len(call.message.data) > MAX_MESSAGE_BYTES:  # type: ignore[union-attr]
        raise CallError(f"'message.data' is larger than the limit of {MAX_MESSAGE_BYTES} "
                        "bytes for a framework message", "$.message.data")
    if call.type != CallType.SUBSCRIBE and call.framework_id is None:
        raise CallError("Expecting 'framework_id' to be present", "$.framework_id")
    if call.type == CallType.SUBSCRIBE:
        info_id = call.subscribe.framework_info.id  # type: ignore[union-attr]
        if call.framework_id is not None and info_id != call.framework_id:
            raise CallError(
                "'framework_id' differs from 'subscribe.framework_info.id'",
                "$.subscribe.framework_info.id",
            )
    return call


def _refuse_unmodelled(body: bytes) -> None:
    # Imported here: the walk needs the generated descriptors, which load after this
    # module's Structs are defined.
    from mesoslite.messages import unmodelled
    from mesoslite.proto.mesos.v1.scheduler import scheduler_pb2
    found = unmodelled.refusal(msgspec.json.decode(body),
                               unmodelled.plan_for(Call, scheduler_pb2.Call.DESCRIPTOR))
    if found is not None:
        where, message = found
        raise CallError(message, "$." + where)


# ---------------------------------------------------------------- events


class EventType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    SUBSCRIBED = "SUBSCRIBED"
    OFFERS = "OFFERS"
    INVERSE_OFFERS = "INVERSE_OFFERS"
    RESCIND = "RESCIND"
    RESCIND_INVERSE_OFFER = "RESCIND_INVERSE_OFFER"
    UPDATE = "UPDATE"
    UPDATE_OPERATION_STATUS = "UPDATE_OPERATION_STATUS"
    MESSAGE = "MESSAGE"
    FAILURE = "FAILURE"
    ERROR = "ERROR"
    HEARTBEAT = "HEARTBEAT"


class Subscribed(Base):
    framework_id: ID
    heartbeat_interval_seconds: float | None = None
    master_info: MasterInfo | None = None


class Offers(Base):
    offers: list[Offer] = []


class Rescind(Base):
    offer_id: ID


class InverseOffers(Base):
    inverse_offers: list[InverseOffer] = []


class RescindInverseOffer(Base):
    inverse_offer_id: ID


class Update(Base):
    status: TaskStatus


class EventMessage(Base):
    agent_id: ID
    executor_id: ID
    data: bytes


class Failure(Base):
    agent_id: ID | None = None
    executor_id: ID | None = None
    status: int | None = None


class Error(Base):
    message: str


class UpdateOperationStatus(Base):
    """An offer operation's outcome (RESERVE, UNRESERVE, CREATE, DESTROY refused or
    done; docs/storage.md)."""

    status: OperationStatus


class Event(Base):
    type: EventType
    subscribed: Subscribed | None = None
    offers: Offers | None = None
    inverse_offers: InverseOffers | None = None
    rescind: Rescind | None = None
    rescind_inverse_offer: RescindInverseOffer | None = None
    update: Update | None = None
    message: EventMessage | None = None
    failure: Failure | None = None
    error: Error | None = None
    update_operation_status: UpdateOperationStatus | None = None


_encoder = msgspec.json.Encoder()
_event_decoder = msgspec.json.Decoder(Event)


def encode_event(event: Event) -> bytes:
    return _encoder.encode(event)


def encode_record(event: Event) -> bytes:
    """The event as one RecordIO record."""
    return record(_encoder.encode(event))


def decode_event(body: bytes) -> Event:
    return _event_decoder.decode(body)


def encode_call(call: Call) -> bytes:
    return _encoder.encode(call)


HEARTBEAT = Event(type=EventType.HEARTBEAT)

__all__ = [
    "Accept",
    "AcceptInverseOffers",
    "Acknowledge",
    "Call",
    "CallError",
    "CallType",
    "Decline",
    "DeclineInverseOffers",
    "Error",
    "Event",
    "EventMessage",
    "EventType",
    "ExecutorInfo",
    "Failure",
    "Filters",
    "InverseOffers",
    "Kill",
    "Message",
    "Offers",
    "Reconcile",
    "ReconcileTask",
    "Rescind",
    "RescindInverseOffer",
    "Revive",
    "Shutdown",
    "Subscribe",
    "Subscribed",
    "Suppress",
    "Update",
    "UpdateFramework",
    "decode_call",
    "decode_event",
    "encode_call",
    "encode_event",
    "encode_record",
]
