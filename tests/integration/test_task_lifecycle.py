"""Tasks through a real master and real agents: launch, finish, fail, kill,
reconcile, teardown, retries of unacknowledged updates."""

from __future__ import annotations

import pytest

from mesoslite.messages.mesos import ID, CapabilityType, ExecutorInfo, Reason, TaskState
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.testing.http import get_bytes, get_json
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio
# Says so on SIGTERM and carries on (its sleep dies of it, the loop goes on).
IGNORES_SIGTERM = "trap 'echo got-TERM' TERM; while :; do sleep 0.05; done"


async def master_state(cluster) -> dict:
    return await get_json(cluster.master_url + "/master/state")


async def sandbox_file(cluster, framework_id: str, task_id: str, name: str) -> bytes:
    agent = next(a for a in cluster.agents
                 if (framework_id, task_id) in a.tasks.tasks
                 or (a.cp.sandbox(framework_id, task_id) / name).exists())
    url = f"http://127.0.0.1:{agent.config.port}/sandbox/{framework_id}/{task_id}/{name}"
    return await get_bytes(url)


async def test_task_runs_to_completion_and_its_output_is_readable(cluster, framework):
    await framework.run_task("t1", "echo hello from $MESOS_TASK_ID; echo oops >&2")
    final = await framework.wait_state("t1", TaskState.TASK_FINISHED)
    assert framework.sched.states("t1") == [
        TaskState.TASK_STARTING, TaskState.TASK_RUNNING, TaskState.TASK_FINISHED]
    assert final.agent_id is not None and final.uuid is not None
    assert await sandbox_file(cluster, framework.id, "t1", "stdout") == b"hello from t1\n"
    assert await sandbox_file(cluster, framework.id, "t1", "stderr") == b"oops\n"
    # acknowledged: the master retires it into completed_tasks
    async def completed():
        state = await master_state(cluster)
        fw = next(f for f in state["frameworks"] if f["id"] == framework.id)
        return [t for t in fw["completed_tasks"] if t["id"] == "t1"]
    [task] = await wait_for(completed)
    assert task["state"] == "TASK_FINISHED"
    assert [s["state"] for s in task["statuses"]] == [
        "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]


async def test_failing_task_reports_its_exit_code(cluster, framework):
    await framework.run_task("bad", "exit 3")
    status = await framework.wait_state("bad", TaskState.TASK_FAILED)
    assert "status 3" in (status.message or "")
    assert status.reason == Reason.REASON_COMMAND_EXECUTOR_FAILED


async def test_task_gets_its_ports_and_ids_in_the_environment(cluster, framework):
    offer = await framework.run_task("env", 'echo "$PORT0 $PORTS $MESOS_FRAMEWORK_ID"', ports=2)
    await framework.wait_state("env", TaskState.TASK_FINISHED)
    out = (await sandbox_file(cluster, framework.id, "env", "stdout")).decode().split()
    first = offer_resources(offer).port_list()[0]
    assert out == [str(first), f"{first},{first + 1}", framework.id]


async def test_kill_stops_a_running_task(cluster, framework):
    await framework.run_task("sleeper", "sleep 60")
    running = await framework.wait_state("sleeper", TaskState.TASK_RUNNING)
    await framework.driver.kill("sleeper", running.agent_id.value)
    status = await framework.wait_state("sleeper", TaskState.TASK_KILLED)
    assert status.source is not None
    agent = next(a for a in cluster.agents if a.agent_id == running.agent_id.value)
    await wait_for(lambda: (framework.id, "sleeper") not in agent.tasks.tasks,
                   message="the agent to forget the killed task")


async def test_a_later_kill_with_a_shorter_grace_period_ends_a_task_ignoring_sigterm(
        cluster, framework_factory):
    fw = await framework_factory(cluster.master_url,
                                 extra_capabilities=[CapabilityType.TASK_KILLING_STATE])
    await fw.run_task("stubborn", IGNORES_SIGTERM)
    running = await fw.wait_state("stubborn", TaskState.TASK_RUNNING)
    await fw.driver.kill("stubborn", running.agent_id.value, grace_period=3600)
    await fw.wait_state("stubborn", TaskState.TASK_KILLING)

    async def got_term() -> bool:
        return b"got-TERM" in await sandbox_file(cluster, fw.id, "stubborn", "stdout")

    await wait_for(got_term, message="the task to get SIGTERM and carry on")
    await fw.driver.kill("stubborn", running.agent_id.value, grace_period=0)
    status = await fw.wait_state("stubborn", TaskState.TASK_KILLED)  # not an hour later
    assert status.message == "Task killed"
    assert fw.sched.states("stubborn") == [
        TaskState.TASK_STARTING, TaskState.TASK_RUNNING, TaskState.TASK_KILLING,
        TaskState.TASK_KILLED]


async def test_kill_of_an_unknown_task_answers_by_reconciliation(cluster, framework):
    await framework.driver.kill("never-launched")
    status = await framework.wait_state("never-launched", TaskState.TASK_UNKNOWN)
    assert status.reason == Reason.REASON_RECONCILIATION


async def test_reconciliation_explicit_and_implicit(cluster, framework):
    await framework.run_task("r1", "sleep 60")
    running = await framework.wait_state("r1", TaskState.TASK_RUNNING)
    agent_id = running.agent_id.value
    before = len(framework.sched.updates)
    await framework.driver.reconcile([("r1", agent_id), ("ghost", agent_id), ("nowhere", None)])
    await wait_for(lambda: len(framework.sched.updates) >= before + 3)
    answers = {u.task_id.value: u for u in framework.sched.updates[before:]}
    assert answers["r1"].state == TaskState.TASK_RUNNING
    assert answers["r1"].reason == Reason.REASON_RECONCILIATION
    assert answers["r1"].uuid is None  # reconciliation answers are not acknowledged
    assert answers["ghost"].state == TaskState.TASK_GONE
    assert answers["nowhere"].state == TaskState.TASK_UNKNOWN
    before = len(framework.sched.updates)
    await framework.driver.reconcile()
    await wait_for(lambda: len(framework.sched.updates) > before)
    assert [u.task_id.value for u in framework.sched.updates[before:]] == ["r1"]


async def test_non_partition_aware_framework_is_told_lost(cluster, framework_factory):
    fw = await framework_factory(cluster.master_url, partition_aware=False)
    await fw.driver.reconcile([("ghost", None)])
    status = await fw.wait_state("ghost", TaskState.TASK_LOST)
    assert status.reason == Reason.REASON_RECONCILIATION


async def test_several_tasks_in_one_offer_and_a_launch_group(cluster, framework):
    offer = await framework.offer()
    tasks = [task_info(f"m{i}", f"m{i}", offer.agent_id, cmd="true") for i in range(3)]
    await framework.launch(offer, tasks)
    for i in range(3):
        await framework.wait_state(f"m{i}", TaskState.TASK_FINISHED)
    offer = await framework.offer()
    group = [task_info(f"g{i}", f"g{i}", offer.agent_id, cmd="true") for i in range(2)]
    framework.sched.open_offers.pop(offer.id.value, None)
    await framework.driver.launch_group(
        [offer], ExecutorInfo(type="DEFAULT", executor_id=ID("g")), group)
    for i in range(2):
        await framework.wait_state(f"g{i}", TaskState.TASK_FINISHED)


async def test_unacknowledged_updates_are_resent_until_acknowledged(cluster, framework_factory):
    fw = await framework_factory(cluster.master_url, implicit_acks=False)
    await fw.run_task("noack", "sleep 60")
    await wait_for(lambda: [u.state for u in fw.sched.updates].count(TaskState.TASK_STARTING) >= 2,
                   message="TASK_STARTING to be sent again while unacknowledged")
    first, again = [u for u in fw.sched.updates if u.state == TaskState.TASK_STARTING][:2]
    assert first.uuid == again.uuid  # the same update, retried
    await fw.driver.acknowledge(first.agent_id.value, "noack", first.uuid)
    running = await fw.wait_state("noack", TaskState.TASK_RUNNING)
    await fw.driver.acknowledge(running.agent_id.value, "noack", running.uuid)
    agent = next(a for a in cluster.agents if a.agent_id == running.agent_id.value)
    await wait_for(lambda: agent.updates.unacknowledged() == 0)


async def test_teardown_kills_the_frameworks_tasks(cluster, framework):
    await framework.run_task("td", "sleep 60")
    running = await framework.wait_state("td", TaskState.TASK_RUNNING)
    agent = next(a for a in cluster.agents if a.agent_id == running.agent_id.value)
    await framework.driver.teardown()
    await wait_for(lambda: not agent.tasks.tasks, message="the agent to kill and drop the task")
    state = await master_state(cluster)
    assert framework.id in [f["id"] for f in state["completed_frameworks"]]
    assert state["frameworks"] == []
