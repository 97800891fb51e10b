"""No field dropped in silence: every field of Mesos' schema that a framework can send
in a scheduler ``Call`` is either modelled (and so decoded and acted on, or kept and
shown) or refused with a reason (``refused.REFUSED``), and a refused field in a call
is named in the answer.  The walk goes through the .proto descriptors, so a field
Mesos adds, or one the model loses, fails here until it is classified."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor

from mesoslite.messages import unmodelled
from mesoslite.messages.refused import REFUSED
from mesoslite.messages.scheduler import Call, CallError, decode_call
from mesoslite.proto.mesos.v1 import mesos_pb2
from mesoslite.proto.mesos.v1.scheduler import scheduler_pb2

# refused although modelled: refused.py checks these at run time, with their reasons
CHECKED_AT_RUN_TIME = {"mesos.v1.Image.appc", "mesos.v1.Image.Docker.credential",
                       "mesos.v1.Image.Docker.config"}
# the messages the issue names: the walk must reach each of them
REFERENCE = ["mesos.v1.scheduler.Call", "mesos.v1.TaskInfo", "mesos.v1.ExecutorInfo",
             "mesos.v1.ContainerInfo", "mesos.v1.CommandInfo", "mesos.v1.Resource",
             "mesos.v1.HealthCheck", "mesos.v1.CheckInfo", "mesos.v1.KillPolicy",
             "mesos.v1.Offer.Operation", "mesos.v1.FrameworkInfo", "mesos.v1.Volume",
             "mesos.v1.Image", "mesos.v1.DiscoveryInfo", "mesos.v1.Environment"]


def _walk() -> dict[str, list[tuple[str, str]]]:
    """Every message the plan reaches -> its unmodelled fields with a JSON path
    (a list of keys, ``[]`` for a list element) to reach them."""
    plan = unmodelled.plan_for(Call, scheduler_pb2.Call.DESCRIPTOR)
    reached: dict[str, list[tuple[str, str]]] = {}
    seen: set[int] = set()
    names = _plan_names()

    def visit(p: Any, path: str) -> None:
        if id(p) in seen:
            return
        seen.add(id(p))
        reached.setdefault(names.get(id(p), "?"), [])
        for key, full in p.unmodelled.items():
            reached.setdefault(full.rsplit(".", 1)[0], []).append((f"{path}.{key}", full))
        for key, (child, how) in p.children.items():
            step = {"one": f".{key}", "list": f".{key}[]", "map": f".{key}{{}}"}[how]
            visit(child, path + step)

    visit(plan, "")
    return reached


def _plan_names() -> dict[int, str]:
    out: dict[int, str] = {}
    plan = unmodelled.plan_for(Call, scheduler_pb2.Call.DESCRIPTOR)

    def name(p: Any, descriptor: Any) -> None:
        if id(p) in out:
            return
        out[id(p)] = descriptor.full_name
        for key, (child, _how) in p.children.items():
            field: FieldDescriptor = descriptor.fields_by_name[key]
            message = field.message_type
            if message.GetOptions().map_entry:
                message = message.fields_by_name["value"].message_type
            name(child, message)

    name(plan, scheduler_pb2.Call.DESCRIPTOR)
    return out


WALK = _walk()
UNMODELLED = sorted({full for fields in WALK.values() for _path, full in fields})


def test_every_reference_message_is_reached_by_the_walk():
    assert [m for m in REFERENCE if m not in WALK] == []


def test_every_field_a_framework_can_send_is_modelled_or_refused_with_a_reason():
    assert [full for full in UNMODELLED if full not in REFUSED] == []


def test_every_refusal_names_a_real_field_and_none_is_stale():
    pool = mesos_pb2.DESCRIPTOR.pool
    for full in REFUSED:
        message, _, field = full.rpartition(".")
        assert field in pool.FindMessageTypeByName(message).fields_by_name, full
    # a refused field that became modelled must leave REFUSED (or be checked at run time)
    assert sorted(set(REFUSED) - set(UNMODELLED) - CHECKED_AT_RUN_TIME) == []


def _raw(path: str, value: Any) -> Any:
    """A JSON object with ``value`` at ``path`` (``.a[].b{}.c``)."""
    steps = path.strip(".").split(".")
    out: Any = value
    for step in reversed(steps):
        if step.endswith("[]"):
            out = {step[:-2]: [out]}
        elif step.endswith("{}"):
            out = {step[:-2]: {"key": out}}
        else:
            out = {step: out}
    return out


@pytest.mark.parametrize("path,full", sorted({hit for hits in WALK.values() for hit in hits}))
def test_a_refused_field_is_named_with_its_reason(path, full):
    found = unmodelled.refusal(_raw(path, {}), unmodelled.plan_for(
        Call, scheduler_pb2.Call.DESCRIPTOR))
    assert found is not None
    where, message = found
    assert where.replace("[0]", "[]").replace(".key", "{}") == path.strip(".") or \
        where.endswith(path.rsplit(".", 1)[1])
    assert full in message and REFUSED[full] in message


def test_a_call_with_a_refused_field_is_refused_naming_it():
    body = (b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", '
            b'"name": "n", "offer_filters": {"*": {}}}}}')
    with pytest.raises(CallError) as caught:
        decode_call(body)
    assert caught.value.path == "$.subscribe.framework_info.offer_filters"
    assert "min_allocatable_resources" in str(caught.value)


def test_keys_mesos_does_not_know_are_ignored_as_protobuf_json_does():
    body = (b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", '
            b'"name": "n", "x_vendor_hint": 1}}}')
    assert decode_call(body).subscribe.framework_info.name == "n"
