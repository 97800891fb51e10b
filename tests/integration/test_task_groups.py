"""Task groups (LAUNCH_GROUP) with process tasks through a real master and agents:
all or none, fate sharing, KILL, the shared sandbox, what the master refuses, and an
agent ``kill -9`` (docs/containers.md, "Task groups")."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mesoslite.messages.mesos import (
    ID,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    ExecutorInfo,
    ExecutorType,
    Offer,
    PortMapping,
    Reason,
    SandboxPathSource,
    SandboxPathType,
    TaskInfo,
    TaskState,
    Volume,
    VolumeSource,
)
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_bytes, get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import agent_process

S = TaskState
# Waits for a file "go" in the group's shared sandbox, then exits with $CODE.
WAIT_FOR_GO = 'while [ ! -f "$MESOSLITE_GROUP_SANDBOX/go" ]; do sleep 0.05; done; exit $CODE'


def default_executor(executor_id: str = "pod") -> ExecutorInfo:
    return ExecutorInfo(type=ExecutorType.DEFAULT, executor_id=ID(executor_id))


async def launch_group(fw: RecordingFramework, tasks: Sequence[tuple[str, str]],
                       executor: ExecutorInfo | None = None,
                       shape: dict[str, dict] | None = None) -> Offer:
    """Launch ``(task id, shell command)`` pairs as one group into the next offer;
    ``shape`` adds ``task_info`` arguments per task id."""
    offer = await fw.offer()
    fw.sched.open_offers.pop(offer.id.value, None)
    infos = [task_info(tid, tid, offer.agent_id, cmd=cmd, **(shape or {}).get(tid, {}))
             for tid, cmd in tasks]
    await fw.driver.launch_group([offer], executor or default_executor(), infos)
    return offer


def agent_of(cluster, offer: Offer):
    return next(a for a in cluster.agents if a.agent_id == offer.agent_id.value)


def go(agent_dir, fw: RecordingFramework, executor_id: str = "pod") -> None:
    (agent_dir / "sandboxes" / fw.id / executor_id / "go").touch()


async def test_a_failing_task_kills_the_others_and_names_itself(cluster, framework):
    offer = await launch_group(framework, [("web", "sleep 60"), ("job", "CODE=3; " + WAIT_FOR_GO)])
    for tid in ("web", "job"):
        running = await framework.wait_state(tid, S.TASK_RUNNING)
        assert running.executor_id == ID("pod")
    agent = agent_of(cluster, offer)
    state = await get_json(f"http://127.0.0.1:{agent.config.port}/state")
    assert {t["id"]: t["executor_id"] for t in state["tasks"]} == {"web": "pod", "job": "pod"}

    go(agent.config.work_dir, framework)
    failed = await framework.wait_state("job", S.TASK_FAILED)
    assert "status 3" in failed.message
    killed = await framework.wait_state("web", S.TASK_KILLED)
    assert "task 'job' failed" in killed.message and "executor 'pod'" in killed.message
    assert framework.sched.states("web") == [S.TASK_STARTING, S.TASK_RUNNING, S.TASK_KILLED]


async def test_a_finished_task_leaves_the_others_running(cluster, framework):
    offer = await launch_group(framework, [("web", "sleep 60"), ("init", "CODE=0; " + WAIT_FOR_GO)])
    await framework.wait_state("web", S.TASK_RUNNING)
    agent = agent_of(cluster, offer)
    go(agent.config.work_dir, framework)
    await framework.wait_state("init", S.TASK_FINISHED)
    # Acknowledged and forgotten: the agent has done all it does about the FINISHED.
    await wait_for(lambda: (framework.id, "init") not in agent.tasks.tasks,
                   message="the agent to forget the finished task")
    web = agent.tasks.tasks[(framework.id, "web")]
    assert web.state == S.TASK_RUNNING and web.kill is None
    await framework.driver.kill("web")
    killed = await framework.wait_state("web", S.TASK_KILLED)
    assert "task group" not in killed.message  # its own kill, not its group's


async def test_killing_one_task_kills_the_whole_group(cluster, framework):
    await launch_group(framework, [("a", "sleep 60"), ("b", "sleep 60"), ("c", "sleep 60")])
    for tid in ("a", "b", "c"):
        await framework.wait_state(tid, S.TASK_RUNNING)
    await framework.driver.kill("b")
    assert "task group" not in (await framework.wait_state("b", S.TASK_KILLED)).message
    for tid in ("a", "c"):
        killed = await framework.wait_state(tid, S.TASK_KILLED)
        assert "task 'b' was killed" in killed.message


async def test_a_task_that_cannot_start_means_none_runs(cluster, framework):
    # A host path outside the agent's allow-list: the launch of "broken" fails.
    volume = ContainerInfo(type=ContainerType.MESOS,
                           volumes=[Volume(container_path="etc", host_path="/etc")])
    await launch_group(framework, [("ok", "sleep 60"), ("broken", "sleep 60")],
                       shape={"broken": {"container": volume}})
    failed = await framework.wait_state("broken", S.TASK_FAILED)
    assert failed.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    killed = await framework.wait_state("ok", S.TASK_KILLED)
    assert "task 'broken' failed" in killed.message
    for tid in ("ok", "broken"):
        assert S.TASK_RUNNING not in framework.sched.states(tid)


async def test_the_group_shares_a_sandbox_and_each_task_has_its_own(cluster, framework):
    writer = 'echo shared-data > "$MESOSLITE_GROUP_SANDBOX/note"; echo wrote'
    reader = ('while [ ! -f "$MESOSLITE_GROUP_SANDBOX/note" ]; do sleep 0.05; done; '
              'cat "$MESOSLITE_GROUP_SANDBOX/note"; echo "$MESOS_SANDBOX $MESOS_EXECUTOR_ID"')
    offer = await launch_group(framework, [("writer", writer), ("reader", reader)])
    for tid in ("writer", "reader"):
        await framework.wait_state(tid, S.TASK_FINISHED)
    agent = agent_of(cluster, offer)
    group_box = agent.config.work_dir / "sandboxes" / framework.id / "pod"
    own = group_box / "tasks" / "reader"
    assert (own / "stdout").read_text() == f"shared-data\n{own} pod\n"
    # Found where any task's sandbox is: the agent's HTTP API, `mesoslite logs`.
    url = f"http://127.0.0.1:{agent.config.port}/sandbox/{framework.id}/writer/stdout"
    assert await get_bytes(url) == b"wrote\n"


async def test_sandbox_path_volumes_parent_is_shared_self_is_own(cluster, framework):
    """SANDBOX_PATH PARENT: the same directory of the group's sandbox for every task
    that mounts it (a pod's ephemeral volume); SELF: a directory of the task's own."""
    def volumes(kind: str, path: str) -> dict:
        return {"container": ContainerInfo(type=ContainerType.MESOS, volumes=[Volume(
            container_path="vol", source=VolumeSource(type="SANDBOX_PATH", sandbox_path=(
                SandboxPathSource(type=SandboxPathType(kind), path=path))))])}

    writer = "echo shared > vol/note; echo mine > own/x"
    reader = "while [ ! -f vol/note ]; do sleep 0.05; done; cat vol/note"
    shape = {"writer": {**volumes("PARENT", "volumes/data")},
             "reader": {**volumes("PARENT", "volumes/data")}}
    shape["writer"]["container"].volumes.append(Volume(
        container_path="own", source=VolumeSource(type="SANDBOX_PATH", sandbox_path=(
            SandboxPathSource(type=SandboxPathType.SELF, path="mine")))))
    offer = await launch_group(framework, [("writer", writer), ("reader", reader)],
                               shape=shape)
    for tid in ("writer", "reader"):
        await framework.wait_state(tid, S.TASK_FINISHED)
    group_box = agent_of(cluster, offer).config.work_dir / "sandboxes" / framework.id / "pod"
    assert (group_box / "tasks" / "reader" / "stdout").read_text() == "shared\n"
    assert (group_box / "volumes" / "data" / "note").read_text() == "shared\n"
    assert (group_box / "tasks" / "writer" / "mine" / "x").read_text() == "mine\n"


def docker_task(tid: str, agent_id: ID, network: DockerNetwork, *,
                mappings: Sequence[PortMapping] = (), ports: Sequence[int] = ()) -> TaskInfo:
    container = ContainerInfo(type=ContainerType.DOCKER, docker=DockerInfo(
        image="mesoslite/busybox", network=network, port_mappings=list(mappings)))
    return task_info(tid, tid, agent_id, cmd="true", container=container, ports=ports)


async def test_the_master_refuses_what_the_default_executor_cannot_run(cluster, framework):
    offer = await framework.offer()
    port = offer_resources(offer).port_list()[0]
    owner = docker_task("d1", offer.agent_id, DockerNetwork.BRIDGE)
    mapped = docker_task("d2", offer.agent_id, DockerNetwork.BRIDGE,
                         mappings=[PortMapping(host_port=port, container_port=80)], ports=[port])
    host = docker_task("d3", offer.agent_id, DockerNetwork.HOST)
    plain = [task_info(t, t, offer.agent_id, cmd="true") for t in ("p1", "p2")]
    cases = [  # (executor, tasks, what the refusal names)
        (ExecutorInfo(type=ExecutorType.CUSTOM, executor_id=ID("e")), plain[:1],
         "'executor.type' must be DEFAULT"),
        (ExecutorInfo(type=ExecutorType.DEFAULT), plain[1:], "'executor.executor_id'"),
        (default_executor("p1"), plain[:1], "is also one of its task ids"),
        (default_executor(), [owner, mapped], "Task 'd2' 'container.docker.port_mappings'"),
        (default_executor(), [owner, host], "'container.docker.network' must be the same"),
    ]
    for executor, tasks, named in cases:
        framework.sched.open_offers.pop(offer.id.value, None)
        before = len(framework.sched.updates)
        await framework.driver.launch_group([offer], executor, tasks)
        for task in tasks:
            error = await framework.wait_state(task.task_id.value, S.TASK_ERROR)
            assert named in error.message and error.reason == Reason.REASON_TASK_GROUP_INVALID
        del framework.sched.updates[before:]  # the same task ids are refused again next
        offer = await framework.offer(offer.agent_id.value)


async def test_a_group_with_duplicate_task_ids_is_refused_whole(cluster, framework):
    offer = await framework.offer()
    framework.sched.open_offers.pop(offer.id.value, None)
    tasks = [task_info(t, t, offer.agent_id, cmd="sleep 60") for t in ("x", "dup", "dup")]
    await framework.driver.launch_group([offer], default_executor(), tasks)
    for tid in ("x", "dup"):
        error = await framework.wait_state(tid, S.TASK_ERROR)
        assert error.reason == Reason.REASON_TASK_GROUP_INVALID
        assert "duplicate ID: dup" in error.message
    agent = agent_of(cluster, offer)
    assert not agent.tasks.tasks  # nothing reached the agent


async def test_the_group_survives_an_agent_kill9(cluster_factory, framework_factory, tmp_path):
    # The master must not give up on the agent while it is down.
    cluster = await cluster_factory(agents=0, agent_ping_timeout=0.5, max_agent_ping_timeouts=20)
    agent_dir = tmp_path / "agent-process"
    resources = "cpus:2;mem:1024;disk:1024;ports:[31900-31999]"
    agent = await agent_process(cluster.master_url, agent_dir, resources).start()
    try:
        fw = await framework_factory(cluster.master_url)
        await launch_group(fw, [("web", "sleep 60"), ("job", "CODE=5; " + WAIT_FOR_GO)])
        for tid in ("web", "job"):
            await fw.wait_state(tid, S.TASK_RUNNING)
        agent.kill9()
        agent = await agent_process(cluster.master_url, agent_dir, resources,
                                    agent.port).start()
        # Re-attached, as one group still: the job's failure takes the web task down.
        go(agent_dir, fw)
        assert "status 5" in (await fw.wait_state("job", S.TASK_FAILED)).message
        killed = await fw.wait_state("web", S.TASK_KILLED)
        assert "task 'job' failed" in killed.message
        assert fw.sched.states("web").count(S.TASK_RUNNING) == 1
    finally:
        await agent.stop()


@pytest.mark.parametrize("down", ["fails", "finishes"])
async def test_what_a_task_did_while_the_agent_was_down_decides_its_group(
        cluster_factory, framework_factory, tmp_path, down):
    cluster = await cluster_factory(agents=0, agent_ping_timeout=0.5, max_agent_ping_timeouts=20)
    agent_dir = tmp_path / "agent-process"
    resources = "cpus:2;mem:1024;disk:1024;ports:[31900-31999]"
    agent = await agent_process(cluster.master_url, agent_dir, resources).start()
    code = 4 if down == "fails" else 0
    try:
        fw = await framework_factory(cluster.master_url)
        await launch_group(fw, [("web", "sleep 60"), ("job", f"CODE={code}; " + WAIT_FOR_GO)])
        for tid in ("web", "job"):
            await fw.wait_state(tid, S.TASK_RUNNING)
        agent.kill9()
        go(agent_dir, fw)  # the job ends while no agent watches it
        job_out = agent_dir / "sandboxes" / fw.id / "pod" / "tasks" / "job"
        await wait_for(lambda: any(job_out.glob(".mesoslite/*/exit_status.json")),
                       message="the job to exit while the agent is down")
        agent = await agent_process(cluster.master_url, agent_dir, resources,
                                    agent.port).start()
        if down == "fails":
            await fw.wait_state("job", S.TASK_FAILED)
            killed = await fw.wait_state("web", S.TASK_KILLED)
            assert "task 'job' failed" in killed.message
        else:
            await fw.wait_state("job", S.TASK_FINISHED)
            await fw.driver.kill("web")  # still running: only its own kill ends it
            killed = await fw.wait_state("web", S.TASK_KILLED)
            assert "task group" not in killed.message
    finally:
        await agent.stop()
