"""Operation feedback, as Mesos gives it (docs/storage.md): the offer operations a
framework gave an ``id`` are tracked; each status update about one carries a uuid and
is resent, with backoff, until the framework sends ACKNOWLEDGE_OPERATION_STATUS with
that uuid.  RECONCILE_OPERATIONS answers with the latest status of each operation
asked about (``OPERATION_UNKNOWN`` for one the master does not know), without a uuid:
reconciliation answers are not acknowledged.  Operations without an id get one
update and are not tracked, as in Mesos.

Pure: functions over the master's state, given ``mono``; the book is one meta document
(``operations``), written with the next flush and loaded by ``Recover``.
"""

from __future__ import annotations

import json
import uuid as uuidlib
from base64 import b64decode, b64encode
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from mesoslite.master.stimuli import Refusal
from mesoslite.messages.mesos import (
    ID,
    Operation,
    OperationState,
    OperationStatus,
    UUIDValue,
)
from mesoslite.messages.scheduler import (
    Call,
    Event,
    EventType,
    UpdateOperationStatus,
)

if TYPE_CHECKING:
    from mesoslite.master.core import MasterCore

OPERATIONS_META = "operations"
FIRST_RESEND = 10.0  # seconds before the first resend, doubled up to MAX_RESEND
MAX_RESEND = 600.0
_NAMESPACE = uuidlib.UUID("6f1c2d3e-0a4b-4c5d-8e9f-102132435465")
_TERMINAL = {OperationState.OPERATION_FINISHED, OperationState.OPERATION_FAILED,
             OperationState.OPERATION_ERROR, OperationState.OPERATION_DROPPED}


@dataclass
class OperationRecord:
    framework_id: str
    agent_id: str
    info: Operation
    uuid: bytes  # the operation's own (GET_OPERATIONS)
    statuses: list[OperationStatus] = field(default_factory=list)
    pending: bytes | None = None  # the uuid of the update not yet acknowledged
    resend_at: float = 0.0
    backoff: float = FIRST_RESEND

    @property
    def latest(self) -> OperationStatus:
        return self.statuses[-1]


def _uuid(state: MasterCore) -> bytes:
    # deterministic for a given master: the state machine reads no randomness
    return uuidlib.uuid5(_NAMESPACE, state.next_id("op")).bytes


def report(state: MasterCore, framework_id: str, agent_id: str, op: Operation,
           op_state: OperationState, message: str | None, mono: float) -> None:
    """Tell the framework what became of ``op``; tracked (with a uuid, resent until
    acknowledged) when the operation has an id."""
    status = OperationStatus(state=op_state, operation_id=op.id, message=message,
                             agent_id=ID(agent_id))
    if op.id is None:
        _send(state, framework_id, status)
        return
    record = OperationRecord(framework_id, agent_id, op, _uuid(state))
    state.operations[(framework_id, op.id.value)] = record
    _new_status(state, record, status, mono)


def _new_status(state: MasterCore, record: OperationRecord, status: OperationStatus,
                mono: float) -> None:
    record.pending = _uuid(state)
    status.uuid = UUIDValue(record.pending)
    record.statuses.append(status)
    record.backoff = FIRST_RESEND
    record.resend_at = mono + record.backoff
    _send(state, record.framework_id, status)
    _store(state)


def _send(state: MasterCore, framework_id: str, status: OperationStatus) -> None:
    state.to_framework(framework_id, Event(
        type=EventType.UPDATE_OPERATION_STATUS,
        update_operation_status=UpdateOperationStatus(status=status)))


def resend_due(state: MasterCore, mono: float) -> None:
    """Resend each unacknowledged update whose time has come (on the master's tick)."""
    for record in state.operations.values():
        if record.pending is not None and mono >= record.resend_at:
            record.backoff = min(record.backoff * 2, MAX_RESEND)
            record.resend_at = mono + record.backoff
            _send(state, record.framework_id, record.latest)


def acknowledge(state: MasterCore, framework_id: str, call: Call, mono: float
                ) -> Refusal | None:
    """ACKNOWLEDGE_OPERATION_STATUS: the update with that uuid is not resent again; a
    terminal operation acknowledged is forgotten.  400 for an operation the framework
    does not have or a uuid that is not its pending update's."""
    ack = call.acknowledge_operation_status
    assert ack is not None  # decode_call requires it
    record = state.operations.get((framework_id, ack.operation_id.value))
    if record is None:
        return Refusal(400, f"Unknown operation '{ack.operation_id.value}'",
                       "acknowledge_operation_status.operation_id")
    if record.pending != ack.uuid:
        return Refusal(400, "'acknowledge_operation_status.uuid' is not the uuid of the "
                            "operation's unacknowledged update",
                       "acknowledge_operation_status.uuid")
    record.pending = None
    if record.latest.state in _TERMINAL:
        del state.operations[(framework_id, ack.operation_id.value)]
    _store(state)
    return None


def reconcile(state: MasterCore, framework_id: str, call: Call, now: float) -> None:
    """RECONCILE_OPERATIONS: the latest status of each operation listed (all the
    framework's tracked ones when none is), without a uuid."""
    asked = call.reconcile_operations
    assert asked is not None
    if not asked.operations:
        for (fid, _), record in sorted(state.operations.items()):
            if fid == framework_id:
                _send(state, framework_id, _answer(record.latest))
        return
    for item in asked.operations:
        record = state.operations.get((framework_id, item.operation_id.value))
        if record is not None:
            _send(state, framework_id, _answer(record.latest))
        else:
            _send(state, framework_id, OperationStatus(
                state=OperationState.OPERATION_UNKNOWN, operation_id=item.operation_id,
                agent_id=item.agent_id))


def _answer(status: OperationStatus) -> OperationStatus:
    return msgspec.structs.replace(status, uuid=None)


def operations_view(state: MasterCore) -> dict[str, Any]:
    """GET_OPERATIONS (master.proto ``Response.GetOperations``)."""
    return {"operations": [{
        "framework_id": {"value": r.framework_id}, "agent_id": {"value": r.agent_id},
        "info": msgspec.to_builtins(r.info), "latest_status": msgspec.to_builtins(r.latest),
        "statuses": msgspec.to_builtins(r.statuses),
        "uuid": {"value": b64encode(r.uuid).decode()}}
        for _, r in sorted(state.operations.items())]}


# ---------------------------------------------------------------- the store


def _store(state: MasterCore) -> None:
    state.meta_writes[OPERATIONS_META] = json.dumps([{
        "framework_id": r.framework_id, "agent_id": r.agent_id,
        "info": msgspec.to_builtins(r.info), "uuid": b64encode(r.uuid).decode(),
        "statuses": msgspec.to_builtins(r.statuses),
        "pending": b64encode(r.pending).decode() if r.pending else None}
        for r in state.operations.values()])


def recover(state: MasterCore, value: str, mono: float) -> None:
    """Load the book; unacknowledged updates are resent at once (a new leader)."""
    for item in json.loads(value):
        info = msgspec.convert(item["info"], Operation)
        record = OperationRecord(
            item["framework_id"], item["agent_id"], info, b64decode(item["uuid"]),
            msgspec.convert(item["statuses"], list[OperationStatus]),
            b64decode(item["pending"]) if item.get("pending") else None, resend_at=mono)
        if info.id is not None and record.statuses:
            state.operations[(record.framework_id, info.id.value)] = record
