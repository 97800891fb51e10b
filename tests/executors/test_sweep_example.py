"""examples/frameworks/sweep: its executor as a real process (``python -m
sweep.executor``) against the loopback agent, and the whole example against a real
master and real agents."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from mesoslite.framework import group_offers
from mesoslite.messages import executor as ex
from mesoslite.messages.mesos import ID, Offer, TaskState, TaskStatus
from mesoslite.resources import Resources
from mesoslite.scheduler import resource_list
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for, within
from tests.unit.executor.fake_agent import FakeAgent

REPO = Path(__file__).resolve().parents[2]
FRAMEWORKS = REPO / "examples" / "frameworks"
sys.path.insert(0, str(FRAMEWORKS))  # ``sweep`` is the example's package

from sweep.points import Point, Result, decode_point, decode_result, encode, evaluate, grid
from sweep.scheduler import EXECUTOR_ID, MAX_ATTEMPTS, Sweep

PROCESS_DEADLINE = 60.0  # interpreter start-up on a busy 2-core machine is slow
PYTHONPATH = os.pathsep.join([str(FRAMEWORKS), str(REPO)])


@pytest.fixture
async def agent() -> AsyncIterator[FakeAgent]:
    fake = FakeAgent(auto_ack=True, token="executor-token")
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def spawn() -> AsyncIterator[Callable[..., asyncio.Future[asyncio.subprocess.Process]]]:
    processes: list[asyncio.subprocess.Process] = []

    async def start(env: dict[str, str]) -> asyncio.subprocess.Process:
        # As the agent runs it: a bare environment, the program by its path.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sweep.executor", env={**env, "PYTHONPATH": PYTHONPATH},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        processes.append(process)
        return process

    yield start  # type: ignore[misc]
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


def offer(cpus: float, executor_running: bool) -> Offer:
    return Offer(id=ID("o1"), framework_id=ID("fw"), agent_id=ID("a1"), hostname="h1",
                 resources=resource_list(Resources.of(cpus=cpus, mem=1024.0)),
                 executor_ids=[ID(EXECUTOR_ID)] if executor_running else [])


def test_the_first_launch_on_an_agent_leaves_room_for_the_executor():
    for running, expected in ((False, 4), (True, 6)):  # (0.3 - 0.1) / 0.05, 0.3 / 0.05
        sweep = Sweep(grid(10))
        [agent] = group_offers([offer(0.3, running)]).values()
        tasks = sweep.tasks_for(agent)
        assert len(tasks) == expected
        assert {t.executor.executor_id.value for t in tasks} == {EXECUTOR_ID}
        assert [decode_point(t.data).index for t in tasks] == list(range(expected))


def test_a_result_counts_once_and_a_failed_point_is_tried_again():
    sweep = Sweep(grid(2))
    [agent] = group_offers([offer(1.0, True)]).values()
    first, second = sweep.tasks_for(agent)
    result = encode(Result(0, 1.5))
    sweep.on_message("a1", EXECUTOR_ID, result, 0.0)
    sweep.on_update(TaskStatus(task_id=first.task_id, state=TaskState.TASK_FINISHED,
                               data=result), 0.0)
    assert sweep.results == {0: 1.5} and sweep.by_message == 1
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert sweep.attempts[1] == attempt and not sweep.todo
        sweep.on_update(TaskStatus(task_id=second.task_id, state=TaskState.TASK_FAILED), 0.0)
        if attempt < MAX_ATTEMPTS:
            [second] = sweep.tasks_for(agent)
            assert second.task_id.value == f"sweep-1-{attempt + 1}"
    assert sweep.given_up == {1} and not sweep.todo
    assert sweep.plan(0.0, True, None).done  # type: ignore[arg-type]


def states(agent: FakeAgent, task_id: str) -> list[TaskState]:
    return [u.status.state for u in agent.updates if u.status.task_id.value == task_id]


async def test_the_executor_evaluates_points_and_reports_them_twice(agent: FakeAgent, spawn):
    process = await spawn(agent.environ(MESOS_EXECUTOR_AUTHENTICATION_TOKEN="executor-token"))
    await agent.until(lambda: agent.streaming, "the executor to subscribe",
                      timeout=PROCESS_DEADLINE)
    points = [Point(index=i, x=0.5 * i, y=1.0 - i) for i in range(3)]
    for point in points:
        agent.launch(f"p{point.index}", encode(point))
    agent.launch("bad", b"not a point")
    await agent.until(lambda: all(TaskState.TASK_FINISHED in states(agent, f"p{i}")
                                  for i in range(3)), "every point's TASK_FINISHED")
    await agent.until(lambda: states(agent, "bad"), "the bad task's update")
    for point in points:
        task_id = f"p{point.index}"
        assert states(agent, task_id) == [TaskState.TASK_RUNNING, TaskState.TASK_FINISHED]
        [finished] = [u.status for u in agent.updates if u.status.task_id.value == task_id
                      and u.status.state == TaskState.TASK_FINISHED]
        assert decode_result(finished.data or b"") == Result(point.index, evaluate(point))
    # the same results as framework messages, in whatever order they came
    assert sorted(map(decode_result, agent.messages), key=lambda r: r.index) == [
        Result(p.index, evaluate(p)) for p in points]
    assert states(agent, "bad") == [TaskState.TASK_FAILED]
    # every update was acknowledged: nothing is held for a re-subscription
    agent.drop()
    await agent.until(lambda: len(agent.subscribes) == 2, "the re-subscription")
    assert agent.subscribes[-1] == ex.Subscribe()
    agent.push(ex.SHUTDOWN)
    code = await within(PROCESS_DEADLINE, "the executor to exit on SHUTDOWN", process.wait())
    assert code == 0


async def test_sigterm_shuts_the_executor_down(agent: FakeAgent, spawn):
    process = await spawn(agent.environ(MESOS_EXECUTOR_AUTHENTICATION_TOKEN="executor-token"))
    await agent.until(lambda: agent.streaming, "the executor to subscribe",
                      timeout=PROCESS_DEADLINE)
    process.send_signal(signal.SIGTERM)
    code = await within(PROCESS_DEADLINE, "the executor to exit on SIGTERM", process.wait())
    assert process.stdout is not None
    output = (await process.stdout.read()).decode()
    assert code == 0 and "shutting down: asked to shut down" in output, output


async def test_outside_an_agent_the_executor_says_what_is_missing(spawn):
    process = await spawn({"PATH": os.environ.get("PATH", "")})
    code = await within(PROCESS_DEADLINE, "the executor to exit", process.wait())
    assert process.stdout is not None
    output = (await process.stdout.read()).decode()
    assert code == 2 and "MESOS_AGENT_ENDPOINT is not set" in output


async def test_the_sweep_runs_on_a_cluster_with_one_executor_per_agent(cluster):
    count = 40
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(FRAMEWORKS / "sweep"), "--master", cluster.master_url,
        "--points", str(count), env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await within(120.0, "the sweep to finish", process.communicate())
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()[-3000:]
    best = min(grid(count), key=evaluate)
    assert f"{count}/{count} points" in out.decode()
    assert f"best f({best.x:g}, {best.y:g}) = {evaluate(best):g}" in out.decode()
    # the framework tore itself down: every executor was shut down
    for agent in cluster.agents:
        await wait_for(lambda a=agent: _no_executors(a), message="the executors to go")
    sandboxes = list(cluster.spec.work_dir.glob("**/executors/sweep"))
    assert sandboxes, "no executor sandbox"
    for sandbox in sandboxes:  # one executor process per agent ran many tasks
        log = (sandbox / "stderr").read_text()
        assert log.count("sweep.executor: subscribed to agent") == 1, log
        assert "shutting down with 0 task(s) running" in log, log


async def _no_executors(agent) -> bool:
    state = await get_json(f"http://127.0.0.1:{agent.config.port}/state")
    return not state["executors"]

