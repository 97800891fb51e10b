"""Call builders: the JSON they produce is what the master's validator accepts."""

from __future__ import annotations

import json

import msgspec
import pytest

from mesoslite.messages.mesos import ID, ExecutorInfo, FrameworkInfo, Offer
from mesoslite.messages.scheduler import CallType, decode_call, encode_call
from mesoslite.scheduler import calls, task_info

FRAMEWORK = ID("fw-1")


def roundtrip(call: calls.Call) -> dict:
    """Stamp the framework id as the driver does, validate as the master does."""
    call = msgspec.structs.replace(call, framework_id=FRAMEWORK)
    body = encode_call(call)
    assert decode_call(body) == call
    return json.loads(body)


def test_subscribe_carries_framework_id_on_failover() -> None:
    first = calls.subscribe(FrameworkInfo(user="u", name="n"))
    assert first.framework_id is None
    assert json.loads(encode_call(first)) == {
        "type": "SUBSCRIBE",
        "subscribe": {"framework_info": {"user": "u", "name": "n"}},
    }
    again = calls.subscribe(FrameworkInfo(user="u", name="n", id=FRAMEWORK), ["b", "a", "b"])
    decoded = decode_call(encode_call(again))
    assert decoded.framework_id == FRAMEWORK
    assert decoded.subscribe is not None and decoded.subscribe.suppressed_roles == ["a", "b"]


def test_accept_with_launch_and_group() -> None:
    offer = Offer(id=ID("o1"), framework_id=FRAMEWORK, agent_id=ID("a1"), hostname="h")
    task = task_info("t", "t", "a1", cmd="true")
    executor = ExecutorInfo(executor_id=ID("e1"))
    call = calls.accept(
        [offer, "o2"],
        [calls.launch_operation([task]), calls.launch_group_operation(executor, [task])],
        calls.Filters(refuse_seconds=1),
    )
    body = roundtrip(call)
    assert body["type"] == CallType.ACCEPT.value
    assert body["accept"]["offer_ids"] == [{"value": "o1"}, {"value": "o2"}]
    launch, group = body["accept"]["operations"]
    assert launch["type"] == "LAUNCH" and launch["launch"]["task_infos"][0]["name"] == "t"
    assert group["type"] == "LAUNCH_GROUP"
    assert group["launch_group"]["task_group"]["tasks"][0]["task_id"] == {"value": "t"}
    assert body["accept"]["filters"] == {"refuse_seconds": 1.0}


def test_offer_ids_reject_a_bare_string() -> None:
    with pytest.raises(TypeError, match="list of offer ids"):
        calls.decline("o1")


@pytest.mark.parametrize(
    ("call", "field", "expected"),
    [
        (calls.decline(["o1"]), "decline", {"offer_ids": [{"value": "o1"}]}),
        (calls.revive(), "revive", {}),
        (calls.suppress(["r1"]), "suppress", {"roles": ["r1"]}),
        (calls.kill("t1"), "kill", {"task_id": {"value": "t1"}}),
        (
            calls.shutdown("e1", "a1"),
            "shutdown",
            {"executor_id": {"value": "e1"}, "agent_id": {"value": "a1"}},
        ),
        (calls.reconcile(None), "reconcile", {}),
        (
            calls.reconcile([("t1", "a1")]),
            "reconcile",
            {"tasks": [{"task_id": {"value": "t1"}, "agent_id": {"value": "a1"}}]},
        ),
        (
            calls.message("a1", "e1", b"\xff"),
            "message",
            {"agent_id": {"value": "a1"}, "executor_id": {"value": "e1"}, "data": "/w=="},
        ),
    ],
)
def test_call_json(call: calls.Call, field: str, expected: dict) -> None:
    assert roundtrip(call)[field] == expected


def test_teardown_has_no_payload() -> None:
    assert roundtrip(calls.teardown()) == {"type": "TEARDOWN", "framework_id": {"value": "fw-1"}}


def test_acknowledge_uuid_is_base64() -> None:
    body = roundtrip(calls.acknowledge("a1", ID("t1"), b"\x01\x02\x03"))
    assert body["acknowledge"] == {
        "agent_id": {"value": "a1"},
        "task_id": {"value": "t1"},
        "uuid": "AQID",
    }


def test_inverse_offer_answers_are_mesos_calls() -> None:
    assert roundtrip(calls.answer_inverse_offers(["io1", ID("io2")], True, 30)) == {
        "type": "ACCEPT_INVERSE_OFFERS", "framework_id": {"value": "fw-1"},
        "accept_inverse_offers": {"inverse_offer_ids": [{"value": "io1"}, {"value": "io2"}],
                                  "filters": {"refuse_seconds": 30.0}}}
    assert roundtrip(calls.answer_inverse_offers(["io1"], False)) == {
        "type": "DECLINE_INVERSE_OFFERS", "framework_id": {"value": "fw-1"},
        "decline_inverse_offers": {"inverse_offer_ids": [{"value": "io1"}]}}
    with pytest.raises(TypeError):
        calls.answer_inverse_offers("io1", True)
