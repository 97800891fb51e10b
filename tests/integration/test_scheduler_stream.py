"""The scheduler API as a raw client sees it: the RecordIO stream, heartbeats,
MESSAGE and SHUTDOWN calls, agent attributes in offers, status endpoints."""

from __future__ import annotations

import json

import aiohttp

from mesoslite.messages.mesos import Reason, TaskState
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.http import get_bytes, get_json, request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import AGENT_RESOURCES, fast_config


async def read_record(stream: aiohttp.StreamReader) -> dict:
    length = int((await stream.readline()).strip())
    return json.loads(await stream.readexactly(length))


async def test_subscribe_streams_recordio_with_subscribed_first_then_heartbeats(cluster):
    body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "raw", "name": "raw-client", "capabilities": [{"type": "PARTITION_AWARE"}]}}}
    async with aiohttp.ClientSession() as session, session.post(
            cluster.master_url + "/api/v1/scheduler", json=body,
            headers={"Accept": "application/json"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            stream_id = resp.headers["Mesos-Stream-Id"]
            first = await read_record(resp.content)
            assert first["type"] == "SUBSCRIBED"
            subscribed = first["subscribed"]
            assert subscribed["heartbeat_interval_seconds"] == 0.5
            assert subscribed["master_info"]["port"] == cluster.master.port
            kinds = set()
            while "HEARTBEAT" not in kinds or "OFFERS" not in kinds:
                kinds.add((await read_record(resp.content))["type"])
            # the stream id works for calls while the stream is open
            status, _, _ = await request(
                "POST", cluster.master_url + "/api/v1/scheduler",
                json={"type": "SUPPRESS", "framework_id": subscribed["framework_id"]},
                headers={"Mesos-Stream-Id": stream_id})
            assert status == 202


async def test_message_reaches_the_tasks_sandbox_and_shutdown_kills(cluster, framework):
    await framework.run_task("listener", "sleep 60")
    running = await framework.wait_state("listener", TaskState.TASK_RUNNING)
    agent = next(a for a in cluster.agents if a.agent_id == running.agent_id.value)
    await framework.driver.message(running.agent_id.value, "listener", b"hello task")
    box = agent.cp.sandbox(framework.id, "listener")
    await wait_for(lambda: (box / "framework_messages").exists()
                   and (box / "framework_messages").read_bytes() == b"hello task\n")
    await framework.driver.shutdown("listener", running.agent_id.value)
    await framework.wait_state("listener", TaskState.TASK_KILLED)


async def test_agent_attributes_and_hostname_are_in_offers(tmp_path, framework_factory):
    cluster = LocalCluster(ClusterSpec(
        work_dir=tmp_path, agents=1, agent_resources=AGENT_RESOURCES,
        agent_attributes=[{"rack": "r1", "zone": "a"}], master_config=fast_config()))
    await cluster.start()
    try:
        fw = await framework_factory(cluster.master_url)
        offer = await fw.offer()
        assert offer.hostname == "agent1"
        attrs = {a.name: a.text.value for a in offer.attributes}
        assert attrs == {"rack": "r1", "zone": "a", "containerizers": "process"}
        assert offer.url.address["ip"] == "127.0.0.1"
    finally:
        await cluster.stop()


async def test_memory_limit_kill_is_reported_with_the_memory_reason(cluster, framework):
    # 32 MB allowed, 256 MB touched: the cgroup's OOM killer ends it
    await framework.run_task(
        "hog", "python3 -c \"b = bytearray(256 * 1024 * 1024); print(len(b))\"", mem=32)
    status = await framework.wait_state("hog", TaskState.TASK_FAILED)
    assert status.reason == Reason.REASON_CONTAINER_LIMITATION_MEMORY, status.message
    assert "Memory limit" in status.message


async def test_status_endpoints(cluster, framework):
    await framework.run_task("counted", "sleep 30")
    await framework.wait_state("counted", TaskState.TASK_RUNNING)
    metrics = (await get_bytes(cluster.master_url + "/metrics")).decode()
    assert 'mesoslite_master_agents{state="active"} 3.0' in metrics
    assert 'mesoslite_master_tasks{state="TASK_RUNNING"} 1.0' in metrics
    assert "mesoslite_master_allocation_seconds_bucket" in metrics
    assert "mesoslite_master_offers_sent_total" in metrics
    version = await get_json(cluster.master_url + "/version")
    assert version["version"]
    assert (await get_bytes(cluster.master_url + "/health")) == b"OK\n"
    tasks = await get_json(cluster.master_url + "/master/tasks")
    [task] = tasks["tasks"]
    assert task["id"] == "counted" and task["state"] == "TASK_RUNNING"
    assert task["resources"]["cpus"] == 0.1
    state = await get_json(cluster.master_url + "/master/state")
    used = sum(a["used_resources"]["cpus"] for a in state["slaves"])
    assert used == 0.1
    assert Resources.parse("cpus:2") <= Resources.of(cpus=state["slaves"][0]["resources"]["cpus"])
