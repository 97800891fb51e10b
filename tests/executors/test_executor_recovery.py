"""``kill -9`` of a real agent process under a running custom executor: the executor
re-subscribes to the restarted agent and keeps its tasks (none restarted, no update
lost); one that does not re-subscribe in time is killed and its tasks reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.messages.mesos import EnvironmentVariable, Reason, TaskState
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import Process, agent_process, master_process
from tests.executors.test_custom_executor import executor_task, raw_executor

pytestmark = pytest.mark.asyncio
RESOURCES = "cpus:4;mem:2048;disk:1024;ports:[21950-21959]"
RUNNING = TaskState.TASK_RUNNING


def start_agent(master: Process, agent_dir: Path, port: int | None = None) -> Process:
    return agent_process(master.url, agent_dir, RESOURCES, port,
                         "--executor-reregistration-timeout", "2")


async def subscribed_executor(agent: Process, executor_id: str) -> dict | None:
    state = await get_json(agent.url + "/state")
    if not state["registered"]:
        return None
    return next((e for e in state["executors"]
                 if e["id"] == executor_id and e["phase"] == "subscribed"), None)


async def no_executors(agent: Process) -> bool:
    return not (await get_json(agent.url + "/state"))["executors"]


async def run_cluster(tmp_path: Path, stay_away: bool, body) -> None:
    master = master_process(tmp_path / "master", None, "--max-agent-ping-timeouts", "60")
    agent = start_agent(master, tmp_path / "agent")
    fw = RecordingFramework(master.url, failover_timeout=300)
    procs = [master, agent]
    try:
        await master.start()
        await agent.start()
        await fw.start()
        executor = raw_executor("keeper")
        if stay_away:
            assert executor.command is not None and executor.command.environment is not None
            executor.command.environment.variables.append(
                EnvironmentVariable(name="RAW_EXECUTOR_STAY_AWAY", value="1"))
        offer = await fw.offer()
        tasks = [executor_task(f"k{i}", offer.agent_id, executor) for i in range(5)]
        await fw.launch(offer, tasks)
        for task in tasks:
            await fw.wait_state(task.task_id.value, RUNNING)
        before = await wait_for(lambda: subscribed_executor(agent, "keeper"),
                                message="the executor to be subscribed")
        agent.kill9()
        agent = start_agent(master, tmp_path / "agent", agent.port)
        procs.append(agent)
        await agent.start(timeout=60)
        await body(fw, agent, before, offer)
        # leave nothing running: the teardown stops the executor
        await fw.driver.teardown()
        await wait_for(lambda: no_executors(agent), message="the agent to stop the executor")
    finally:
        await fw.stop()
        for proc in reversed(procs):
            await proc.stop()


async def test_executor_resubscribes_after_agent_kill9_and_keeps_its_tasks(tmp_path):
    async def body(fw, agent, before, offer) -> None:
        after = await wait_for(lambda: subscribed_executor(agent, "keeper"), timeout=30,
                               message="the executor to re-subscribe to the new agent")
        assert after["container_id"] == before["container_id"]
        assert after["tasks"] == [f"k{i}" for i in range(5)]
        # still the executor's: a kill reaches it, a message comes back
        await fw.driver.kill("k0", offer.agent_id.value)
        await fw.wait_state("k0", TaskState.TASK_KILLED)
        await fw.driver.message(offer.agent_id.value, "keeper", b"still there?")
        await wait_for(lambda: fw.sched.messages or None, message="the executor's echo")
        for i in range(5):
            assert fw.sched.states(f"k{i}")[:1] == [RUNNING]
            assert fw.sched.states(f"k{i}").count(RUNNING) == 1
        sandbox = Path(after["sandbox"])
        out = (sandbox / "stdout").read_text()
        assert out.count("started pid") == 1, out  # the very same executor process
        assert out.count("event SUBSCRIBED") == 2, out

    await run_cluster(tmp_path, False, body)


async def test_executor_that_does_not_resubscribe_is_killed_and_its_tasks_fail(tmp_path):
    async def body(fw, agent, before, offer) -> None:
        for i in range(5):
            status = await fw.wait_state(f"k{i}", TaskState.TASK_FAILED, timeout=30)
            assert status.reason == Reason.REASON_EXECUTOR_REREGISTRATION_TIMEOUT
        await wait_for(lambda: fw.sched.failures or None,
                       message="a FAILURE event for the executor that stayed away")
        state = await get_json(agent.url + "/state")
        assert state["executors"] == []

    await run_cluster(tmp_path, True, body)
