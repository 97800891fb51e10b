"""Agent restarts with docker tasks: ``kill -9`` of a real agent process, orphan
cleanup, and two agents sharing one engine."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import docker
import pytest

from mesoslite.agent.containerizers.docker_spec import (
    LABEL_CONTAINER_ID,
    LABEL_RUNTIME_ID,
    LABEL_TASK_ID,
)
from mesoslite.messages.mesos import TaskState
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import agent_process
from tests.docker.conftest import (
    DOCKER_RESOURCES_TEXT,
    IMAGE,
    launch_docker,
    runtime_id,
    task_container,
    unique_states,
)

pytestmark = pytest.mark.docker

# Waits for a file "go" in its sandbox, then exits 7; says "noted" once a file "note"
# appears (output written while the agent may be down).
WAIT_FOR_GO = (
    "S=/mnt/mesos/sandbox; echo started-$MESOS_TASK_ID; while [ ! -f $S/go ]; do "
    "if [ -f $S/note ] && [ ! -f $S/noted ]; then echo noted; touch $S/noted; fi; "
    "sleep 0.1; done; echo bye; exit 7")


def inspect(client, task_id: str, rid: str) -> dict:
    container = task_container(client, task_id, rid)
    assert container is not None, f"no container for {task_id}"
    return container.attrs


async def test_agent_kill9_reattaches_to_running_containers(
        docker_cluster_factory, framework_factory, docker_engine, tmp_path):
    # The master must not declare the agent unreachable while it is down (that is
    # another story, told by the process e2e tests): pings may go unanswered for 10 s.
    cluster = await docker_cluster_factory(agents=0, agent_ping_timeout=0.5,
                                           max_agent_ping_timeouts=20)
    agent_dir = cluster.spec.work_dir / "agent-process"
    agent = await agent_process(cluster.master_url, agent_dir, DOCKER_RESOURCES_TEXT, None,
                                "--containerizers", "docker,process").start()
    try:
        await _kill9_scenario(cluster, agent, agent_dir, framework_factory, docker_engine)
    finally:
        await agent.stop()


async def _kill9_scenario(cluster, agent, agent_dir, framework_factory, client) -> None:
    fw: RecordingFramework = await framework_factory(cluster.master_url)
    tasks = [f"t{i}" for i in range(5)]
    for task_id in tasks:
        await launch_docker(fw, task_id, WAIT_FOR_GO)
    boxes = {}
    for task_id in tasks:
        await fw.wait_state(task_id, TaskState.TASK_RUNNING, timeout=30)
        boxes[task_id] = agent_dir / "sandboxes" / fw.id / task_id
        out = boxes[task_id] / "stdout"
        await wait_for(lambda out=out: out.read_text() == f"started-{out.parent.name}\n")
    rid = runtime_id(agent_dir)
    before = {t: await asyncio.to_thread(inspect, client, t, rid) for t in tasks}

    agent.kill9()
    ended, running = tasks[:2], tasks[2:]
    for task_id in ended:  # these exit while no agent watches them
        (boxes[task_id] / "go").touch()
    for task_id in running:  # these write output while no agent copies it
        (boxes[task_id] / "note").touch()

    async def stopped(task_id: str) -> bool:
        attrs = await asyncio.to_thread(inspect, client, task_id, rid)
        return not attrs["State"]["Running"]

    for task_id in ended:
        await wait_for(lambda t=task_id: stopped(t), timeout=30)
    for task_id in running:
        await wait_for(lambda t=task_id: (boxes[t] / "noted").exists(), timeout=30)

    restarted = await agent_process(cluster.master_url, agent_dir, DOCKER_RESOURCES_TEXT,
                                    agent.port, "--containerizers", "docker,process").start()
    agent.proc = restarted.proc  # the caller's finally stops the new process
    for task_id in ended:
        status = await fw.wait_state(task_id, TaskState.TASK_FAILED, timeout=30)
        assert "status 7" in status.message
        assert (boxes[task_id] / "stdout").read_text() == f"started-{task_id}\nbye\n"
    for task_id in running:
        await wait_for(lambda t=task_id: (boxes[t] / "stdout").read_text().endswith("noted\n"))
        after = await asyncio.to_thread(inspect, client, task_id, rid)
        assert after["Id"] == before[task_id]["Id"]  # the same container ...
        assert after["State"]["Running"] and after["RestartCount"] == 0  # ... never restarted
        assert after["State"]["StartedAt"] == before[task_id]["State"]["StartedAt"]
        assert fw.sched.last(task_id).state == TaskState.TASK_RUNNING
        (boxes[task_id] / "go").touch()
    for task_id in running:
        status = await fw.wait_state(task_id, TaskState.TASK_FAILED, timeout=30)
        assert "status 7" in status.message
        # Every line exactly once: nothing lost, nothing copied twice across the restart.
        assert (boxes[task_id] / "stdout").read_text() == f"started-{task_id}\nnoted\nbye\n"
        assert unique_states(fw, task_id).count(TaskState.TASK_RUNNING) == 1
    for task_id in tasks:
        assert await asyncio.to_thread(task_container, client, task_id, rid) is None


def start_stray(client, rid: str, task_id: str):
    """A container labelled as if an agent with runtime id ``rid`` had launched it."""
    return client.containers.run(
        IMAGE, ["sleep", "300"], detach=True, name=f"mesoslite-test-{uuid.uuid4().hex[:12]}",
        labels={LABEL_RUNTIME_ID: rid, LABEL_CONTAINER_ID: str(uuid.uuid4()),
                LABEL_TASK_ID: task_id})


async def test_restart_removes_own_orphans_and_never_others(docker_cluster, framework,
                                                            docker_engine):
    agent = docker_cluster.agents[0]
    rid = runtime_id(agent.config.work_dir)
    await launch_docker(framework, "kept", "sleep 300")
    await framework.wait_state("kept", TaskState.TASK_RUNNING)
    kept = await asyncio.to_thread(inspect, docker_engine, "kept", rid)
    orphan = await asyncio.to_thread(start_stray, docker_engine, rid, "ghost")
    foreign = await asyncio.to_thread(start_stray, docker_engine, f"other-{uuid.uuid4().hex}",
                                      "foreign")
    try:
        await docker_cluster.stop_agent(0)  # tasks keep running
        await docker_cluster.start_agent(0)
        await docker_cluster.wait_registered()
        assert await asyncio.to_thread(task_container, docker_engine, "ghost") is None
        await asyncio.to_thread(foreign.reload)
        assert foreign.status == "running"  # another agent's: untouched
        after = await asyncio.to_thread(inspect, docker_engine, "kept", rid)
        assert after["Id"] == kept["Id"] and after["State"]["Running"]
        await framework.driver.kill("kept")
        await framework.wait_state("kept", TaskState.TASK_KILLED)
    finally:
        for stray in (orphan, foreign):
            await asyncio.to_thread(_remove_if_exists, stray)


def _remove_if_exists(container) -> None:
    with contextlib.suppress(docker.errors.NotFound):  # the orphan is expected to be gone
        container.remove(force=True)


async def test_two_agents_on_one_engine_leave_each_other_alone(docker_cluster_factory,
                                                                framework_factory,
                                                                docker_engine):
    cluster = await docker_cluster_factory(agents=2)
    fw = await framework_factory(cluster.master_url)
    first, second = cluster.agents
    rids = [runtime_id(a.config.work_dir) for a in cluster.agents]
    assert rids[0] != rids[1]
    await launch_docker(fw, "on-first", "sleep 300", agent_id=first.agent_id)
    await launch_docker(fw, "on-second", "sleep 300", agent_id=second.agent_id)
    for task_id in ("on-first", "on-second"):
        await fw.wait_state(task_id, TaskState.TASK_RUNNING)
    other = await asyncio.to_thread(inspect, docker_engine, "on-second", rids[1])

    # The first agent kills everything it runs, restarts and cleans up orphans ...
    await cluster.stop_agent(0, kill_tasks=True)
    await fw.wait_state("on-first", TaskState.TASK_KILLED)
    await cluster.start_agent(0)
    await cluster.wait_registered()
    await launch_docker(fw, "again-on-first", "true", agent_id=first.agent_id)
    await fw.wait_state("again-on-first", TaskState.TASK_FINISHED)

    # ... and the second agent's container is the same, still running, still its own.
    after = await asyncio.to_thread(inspect, docker_engine, "on-second", rids[1])
    assert after["Id"] == other["Id"] and after["State"]["Running"]
    assert after["RestartCount"] == 0
    assert fw.sched.last("on-second").state == TaskState.TASK_RUNNING
