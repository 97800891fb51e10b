"""Bad input to the master: a clear 4xx or a TASK_ERROR/TASK_DROPPED update with a
reason, and the master's state unchanged."""

from __future__ import annotations

import json

import aiohttp
import msgspec
import pytest

from mesoslite.messages.agent import Pong, encode
from mesoslite.messages.mesos import Reason, TaskState
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.testing.http import get_json, request

pytestmark = pytest.mark.asyncio
JSON = {"Content-Type": "application/json"}


async def call(cluster, body, headers=None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, _, payload = await request("POST", cluster.master_url + "/api/v1/scheduler",
                                       data=data, headers={**JSON, **(headers or {})})
    return status, (json.loads(payload) if payload else {})


def fw_call(framework, kind: str, **fields) -> tuple[dict, dict]:
    body = {"type": kind, "framework_id": {"value": framework.id}, **fields}
    return body, {"Mesos-Stream-Id": framework.driver.stream_id}


async def snapshot(cluster) -> dict:
    state = await get_json(cluster.master_url + "/master/state")
    return {
        "tasks": [(f["id"], [t["id"] for t in f["tasks"]]) for f in state["frameworks"]],
        "agents": [(a["id"], a["used_resources"]) for a in state["slaves"]],
    }


@pytest.mark.parametrize("body, message", [
    (b"{not json", "Failed to parse body into JSON"),
    ({"type": "NO_SUCH_CALL"}, "Invalid enum value"),
    ({}, "Expecting 'type' to be present"),
    ({"type": "SUBSCRIBE"}, "Expecting 'subscribe' to be present"),
    ({"type": "DECLINE", "decline": {}}, "Expecting 'framework_id' to be present"),
    ({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": 5, "name": "x"}}},
     "$.subscribe.framework_info.user"),
])
async def test_malformed_calls_get_400_with_a_message(cluster, body, message):
    status, reply = await call(cluster, body)
    assert status == 400
    assert message in reply["message"]
    assert await snapshot(cluster) == await snapshot(cluster)


async def test_wrong_content_type_and_accept(cluster):
    status, _, body = await request("POST", cluster.master_url + "/api/v1/scheduler",
                                    data=b"{}", headers={"Content-Type": "text/plain"})
    assert status == 415 and b"application/json or application/x-protobuf" in body
    sub = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}
    status, _, _ = await request("POST", cluster.master_url + "/api/v1/scheduler",
                                 data=json.dumps(sub).encode(),
                                 headers={**JSON, "Accept": "text/html"})
    assert status == 406


async def test_calls_need_the_right_stream_id(cluster, framework):
    body, headers = fw_call(framework, "REVIVE")
    assert (await call(cluster, body))[0] == 400  # no header
    status, reply = await call(cluster, body, {"Mesos-Stream-Id": "not-the-stream"})
    assert status == 400 and "didn't match" in reply["message"]
    assert (await call(cluster, body, headers))[0] == 202
    stranger = {"type": "REVIVE", "framework_id": {"value": "no-such-framework"}}
    status, reply = await call(cluster, stranger, headers)
    assert status == 403 and reply["message"] == "Framework is not subscribed"
    sub = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}
    assert (await call(cluster, sub, headers))[0] == 400  # SUBSCRIBE must not carry one


async def test_acknowledge_with_a_bad_uuid_is_refused(cluster, framework):
    body, headers = fw_call(framework, "ACKNOWLEDGE", acknowledge={
        "agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "AAAA"})
    status, reply = await call(cluster, body, headers)
    assert status == 400 and "UUID" in reply["message"]


async def test_unknown_and_reused_offers_drop_the_tasks(cluster, framework):
    offer = await framework.offer()
    before = await snapshot(cluster)
    bogus = task_info("t-bogus", "t-bogus", offer.agent_id, cmd="true")
    body, headers = fw_call(framework, "ACCEPT", accept={
        "offer_ids": [{"value": "no-such-offer"}],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [_dict(bogus)]}}]})
    assert (await call(cluster, body, headers))[0] == 202
    status = await framework.wait_state("t-bogus", TaskState.TASK_DROPPED)
    assert status.reason == Reason.REASON_INVALID_OFFERS
    assert "no-such-offer" in status.message
    assert await snapshot(cluster) == before
    await framework.launch(offer, [task_info("t-ok", "t-ok", offer.agent_id, cmd="true")])
    await framework.wait_state("t-ok", TaskState.TASK_FINISHED)
    await framework.launch(offer, [task_info("t-again", "t-again", offer.agent_id, cmd="true")])
    status = await framework.wait_state("t-again", TaskState.TASK_DROPPED)
    assert "no longer valid" in status.message


async def test_invalid_tasks_get_task_error_and_the_rest_launch(cluster, framework):
    offer = await framework.offer()
    other_agent = next(a.agent_id for a in cluster.agents if a.agent_id != offer.agent_id.value)
    free = offer_resources(offer)
    tasks = [
        task_info("fits", "fits", offer.agent_id, cmd="true"),
        task_info("fits", "fits", offer.agent_id, cmd="true"),  # duplicate id
        task_info("too-big", "too-big", offer.agent_id, cmd="true",
                  cpus=free.scalar("cpus") + 1),
        task_info("elsewhere", "elsewhere", other_agent, cmd="true"),
        task_info("bad/id", "bad/id", offer.agent_id, cmd="true"),
        task_info("wrong-port", "wrong-port", offer.agent_id, cmd="true", ports=[1]),
    ]
    await framework.launch(offer, tasks)
    await framework.wait_state("fits", TaskState.TASK_FINISHED)
    for task_id, text in [("fits", "duplicate ID"), ("too-big", "more resources"),
                          ("elsewhere", "invalid agent"), ("bad/id", "'/'"),
                          ("wrong-port", "more resources")]:
        status = await framework.wait_state(task_id, TaskState.TASK_ERROR)
        assert status.reason == Reason.REASON_TASK_INVALID
        assert text in status.message, (task_id, status.message)
    assert framework.sched.states("too-big") == [TaskState.TASK_ERROR]


async def test_invalid_resources_in_a_task_are_reported(cluster, framework):
    offer = await framework.offer()
    raw = _dict(task_info("neg", "neg", offer.agent_id, cmd="true"))
    raw["resources"] = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}]
    body, headers = fw_call(framework, "ACCEPT", accept={
        "offer_ids": [{"value": offer.id.value}],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [raw]}}]})
    assert (await call(cluster, body, headers))[0] == 202
    status = await framework.wait_state("neg", TaskState.TASK_ERROR)
    assert "invalid resources" in status.message


async def test_master_state_endpoints_validate_their_parameters(cluster):
    status, _, body = await request("GET", cluster.master_url + "/master/tasks?limit=abc")
    reply = json.loads(body)
    assert status == 400 and reply["details"][0]["path"] == "limit"
    status, _, body = await request("GET", cluster.master_url + "/no/such/path")
    assert status == 404 and json.loads(body)["message"].startswith("Not found")
    status, _, body = await request("DELETE", cluster.master_url + "/master/state")
    assert status == 405


async def test_agent_link_rejects_garbage_and_keeps_state(cluster):
    before = await snapshot(cluster)
    url = cluster.master_url.replace("http", "ws") + "/agent/v1/link"
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            await ws.send_str(encode(Pong(seq=1)).decode())  # not a register
            reply = await ws.receive()
            assert "register" in reply.data
        async with session.ws_connect(url) as ws:
            await ws.send_str('{"type": "register", "hostname": 5}')
            reply = await ws.receive()
            assert "$.hostname" in reply.data
    assert await snapshot(cluster) == before


def _dict(task) -> dict:
    return msgspec.to_builtins(task)
