"""Custom executors through a real master and real agents (docs/executors.md): the
agent starts the framework's executor once, hands it every task sent to it over the
v1 executor API, carries its updates reliably, relays messages both ways and stops
it on SHUTDOWN; the master accounts its resources apart from its tasks'."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    Environment,
    EnvironmentVariable,
    ExecutorInfo,
    Reason,
    TaskInfo,
    TaskState,
)
from mesoslite.messages.scheduler import MAX_MESSAGE_BYTES
from mesoslite.resources import Resources
from mesoslite.scheduler import offer_resources
from mesoslite.scheduler.helpers import resource_list
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio
REPO = str(Path(__file__).resolve().parents[2])
EXECUTOR_RESOURCES = Resources.of(cpus=0.25, mem=64.0)


def raw_executor(executor_id: str = "raw", program: str | None = None,
                 protobuf: bool = False) -> ExecutorInfo:
    """The test executor of ``raw_executor.py`` (or ``program``) as an ExecutorInfo."""
    value = program or f"exec {sys.executable} -m tests.executors.raw_executor"
    variables = [EnvironmentVariable(name="PYTHONPATH", value=REPO)]
    if protobuf:
        variables.append(EnvironmentVariable(name="RAW_EXECUTOR_PROTOBUF", value="1"))
    return ExecutorInfo(
        executor_id=ID(executor_id), name="raw test executor",
        command=CommandInfo(value=value, environment=Environment(variables=variables)),
        resources=resource_list(EXECUTOR_RESOURCES))


def executor_task(task_id: str, agent_id: ID, executor: ExecutorInfo, what: str = "run"
                  ) -> TaskInfo:
    return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=agent_id,
                    resources=resource_list(Resources.of(cpus=0.1, mem=16.0)),
                    executor=executor, data=what.encode())


async def framework_state(cluster, framework_id: str) -> dict:
    state = await get_json(cluster.master_url + "/master/state")
    return next(f for f in state["frameworks"] if f["id"] == framework_id)


async def test_an_executor_runs_many_tasks_and_holds_its_own_resources(cluster, framework):
    offer = await framework.offer()
    executor = raw_executor()
    tasks = [executor_task(f"t{i}", offer.agent_id, executor, "finish" if i < 3 else "run")
             for i in range(5)]
    await framework.launch(offer, tasks)
    for i in range(3):
        status = await framework.wait_state(f"t{i}", TaskState.TASK_FINISHED)
        assert status.data == b"finish" and status.executor_id == ID("raw")
    for i in (3, 4):
        await framework.wait_state(f"t{i}", TaskState.TASK_RUNNING)
    assert framework.sched.states("t0") == [TaskState.TASK_RUNNING, TaskState.TASK_FINISHED]
    agent = next(a for a in cluster.agents if a.agent_id == offer.agent_id.value)
    # one executor process for the five tasks
    assert len(agent.executors.runs) == 1
    # its container holds its own resources and its two running tasks'
    [run] = agent.executors.runs.values()
    expected = (0.25 + 2 * 0.1, 64 + 2 * 16)
    await wait_for(lambda: run.limits == expected or None,
                   message="the executor's limits to shrink to its running tasks")
    cgroup = getattr(run.container, "_cgroup", None)
    if cgroup is not None:  # the process containerizer found a cgroup hierarchy
        assert cgroup.read_limits()["mem_limit_bytes"] == expected[1] * 2**20
    fw = await wait_for(lambda: _with_running(cluster, framework.id, 2),
                        message="the master to show 2 running tasks")
    [view] = fw["executors"]
    assert view["executor_id"] == "raw" and view["slave_id"] == offer.agent_id.value
    # used = the executor's resources + the two running tasks'
    assert fw["used_resources"]["cpus"] == pytest.approx(0.25 + 0.2)
    assert fw["used_resources"]["mem"] == pytest.approx(64 + 32)
    # the agent's next offer to this framework names the executor
    framework.sched.open_offers.clear()
    again = await framework.offer(agent_id=offer.agent_id.value)
    assert [e.value for e in again.executor_ids] == ["raw"]
    operator = await _operator(cluster, "GET_EXECUTORS")
    assert [e["executor_info"]["executor_id"]["value"]
            for e in operator["get_executors"]["executors"]] == ["raw"]


async def test_an_executor_speaking_protobuf_subscribes_and_sends_updates(cluster, framework):
    offer = await framework.offer()
    executor = raw_executor("proto", protobuf=True)
    await framework.launch(offer, [executor_task("p0", offer.agent_id, executor, "finish"),
                                   executor_task("p1", offer.agent_id, executor, "run")])
    status = await framework.wait_state("p0", TaskState.TASK_FINISHED)
    assert status.data == b"finish" and status.executor_id == ID("proto")
    assert framework.sched.states("p0") == [TaskState.TASK_RUNNING, TaskState.TASK_FINISHED]
    await framework.wait_state("p1", TaskState.TASK_RUNNING)
    await framework.driver.kill(ID("p1"), offer.agent_id)
    await framework.wait_state("p1", TaskState.TASK_KILLED)


async def _with_running(cluster, framework_id: str, count: int) -> dict | None:
    fw = await framework_state(cluster, framework_id)
    running = [t for t in fw["tasks"] if t["state"] == "TASK_RUNNING"]
    return fw if len(running) == count and not [
        t for t in fw["tasks"] if t["state"] not in ("TASK_RUNNING",)] else None


async def _operator(cluster, kind: str) -> dict:
    status, _, body = await request("POST", cluster.master_url + "/api/v1",
                                    json={"type": kind})
    assert status == 200, body
    return json.loads(body)


async def test_messages_go_both_ways_and_shutdown_stops_the_executor(cluster, framework):
    offer = await framework.offer()
    executor = raw_executor("echo")
    await framework.launch(offer, [executor_task("m1", offer.agent_id, executor)])
    await framework.wait_state("m1", TaskState.TASK_RUNNING)
    await framework.driver.message(offer.agent_id.value, "echo", b"hello")
    got = await wait_for(lambda: framework.sched.messages or None,
                         message="the executor's answer to a framework message")
    assert got == [(offer.agent_id.value, "echo", b"echo:hello")]
    await framework.driver.shutdown("echo", offer.agent_id.value)
    status = await framework.wait_state("m1", TaskState.TASK_KILLED)
    assert status.reason == Reason.REASON_EXECUTOR_TERMINATED
    failure = await wait_for(lambda: framework.sched.failures or None,
                             message="a FAILURE event for the executor")
    assert failure == [(offer.agent_id.value, "echo", 0)]  # it left on SHUTDOWN, status 0
    fw = await wait_for(lambda: _without_executors(cluster, framework.id),
                        message="the master to release the executor")
    assert fw["used_resources"].get("cpus", 0) == 0


async def _without_executors(cluster, framework_id: str) -> dict | None:
    fw = await framework_state(cluster, framework_id)
    return fw if not fw["executors"] else None


async def test_an_executor_that_crashes_fails_its_tasks(cluster, framework):
    offer = await framework.offer()
    executor = raw_executor("crasher")
    await framework.launch(offer, [executor_task("ok", offer.agent_id, executor),
                                   executor_task("boom", offer.agent_id, executor, "crash")])
    for task_id in ("ok", "boom"):
        status = await framework.wait_state(task_id, TaskState.TASK_FAILED)
        assert status.reason == Reason.REASON_EXECUTOR_TERMINATED
        assert "exit status 3" in (status.message or "")
    failure = await wait_for(lambda: framework.sched.failures or None,
                             message="a FAILURE event for the crashed executor")
    assert failure == [(offer.agent_id.value, "crasher", 3 << 8)]


async def test_an_executor_that_never_subscribes_times_out(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1, executor_registration_timeout=0.5)
    framework = await framework_factory(cluster.master_url)
    offer = await framework.offer()
    silent = raw_executor("silent", program="exec sleep 3600")
    await framework.launch(offer, [executor_task("w", offer.agent_id, silent)])
    status = await framework.wait_state("w", TaskState.TASK_FAILED)
    assert status.reason == Reason.REASON_EXECUTOR_REGISTRATION_TIMEOUT
    assert "did not subscribe within 0.5s" in (status.message or "")
    await wait_for(lambda: framework.sched.failures or None,
                   message="a FAILURE event for the silent executor")


async def test_bad_executors_are_refused_with_their_reason(cluster, framework):
    offer = await framework.offer()
    no_program = ExecutorInfo(executor_id=ID("empty"),
                              resources=resource_list(EXECUTOR_RESOURCES))
    first = raw_executor("twice")
    second = raw_executor("twice", program="exec sleep 1")
    await framework.launch(offer, [executor_task("a", offer.agent_id, no_program),
                                   executor_task("b", offer.agent_id, first),
                                   executor_task("c", offer.agent_id, second)])
    a = await framework.wait_state("a", TaskState.TASK_ERROR)
    assert "'executor' must set 'command'" in (a.message or "")
    c = await framework.wait_state("c", TaskState.TASK_ERROR)
    assert "differs from the one it runs with" in (c.message or "")
    await framework.wait_state("b", TaskState.TASK_RUNNING)
    assert offer_resources(offer)  # the offer was used: nothing else to check


async def test_bad_calls_are_answered_400_naming_the_problem(cluster, framework):
    offer = await framework.offer()
    await framework.launch(offer, [executor_task("x1", offer.agent_id, raw_executor("lim"))])
    await framework.wait_state("x1", TaskState.TASK_RUNNING)
    big = base64.b64encode(b"x" * (MAX_MESSAGE_BYTES + 1)).decode()
    status, _, body = await request("POST", cluster.master_url + "/api/v1/scheduler", json={
        "type": "MESSAGE", "framework_id": {"value": framework.id},
        "message": {"agent_id": offer.agent_id.to_builtins() if False else
                    {"value": offer.agent_id.value},
                    "executor_id": {"value": "lim"}, "data": big}})
    assert status == 400
    error = json.loads(body)
    assert f"limit of {MAX_MESSAGE_BYTES} bytes" in error["message"]
    assert error["details"][0]["path"] == "$.message.data"
    agent = next(a for a in cluster.agents if a.agent_id == offer.agent_id.value)
    url = f"http://127.0.0.1:{agent.config.port}/api/v1/executor"
    ids = {"executor_id": {"value": "lim"}, "framework_id": {"value": framework.id}}
    cases = [
        ({**ids, "type": "MESSAGE", "message": {"data": big}}, "limit of"),
        ({**ids, "type": "UPDATE", "update": {"status": {
            "task_id": {"value": "nope"}, "state": "TASK_RUNNING",
            "uuid": base64.b64encode(b"u" * 16).decode()}}}, "not a task of executor"),
        ({**ids, "type": "UPDATE", "update": {"status": {
            "task_id": {"value": "x1"}, "state": "TASK_RUNNING"}}}, "'uuid'"),
        ({"executor_id": {"value": "ghost"}, "framework_id": {"value": framework.id},
          "type": "SUBSCRIBE", "subscribe": {}}, "is not running here"),
        ({**ids, "type": "SUBSCRIBE"}, "'subscribe' to be present"),
    ]
    for call, expected in cases:
        status, _, body = await request("POST", url, json=call)
        assert status == 400, (call["type"], body)
        assert expected in json.loads(body)["message"], body
    stale = {**ids, "type": "MESSAGE", "message": {"data": "aGk="}}
    status, _, body = await request("POST", url, json=stale,
                                    headers={"Mesos-Stream-Id": "an-old-subscription"})
    assert status == 400 and "not the executor's current subscription" in body.decode()
    # nothing was lost: the task still runs and its executor still answers
    await framework.driver.message(offer.agent_id.value, "lim", b"ping")
    await wait_for(lambda: framework.sched.messages or None, message="the executor's echo")
    assert framework.sched.states("x1") == [TaskState.TASK_RUNNING]


async def test_an_executor_written_with_pymesos_runs_unchanged(cluster, framework):
    offer = await framework.offer()
    executor = raw_executor(
        "pymesos", program=f"exec {sys.executable} -m tests.executors.pymesos_echo_executor")
    tasks = [executor_task("p1", offer.agent_id, executor, "hello"),
             executor_task("p2", offer.agent_id, executor, "run")]
    await framework.launch(offer, tasks)
    finished = await framework.wait_state("p1", TaskState.TASK_FINISHED)
    assert finished.data == b"hello" and finished.executor_id == ID("pymesos")
    await framework.wait_state("p2", TaskState.TASK_RUNNING)
    await framework.driver.message(offer.agent_id.value, "pymesos", b"hi")
    got = await wait_for(lambda: framework.sched.messages or None,
                         message="the pymesos executor's answer")
    assert got == [(offer.agent_id.value, "pymesos", b"echo:hi")]
    await framework.driver.kill("p2", offer.agent_id.value)
    await framework.wait_state("p2", TaskState.TASK_KILLED)
    # acknowledged updates reached it (its driver forgets them on ACKNOWLEDGED), and a
    # SHUTDOWN makes it leave: the FAILURE event follows
    await framework.driver.shutdown("pymesos", offer.agent_id.value)
    await wait_for(lambda: framework.sched.failures or None,
                   message="the pymesos executor to leave on SHUTDOWN")
