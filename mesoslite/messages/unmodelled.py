"""Fields of Mesos' schema that the typed model does not have, found in a raw call.

msgspec ignores keys a Struct does not declare.  That is right for keys Mesos' schema
does not know either (protobuf's JSON parser ignores them too), but a field Mesos
defines and mesoslite does not model would be dropped in silence: a task would run
without the volume, network or resource kind its framework asked for.  So before a
scheduler call is decoded, ``first_unmodelled`` walks its JSON alongside the model
and the .proto descriptors and names the first such field; the scheduler API answers
it 400 with the reason from ``refused.REFUSED`` (tests/unit/test_field_policy.py
checks that every field reachable from ``Call`` is modelled or has a reason there).

The walk plan is built once per Struct from the descriptors; the walk itself only
visits keys that are present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from msgspec import inspect as mi

from mesoslite.messages.refused import REFUSED


@dataclass
class _Plan:
    """What to look at in one message's JSON object."""

    # JSON key -> full field name, for the schema's fields the model lacks
    unmodelled: dict[str, str] = field(default_factory=dict)
    # JSON key -> (plan of the value, how the value holds it: "one", "list", "map")
    children: dict[str, tuple[_Plan, str]] = field(default_factory=dict)


def _struct_of(kind: mi.Type) -> tuple[mi.StructType | None, str]:
    if isinstance(kind, mi.UnionType):
        kinds = [t for t in kind.types if not isinstance(t, mi.NoneType)]
        if len(kinds) != 1:
            return None, "one"
        kind = kinds[0]
    if isinstance(kind, mi.ListType) and isinstance(kind.item_type, mi.StructType):
        return kind.item_type, "list"
    if isinstance(kind, mi.DictType) and isinstance(kind.value_type, mi.StructType):
        return kind.value_type, "map"
    if isinstance(kind, mi.StructType):
        return kind, "one"
    return None, "one"


def _build(info: mi.StructType, descriptor: Descriptor,
           plans: dict[tuple[type, str], _Plan]) -> _Plan:
    key = (info.cls, descriptor.full_name)
    if key in plans:
        return plans[key]
    plan = plans[key] = _Plan()
    modelled = {f.encode_name: f for f in info.fields}
    for proto in descriptor.fields:
        model = modelled.get(proto.name)
        if model is None:
            plan.unmodelled[proto.name] = proto.full_name
            continue
        child, how = _struct_of(model.type)
        target = _message_of(proto)
        if child is not None and target is not None:
            plan.children[proto.name] = (_build(child, target, plans), how)
    return plan


def _message_of(proto: FieldDescriptor) -> Descriptor | None:
    message = proto.message_type
    if message is not None and message.GetOptions().map_entry:
        return message.fields_by_name["value"].message_type
    return message


@cache
def plan_for(cls: type, descriptor: Descriptor) -> _Plan:
    """The walk plan of ``cls`` (a Struct of the model) for ``descriptor``."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return _build(info, descriptor, {})


def first_unmodelled(raw: Any, plan: _Plan, path: str = "") -> tuple[str, str] | None:
    """The first field of Mesos' schema present in ``raw`` that the model lacks, as
    ``(json path, full field name)``; None when there is none.  Values of the wrong
    JSON type are left to the decoder's own errors."""
    if not isinstance(raw, dict):
        return None
    for name, value in raw.items():
        where = f"{path}.{name}" if path else name
        full = plan.unmodelled.get(name)
        if full is not None:
            return where, full
        child = plan.children.get(name)
        if child is None:
            continue
        sub, how = child
        if how == "one":
            found = first_unmodelled(value, sub, where)
        elif how == "list" and isinstance(value, list):
            found = next((hit for i, item in enumerate(value)
                          if (hit := first_unmodelled(item, sub, f"{where}[{i}]"))), None)
        elif how == "map" and isinstance(value, dict):
            found = next((hit for k, item in value.items()
                          if (hit := first_unmodelled(item, sub, f"{where}.{k}"))), None)
        else:
            found = None
        if found is not None:
            return found
    return None


def refusal(raw: Any, plan: _Plan) -> tuple[str, str] | None:
    """``(json path, message)`` for the first unmodelled field in ``raw``."""
    found = first_unmodelled(raw, plan)
    if found is None:
        return None
    where, full = found
    reason = REFUSED.get(full, "not supported by mesoslite")
    return where, f"'{where}' ({full}) is not supported by mesoslite: {reason}"
