"""The master's event stream: SSE with Last-Event-ID resume, Mesos' operator API
SUBSCRIBE (RecordIO), and the synchronous operator calls."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from mesoslite.messages.mesos import TaskState
from mesoslite.testing.http import request
from mesoslite.testing.sse import SseMessage, next_message


async def read_record(stream: aiohttp.StreamReader) -> dict:
    length = int((await stream.readline()).strip())
    return json.loads(await stream.readexactly(length))


async def messages_until(stream: aiohttp.StreamReader, done, timeout: float = 15.0
                         ) -> list[SseMessage]:
    """SSE messages up to and including the first for which ``done(msg)`` holds."""
    out: list[SseMessage] = []

    async def read() -> None:
        while True:
            msg = await next_message(stream)
            out.append(msg)
            if done(msg):
                return

    try:
        await asyncio.wait_for(read(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out; got {[(m.event, m.data[:80]) for m in out]}") from None
    return out


def task_state(msg: SseMessage) -> str | None:
    data = msg.json()
    if msg.event == "TASK_UPDATED":
        return data["task_updated"]["state"]
    if msg.event == "TASK_ADDED":
        return data["task_added"]["task"]["state"]
    return None


def running(task_id: str):
    return lambda m: (m.event == "TASK_UPDATED" and task_state(m) == "TASK_RUNNING"
                      and m.json()["task_updated"]["status"]["task_id"]["value"] == task_id)


async def test_sse_reports_framework_and_task_events_then_resumes_from_last_event_id(
        cluster, framework_factory):
    url = cluster.master_url + "/master/events"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            fw = await framework_factory(cluster.master_url, name="sse-test")
            await fw.run_task("sse-1", "sleep 30")
            seen = await messages_until(resp.content, running("sse-1"))
        kinds = [m.event for m in seen]
        assert kinds[0] == "FRAMEWORK_ADDED"
        assert seen[0].json()["framework_added"]["framework"]["framework_info"]["name"] == \
            "sse-test"
        added = next(m for m in seen if m.event == "TASK_ADDED")
        assert added.json()["task_added"]["task"]["name"] == "sse-1"
        assert added.json()["task_added"]["task"]["state"] == "TASK_STAGING"
        states = [task_state(m) for m in seen if m.event == "TASK_UPDATED"]
        assert states[-1] == "TASK_RUNNING" and "TASK_STARTING" in states
        ids = [m.id for m in seen]
        assert all(ids) and len(set(ids)) == len(ids)

        # Resume after TASK_ADDED: exactly what followed it is replayed, in order.
        after = seen[seen.index(added) + 1:]
        async with session.get(url, headers={"Last-Event-ID": added.id}) as resp:
            replay = [await asyncio.wait_for(next_message(resp.content), 10) for _ in after]
        assert [(m.id, m.event, m.data) for m in replay] == \
            [(m.id, m.event, m.data) for m in after]

        # The query parameter works too (for clients that cannot set headers).
        async with session.get(url, params={"last_event_id": seen[-2].id}) as resp:
            assert (await next_message(resp.content)).id == seen[-1].id
    await fw.driver.teardown()  # its tasks are killed now: the agents stop quickly


async def test_sse_resume_from_an_unknown_id_starts_with_a_reset(cluster, framework):
    url = cluster.master_url + "/master/events"
    async with aiohttp.ClientSession() as session, session.get(
            url, headers={"Last-Event-ID": "another-master-17"}) as resp:
        first = await next_message(resp.content)
        assert first.event == "event_stream_reset"
        assert "another master" in first.json()["reason"]
        # the reset carries the id to resume from, and live events follow it
        await framework.run_task("after-reset", "sleep 30")
        seen = await messages_until(resp.content, running("after-reset"))
        assert int(seen[0].id.rpartition("-")[2]) > int(first.id.rpartition("-")[2])
    await framework.driver.teardown()


async def test_sse_reports_an_agent_leaving_and_coming_back(cluster):
    url = cluster.master_url + "/master/events"
    agent = cluster.agents[0]
    agent_id = agent.agent_id
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        await cluster.stop_agent(0)
        seen = await messages_until(resp.content, lambda m: m.event == "AGENT_REMOVED")
        updated = next(m for m in seen if m.event == "AGENT_UPDATED")
        body = updated.json()["agent_updated"]["agent"]
        assert body["agent_info"]["id"]["value"] == agent_id and body["active"] is False
        assert seen[-1].json()["agent_removed"]["agent_id"]["value"] == agent_id
        await cluster.start_agent(0)
        back = await messages_until(resp.content, lambda m: m.event == "AGENT_ADDED")
        assert back[-1].json()["agent_added"]["agent"]["agent_info"]["id"]["value"] == agent_id


async def test_operator_subscribe_gets_subscribed_then_task_added_and_updated(
        cluster, framework):
    async with aiohttp.ClientSession() as session, session.post(
            cluster.master_url + "/api/v1", json={"type": "SUBSCRIBE"},
            headers={"Accept": "application/json"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        first = await read_record(resp.content)
        assert first["type"] == "SUBSCRIBED"
        snapshot = first["subscribed"]["get_state"]
        assert len(snapshot["get_agents"]["agents"]) == 3
        assert [f["framework_info"]["name"] for f in snapshot["get_frameworks"]["frameworks"]] \
            == ["test"]
        assert first["subscribed"]["heartbeat_interval_seconds"] == 0.5
        await framework.run_task("op-1", "sleep 30")
        kinds: list[str] = []
        states: list[str] = []
        while "TASK_RUNNING" not in states or "HEARTBEAT" not in kinds:
            event = await asyncio.wait_for(read_record(resp.content), 15)
            kinds.append(event["type"])
            if event["type"] == "TASK_ADDED":
                task = event["task_added"]["task"]
                assert task["task_id"] == {"value": "op-1"}
                assert task["framework_id"] == {"value": framework.id}
            elif event["type"] == "TASK_UPDATED":
                assert event["task_updated"]["framework_id"] == {"value": framework.id}
                states.append(event["task_updated"]["state"])
        assert kinds.index("TASK_ADDED") < kinds.index("TASK_UPDATED")
        assert states[-1] == "TASK_RUNNING"
    await framework.driver.teardown()


async def _records_until(resp: aiohttp.ClientResponse, kind: str) -> list[str]:
    kinds: list[str] = []
    while kind not in kinds:
        kinds.append((await asyncio.wait_for(read_record(resp.content), 15))["type"])
    return kinds


async def test_operator_stream_carries_mesos_types_unless_asked_for_our_own(cluster):
    url = cluster.master_url + "/api/v1"
    async with aiohttp.ClientSession() as session, \
            session.post(url, json={"type": "SUBSCRIBE"}) as strict, \
            session.post(url + "?mesoslite_events=1", json={"type": "SUBSCRIBE"}) as own:
        assert (await read_record(strict.content))["type"] == "SUBSCRIBED"
        assert (await read_record(own.content))["type"] == "SUBSCRIBED"
        await cluster.stop_agent(0)  # the agent goes inactive (UPDATED), then is removed
        strict_kinds = await _records_until(strict, "AGENT_REMOVED")
        own_kinds = await _records_until(own, "AGENT_REMOVED")
    assert "AGENT_UPDATED" in own_kinds
    assert "AGENT_UPDATED" not in strict_kinds
    mesos_types = {"SUBSCRIBED", "TASK_ADDED", "TASK_UPDATED", "AGENT_ADDED", "AGENT_REMOVED",
                   "FRAMEWORK_ADDED", "FRAMEWORK_UPDATED", "FRAMEWORK_REMOVED", "HEARTBEAT"}
    assert set(strict_kinds) <= mesos_types


async def test_operator_synchronous_calls_and_errors(cluster, framework):
    await framework.run_task("sync-1", "sleep 30")
    await framework.wait_state("sync-1", TaskState.TASK_RUNNING)
    url = cluster.master_url + "/api/v1"
    status, _, body = await request("POST", url, json={"type": "GET_STATE"})
    assert status == 200
    state = json.loads(body)
    assert state["type"] == "GET_STATE"
    tasks = state["get_state"]["get_tasks"]["tasks"]
    assert [(t["name"], t["state"]) for t in tasks] == [("sync-1", "TASK_RUNNING")]
    assert [s["state"] for s in tasks[0]["statuses"]] == \
        ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"]
    status, _, body = await request("POST", url, json={"type": "GET_HEALTH"})
    assert json.loads(body) == {"type": "GET_HEALTH", "get_health": {"healthy": True}}
    status, _, body = await request("POST", url, json={"type": "GROW_VOLUME"})
    assert status == 400 and "not supported" in json.loads(body)["message"]
    status, _, body = await request("POST", url, json={"type": "RESERVE_RESOURCES"})
    assert status == 400
    assert json.loads(body)["details"][0]["path"] == "reserve_resources"
    status, _, _ = await request("POST", url, data=b'{"type": "GET_STATE"}',
                                 headers={"Content-Type": "text/plain"})
    assert status == 415
    status, _, _ = await request("POST", url, json={"type": "GET_STATE"},
                                 headers={"Accept": "text/html"})
    assert status == 406
    status, _, _ = await request("POST", url, json={"nope": 1})
    assert status == 400
    await framework.driver.teardown()
