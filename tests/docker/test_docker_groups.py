"""Task groups of DOCKER tasks through a real cluster and the real engine: one network
namespace (localhost, the owner's port mappings), one shared sandbox, all or none,
and shared fate (docs/containers.md, "Task groups")."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import pytest

from mesoslite.messages.mesos import (
    ID,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    DurationInfo,
    ExecutorInfo,
    ExecutorType,
    KillPolicy,
    PortMapping,
    Reason,
    TaskInfo,
    TaskState,
)
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_bytes
from mesoslite.testing.poll import wait_for
from tests.docker.conftest import IMAGE, runtime_id, task_container

pytestmark = pytest.mark.docker
S = TaskState
# Waits for a file "go" in the group's shared sandbox, then exits with $CODE.
WAIT_FOR_GO = "while [ ! -f /mnt/mesos/group/go ]; do sleep 0.05; done; exit $CODE"


@dataclass
class Member:
    task_id: str
    cmd: str
    image: str = IMAGE
    container_ports: Sequence[int] = field(default_factory=tuple)  # mapped from host ports


async def launch_group(fw: RecordingFramework, members: Sequence[Member],
                       network: DockerNetwork = DockerNetwork.BRIDGE) -> list[TaskInfo]:
    """Launch ``members`` as one group (executor "pod") into the next offer; kill
    grace periods are 0 (a ``sleep`` as pid 1 ignores SIGTERM)."""
    offer = await fw.offer()
    fw.sched.open_offers.pop(offer.id.value, None)
    free = offer_resources(offer).port_list()
    tasks = []
    for member in members:
        hosts, free = free[:len(member.container_ports)], free[len(member.container_ports):]
        mappings = [PortMapping(host_port=h, container_port=c)
                    for h, c in zip(hosts, member.container_ports, strict=True)]
        container = ContainerInfo(type=ContainerType.DOCKER, docker=DockerInfo(
            image=member.image, network=network, port_mappings=mappings))
        task = task_info(member.task_id, member.task_id, offer.agent_id, cmd=member.cmd,
                         ports=hosts, container=container)
        task.kill_policy = KillPolicy(grace_period=DurationInfo(nanoseconds=0))
        tasks.append(task)
    executor = ExecutorInfo(type=ExecutorType.DEFAULT, executor_id=ID("pod"))
    await fw.driver.launch_group([offer], executor, tasks)
    return tasks


async def container_gone(client, task_id: str, cluster) -> bool:
    rid = runtime_id(cluster.agents[0].config.work_dir)
    return await asyncio.to_thread(task_container, client, task_id, rid) is None


def group_sandbox(cluster, fw: RecordingFramework):
    return cluster.agents[0].config.work_dir / "sandboxes" / fw.id / "pod"


async def test_tasks_of_a_group_talk_over_localhost(docker_cluster, framework):
    serve = ("echo hello-neighbour > /mnt/mesos/group/hello; "
             "exec httpd -f -p 127.0.0.1:8080 -h /mnt/mesos/group")
    fetch = "until wget -q -O - http://127.0.0.1:8080/hello; do sleep 0.1; done"
    await launch_group(framework, [Member("server", serve), Member("client", fetch)])
    await framework.wait_state("client", S.TASK_FINISHED, timeout=30)
    own = group_sandbox(docker_cluster, framework) / "tasks" / "client"
    assert (own / "stdout").read_text() == "hello-neighbour\n"
    # A task that finishes leaves its group running.
    assert framework.sched.states("server") == [S.TASK_STARTING, S.TASK_RUNNING]


async def test_the_network_owner_maps_ports_for_the_group(docker_cluster, framework):
    # The second task serves; the owner's port mapping reaches it (one namespace).
    serve = "echo via-the-owner > /mnt/mesos/group/hello; exec httpd -f -p 80 -h /mnt/mesos/group"
    tasks = await launch_group(framework, [Member("owner", "sleep 300", container_ports=[80]),
                                           Member("web", serve)])
    await framework.wait_state("web", S.TASK_RUNNING, timeout=30)
    host_port = tasks[0].container.docker.port_mappings[0].host_port

    async def fetch() -> bytes | None:
        try:
            return await get_bytes(f"http://127.0.0.1:{host_port}/hello")
        except aiohttp.ClientError:
            return None

    assert await wait_for(fetch, timeout=20, message="the group's port") == b"via-the-owner\n"


async def test_one_task_writes_the_shared_sandbox_another_reads_it(docker_cluster, framework):
    write = "echo shared > /mnt/mesos/group/note; echo $MESOSLITE_GROUP_SANDBOX"
    read = "while [ ! -f /mnt/mesos/group/note ]; do sleep 0.05; done; cat /mnt/mesos/group/note"
    # The reader comes first: it holds the group's network, so it must outlive the
    # writer's start.
    await launch_group(framework, [Member("reader", read), Member("writer", write)],
                       network=DockerNetwork.NONE)
    for tid in ("writer", "reader"):
        await framework.wait_state(tid, S.TASK_FINISHED, timeout=30)
    box = group_sandbox(docker_cluster, framework)
    assert (box / "note").read_text() == "shared\n"
    assert (box / "tasks" / "reader" / "stdout").read_text() == "shared\n"
    assert (box / "tasks" / "writer" / "stdout").read_text() == "/mnt/mesos/group\n"


async def test_a_failing_task_takes_the_group_down(docker_cluster, framework):
    await launch_group(framework, [Member("sleeper", "sleep 300"),
                                   Member("job", "CODE=1; " + WAIT_FOR_GO)])
    for tid in ("sleeper", "job"):
        await framework.wait_state(tid, S.TASK_RUNNING, timeout=30)
    (group_sandbox(docker_cluster, framework) / "go").touch()
    assert "status 1" in (await framework.wait_state("job", S.TASK_FAILED)).message
    killed = await framework.wait_state("sleeper", S.TASK_KILLED)
    assert "task 'job' failed" in killed.message


async def test_killing_one_task_kills_the_group(docker_cluster, framework, docker_engine):
    await launch_group(framework, [Member("a", "sleep 300"), Member("b", "sleep 300")])
    for tid in ("a", "b"):
        await framework.wait_state(tid, S.TASK_RUNNING, timeout=30)
    await framework.driver.kill("b")
    await framework.wait_state("b", S.TASK_KILLED)
    assert "task 'b' was killed" in (await framework.wait_state("a", S.TASK_KILLED)).message
    for tid in ("a", "b"):
        await wait_for(lambda tid=tid: container_gone(docker_engine, tid, docker_cluster),
                       message=f"{tid}'s container to be removed")


@pytest.mark.parametrize("missing_first", [True, False], ids=["owner-missing", "joiner-missing"])
async def test_a_missing_image_means_no_task_of_the_group_runs(
        docker_cluster, framework, docker_engine, missing_first):
    members = [Member("ok", "sleep 300"),
               Member("noimage", "true", image="mesoslite/no-such-image:404")]
    await launch_group(framework, members[::-1] if missing_first else members)
    failed = await framework.wait_state("noimage", S.TASK_FAILED, timeout=30)
    assert failed.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    killed = await framework.wait_state("ok", S.TASK_KILLED, timeout=30)
    assert "task 'noimage' failed" in killed.message
    assert "mesoslite/no-such-image:404" in killed.message
    for tid in ("ok", "noimage"):
        assert S.TASK_RUNNING not in framework.sched.states(tid)
    await wait_for(lambda: container_gone(docker_engine, "ok", docker_cluster),
                   message="the container of 'ok' to be removed")
