"""The two encodings of Mesos' v1 APIs: JSON and protobuf, chosen per request.

A request body is read by its ``Content-Type`` (``request_media_type``), a response
or a stream is written by the request's ``Accept`` (``response_media_type``), as
Mesos' master does: JSON whenever it is acceptable, else protobuf, else 406.
Streams are RecordIO (``<length>\\n<bytes>``) in both encodings.

The schema is the .proto files in ``mesoslite/proto`` (Mesos' own declarations).
The typed model (``mesos.py``, ``scheduler.py``, ``executor.py``) speaks Mesos' JSON
mapping, so protobuf is a translation at the edge, through the generated classes:

* protobuf -> JSON: parsed by the generated class (a malformed body, or one missing a
  required field, is a ``CallError`` naming the problem), then protobuf's JSON
  mapping with the proto field names.  That mapping writes 64-bit integers as strings;
  Mesos' JSON has numbers, so they are turned back into numbers.  The JSON then goes
  through the same decoders as a JSON body.
* internal -> protobuf: the JSON form (``msgspec.to_builtins``: bytes as base64, enums
  by name) is parsed into the generated class and serialized.  A field the schema
  lacks is mesoslite's own extension listed in ``EXTENSIONS``: it has no number in
  Mesos' schema, so it is JSON-only (left out of protobuf answers; a protobuf client
  cannot send it).  Any other such field is a bug: it is logged as an error and left
  out of the protobuf answer, never a 500 (tests/unit/test_wire.py and
  tests/integration/test_protobuf.py look for them).

JSON output is exactly what it was before protobuf existed: ``msgspec.json``.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import msgspec
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from mesoslite.messages.scheduler import CallError, record
from mesoslite.proto.mesos.v1.agent import agent_pb2
from mesoslite.proto.mesos.v1.executor import executor_pb2
from mesoslite.proto.mesos.v1.master import master_pb2
from mesoslite.proto.mesos.v1.scheduler import scheduler_pb2

log = logging.getLogger(__name__)

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
MEDIA_TYPES = (JSON, PROTOBUF)

# mesoslite's own JSON fields, by the full name of the Mesos message that carries them
# (tests/unit/test_wire.py checks that the typed model has no other field Mesos lacks)
EXTENSIONS: dict[str, frozenset[str]] = {
    # a local persistent volume by id and size (docs/storage.md)
    "mesos.v1.Volume.Source": frozenset({"persistent"}),
    # the operator views: a task's role; the master's version, start and leader in GET_STATE
    "mesos.v1.Task": frozenset({"role"}),
    "mesos.v1.master.Response.GetState": frozenset(
        {"version", "start_time", "leader", "elected_time"}),
}

_json = msgspec.json.Encoder()
_INT64 = frozenset({FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_UINT64,
                    FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_FIXED64,
                    FieldDescriptor.TYPE_SFIXED64})


class MediaTypeError(Exception):
    """A Content-Type (415) or Accept (406) this API does not speak."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def request_media_type(content_type: str | None, default: str | None = None) -> str:
    """The encoding of a request body from its ``Content-Type`` header (parameters
    such as ``charset`` ignored); ``default`` when the header is absent and the API
    allows that.  Anything else: ``MediaTypeError`` 415."""
    media = (content_type or "").split(";")[0].strip().lower()
    if not media and default is not None:
        return default
    if media in MEDIA_TYPES:
        return media
    raise MediaTypeError(415, f"Expecting 'Content-Type' of {JSON} or {PROTOBUF}")


def response_media_type(accept: str | None) -> str:
    """The encoding of the answer from the ``Accept`` header: JSON when it is
    acceptable (also for no header, ``*/*`` and ``application/*``), else protobuf;
    neither: ``MediaTypeError`` 406.  A ``q=0`` entry refuses its type."""
    ranges = _accepted(accept or "*/*")
    for media in MEDIA_TYPES:
        if _allows(ranges, media):
            return media
    raise MediaTypeError(406, f"Expecting 'Accept' to allow '{PROTOBUF}' or '{JSON}'")


def _accepted(accept: str) -> dict[str, float]:
    ranges: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if media:
            ranges[media.lower()] = quality
    return ranges


def _allows(ranges: dict[str, float], media: str) -> bool:
    # the most specific range that matches decides (RFC 9110, 12.5.1)
    for candidate in (media, media.split("/")[0] + "/*", "*/*"):
        if candidate in ranges:
            return ranges[candidate] > 0
    return False


class Schema:
    """One top-level message of the wire (``scheduler.Call``, ``master.Response``...)
    and its translation between the two encodings."""

    def __init__(self, message_class: type[Message], what: str) -> None:
        self.message_class = message_class
        self.what = what  # e.g. "scheduler::Call", for error messages

    # ---------------------------------------------------------------- reading

    def json_body(self, body: bytes, media_type: str) -> bytes:
        """A request body as Mesos' JSON (a JSON body unchanged); ``CallError`` when a
        protobuf body does not parse."""
        if media_type == JSON:
            return body
        return _json.encode(self.parse(body))

    def parse(self, body: bytes) -> dict[str, Any]:
        """A protobuf body as the JSON mapping's dict, with numbers for 64-bit ints."""
        message = self.message_class()
        try:
            message.MergeFromString(body)
        except DecodeError as exc:
            raise CallError(f"Failed to parse body into {self.what} protobuf: {exc}") from None
        missing = message.FindInitializationErrors()
        if missing:
            raise CallError(f"Failed to parse body into {self.what} protobuf: missing "
                            f"required field(s) {', '.join(missing)}", "$." + missing[0])
        data = json_format.MessageToDict(message, preserving_proto_field_name=True)
        _numbers(data, message.DESCRIPTOR)
        return data

    # ---------------------------------------------------------------- writing

    def encode(self, value: Any, media_type: str) -> bytes:
        """``value`` (a Struct of the typed model, or its JSON form as builtins) in the
        given encoding.  Raises ``json_format.ParseError`` naming a field the schema
        lacks, ``EncodeError`` naming a missing required field."""
        if media_type == JSON:
            return _json.encode(value)
        data = msgspec.to_builtins(value)
        message = self.message_class()
        try:
            json_format.ParseDict(data, message)
        except json_format.ParseError:
            # rare: only then look for mesoslite's extensions
            message = self.message_class()
            data = _without_extensions(data, message.DESCRIPTOR)
            try:
                json_format.ParseDict(data, message)
            except json_format.ParseError as exc:
                # A field the schema lacks that is not a known extension is a bug in a
                # view; the protobuf client still gets its answer (without that field,
                # which has no number to travel under) rather than a 500.
                _warn_unknown(self.what, str(exc))
                message = self.message_class()
                json_format.ParseDict(data, message, ignore_unknown_fields=True)
        return message.SerializeToString()

    def record(self, value: Any, media_type: str) -> bytes:
        """``value`` as one RecordIO record."""
        return record(self.encode(value, media_type))


_warned: set[str] = set()


def _warn_unknown(what: str, problem: str) -> None:
    if problem not in _warned:
        _warned.add(problem)
        log.error("a %s answer has a field Mesos' schema lacks; protobuf clients do not get"
                  " it: %s", what, problem)


def _numbers(data: dict[str, Any], descriptor: Descriptor) -> None:
    """Turn the JSON mapping's 64-bit integer strings back into numbers, in place."""
    int64s, messages = _plan(descriptor)
    for name, value in data.items():
        if name in int64s:
            data[name] = [int(v) for v in value] if isinstance(value, list) else int(value)
        elif name in messages:
            field: FieldDescriptor = messages[name]
            entry = field.message_type
            if entry.GetOptions().map_entry:
                _map_numbers(value, entry.fields_by_name["value"])
            elif isinstance(value, list):
                for item in value:
                    _numbers(item, entry)
            else:
                _numbers(value, entry)


def _map_numbers(mapping: dict[str, Any], value_field: FieldDescriptor) -> None:
    for key, value in mapping.items():
        if value_field.message_type is not None:
            _numbers(value, value_field.message_type)
        elif value_field.type in _INT64:
            mapping[key] = int(value)


def _without_extensions(data: Any, descriptor: Descriptor) -> Any:
    """``data`` (a message's JSON form) less the fields of ``EXTENSIONS``, at any depth."""
    if not isinstance(data, dict):
        return data
    dropped = EXTENSIONS.get(descriptor.full_name, frozenset())
    _, messages = _plan(descriptor)
    out = {}
    for name, value in data.items():
        if name in dropped:
            continue
        field = messages.get(name)
        if field is not None and not field.message_type.GetOptions().map_entry:
            value = ([_without_extensions(v, field.message_type) for v in value]
                     if isinstance(value, list) else _without_extensions(value, field.message_type))
        out[name] = value
    return out


@cache
def _plan(descriptor: Descriptor) -> tuple[frozenset[str], dict[str, FieldDescriptor]]:
    """A message's 64-bit integer fields and its message-typed fields, by name."""
    int64s = frozenset(f.name for f in descriptor.fields if f.type in _INT64)
    messages = {f.name: f for f in descriptor.fields if f.message_type is not None}
    return int64s, messages


SCHEDULER_CALL = Schema(scheduler_pb2.Call, "scheduler::Call")
SCHEDULER_EVENT = Schema(scheduler_pb2.Event, "scheduler::Event")
EXECUTOR_CALL = Schema(executor_pb2.Call, "executor::Call")
EXECUTOR_EVENT = Schema(executor_pb2.Event, "executor::Event")
MASTER_CALL = Schema(master_pb2.Call, "master::Call")
MASTER_RESPONSE = Schema(master_pb2.Response, "master::Response")
MASTER_EVENT = Schema(master_pb2.Event, "master::Event")
AGENT_CALL = Schema(agent_pb2.Call, "agent::Call")
AGENT_RESPONSE = Schema(agent_pb2.Response, "agent::Response")
