"""The status update manager under any interleaving (Hypothesis): updates of a task
go out in order, one head at a time, again until acknowledged and never once
acknowledged - across link losses and agent restarts - and the observer counts
each send as a first send or a resend."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import msgspec
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesoslite.agent.checkpoint import Checkpoints, UpdatesCheckpoint
from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.clock import ManualClock
from mesoslite.messages.agent import StatusUpdate
from mesoslite.messages.mesos import ID, TaskState, TaskStatus

FW = "fw"
TASKS = ["a", "b"]
STATES = [TaskState.TASK_STARTING, TaskState.TASK_RUNNING, TaskState.TASK_FINISHED]
EXAMPLES = int(os.environ.get("UPDATES_EXAMPLES", "100"))


class InlineExecutor(Executor):
    """The agent's I/O thread, run inline so that every step is deterministic."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting side
            future.set_exception(exc)
        return future


class Counts:
    """An AgentObserver that keeps the send counts."""

    def __init__(self) -> None:
        self.first = self.resent = 0

    def on_sent(self, first: int, resent: int) -> None:
        self.first += first
        self.resent += resent

    def on_launch_started(self, containerizer: str) -> None: ...
    def on_launch_finished(self, containerizer: str, seconds: float, failed: bool) -> None: ...
    def on_update(self, status: TaskStatus, launch_seconds: float | None) -> None: ...


class UpdatesMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="updates-"))
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.link = True
        self.pending: dict[str, list[bytes]] = {t: [] for t in TASKS}  # the model
        self.acked: set[bytes] = set()
        self.ever_sent: set[bytes] = set()  # sent since the last restart
        self.expected = Counts()
        self.start()

    def start(self) -> None:
        self.counts = Counts()
        self.expected = Counts()
        self.ever_sent = set()
        self.updates = StatusUpdateManager(Checkpoints(self.dir), self.send, self.clock,
                                           InlineExecutor(), retry_base=1.0, retry_max=4.0,
                                           observer=self.counts)

    def run(self, coro: Any) -> Any:
        result = self.loop.run_until_complete(coro)
        self.loop.run_until_complete(asyncio.sleep(0))  # the flush scheduled meanwhile
        return result

    async def call(self, fn: Any, *args: Any) -> Any:
        return fn(*args)

    def send(self, batch: list[StatusUpdate]) -> bool:
        if not self.link:
            return False
        for update in batch:
            uuid = update.status.uuid
            assert uuid not in self.acked, "an acknowledged update went out again"
            queue = self.pending[update.status.task_id.value]
            assert queue and queue[0] == uuid, "an update went out before the one ahead"
            if uuid in self.ever_sent:
                self.expected.resent += 1
            else:
                self.expected.first += 1
                self.ever_sent.add(uuid)
        return True

    @rule(task=st.sampled_from(TASKS), state=st.sampled_from(STATES))
    def add(self, task: str, state: TaskState) -> None:
        status = TaskStatus(task_id=ID(task), state=state)
        self.run(self.updates.add(FW, status))
        assert status.uuid is not None
        self.pending[task].append(status.uuid)

    @precondition(lambda self: any(self.pending.values()))
    @rule(data=st.data())
    def acknowledge_head(self, data: st.DataObject) -> None:
        task = data.draw(st.sampled_from([t for t in TASKS if self.pending[t]]))
        uuid = self.pending[task].pop(0)
        self.run(self.updates.acknowledge(FW, task, uuid))
        self.acked.add(uuid)

    @precondition(lambda self: bool(self.acked))
    @rule(data=st.data())
    def duplicate_acknowledgement(self, data: st.DataObject) -> None:
        uuid = data.draw(st.sampled_from(sorted(self.acked)))
        for task in TASKS:
            assert self.run(self.updates.acknowledge(FW, task, uuid)) is False

    @rule(seconds=st.sampled_from([0.5, 1.0, 5.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.run(self.call(self.updates.retry_due))

    @rule()
    def link_flaps(self) -> None:
        self.link = not self.link
        if self.link:  # registered again
            self.run(self.call(self.updates.resend_all))

    @rule()
    def agent_restarts(self) -> None:
        self.start()
        for task in TASKS:
            path = Checkpoints(self.dir).task_dir(FW, task) / "updates.json"
            if path.exists():
                cp = msgspec.json.decode(path.read_bytes(), type=UpdatesCheckpoint)
                self.updates.recover(FW, task, cp)
        self.run(self.call(self.updates.resend_all))

    @invariant()
    def checkpoints_hold_what_is_unacknowledged(self) -> None:
        for task in TASKS:
            stream = self.updates.streams.get((FW, task))
            held = [u.status.uuid for u in stream.pending] if stream is not None else []
            assert held == self.pending[task]
        assert self.updates.unacknowledged() == sum(len(q) for q in self.pending.values())

    @invariant()
    def the_observer_tells_resends_from_first_sends(self) -> None:
        assert (self.counts.first, self.counts.resent) == (self.expected.first,
                                                           self.expected.resent)

    def teardown(self) -> None:
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)


UpdatesMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestStatusUpdates = UpdatesMachine.TestCase
