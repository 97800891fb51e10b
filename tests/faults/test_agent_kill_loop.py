"""``kill -9`` of a real agent ten times in a row while it runs 20 Docker containers.

A ``mesoslite master`` process, a ``mesoslite agent`` process with the Docker
containerizer on the real engine, and a framework (in the test) that launches 20
busybox containers in one ACCEPT.  The agent is then killed with SIGKILL and started
again on the same work directory, ten times, each time once it has recovered from the
previous kill (registered again, all 20 tasks RUNNING in its own state).  At the end:

* 0 container restarts: each task still has the very container it started in (same
  Docker id, same start time, restart count 0, same mesoslite container id) and no
  other container of this agent exists;
* every task is RUNNING on the agent and on the master, and the framework saw each
  one reach RUNNING exactly once, with no other state;
* the re-attached agent still controls its containers: killing the tasks works.

Prints the recovery time of each restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID
from mesoslite.messages.mesos import (
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    DurationInfo,
    KillPolicy,
    TaskState,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import Process, agent_process, master_process
from tests.docker.conftest import (
    IMAGE,
    docker_engine,
    remove_runtime_containers,
    runtime_id,
    task_container,
    unique_states,
)

__all__ = ["docker_engine"]  # the session fixture, shared with tests/docker
pytestmark = [pytest.mark.faults, pytest.mark.docker]

CONTAINERS, KILLS = 20, 10
# A port range of its own, away from the other suites'.
RESOURCES = "cpus:4;mem:2048;disk:1024;ports:[21900-21949]"
RUNNING = TaskState.TASK_RUNNING


def container_facts(client: docker.DockerClient, task_ids: list[str], rid: str
                    ) -> dict[str, tuple[str, str, int, bool]]:
    """task id -> (Docker id, start time, restart count, running) of its container."""
    facts = {}
    for task_id in task_ids:
        container = task_container(client, task_id, rid)
        assert container is not None, f"no container for {task_id}"
        state = container.attrs["State"]
        facts[task_id] = (container.id, state["StartedAt"], container.attrs["RestartCount"],
                          state["Running"])
    return facts


def agent_containers(client: docker.DockerClient, rid: str) -> int:
    return len(client.containers.list(all=True, filters={"label": f"{LABEL_RUNTIME_ID}={rid}"}))


async def recovered(agent: Process, task_ids: set[str]) -> dict[str, Any] | None:
    """The agent's /state once it is registered and holds every task RUNNING."""
    state = await get_json(agent.url + "/state")
    running = {t["id"] for t in state["tasks"] if t["state"] == RUNNING.value}
    return state if state["registered"] and running == task_ids else None


def start_agent(master: Process, agent_dir: Path, port: int | None = None) -> Process:
    return agent_process(master.url, agent_dir, RESOURCES, port,
                         "--containerizers", "docker,process")


async def test_agent_kill9_ten_times_with_20_containers(tmp_path, docker_engine):
    # While the agent is down its pings go unanswered: the master must not give up
    # on it within a restart (that is the partition suite's story), so allow 60 s.
    master = master_process(tmp_path / "master", None, "--max-agent-ping-timeouts", "60")
    agent_dir = tmp_path / "agent"
    agent = start_agent(master, agent_dir)
    fw = RecordingFramework(master.url, failover_timeout=300)
    procs = [master]
    try:
        await master.start()
        procs.append(await agent.start())
        await fw.start()
        task_ids = [f"c{i:02d}" for i in range(CONTAINERS)]
        need = Resources.of(cpus=0.1 * CONTAINERS, mem=32.0 * CONTAINERS)
        offer = await wait_for(lambda: next((o for o in fw.sched.open_offers.values()
                                             if need <= offer_resources(o)), None),
                               message="an offer for 20 containers")
        container = ContainerInfo(type=ContainerType.DOCKER, docker=DockerInfo(
            image=IMAGE, network=DockerNetwork.NONE))
        tasks = [task_info(t, t, offer.agent_id, cmd="sleep 3600", cpus=0.1, mem=32,
                           container=container) for t in task_ids]
        for task in tasks:  # busybox sleep as pid 1 ignores SIGTERM: no grace at the end
            task.kill_policy = KillPolicy(grace_period=DurationInfo(nanoseconds=0))
        launched = time.monotonic()
        await fw.launch(offer, tasks, refuse_seconds=3600)
        for task_id in task_ids:
            await fw.wait_state(task_id, RUNNING, timeout=120)
        launch_seconds = time.monotonic() - launched
        rid = runtime_id(agent_dir)
        before_state = await wait_for(lambda: recovered(agent, set(task_ids)),
                                      message="the agent's own state: 20 tasks RUNNING")
        before_ids = {t["id"]: t["container_id"] for t in before_state["tasks"]}
        before = await asyncio.to_thread(container_facts, docker_engine, task_ids, rid)

        recoveries = []
        for _ in range(KILLS):
            agent.kill9()
            killed = time.monotonic()
            agent = start_agent(master, agent_dir, agent.port)
            procs.append(await agent.start(timeout=60))
            state = await wait_for(lambda a=agent: recovered(a, set(task_ids)), timeout=60,
                                   message="the agent to recover its 20 tasks")
            recoveries.append(time.monotonic() - killed)
            assert {t["id"]: t["container_id"] for t in state["tasks"]} == before_ids

        after = await asyncio.to_thread(container_facts, docker_engine, task_ids, rid)
        count = await asyncio.to_thread(agent_containers, docker_engine, rid)
        master_state = await get_json(master.url + "/master/state")
        on_master = {t["id"]: t["state"] for f in master_state["frameworks"]
                     for t in f["tasks"]}
        restarts = sum(1 for t in task_ids if after[t][:3] != before[t][:3])
        seen = {t: unique_states(fw, t) for t in task_ids}
        print(f"\nagent kill -9 x{KILLS} with {CONTAINERS} Docker containers: launched in"
              f" {launch_seconds:.2f} s; recovered (registered, all RUNNING) after each kill in"
              f" {', '.join(f'{s:.2f}' for s in recoveries)} s (mean"
              f" {sum(recoveries) / len(recoveries):.2f} s); container restarts {restarts},"
              f" containers {count}, tasks RUNNING on the master"
              f" {sum(1 for s in on_master.values() if s == RUNNING.value)}/{CONTAINERS}")
        assert restarts == 0, {t: (before[t], after[t]) for t in task_ids if before[t] != after[t]}
        assert all(after[t][3] for t in task_ids)
        assert count == CONTAINERS
        assert on_master == dict.fromkeys(task_ids, RUNNING.value)
        assert master_state["activated_slaves"] == 1
        for task_id in task_ids:
            assert seen[task_id] == [TaskState.TASK_STARTING, RUNNING], (task_id, seen[task_id])

        for task_id in task_ids:  # the re-attached agent still controls them
            await fw.driver.kill(task_id)
        for task_id in task_ids:
            await fw.wait_state(task_id, TaskState.TASK_KILLED, timeout=60)
    finally:
        await fw.stop()
        for proc in reversed(procs):
            await proc.stop()
        if (agent_dir / "runtime_id").exists():
            with contextlib.suppress(docker.errors.APIError):
                await asyncio.to_thread(remove_runtime_containers, docker_engine,
                                        runtime_id(agent_dir))
