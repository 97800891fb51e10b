"""Simulated agents against a real in-process master: registration, a framework
launch reaching TASK_RUNNING, resends until acknowledged, kill and finish."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mesoslite.master.core import MasterConfig
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import TaskState
from mesoslite.store.db import sqlite_url
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.sim_agent import SimAgentConfig, SimAgentPool

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def master(tmp_path) -> AsyncIterator[MasterServer]:
    config = MasterConfig(allocation_interval=0.05, agent_ping_timeout=0.2,
                          max_agent_ping_timeouts=5, heartbeat_interval=0.5)
    server = MasterServer(config, sqlite_url(tmp_path / "master.db"))
    await server.start()
    yield server
    await server.stop()


def url(master: MasterServer) -> str:
    return f"http://127.0.0.1:{master.port}"


async def start_pool(master: MasterServer, count: int, **config: object
                     ) -> SimAgentPool:
    pool = SimAgentPool(url(master), count, SimAgentConfig(**config))  # type: ignore[arg-type]
    await pool.start()
    await pool.wait_registered(timeout=10)
    return pool


@pytest.fixture
async def frameworks() -> AsyncIterator[list[RecordingFramework]]:
    started: list[RecordingFramework] = []
    yield started
    for fw in started:
        await fw.stop()


async def start_framework(master: MasterServer, started: list[RecordingFramework],
                          **kwargs: object) -> RecordingFramework:
    fw = RecordingFramework(url(master), **kwargs)  # type: ignore[arg-type]
    started.append(fw)
    return await fw.start()


async def test_sim_agents_register_and_a_launch_reaches_running(master, frameworks):
    pool = await start_pool(master, 3, retry_base=0.2)
    try:
        state = await get_json(url(master) + "/master/state")
        assert sorted(a["hostname"] for a in state["slaves"]) == ["sim-0", "sim-1", "sim-2"]
        assert {a["resources"]["cpus"] for a in state["slaves"]} == {8.0}
        fw = await start_framework(master, frameworks)
        await fw.run_task("t1", "sleep 3600")
        running = await fw.wait_state("t1", TaskState.TASK_RUNNING)
        assert fw.sched.states("t1") == [TaskState.TASK_STARTING, TaskState.TASK_RUNNING]
        assert running.uuid is not None and len(running.uuid) == 16
        # the implicit acks reach the agent: nothing stays unacknowledged
        await wait_for(lambda: pool.unacknowledged() == 0, message="acks at the agent")
        assert pool.stats.registrations == 3

        await fw.driver.kill("t1")
        await fw.wait_state("t1", TaskState.TASK_KILLED)
        await wait_for(lambda: not list(pool.tasks()), message="killed task forgotten")
    finally:
        await pool.stop()


async def test_unacknowledged_update_is_resent_until_acked(master, frameworks):
    pool = await start_pool(master, 1, retry_base=0.05, retry_max=0.1)
    try:
        fw = await start_framework(master, frameworks, implicit_acks=False)
        await fw.run_task("t1", "true")
        await wait_for(lambda: len([u for u in fw.sched.updates if u.task_id.value == "t1"]) >= 3,
                       message="resends")
        starting = [u for u in fw.sched.updates if u.task_id.value == "t1"]
        assert {u.state for u in starting} == {TaskState.TASK_STARTING}
        assert len({u.uuid for u in starting}) == 1  # the same update, resent
        assert pool.stats.updates_resent >= 2
        agent_id = starting[0].agent_id
        assert agent_id is not None and starting[0].uuid is not None
        await fw.driver.acknowledge(agent_id, "t1", starting[0].uuid)
        running = await fw.wait_state("t1", TaskState.TASK_RUNNING)
        assert running.uuid is not None and running.uuid != starting[0].uuid
        await fw.driver.acknowledge(agent_id, "t1", running.uuid)
        await wait_for(lambda: pool.unacknowledged() == 0, message="RUNNING acknowledged")
    finally:
        await pool.stop()


async def test_task_finishes_after_its_duration_and_is_forgotten(master, frameworks):
    pool = await start_pool(master, 1, retry_base=0.2, task_duration=0.05)
    try:
        fw = await start_framework(master, frameworks)
        await fw.run_task("t1", "true")
        await fw.wait_state("t1", TaskState.TASK_FINISHED)
        assert fw.sched.states("t1") == [
            TaskState.TASK_STARTING, TaskState.TASK_RUNNING, TaskState.TASK_FINISHED]
        await wait_for(lambda: not list(pool.tasks()), message="finished task forgotten")
    finally:
        await pool.stop()
