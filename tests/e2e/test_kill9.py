"""End to end with real ``mesoslite master`` and ``mesoslite agent`` processes:
``kill -9`` of the agent and of the master loses nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mesoslite.messages.mesos import Reason, TaskState
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import agent_process, master_process

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e]
RESOURCES = "cpus:2;mem:1024;disk:1024;ports:[31000-31099]"
# Prints its pid, then waits for a file named "go" in its sandbox and exits 7.
WAIT_FOR_GO = 'echo $$; while [ ! -f go ]; do sleep 0.05; done; exit 7'


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def processes(tmp_path):
    started = []
    yield started
    for process in reversed(started):
        await process.stop()


def sandbox(agent_dir: Path, framework_id: str, task_id: str) -> Path:
    return agent_dir / "sandboxes" / framework_id / task_id


async def task_pid(box: Path) -> int:
    text = await wait_for(lambda: (box / "stdout").exists() and (box / "stdout").read_text())
    return int(text.split()[0])


async def test_agent_kill9_keeps_tasks_and_reports_later_exits(tmp_path, processes):
    master = await master_process(tmp_path / "master").start()
    processes.append(master)
    agent_dir = tmp_path / "agent"
    agent = await agent_process(master.url, agent_dir, RESOURCES).start()
    processes.append(agent)
    fw = RecordingFramework(master.url)
    await fw.start()
    try:
        await fw.run_task("outlives", WAIT_FOR_GO)
        await fw.run_task("ends-while-down", WAIT_FOR_GO)
        for task_id in ("outlives", "ends-while-down"):
            await fw.wait_state(task_id, TaskState.TASK_RUNNING)
        box1 = sandbox(agent_dir, fw.id, "outlives")
        box2 = sandbox(agent_dir, fw.id, "ends-while-down")
        pid1, pid2 = await task_pid(box1), await task_pid(box2)

        agent.kill9()
        assert alive(pid1) and alive(pid2)  # tasks outlive their agent
        (box2 / "go").touch()  # this one exits while no agent watches it
        await wait_for(lambda: not alive(pid2))
        agent = await agent_process(master.url, agent_dir, RESOURCES, agent.port).start()
        processes.append(agent)

        status = await fw.wait_state("ends-while-down", TaskState.TASK_FAILED)
        assert "status 7" in status.message
        assert alive(pid1)  # re-attached, not restarted
        (box1 / "go").touch()
        status = await fw.wait_state("outlives", TaskState.TASK_FAILED)
        assert "status 7" in status.message
        assert fw.sched.states("outlives").count(TaskState.TASK_RUNNING) == 1
    finally:
        await fw.stop()


async def test_master_kill9_then_agents_and_frameworks_come_back(tmp_path, processes):
    master = await master_process(tmp_path / "master").start()
    processes.append(master)
    agent = await agent_process(master.url, tmp_path / "agent", RESOURCES).start()
    processes.append(agent)
    fw = RecordingFramework(master.url, failover_timeout=60)
    await fw.start()
    try:
        await fw.run_task("steady", "sleep 300")
        await fw.wait_state("steady", TaskState.TASK_RUNNING)
        master.kill9()
        master = await master_process(tmp_path / "master", master.port).start()
        processes.append(master)
        await wait_for(lambda: len(fw.sched.framework_ids) >= 2, timeout=20,
                       message="the framework to re-subscribe")
        assert fw.sched.framework_ids[-1] == fw.sched.framework_ids[0]

        async def agent_back():
            state = await get_json(master.url + "/master/state")
            return state["activated_slaves"] == 1

        await wait_for(agent_back, timeout=20)
        before = len(fw.sched.updates)
        await fw.driver.reconcile()
        # (the agent may also re-send an update whose ack died with the master)
        answer = await wait_for(lambda: next(
            (u for u in fw.sched.updates[before:] if u.task_id.value == "steady"
             and u.reason == Reason.REASON_RECONCILIATION), None))
        assert answer.state == TaskState.TASK_RUNNING
        await fw.run_task("after", "true")  # and the cluster still launches
        await fw.wait_state("after", TaskState.TASK_FINISHED)
        await fw.driver.kill("steady")
        await fw.wait_state("steady", TaskState.TASK_KILLED)
    finally:
        await fw.stop()
