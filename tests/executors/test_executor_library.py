"""``mesoslite.executor`` against real agents (docs/executors.md): tasks, messages both
ways, a crash, SHUTDOWN, and an agent ``kill -9``d under it (the executor
re-subscribes with what is unacknowledged and keeps its tasks)."""

from __future__ import annotations

import sys
from pathlib import Path

from mesoslite.messages.mesos import ID, Reason, TaskState
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import agent_process, master_process
from tests.executors.test_custom_executor import executor_task, raw_executor
from tests.executors.test_executor_recovery import RESOURCES, no_executors, subscribed_executor

PROGRAM = f"exec {sys.executable} -m tests.executors.lib_executor"
RUNNING = TaskState.TASK_RUNNING


async def test_library_executor_runs_tasks_answers_messages_and_leaves_on_shutdown(
        cluster, framework):
    offer = await framework.offer()
    executor = raw_executor("lib", program=PROGRAM)
    tasks = [executor_task(f"l{i}", offer.agent_id, executor, "finish" if i < 3 else "run")
             for i in range(4)]
    tasks.append(executor_task("boom", offer.agent_id, raw_executor("crasher", PROGRAM),
                               "crash"))
    await framework.launch(offer, tasks)
    for i in range(3):
        status = await framework.wait_state(f"l{i}", TaskState.TASK_FINISHED)
        assert status.data == b"finish" and status.executor_id == ID("lib")
        assert framework.sched.states(f"l{i}") == [RUNNING, TaskState.TASK_FINISHED]
    await framework.wait_state("l3", RUNNING)
    await framework.driver.message(offer.agent_id.value, "lib", b"hello")
    got = await wait_for(lambda: framework.sched.messages or None,
                         message="the executor's answer to a framework message")
    assert got == [(offer.agent_id.value, "lib", b"echo:hello")]
    crashed = await framework.wait_state("boom", TaskState.TASK_FAILED)
    assert crashed.reason == Reason.REASON_EXECUTOR_TERMINATED
    await framework.driver.shutdown("lib", offer.agent_id.value)
    killed = await framework.wait_state("l3", TaskState.TASK_KILLED)
    assert killed.reason == Reason.REASON_EXECUTOR_TERMINATED
    failures = await wait_for(lambda: len(framework.sched.failures) == 2
                              and framework.sched.failures,
                              message="FAILURE events for both executors")
    assert sorted(failures) == [(offer.agent_id.value, "crasher", 3 << 8),
                                (offer.agent_id.value, "lib", 0)]  # it left on SHUTDOWN


async def test_library_executor_resubscribes_after_agent_kill9_and_keeps_its_tasks(tmp_path):
    master = master_process(tmp_path / "master", None, "--max-agent-ping-timeouts", "60")
    agent = agent_process(master.url, tmp_path / "agent", RESOURCES)
    fw = RecordingFramework(master.url, failover_timeout=300)
    procs = [master, agent]
    try:
        await master.start()
        await agent.start()
        await fw.start()
        offer = await fw.offer()
        executor = raw_executor("keeper", program=PROGRAM)
        tasks = [executor_task(f"k{i}", offer.agent_id, executor) for i in range(3)]
        await fw.launch(offer, tasks)
        for task in tasks:
            await fw.wait_state(task.task_id.value, RUNNING)
        before = await wait_for(lambda: subscribed_executor(agent, "keeper"),
                                message="the executor to be subscribed")
        agent.kill9()
        agent = agent_process(master.url, tmp_path / "agent", RESOURCES, agent.port)
        procs.append(agent)
        await agent.start(timeout=60)
        after = await wait_for(lambda: subscribed_executor(agent, "keeper"), timeout=30,
                               message="the executor to re-subscribe to the new agent")
        assert after["container_id"] == before["container_id"]
        assert after["tasks"] == ["k0", "k1", "k2"]
        await fw.driver.kill("k0", offer.agent_id.value)
        await fw.wait_state("k0", TaskState.TASK_KILLED)
        for i in range(3):
            assert fw.sched.states(f"k{i}").count(RUNNING) == 1
        out = (Path(after["sandbox"]) / "stdout").read_text()
        assert out.count("started pid") == 1, out  # the very same executor process
        assert out.count("event SUBSCRIBED") == 2 and "disconnected" in out, out
        await fw.driver.teardown()
        await wait_for(lambda: no_executors(agent), message="the agent to stop the executor")
        state = await get_json(agent.url + "/state")
        assert state["executors"] == []
    finally:
        await fw.stop()
        for proc in reversed(procs):
            await proc.stop()
