"""The agent's operator API (``POST /api/v1`` on an agent) over real HTTP, in JSON and
in protobuf: what runs there, its flags and metrics, and its sandbox files."""

from __future__ import annotations

import base64

import aiohttp
import pytest
from google.protobuf import json_format

from mesoslite.agent.server import Agent
from mesoslite.messages import wire
from mesoslite.messages.mesos import TaskState
from mesoslite.proto.mesos.v1.agent import agent_pb2
from mesoslite.scheduler import task_info
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio
PROTOBUF = {"Content-Type": wire.PROTOBUF, "Accept": wire.PROTOBUF}


def url(agent: Agent) -> str:
    return f"http://{agent.address}:{agent.config.port}/api/v1"


async def call(agent: Agent, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(url(agent), json=body) as response:
        return response.status, await response.json()


async def call_protobuf(agent: Agent, body: dict) -> agent_pb2.Response:
    message = json_format.ParseDict(body, agent_pb2.Call())
    async with aiohttp.ClientSession() as http, http.post(
            url(agent), data=message.SerializeToString(), headers=PROTOBUF) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"] == wire.PROTOBUF
        answer = agent_pb2.Response()
        answer.ParseFromString(await response.read())
        return answer


async def test_the_agent_answers_what_runs_there_in_both_encodings(cluster, framework, caplog):
    offer = await framework.offer()
    agent = next(a for a in cluster.agents if a.agent_id == offer.agent_id.value)
    await framework.launch(offer, [task_info("op-t", "op-t", offer.agent_id,
                                             cmd="echo hello-from-the-sandbox; sleep 30")])
    await framework.wait_state("op-t", TaskState.TASK_RUNNING)

    status, state = await call(agent, {"type": "GET_STATE"})
    assert status == 200 and state["type"] == "GET_STATE"
    [task] = state["get_state"]["get_tasks"]["launched_tasks"]
    assert task["task_id"] == {"value": "op-t"} and task["state"] == "TASK_RUNNING"
    assert [f["framework_info"]["id"]["value"] for f in
            state["get_state"]["get_frameworks"]["frameworks"]] == [framework.id]
    status, containers = await call(agent, {"type": "GET_CONTAINERS"})
    assert len(containers["get_containers"]["containers"]) == 1
    status, flags = await call(agent, {"type": "GET_FLAGS"})
    names = {f["name"] for f in flags["get_flags"]["flags"]}
    assert "work_dir" in names and "agent_secret" not in names
    status, info = await call(agent, {"type": "GET_AGENT"})
    assert info["get_agent"]["agent_info"]["id"]["value"] == agent.agent_id

    # the same in protobuf, decoded by the generated classes
    answer = await call_protobuf(agent, {"type": "GET_TASKS"})
    assert [t.task_id.value for t in answer.get_tasks.launched_tasks] == ["op-t"]
    metrics = await call_protobuf(agent, {"type": "GET_METRICS"})
    assert any(m.name.startswith("mesoslite_agent_registered") and m.value == 1
               for m in metrics.get_metrics.metrics)
    version = await call_protobuf(agent, {"type": "GET_VERSION"})
    assert version.get_version.version_info.version
    for kind in ("GET_STATE", "GET_FLAGS", "GET_CONTAINERS", "GET_AGENT", "GET_EXECUTORS",
                 "GET_FRAMEWORKS", "GET_HEALTH"):
        assert (await call_protobuf(agent, {"type": kind})).type == getattr(
            agent_pb2.Response, kind)
    # every answer fit Mesos' schema whole: nothing was left out of a protobuf answer
    assert not [r for r in caplog.records if "schema lacks" in r.getMessage()]

    # the task's sandbox, listed and read
    sandbox = str(agent.cp.sandbox(framework.id, "op-t"))
    status, listed = await call(agent, {"type": "LIST_FILES", "list_files": {"path": sandbox}})
    assert status == 200
    stdout = next(f["path"] for f in listed["list_files"]["file_infos"]
                  if f["path"].endswith("stdout"))

    async def printed() -> bool:
        read = await call_protobuf(agent, {"type": "READ_FILE",
                                           "read_file": {"path": stdout, "offset": 0}})
        return b"hello-from-the-sandbox" in read.read_file.data

    await wait_for(printed, 10, message="the task's output in READ_FILE")


async def test_bad_calls_get_a_clear_4xx(cluster):
    agent = cluster.agents[0]
    assert (await call(agent, {"type": "LAUNCH_CONTAINER"}))[0] == 400
    assert (await call(agent, {}))[0] == 400
    status, body = await call(agent, {"type": "LIST_FILES", "list_files": {}})
    assert status == 400 and body["details"][0]["path"] == "list_files.path"
    status, _ = await call(agent, {"type": "READ_FILE", "read_file": {"path": "/etc/passwd"}})
    assert status == 403
    status, _ = await call(agent, {"type": "READ_FILE", "read_file": {
        "path": "nothing-here", "offset": 0}})
    assert status == 404
    async with aiohttp.ClientSession() as http:
        async with http.post(url(agent), data=b"\xff\x01", headers=PROTOBUF) as response:
            assert response.status == 400
        async with http.post(url(agent), data=b"{}",
                             headers={"Content-Type": "text/plain"}) as response:
            assert response.status == 415


async def master_call(cluster, body: dict) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(
            cluster.master_url + "/api/v1", json=body) as response:
        return response.status, await response.json()


async def test_the_master_lists_and_reads_any_agents_sandbox(cluster, framework):
    offer = await framework.offer()
    aid = offer.agent_id.value
    await framework.launch(offer, [task_info("mf-t", "mf-t", offer.agent_id,
                                             cmd="echo through-the-master; sleep 30")])
    await framework.wait_state("mf-t", TaskState.TASK_RUNNING)
    status, root = await master_call(cluster, {"type": "LIST_FILES",
                                               "list_files": {"path": "/agents"}})
    assert status == 200
    assert f"/agents/{aid}" in [f["path"] for f in root["list_files"]["file_infos"]]
    task_dir = f"/agents/{aid}/{framework.id}/mf-t"
    status, listed = await master_call(cluster, {"type": "LIST_FILES",
                                                 "list_files": {"path": task_dir}})
    assert status == 200
    assert f"{task_dir}/stdout" in [f["path"] for f in listed["list_files"]["file_infos"]]

    async def printed() -> bool:
        status, read = await master_call(cluster, {"type": "READ_FILE", "read_file": {
            "path": f"{task_dir}/stdout", "offset": 0}})
        return status == 200 and b"through-the-master" in base64.b64decode(
            read["read_file"]["data"])

    await wait_for(printed, 10, message="the task's output through the master")
    for bad, expected in (({"path": f"/agents/{aid}/../../etc/passwd"}, 400),
                          ({"path": "/master/log"}, 404),
                          ({"path": f"/agents/no-such-agent/{framework.id}"}, 404),
                          ({"path": f"{task_dir}/stdout", "offset": -1}, 400),
                          ({"path": f"{task_dir}/missing"}, 404)):
        status, body = await master_call(cluster, {"type": "READ_FILE", "read_file": bad})
        assert status == expected, (bad, body)
