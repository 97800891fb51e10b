"""The protobuf encoding of the v1 APIs against a real cluster: a framework that speaks
only protobuf (``proto_framework.py``, classes generated from .proto files, in its own
process), the operator API's answers and stream, and bad input.

``MESOS_PROTO_DIR`` runs the framework with code generated from Mesos' own .proto
files instead of the project's: the directory holds either Mesos' ``include`` tree
(``mesos/v1/**/*.proto``, compiled here) or modules generated from it
(``mesos/v1/**/*_pb2.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from google.protobuf import json_format

from mesoslite.messages import wire
from mesoslite.messages.mesos import TaskState
from mesoslite.proto.mesos.v1.master import master_pb2
from mesoslite.proto.mesos.v1.scheduler import scheduler_pb2
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import SERVER_LIMIT, within

pytestmark = pytest.mark.asyncio
REPO = Path(__file__).resolve().parents[2]
PROTOBUF = {"Content-Type": wire.PROTOBUF, "Accept": wire.PROTOBUF}


def generated_package(tmp_path: Path) -> tuple[str, str, Path]:
    """(package, PYTHONPATH, directory) of the generated modules the framework uses."""
    source = os.environ.get("MESOS_PROTO_DIR")
    if not source:
        return "mesoslite.proto.mesos.v1", str(REPO), REPO / "mesoslite" / "proto"
    root = Path(source)
    if not list(root.glob("mesos/v1/scheduler/*_pb2.py")):
        subprocess.run([sys.executable, str(REPO / "scripts" / "gen-proto"), "--plain",
                        str(root), str(tmp_path / "gen")], check=True)
        root = tmp_path / "gen"
    return "mesos.v1", f"{root}{os.pathsep}{REPO}", root


async def test_a_protobuf_framework_runs_a_task_end_to_end(cluster_factory, tmp_path):
    cluster = await cluster_factory(agents=1)
    package, pythonpath, generated = generated_package(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.proto_framework", cluster.master_url, package,
        env={**os.environ, "PYTHONPATH": pythonpath}, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await within(SERVER_LIMIT, "the protobuf framework to finish its task",
                            proc.communicate())
    assert proc.returncode == 0, err.decode()
    steps = [json.loads(line) for line in out.decode().splitlines()]
    assert steps[0]["content_type"] == wire.PROTOBUF
    assert Path(steps[0]["generated"]).is_relative_to(generated)
    assert steps[1]["step"] == "SUBSCRIBED"
    [accept] = [s for s in steps if s["step"] == "ACCEPT"]
    assert accept["ports"] == [[31000, 31899]]  # uint64 ranges, as numbers
    states = [s["state"] for s in steps if s["step"] == "UPDATE"]
    assert states[-2:] == ["TASK_RUNNING", "TASK_FINISHED"], states
    acked = [s["state"] for s in steps if s["step"] == "ACKNOWLEDGED"]
    assert acked == states  # every agent update carried a uuid and was acknowledged
    state = await get_json(cluster.master_url + "/master/state")
    [framework] = [f for f in state["frameworks"] + state.get("completed_frameworks", [])
                   if f["name"] == "protobuf-framework"]
    [task] = framework["completed_tasks"]
    assert task["id"] == "proto-task" and task["state"] == "TASK_FINISHED"


async def scheduler_call(cluster, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    status, _, reply = await request("POST", cluster.master_url + "/api/v1/scheduler",
                                     data=body, headers=headers)
    return status, json.loads(reply) if reply else {}


async def frameworks(cluster) -> list[str]:
    state = await get_json(cluster.master_url + "/master/state")
    return [f["id"] for f in state["frameworks"]]


def subscribe_call(user: str | None = "nobody") -> bytes:
    call = scheduler_pb2.Call(type=scheduler_pb2.Call.SUBSCRIBE)
    call.subscribe.framework_info.name = "bad-input"
    if user is not None:
        call.subscribe.framework_info.user = user
    return call.SerializePartialToString()


async def test_bad_protobuf_input_gets_a_clear_4xx_and_changes_nothing(cluster):
    before = await frameworks(cluster)
    status, reply = await scheduler_call(cluster, b"\x12\xff\xff", PROTOBUF)
    assert status == 400
    assert "Failed to parse body into scheduler::Call protobuf" in reply["message"]
    status, reply = await scheduler_call(cluster, subscribe_call(user=None), PROTOBUF)
    assert status == 400 and "subscribe.framework_info.user" in reply["message"]
    status, reply = await scheduler_call(cluster, subscribe_call(),
                                         {"Content-Type": "application/xml"})
    assert status == 415
    assert reply == {"message": "Expecting 'Content-Type' of application/json or "
                                "application/x-protobuf", "details": []}
    status, reply = await scheduler_call(
        cluster, subscribe_call(), {"Content-Type": wire.PROTOBUF, "Accept": "text/html"})
    assert status == 406 and "application/x-protobuf" in reply["message"]
    for body, headers in ((b"\xff", PROTOBUF),
                          (b"{}", {"Content-Type": "text/plain"}),
                          (master_pb2.Call(type=master_pb2.Call.GET_STATE).SerializeToString(),
                           {"Content-Type": wire.PROTOBUF, "Accept": "text/plain"})):
        status, _, _ = await request("POST", cluster.master_url + "/api/v1", data=body,
                                     headers=headers)
        assert status == {b"\xff": 400, b"{}": 415}.get(body, 406)
    executor_api = f"http://127.0.0.1:{cluster.agents[0].config.port}/api/v1/executor"
    status, _, reply = await request("POST", executor_api, data=b"\x0a\xff",
                                     headers=PROTOBUF)
    assert status == 400 and b"executor::Call protobuf" in reply
    status, _, _ = await request("POST", executor_api, data=b"{}",
                                 headers={"Content-Type": "text/plain"})
    assert status == 415
    assert await frameworks(cluster) == before


def as_json(message: object) -> object:
    """A protobuf message as Mesos' JSON (64-bit integers as numbers)."""
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    wire._numbers(data, message.DESCRIPTOR)
    return data


def as_sent(value: object) -> object:
    """JSON less what protobuf cannot tell from absent: nulls and empty lists."""
    if isinstance(value, dict):
        return {k: as_sent(v) for k, v in value.items() if v is not None and v != []}
    if isinstance(value, list):
        return [as_sent(v) for v in value]
    return value


async def test_the_operator_api_answers_in_protobuf_what_it_answers_in_json(
        cluster, framework):
    await framework.run_task("sleeper", "sleep 30")
    await framework.wait_state("sleeper", TaskState.TASK_RUNNING)
    url = cluster.master_url + "/api/v1"
    kinds = [kind for kind in master_pb2.Call.Type.keys() if kind.startswith("GET_")]  # noqa: SIM118
    answered = []
    for kind in kinds:
        status, _, body = await request("POST", url, json={"type": kind})
        if status != 200:
            continue  # not a call this master answers, or one that needs arguments
        call = master_pb2.Call(type=master_pb2.Call.Type.Value(kind)).SerializeToString()
        status, headers, answer = await request("POST", url, data=call, headers=PROTOBUF)
        assert status == 200 and headers["Content-Type"] == wire.PROTOBUF, (kind, answer)
        response = master_pb2.Response.FromString(answer)
        ignore = {"get_metrics", "get_state", "get_frameworks", "get_agents", "get_master"}
        if not ignore & set(json.loads(body)):  # these carry clocks and counters
            # the same content, but mesoslite's JSON-only fields (wire.EXTENSIONS)
            sent = wire._without_extensions(json.loads(body), master_pb2.Response.DESCRIPTOR)
            assert as_json(response) == as_sent(sent), kind
        assert master_pb2.Response.Type.Name(response.type) == kind
        answered.append(kind)
    assert {"GET_STATE", "GET_TASKS", "GET_AGENTS", "GET_FRAMEWORKS", "GET_HEALTH"} <= set(
        answered)
    status, _, answer = await request("POST", url, data=master_pb2.Call(
        type=master_pb2.Call.GET_TASKS).SerializeToString(), headers=PROTOBUF)
    tasks = master_pb2.Response.FromString(answer).get_tasks
    assert [t.task_id.value for t in tasks.tasks] == ["sleeper"]


async def next_record(stream: aiohttp.StreamReader) -> bytes:
    length = int((await stream.readline()).strip())
    return await stream.readexactly(length)


async def test_the_operator_event_stream_in_protobuf(cluster, framework):
    subscribe = master_pb2.Call(type=master_pb2.Call.SUBSCRIBE).SerializeToString()
    async with aiohttp.ClientSession() as session, session.post(
            cluster.master_url + "/api/v1", data=subscribe, headers=PROTOBUF) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == wire.PROTOBUF
        first = master_pb2.Event.FromString(await next_record(resp.content))
        assert master_pb2.Event.Type.Name(first.type) == "SUBSCRIBED"
        assert len(first.subscribed.get_state.get_agents.agents) == 3
        await framework.run_task("watched", "sleep 30")

        async def until_task_added() -> list[str]:
            seen = []
            while "TASK_ADDED" not in seen:
                event = master_pb2.Event.FromString(await next_record(resp.content))
                seen.append(master_pb2.Event.Type.Name(event.type))
            return seen

        seen = await within(SERVER_LIMIT, "a TASK_ADDED event in protobuf", until_task_added())
        assert set(seen) <= set(master_pb2.Event.Type.keys())
