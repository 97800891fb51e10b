"""The wire schema and the codec (mesoslite/proto, mesoslite/messages/wire.py): fixed
messages byte for byte against hand-computed encodings (a wrong field number fails),
64-bit integers as numbers, content negotiation, the generated code current, and the
typed model a checked projection of the .proto descriptors."""

from __future__ import annotations

import ast
import enum
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from msgspec import inspect as mi

from mesoslite.messages import executor, maintenance, mesos, scheduler, wire
from mesoslite.messages.mesos import ID, FrameworkInfo
from mesoslite.messages.scheduler import Acknowledge, Call, CallError, CallType, Subscribe
from mesoslite.proto.mesos.v1 import mesos_pb2
from mesoslite.proto.mesos.v1.executor import executor_pb2
from mesoslite.proto.mesos.v1.maintenance import maintenance_pb2
from mesoslite.proto.mesos.v1.scheduler import scheduler_pb2

REPO = Path(__file__).resolve().parents[2]
P = wire.PROTOBUF

# ---------------------------------------------------------------- fixed messages

# Call{type=SUBSCRIBE(1) #2, subscribe #3 {framework_info #1 {user #1, name #2}}}
SUBSCRIBE_BYTES = b"\x10\x01" b"\x1a\x0f" b"\x0a\x0d" b"\x0a\x05alice" b"\x12\x04demo"
# Call{framework_id #1 {value #1}, type=ACKNOWLEDGE(8) #2,
#      acknowledge #8 {agent_id #1, task_id #2, uuid #3}}
ACKNOWLEDGE_BYTES = (b"\x0a\x03\x0a\x01f" b"\x10\x08" b"\x42\x0e"
                     b"\x0a\x03\x0a\x01a" b"\x12\x03\x0a\x01t" b"\x1a\x02\x00\x01")


def test_subscribe_is_encoded_and_decoded_byte_for_byte():
    call = Call(type=CallType.SUBSCRIBE,
                subscribe=Subscribe(framework_info=FrameworkInfo(user="alice", name="demo")))
    assert wire.SCHEDULER_CALL.encode(call, P) == SUBSCRIBE_BYTES
    body = wire.SCHEDULER_CALL.json_body(SUBSCRIBE_BYTES, P)
    assert scheduler.decode_call(body) == call


def test_acknowledge_is_encoded_and_decoded_byte_for_byte():
    call = Call(type=CallType.ACKNOWLEDGE, framework_id=ID("f"), acknowledge=Acknowledge(
        agent_id=ID("a"), task_id=ID("t"), uuid=b"\x00\x01"))
    assert wire.SCHEDULER_CALL.encode(call, P) == ACKNOWLEDGE_BYTES
    assert scheduler.decode_call(wire.SCHEDULER_CALL.json_body(ACKNOWLEDGE_BYTES, P)) == call


def test_heartbeats_and_their_records():
    # Event{type=HEARTBEAT #1}: 8 in the scheduler's enum, 9 in the executor's
    assert wire.SCHEDULER_EVENT.encode(scheduler.HEARTBEAT, P) == b"\x08\x08"
    assert wire.EXECUTOR_EVENT.encode(executor.HEARTBEAT, P) == b"\x08\x09"
    assert wire.SCHEDULER_EVENT.record(scheduler.HEARTBEAT, P) == b"2\n\x08\x08"
    # JSON is what it always was
    assert wire.SCHEDULER_EVENT.record(scheduler.HEARTBEAT, wire.JSON) == \
        scheduler.encode_record(scheduler.HEARTBEAT)


def test_64_bit_integers_come_back_as_numbers():
    event = scheduler_pb2.Event(type=scheduler_pb2.Event.OFFERS)
    offer = event.offers.offers.add(hostname="h")
    offer.id.value, offer.framework_id.value, offer.agent_id.value = "o", "f", "a"
    ports = offer.resources.add(name="ports", type=1)  # RANGES
    ports.ranges.range.add(begin=31000, end=2**40)
    parsed = wire.SCHEDULER_EVENT.parse(event.SerializeToString())
    assert parsed["offers"]["offers"][0]["resources"][0]["ranges"] == {
        "range": [{"begin": 31000, "end": 2**40}]}
    decoded = scheduler.decode_event(msgspec.json.encode(parsed))
    assert decoded.offers.offers[0].resources[0].ranges.range[0].end == 2**40
    # and back, to the same bytes
    assert wire.SCHEDULER_EVENT.encode(decoded, P) == event.SerializeToString()


def test_malformed_protobuf_is_refused_naming_the_problem():
    with pytest.raises(CallError, match="Failed to parse body into scheduler::Call protobuf"):
        wire.SCHEDULER_CALL.json_body(b"\x1a\xff\xff", P)
    partial = scheduler_pb2.Call(type=scheduler_pb2.Call.SUBSCRIBE)
    partial.subscribe.framework_info.name = "no user"
    with pytest.raises(CallError, match=r"subscribe\.framework_info\.user") as caught:
        wire.SCHEDULER_CALL.json_body(partial.SerializePartialToString(), P)
    assert caught.value.path == "$.subscribe.framework_info.user"


def test_a_field_the_schema_lacks_is_logged_and_left_out_never_a_500(caplog):
    encoded = wire.SCHEDULER_EVENT.encode({"type": "HEARTBEAT", "bogus": 1}, P)
    assert encoded == wire.SCHEDULER_EVENT.encode({"type": "HEARTBEAT"}, P)
    assert any('no field named "bogus"' in r.getMessage() and r.levelname == "ERROR"
               for r in caplog.records)


def test_mesoslite_extensions_are_json_only():
    volume = {"container_path": "data", "mode": "RW", "source": {
        "type": "UNKNOWN", "persistent": {"id": "v1", "size_mb": 10.0}}}
    event = {"type": "LAUNCH", "launch": {"task": {
        "name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "a"},
        "container": {"type": "MESOS", "volumes": [volume]}}}}
    decoded = executor_pb2.Event.FromString(wire.EXECUTOR_EVENT.encode(event, P))
    source = decoded.launch.task.container.volumes[0].source
    assert source.type == source.UNKNOWN and not source.ListFields()[1:]
    assert b'"persistent"' in wire.EXECUTOR_EVENT.encode(event, wire.JSON)


# ---------------------------------------------------------------- negotiation


@pytest.mark.parametrize("header, media", [
    ("application/json", wire.JSON), ("application/x-protobuf", P),
    ("application/x-protobuf; charset=utf-8", P), ("Application/JSON", wire.JSON),
])
def test_the_body_is_read_by_its_content_type(header, media):
    assert wire.request_media_type(header) == media


@pytest.mark.parametrize("header", ["", None, "text/plain", "application/xml"])
def test_other_content_types_are_415(header):
    with pytest.raises(wire.MediaTypeError) as caught:
        wire.request_media_type(header)
    assert caught.value.status == 415


@pytest.mark.parametrize("header, media", [
    (None, wire.JSON), ("*/*", wire.JSON), ("application/*", wire.JSON),
    ("application/json", wire.JSON), ("application/x-protobuf", P),
    ("application/x-protobuf, application/json", wire.JSON),
    ("application/json;q=0, */*", P), ("text/html, application/x-protobuf;q=0.5", P),
])
def test_the_answer_is_written_by_accept(header, media):
    assert wire.response_media_type(header) == media


@pytest.mark.parametrize("header", [
    "text/html", "application/json;q=0, application/x-protobuf;q=0", "image/*"])
def test_an_accept_allowing_neither_is_406(header):
    with pytest.raises(wire.MediaTypeError) as caught:
        wire.response_media_type(header)
    assert caught.value.status == 406


# ---------------------------------------------------------------- the generated code


def test_the_checked_in_generated_code_is_a_fresh_generation():
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "gen-proto"), "--check"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def _descriptors(root: Path) -> dict[str, bytes]:
    out = {}
    for module in root.rglob("*_pb2.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == \
                    "AddSerializedFile":
                out[str(module.relative_to(root))] = ast.literal_eval(node.args[0])
    return out


def _mesos_fingerprints(tmp_path: Path) -> dict[str, str]:
    """sha256 of each file's serialized descriptor as compiled from Mesos' own .proto
    files: from ``MESOS_PROTO_DIR`` (Mesos' ``include/``) when it is set, else as
    recorded from them in ``mesoslite/proto/mesos-descriptors.json``."""
    source = os.environ.get("MESOS_PROTO_DIR")
    if not source:
        return json.loads((REPO / "mesoslite/proto/mesos-descriptors.json").read_text())
    subprocess.run([sys.executable, str(REPO / "scripts" / "gen-proto"), "--plain",
                    source, str(tmp_path)], check=True)
    return {name: hashlib.sha256(data).hexdigest()
            for name, data in _descriptors(tmp_path).items()}


def test_the_schema_compiles_to_mesos_own_descriptors(tmp_path):
    ours = {f"mesos/v1/{k}": hashlib.sha256(v).hexdigest()
            for k, v in _descriptors(REPO / "mesoslite/proto/mesos/v1").items()}
    theirs = _mesos_fingerprints(tmp_path)
    assert len(ours) == 8
    assert {name: theirs.get(name) for name in ours} == ours


# ---------------------------------------------------------------- one source of truth

INTEGERS = {getattr(FieldDescriptor, f"TYPE_{t}") for t in (
    "INT32", "INT64", "UINT32", "UINT64", "SINT32", "SINT64", "FIXED32", "FIXED64",
    "SFIXED32", "SFIXED64")}
SCALARS = {
    mi.StrType: {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_ENUM},
    mi.IntType: INTEGERS,
    mi.FloatType: {FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT},
    mi.BoolType: {FieldDescriptor.TYPE_BOOL},
    mi.BytesType: {FieldDescriptor.TYPE_BYTES},
}
ROOTS = [(scheduler.Call, scheduler_pb2.Call), (scheduler.Event, scheduler_pb2.Event),
         (executor.Call, executor_pb2.Call), (executor.Event, executor_pb2.Event),
         (maintenance.Schedule, maintenance_pb2.Schedule),
         (maintenance.ClusterStatus, maintenance_pb2.ClusterStatus)]


class Projection:
    """Walks the typed model from the top-level messages alongside their
    descriptors; collects every mismatch and every Struct it reached."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.reached: set[type] = set()
        self._done: set[tuple[type, str]] = set()

    def struct(self, info: mi.StructType, descriptor: Descriptor, path: str) -> None:
        if (info.cls, descriptor.full_name) in self._done:
            return
        self._done.add((info.cls, descriptor.full_name))
        self.reached.add(info.cls)
        for field in info.fields:
            where = f"{path}.{field.encode_name}"
            proto = descriptor.fields_by_name.get(field.encode_name)
            if proto is None:
                if field.encode_name not in wire.EXTENSIONS.get(descriptor.full_name, ()):
                    self.problems.append(f"{where}: no such field in {descriptor.full_name}")
                continue
            self.field(field.type, proto, where, proto.is_repeated)

    def field(self, kind: mi.Type, proto: FieldDescriptor, where: str, repeated: bool) -> None:
        if isinstance(kind, mi.UnionType):  # X | None
            kinds = [t for t in kind.types if not isinstance(t, mi.NoneType)]
            if {type(t) for t in kinds} == {mi.FloatType, mi.StrType} and \
                    proto.type == FieldDescriptor.TYPE_DOUBLE:
                return  # a double's JSON form: a number or "Infinity"/"NaN"
            if len(kinds) != 1:
                self.problems.append(f"{where}: a union of {kinds}")
                return
            [kind] = kinds
        if isinstance(kind, mi.ListType):
            if not repeated:
                self.problems.append(f"{where}: a list, but not repeated in the schema")
                return
            self.field(kind.item_type, proto, where, repeated=False)
        elif repeated and not (proto.message_type and proto.message_type.GetOptions().map_entry):
            self.problems.append(f"{where}: repeated in the schema, not a list here")
        elif isinstance(kind, mi.StructType):
            if proto.message_type is None:
                self.problems.append(f"{where}: a message here, type {proto.type} there")
            else:
                self.struct(kind, proto.message_type, where)
        elif isinstance(kind, mi.EnumType):
            self.enum(kind.cls, proto, where)
        elif isinstance(kind, mi.DictType):  # maps, and messages passed through whole
            if proto.message_type is None:
                self.problems.append(f"{where}: a dict here, type {proto.type} there")
            elif proto.message_type.GetOptions().map_entry:
                value = proto.message_type.fields_by_name["value"]
                self.field(kind.value_type, value, f"{where}[]", value.is_repeated)
        elif proto.type not in SCALARS.get(type(kind), ()):
            self.problems.append(f"{where}: {type(kind).__name__} here, type {proto.type} there")

    def enum(self, cls: type[enum.Enum], proto: FieldDescriptor, where: str) -> None:
        if proto.enum_type is None:
            self.problems.append(f"{where}: an enum here, type {proto.type} there")
            return
        missing = {m.value for m in cls} - set(proto.enum_type.values_by_name)
        if missing:
            self.problems.append(f"{where}: {sorted(missing)} not in {proto.enum_type.full_name}")


def test_the_typed_model_is_a_projection_of_the_proto_schema():
    walk = Projection()
    for cls, message in ROOTS:
        walk.struct(mi.type_info(cls), message.DESCRIPTOR, cls.__name__)
    assert walk.problems == []
    # every message Struct of the model is reached from the wire's top-level messages
    unreached = {f"{module.__name__}.{name}" for module in (mesos, scheduler, executor, maintenance)
                 for name, value in vars(module).items()
                 if isinstance(value, type) and issubclass(value, msgspec.Struct)
                 and value.__module__ == module.__name__ and value is not mesos.Base
                 and value not in walk.reached}
    # reached only through a field listed in wire.EXTENSIONS
    assert unreached == {"mesoslite.messages.mesos.PersistentVolumeSource"}


class Wrong(mesos.Base):
    value: int  # a string in the schema
    sheep: int = 0  # not in the schema


class Shade(str, enum.Enum):
    TASK_RUNNING = "TASK_RUNNING"
    TASK_PURPLE = "TASK_PURPLE"


class Status(mesos.Base):
    state: Shade


def test_the_projection_catches_a_wrong_field_type_or_enum_value():
    walk = Projection()
    walk.struct(mi.type_info(Wrong), mesos_pb2.FrameworkID.DESCRIPTOR, "FrameworkID")
    walk.struct(mi.type_info(Status), mesos_pb2.TaskStatus.DESCRIPTOR, "TaskStatus")
    assert walk.problems == [
        "FrameworkID.value: IntType here, type 9 there",
        "FrameworkID.sheep: no such field in mesos.v1.FrameworkID",
        "TaskStatus.state: ['TASK_PURPLE'] not in mesos.v1.TaskState"]
