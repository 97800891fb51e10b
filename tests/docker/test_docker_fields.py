"""TaskInfo fields through the Docker engine: a MESOS container with an image runs
that image, and ``limits`` above the request reach the container's HostConfig."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from mesoslite.messages.mesos import ContainerInfo, TaskState
from mesoslite.scheduler import task_info
from mesoslite.testing.poll import wait_for
from tests.docker.conftest import IMAGE, launch_docker, task_container

pytestmark = pytest.mark.docker


async def test_a_mesos_container_with_an_image_runs_it_through_docker(
        docker_cluster, framework, docker_engine):
    offer = await framework.offer()
    task = task_info("imaged", "imaged", offer.agent_id,
                     cmd="busybox | head -1 > $MESOS_SANDBOX/seen; exec sleep 300")
    task.container = msgspec.convert(  # the JSON a Mesos client sends
        {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {"name": IMAGE}}}},
        ContainerInfo)
    await framework.launch(offer, [task], refuse_seconds=0)
    await framework.wait_state("imaged", TaskState.TASK_RUNNING)
    container = await asyncio.to_thread(task_container, docker_engine, "imaged")
    assert container is not None and container.attrs["Config"]["Image"] == IMAGE
    seen = docker_cluster.agents[0].cp.sandbox(framework.id, "imaged") / "seen"
    text = await wait_for(lambda: seen.exists() and seen.read_text(),
                          message="the task's output from inside the image")
    assert text.startswith("BusyBox")  # the image's own /bin/busybox, not the host's sh


async def test_limits_above_the_request_are_in_the_host_config(docker_cluster, framework,
                                                              docker_engine):
    task = await launch_docker(framework, "roomy", "sleep 300", cpus=0.1, mem=32,
                               limits={"cpus": 1.0, "mem": 128})
    await framework.wait_state("roomy", TaskState.TASK_RUNNING)
    host = (await asyncio.to_thread(task_container, docker_engine, "roomy")).attrs["HostConfig"]
    assert host["CpuQuota"] == 100_000 and host["CpuPeriod"] == 100_000  # the limit
    assert host["CpuShares"] == round(0.1 * 1024)  # the request
    assert host["Memory"] == 128 * 2**20 and host["MemoryReservation"] == 32 * 2**20
    assert task.limits["mem"].value == 128


async def test_an_infinite_memory_limit_sets_none(docker_cluster, framework, docker_engine):
    await launch_docker(framework, "boundless", "sleep 300", cpus=0.1, mem=32,
                        limits={"mem": "Infinity"})
    await framework.wait_state("boundless", TaskState.TASK_RUNNING)
    host = (await asyncio.to_thread(task_container, docker_engine, "boundless")
            ).attrs["HostConfig"]
    assert host["Memory"] == 0 and host["MemoryReservation"] == 32 * 2**20
    assert host["CpuQuota"] == 10_000  # no cpu limit: the request is the quota

