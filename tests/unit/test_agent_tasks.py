"""TaskManager carrying out the lifecycle: real checkpoints and a real status update
manager, real grace timers, a containerizer whose start and exit the test controls."""

from __future__ import annotations

import asyncio
import getpass
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mesoslite.agent.checkpoint import Checkpoints
from mesoslite.agent.containerizers.base import (
    Container,
    Containerizer,
    LaunchSpec,
    StopKind,
    Termination,
)
from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.agent.tasks import AgentIdentity, TaskManager
from mesoslite.clock import ManualClock
from mesoslite.messages.agent import StatusUpdate
from mesoslite.messages.mesos import (
    ID,
    CapabilityType,
    CommandInfo,
    DurationInfo,
    FrameworkCapability,
    FrameworkInfo,
    KillPolicy,
    Reason,
    TaskInfo,
    TaskState,
    TaskStatus,
)
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio
S = TaskState
TERM, KILL = StopKind.TERM, StopKind.KILL


class HeldContainer(Container):
    """Runs until ``end`` or KILL; TERM ends it only if ``exits_on_term`` (else it is
    ignored, as by a stubborn task).  Records the signals it was sent."""

    def __init__(self, exits_on_term: bool) -> None:
        self.record: dict[str, Any] = {"held": True}
        self.exits_on_term = exits_on_term
        self.signals: list[StopKind] = []
        self._done: asyncio.Future[Termination] = asyncio.get_running_loop().create_future()

    def end(self, term: Termination) -> None:
        if not self._done.done():
            self._done.set_result(term)

    async def wait(self) -> Termination:
        return await asyncio.shield(self._done)

    async def signal(self, kind: StopKind) -> None:
        self.signals.append(kind)
        if kind is KILL:
            self.end(Termination(signal=9))
        elif self.exits_on_term:
            self.end(Termination(signal=15))


class HeldContainerizer(Containerizer):
    """Starts a container once the test opens ``gate``."""

    name = "process"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.exits_on_term = True
        self.containers: list[HeldContainer] = []

    async def launch(self, spec: LaunchSpec) -> Container:
        await self.gate.wait()
        container = HeldContainer(self.exits_on_term)
        self.containers.append(container)
        return container

    async def recover(self, spec: LaunchSpec, record: dict[str, Any]) -> Container | Termination:
        raise AssertionError("no recovery here")


class Observed:
    def __init__(self) -> None:
        self.launches: list[tuple[str, bool]] = []
        self.updates: list[tuple[TaskState, float | None]] = []

    def on_launch_started(self, containerizer: str) -> None: ...

    def on_launch_finished(self, containerizer: str, seconds: float, failed: bool) -> None:
        self.launches.append((containerizer, failed))

    def on_update(self, status: TaskStatus, launch_seconds: float | None) -> None:
        self.updates.append((status.state, launch_seconds))

    def on_sent(self, first: int, resent: int) -> None: ...


class Agent:
    def __init__(self, work_dir: Path) -> None:
        self.sent: list[StatusUpdate] = []
        self.acks: set[asyncio.Task[None]] = set()
        self.containerizer = HeldContainerizer()
        self.observed = Observed()
        self.cp = Checkpoints(work_dir)
        self.io = ThreadPoolExecutor(max_workers=1)
        clock = ManualClock()
        self.updates = StatusUpdateManager(self.cp, self.send, clock, self.io)
        self.tasks = TaskManager(AgentIdentity(lambda: "agent-1", "host", "127.0.0.1", 5051),
                                 {"process": self.containerizer}, self.cp, self.updates,
                                 self.io, clock, observer=self.observed)

    def send(self, batch: list[StatusUpdate]) -> bool:
        """The master and the framework: every update is acknowledged."""
        self.sent.extend(batch)
        for update in batch:
            status = update.status
            assert status.uuid is not None
            ack = self.tasks.acknowledged(update.framework_id, status.task_id.value, status.uuid)
            self.acks.add(asyncio.get_running_loop().create_task(ack))
        return True

    def states(self, task_id: str) -> list[TaskState]:
        out: list[TaskState] = []
        for update in self.sent:
            if update.status.task_id.value == task_id and update.status.state not in out:
                out.append(update.status.state)
        return out


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    a = Agent(tmp_path)
    yield a
    await asyncio.gather(*a.acks, return_exceptions=True)
    a.io.shutdown(wait=True)


def framework(killing_state: bool = False) -> FrameworkInfo:
    caps = [FrameworkCapability(type=CapabilityType.TASK_KILLING_STATE)] if killing_state else []
    return FrameworkInfo(user=getpass.getuser(), name="f", id=ID("fw"), capabilities=caps)


def task(task_id: str = "t1", grace: float | None = None) -> TaskInfo:
    info = TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("agent-1"),
                    command=CommandInfo(value="sleep 60"))
    if grace is not None:
        info.kill_policy = KillPolicy(grace_period=DurationInfo(int(grace * 1e9)))
    return info


async def test_a_task_runs_ends_and_is_forgotten_after_the_acknowledgement(agent):
    await agent.tasks.launch(framework(), task())
    await wait_for(lambda: agent.states("t1") == [S.TASK_STARTING, S.TASK_RUNNING], 5,
                   message="TASK_RUNNING")
    task_json = agent.cp.task_dir("fw", "t1") / "task.json"
    assert b'"held":true' in task_json.read_bytes()  # the container's record
    agent.containerizer.containers[0].end(Termination(exit_code=0))
    await wait_for(lambda: ("fw", "t1") not in agent.tasks.tasks, 5,
                   message="the task forgotten once its end was acknowledged")
    assert agent.states("t1")[-1] == S.TASK_FINISHED
    assert not task_json.parent.exists()
    assert agent.observed.launches == [("process", False)]
    assert [s for s, _ in agent.observed.updates] == [S.TASK_STARTING, S.TASK_RUNNING,
                                                      S.TASK_FINISHED]
    assert [seconds is not None for _, seconds in agent.observed.updates] == [False, True, False]


async def test_a_kill_while_the_container_starts_stops_it_once_it_runs(agent):
    agent.containerizer.gate.clear()
    launch = asyncio.create_task(agent.tasks.launch(framework(killing_state=True), task()))
    await wait_for(lambda: S.TASK_STARTING in agent.states("t1"), 5, message="TASK_STARTING")
    await agent.tasks.kill("fw", "t1", grace=1.5, reason=Reason.REASON_FRAMEWORK_REMOVED,
                           message="Framework shut down")
    assert not agent.containerizer.containers  # still starting: nothing to stop yet
    agent.containerizer.gate.set()
    await launch
    await wait_for(lambda: S.TASK_KILLED in agent.states("t1"), 5, message="the kill's update")
    assert agent.containerizer.containers[0].signals == [TERM]  # it exited on TERM
    assert agent.states("t1") == [S.TASK_STARTING, S.TASK_RUNNING, S.TASK_KILLED]
    killed = agent.sent[-1].status
    assert (killed.reason, killed.message) == (Reason.REASON_FRAMEWORK_REMOVED,
                                               "Framework shut down")


async def test_a_kill_before_the_start_starts_nothing(agent):
    disk = threading.Event()  # the I/O thread busy: the task's checkpoint waits
    agent.io.submit(disk.wait, 10)
    launch = asyncio.create_task(agent.tasks.launch(framework(), task()))
    await wait_for(lambda: ("fw", "t1") in agent.tasks.tasks, 5, message="the launch to begin")
    await agent.tasks.kill("fw", "t1")
    disk.set()
    await launch
    await wait_for(lambda: S.TASK_KILLED in agent.states("t1"), 5, message="the kill's update")
    assert agent.states("t1") == [S.TASK_STARTING, S.TASK_KILLED]
    assert agent.sent[-1].status.reason == Reason.REASON_TASK_KILLED_DURING_LAUNCH
    assert not agent.containerizer.containers
    assert agent.observed.launches == []


async def test_a_kill_of_a_running_task_says_killing_first_when_asked(agent):
    await agent.tasks.launch(framework(killing_state=True), task())
    await agent.tasks.kill("fw", "t1")
    await wait_for(lambda: S.TASK_KILLED in agent.states("t1"), 5, message="the kill's update")
    assert agent.states("t1") == [S.TASK_STARTING, S.TASK_RUNNING, S.TASK_KILLING,
                                  S.TASK_KILLED]
    assert agent.containerizer.containers[0].signals == [TERM]


async def test_a_duplicate_launch_starts_nothing(agent):
    await agent.tasks.launch(framework(), task())
    await agent.tasks.launch(framework(), task())
    assert len(agent.containerizer.containers) == 1
    await wait_for(lambda: agent.states("t1") == [S.TASK_STARTING, S.TASK_RUNNING], 5,
                   message="TASK_RUNNING")


async def test_a_health_verdict_reports_and_kills(agent):
    await agent.tasks.launch(framework(), task())
    await agent.tasks.health_verdict(("fw", "t1"), False, "Health check failed 3 times")
    await wait_for(lambda: S.TASK_FAILED in agent.states("t1"), 5, message="the failure")
    health = [u.status for u in agent.sent if u.status.healthy is not None]
    assert [(h.state, h.healthy) for h in health] == [(S.TASK_RUNNING, False)]
    failed = agent.sent[-1].status
    assert (failed.reason, failed.message) == (Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED,
                                               "Health check failed 3 times")


# ---------------------------------------------------------------- grace timers


async def killed(agent: Agent, task_id: str) -> None:
    await wait_for(lambda: S.TASK_KILLED in agent.states(task_id), 5,
                   message=f"{task_id}'s TASK_KILLED")


async def test_a_task_that_ignores_term_gets_kill_once_the_grace_is_over(agent):
    agent.containerizer.exits_on_term = False
    await agent.tasks.launch(framework(), task())
    await agent.tasks.kill("fw", "t1", grace=0.05)
    await killed(agent, "t1")
    assert agent.containerizer.containers[0].signals == [TERM, KILL]
    assert agent.sent[-1].status.message == "Task killed"


@pytest.mark.parametrize("shorter", [0.0, 0.05])
async def test_a_later_kill_with_a_shorter_grace_brings_kill_forward(agent, shorter):
    agent.containerizer.exits_on_term = False
    await agent.tasks.launch(framework(), task(grace=3600))
    await agent.tasks.kill("fw", "t1", message="first")
    container = agent.containerizer.containers[0]
    await wait_for(lambda: container.signals == [TERM], 5, message="TERM")
    await agent.tasks.kill("fw", "t1", grace=shorter, message="second")
    await killed(agent, "t1")  # not an hour later
    assert container.signals == [TERM, KILL]
    assert agent.sent[-1].status.message == "first"  # the first kill's report


async def test_a_later_kill_with_a_longer_grace_does_not_put_kill_off(agent):
    agent.containerizer.exits_on_term = False
    await agent.tasks.launch(framework(), task())
    await agent.tasks.kill("fw", "t1", grace=0.05)
    await agent.tasks.kill("fw", "t1", grace=3600)
    await killed(agent, "t1")
    assert agent.containerizer.containers[0].signals == [TERM, KILL]


async def test_a_task_that_exits_on_term_is_never_sent_kill(agent):
    await agent.tasks.launch(framework(), task("polite"))
    await agent.tasks.kill("fw", "polite", grace=0.05)
    await killed(agent, "polite")
    # A stubborn task killed later with the same grace: by the time its KILL is sent,
    # the first task's timer would have fired too.
    agent.containerizer.exits_on_term = False
    await agent.tasks.launch(framework(), task("stubborn"))
    await agent.tasks.kill("fw", "stubborn", grace=0.05)
    await killed(agent, "stubborn")
    polite, stubborn = agent.containerizer.containers
    assert (polite.signals, stubborn.signals) == ([TERM], [TERM, KILL])


async def test_kill_all_ends_tasks_that_ignore_term_after_their_grace(agent):
    agent.containerizer.exits_on_term = False
    for task_id in ("a", "b"):
        await agent.tasks.launch(framework(), task(task_id, grace=0.05))
    await asyncio.wait_for(agent.tasks.kill_all(), 10)
    assert [c.signals for c in agent.containerizer.containers] == [[TERM, KILL]] * 2
    assert agent.states("a")[-1] == agent.states("b")[-1] == S.TASK_KILLED
