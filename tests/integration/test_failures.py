"""Failures on a real cluster: an agent lost and back, framework failover within and
past its timeout, a master restart with reconciliation afterwards."""

from __future__ import annotations

import time

import pytest

from mesoslite.messages.mesos import Reason, TaskState
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio


def agent_index(cluster, agent_id: str) -> int:
    return next(i for i, a in enumerate(cluster.agents) if a.agent_id == agent_id)


async def test_lost_agent_goes_unreachable_and_its_task_comes_back(cluster, framework):
    await framework.run_task("survivor", "sleep 60")
    running = await framework.wait_state("survivor", TaskState.TASK_RUNNING)
    index = agent_index(cluster, running.agent_id.value)
    await cluster.stop_agent(index)  # the agent goes away; its task keeps running
    status = await framework.wait_state("survivor", TaskState.TASK_UNREACHABLE)
    assert status.reason == Reason.REASON_AGENT_REMOVED
    assert status.unreachable_time is not None
    state = await get_json(cluster.master_url + "/master/state")
    assert state["unreachable_slaves"] == 1
    await cluster.start_agent(index)  # same work dir: re-attaches to the task
    back = await wait_for(lambda: next(
        (u for u in framework.sched.updates if u.task_id.value == "survivor"
         and u.reason == Reason.REASON_AGENT_REREGISTERED), None))
    assert back.state == TaskState.TASK_RUNNING
    await framework.driver.kill("survivor")
    await framework.wait_state("survivor", TaskState.TASK_KILLED)


async def test_a_task_being_killed_when_its_agent_restarts_ends_with_a_later_kill(
        cluster, framework):
    # Says so on SIGTERM and carries on (its sleep dies of it, the loop goes on).
    await framework.run_task("stubborn", "trap 'echo got-TERM' TERM; while :; do sleep 0.05; done")
    running = await framework.wait_state("stubborn", TaskState.TASK_RUNNING)
    index = agent_index(cluster, running.agent_id.value)
    stdout = cluster.agents[index].cp.sandbox(framework.id, "stubborn") / "stdout"
    await framework.driver.kill("stubborn", grace_period=3600)
    await wait_for(lambda: b"got-TERM" in stdout.read_bytes(),
                   message="the task to get SIGTERM and carry on")
    await cluster.stop_agent(index)  # the grace timer goes with the agent; the task runs on
    agent = await cluster.start_agent(index)
    await wait_for(lambda: (framework.id, "stubborn") in agent.tasks.tasks,
                   message="the restarted agent to re-attach to the task")
    await cluster.wait_registered()
    await framework.driver.kill("stubborn", grace_period=0)
    status = await framework.wait_state("stubborn", TaskState.TASK_KILLED)
    assert status.message == "Task killed"


async def test_non_partition_aware_tasks_are_lost_and_killed_when_the_agent_returns(
        cluster, framework_factory):
    fw = await framework_factory(cluster.master_url, partition_aware=False)
    await fw.run_task("old-style", "sleep 60")
    running = await fw.wait_state("old-style", TaskState.TASK_RUNNING)
    index = agent_index(cluster, running.agent_id.value)
    await cluster.stop_agent(index)
    await fw.wait_state("old-style", TaskState.TASK_LOST)
    agent = await cluster.start_agent(index)
    # Mesos semantics: the framework was told LOST and may have replaced it
    await wait_for(lambda: not agent.tasks.tasks, message="the returning agent to kill it")
    assert TaskState.TASK_UNREACHABLE not in fw.sched.states("old-style")


async def test_framework_fails_over_within_its_timeout(cluster, framework_factory):
    first = await framework_factory(cluster.master_url, failover_timeout=60)
    await first.run_task("kept", "sleep 60")
    await first.wait_state("kept", TaskState.TASK_RUNNING)
    framework_id = first.id
    await first.stop()
    state = await get_json(cluster.master_url + "/master/state")
    [fw] = state["frameworks"]
    assert fw["id"] == framework_id and not fw["connected"]
    second = await framework_factory(cluster.master_url, failover_timeout=60,
                                     framework_id=framework_id)
    assert second.id == framework_id
    await second.driver.reconcile()
    status = await second.wait_state("kept", TaskState.TASK_RUNNING)
    assert status.reason == Reason.REASON_RECONCILIATION


async def test_framework_past_its_failover_timeout_is_removed_and_its_tasks_killed(
        cluster, framework_factory):
    first = await framework_factory(cluster.master_url, failover_timeout=0.3)
    await first.run_task("doomed", "sleep 60")
    running = await first.wait_state("doomed", TaskState.TASK_RUNNING)
    agent = cluster.agents[agent_index(cluster, running.agent_id.value)]
    framework_id = first.id
    await first.stop()
    await wait_for(lambda: not agent.tasks.tasks, message="the task to be killed")

    async def removed():
        state = await get_json(cluster.master_url + "/master/state")
        return framework_id in [f["id"] for f in state["completed_frameworks"]]

    await wait_for(removed)
    again = RecordingFramework(cluster.master_url, framework_id=framework_id)
    with pytest.raises(Exception, match="removed"):
        await again.start()


async def test_master_restart_keeps_tasks_and_frameworks(cluster, framework_factory):
    fw = await framework_factory(cluster.master_url, failover_timeout=60)
    await fw.run_task("through-restart", "sleep 60")
    await fw.wait_state("through-restart", TaskState.TASK_RUNNING)
    old_master = cluster.master.state.master_id
    await cluster.stop_master()
    await cluster.start_master()
    assert cluster.master.state.master_id != old_master
    # agents re-register and the framework re-subscribes by themselves
    await wait_for(lambda: len(fw.sched.framework_ids) >= 2, message="re-subscription")
    assert fw.sched.framework_ids[-1] == fw.sched.framework_ids[0]
    await wait_for(lambda: all(a.registered.is_set() for a in cluster.agents))
    before = len(fw.sched.updates)
    await fw.driver.reconcile()
    await wait_for(lambda: any(u.task_id.value == "through-restart"
                               and u.state == TaskState.TASK_RUNNING
                               for u in fw.sched.updates[before:]))
    state = await get_json(cluster.master_url + "/master/state")
    assert state["epoch"] == 2
    [framework] = state["frameworks"]
    assert [t["id"] for t in framework["tasks"]] == ["through-restart"]


async def test_a_stalled_event_loop_is_not_mistaken_for_lost_agents(cluster, framework):
    """A master that could not listen (a GC pause, a blocking call, a starved CPU)
    must not declare its agents unreachable, nor agents drop its link, on waking."""
    await framework.run_task("steady", "sleep 60")
    await framework.wait_state("steady", TaskState.TASK_RUNNING)
    master = cluster.master
    links_before = {a.agent_id: master.state.agents[a.agent_id].connection
                    for a in cluster.agents}
    # Stall the loop shared by master and agents: five times the 0.6 s limit.
    time.sleep(3.0)  # noqa: ASYNC251 - the fault being injected, not a wait
    pings = master._ping_seq
    await wait_for(lambda: master._ping_seq >= pings + 5, 10,
                   message="five more ping rounds after the stall")
    assert TaskState.TASK_UNREACHABLE not in framework.sched.states("steady")
    state = await get_json(cluster.master_url + "/master/state")
    assert state["unreachable_slaves"] == 0
    assert {a.agent_id: master.state.agents[a.agent_id].connection
            for a in cluster.agents} == links_before  # no agent had to reconnect
