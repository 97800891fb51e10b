"""A custom executor in a Docker container (``ExecutorInfo.container``) on the real
engine: its program is fetched into its sandbox (``executor.command.uris``), it
reaches the agent's executor API from the container (host networking) and runs the
tasks it is handed; its container's limits follow its tasks; a SHUTDOWN makes it
leave and its container goes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    CommandURI,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    ExecutorInfo,
    TaskInfo,
    TaskState,
)
from mesoslite.resources import Resources
from mesoslite.scheduler.helpers import resource_list
from mesoslite.testing.poll import wait_for
from tests.docker.conftest import IMAGE

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]
SCRIPT = Path(__file__).resolve().parents[1] / "executors" / "sh_executor.sh"


def docker_executor() -> ExecutorInfo:
    return ExecutorInfo(
        executor_id=ID("in-docker"), name="shell executor in Docker",
        command=CommandInfo(value="exec sh /mnt/mesos/sandbox/sh_executor.sh", uris=[
            CommandURI(value=f"file://{SCRIPT}", executable=True)]),
        container=ContainerInfo(type=ContainerType.DOCKER, docker=DockerInfo(
            image=IMAGE, network=DockerNetwork.HOST)),
        resources=resource_list(Resources.of(cpus=0.1, mem=32.0)))


async def test_an_executor_in_a_docker_container_runs_its_tasks(docker_cluster, framework,
                                                                docker_engine):
    offer = await framework.offer()
    executor = docker_executor()
    tasks = [TaskInfo(name=f"d{i}", task_id=ID(f"d{i}"), agent_id=offer.agent_id,
                      resources=resource_list(Resources.of(cpus=0.1, mem=16.0)),
                      executor=executor, data=f"result-{i}".encode()) for i in range(3)]
    await framework.launch(offer, tasks)
    for i in range(3):
        status = await framework.wait_state(f"d{i}", TaskState.TASK_FINISHED, timeout=60)
        assert status.data == f"result-{i}".encode()
        assert status.executor_id == ID("in-docker")
    agent = next(a for a in docker_cluster.agents if a.agent_id == offer.agent_id.value)
    [run] = agent.executors.runs.values()
    assert run.cp.containerizer == "docker"
    out = (Path(run.sandbox_path) / "stdout")
    assert "event SUBSCRIBED" in out.read_text()
    docker_id = run.container.record["docker_id"]  # type: ignore[union-attr]

    def memory_mb() -> float:
        host = docker_engine.api.inspect_container(docker_id)["HostConfig"]
        return host["Memory"] / 2**20

    # the tasks ended: the container is back to the executor's own 32 MB
    assert await asyncio.to_thread(memory_mb) == 32
    # two tasks that stay RUNNING grow it by theirs (16 MB each), as in Mesos
    await framework.launch(await framework.offer(agent_id=offer.agent_id.value), [
        TaskInfo(name=f"r{i}", task_id=ID(f"r{i}"), agent_id=offer.agent_id,
                 resources=resource_list(Resources.of(cpus=0.1, mem=16.0)),
                 executor=executor, data=b"run") for i in range(2)])
    for i in range(2):
        await framework.wait_state(f"r{i}", TaskState.TASK_RUNNING, timeout=60)
    assert await asyncio.to_thread(memory_mb) == 32 + 2 * 16
    await framework.driver.shutdown("in-docker", offer.agent_id.value)
    await wait_for(lambda: framework.sched.failures or None, timeout=60,
                   message="the executor's container to end after SHUTDOWN")
    for i in range(2):
        await framework.wait_state(f"r{i}", TaskState.TASK_KILLED, timeout=60)

    def gone() -> bool:
        return not docker_engine.containers.list(filters={"id": docker_id})

    await wait_for(lambda: asyncio.to_thread(gone), timeout=60,
                   message="the executor's container to be gone")
