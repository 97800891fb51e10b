"""examples/frameworks/hello.py as a real process against the fake master."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.messages.mesos import ID, Offer, TaskState, TaskStatus
from mesoslite.messages.scheduler import CallType, Event, EventType, Offers, Update
from mesoslite.resources import Resources
from mesoslite.scheduler import resource_list
from tests.unit.scheduler.conftest import FakeMaster

REPO = Path(__file__).resolve().parents[3]
HELLO = REPO / "examples" / "frameworks" / "hello.py"
PROCESS_DEADLINE = 30.0  # interpreter start-up on a busy 2-core machine is slow


def offer(offer_id: str, cpus: float, agent: str) -> Offer:
    return Offer(
        id=ID(offer_id),
        framework_id=ID("fw-1"),
        agent_id=ID(agent),
        hostname=f"host-{agent}",
        resources=resource_list(Resources.of(cpus=cpus, mem=4096)),
    )


def update(task_id: str, state: TaskState) -> Event:
    status = TaskStatus(
        task_id=ID(task_id), state=state, agent_id=ID("a1"), uuid=uuid.uuid4().bytes
    )
    return Event(EventType.UPDATE, update=Update(status=status))


@pytest.fixture
async def hello(master: FakeMaster) -> AsyncIterator[asyncio.subprocess.Process]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["--master", master.url, "--tasks", "3", "--cpus", "1", "--mem", "64"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HELLO),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    yield process
    if process.returncode is None:
        process.kill()
        await process.wait()


async def launch_all(master: FakeMaster) -> list[str]:
    """Offer room for 2 + 1 tasks, then a useless offer (each offer of another agent: one
    ACCEPT takes every offer of its agent); return the launched ids."""
    await master.until(lambda: master.subscribes, "hello to subscribe", PROCESS_DEADLINE)
    offers = [offer("o1", 2, "a1"), offer("o2", 4, "a2"), offer("o3", 0.5, "a3")]
    master.push(Event(EventType.OFFERS, offers=Offers(offers=offers)))
    await master.until(lambda: master.calls(CallType.SUPPRESS), "SUPPRESS")
    accepts = [r.call.accept for r in master.calls(CallType.ACCEPT)]
    assert [[o.value for o in a.offer_ids] for a in accepts if a] == [["o1"], ["o2"]]
    launched = [
        [t.task_id.value for t in a.operations[0].launch.task_infos]  # type: ignore[union-attr]
        for a in accepts
        if a
    ]
    assert launched == [["hello-0", "hello-1"], ["hello-2"]]  # several per offer
    (decline,) = master.calls(CallType.DECLINE)
    assert decline.call.decline is not None and decline.call.decline.offer_ids == [ID("o3")]
    return [t for group in launched for t in group]


async def test_hello_runs_tasks_and_exits_zero(master: FakeMaster, hello) -> None:
    tasks = await launch_all(master)
    master.push(update(tasks[0], TaskState.TASK_RUNNING))
    for task in tasks:
        master.push(update(task, TaskState.TASK_FINISHED))
    out, err = await asyncio.wait_for(hello.communicate(), PROCESS_DEADLINE)
    assert hello.returncode == 0, err.decode()
    assert out.decode().splitlines() == [f"{t}: TASK_FINISHED" for t in tasks]
    assert len(master.calls(CallType.ACKNOWLEDGE)) == 4  # the last one too, before exiting


async def test_hello_exits_nonzero_when_a_task_fails(master: FakeMaster, hello) -> None:
    tasks = await launch_all(master)
    master.push(update(tasks[0], TaskState.TASK_FINISHED))
    master.push(update(tasks[1], TaskState.TASK_FAILED))
    master.push(update(tasks[2], TaskState.TASK_FINISHED))
    out, err = await asyncio.wait_for(hello.communicate(), PROCESS_DEADLINE)
    assert hello.returncode == 1, err.decode()
    assert "hello-1: TASK_FAILED" in out.decode().splitlines()
