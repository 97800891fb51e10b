"""The kit's runner: what goes out, and when, around a write that takes its time.

A real ``FrameworkRunner`` loop and sender, a store whose writes wait at a gate (a real
SQLite file behind it), and a stand-in driver that records the calls it is asked to
make.  No master: the events are handed in as the driver's callbacks would.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import MetaData

from mesoslite.clock import ManualClock
from mesoslite.framework import DocumentStore, FrameworkRunner, Journal, Outcome, Workload
from mesoslite.framework.events import Subscribed, Update
from mesoslite.framework.store import document_table, to_json
from mesoslite.messages.mesos import ID, FrameworkInfo, TaskState, TaskStatus
from mesoslite.store.db import sqlite_url
from mesoslite.testing.poll import wait_for


class Recorder:
    """Stands in for the driver: records calls; subscribed from the start."""

    subscribed = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        async def call(*args: object) -> None:
            self.calls.append((name, args))
        return call


class Tasks(Workload):
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.states: dict[str, str] = {}

    def on_update(self, status: TaskStatus, now: float) -> Outcome:
        self.states[status.task_id.value] = status.state.value
        self.journal.put("tasks", status.task_id.value, (status.task_id.value,
                                                         status.state.value))
        return Outcome()


class GatedStore(DocumentStore):
    """Writes wait while the gate is closed (in the store's worker thread)."""

    def __init__(self, url: str, metadata: MetaData) -> None:
        super().__init__(url, metadata)
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.written: list[dict[str, str]] = []

    def apply(self, batch):  # type: ignore[no-untyped-def]
        self.entered.set()
        assert self.gate.wait(30), "the test never opened the gate"
        super().apply(batch)
        for rows in batch.rows.values():
            self.written += [r for r in rows.values() if r is not None]


def update(task: str, state: TaskState, uuid: bytes) -> Update:
    return Update(TaskStatus(task_id=ID(task), state=state, agent_id=ID("a1"), uuid=uuid))


@pytest.fixture
async def runner(tmp_path):  # type: ignore[no-untyped-def]
    metadata = MetaData()
    document_table("tasks", metadata, 64)
    store = GatedStore(sqlite_url(tmp_path / "kit.db"), metadata)
    journal = Journal({"tasks": lambda t: {"id": t[0], "data": to_json({"state": t[1]})}})
    r = FrameworkRunner(Tasks(journal), FrameworkInfo(user="u", name="t"), "http://127.0.0.1:9",
                        journal=journal, store=store, clock=ManualClock(), tick_s=0.05)
    r.driver = Recorder()  # type: ignore[assignment]
    tasks = [asyncio.create_task(r._loop()), asyncio.create_task(r._sender())]
    yield r, store
    store.gate.set()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    store.close()


def acks(runner: FrameworkRunner) -> list[bytes]:
    return [args[2] for name, args in runner.driver.calls if name == "acknowledge"]  # type: ignore[union-attr]


async def test_an_update_that_arrives_during_a_write_is_acknowledged_after_the_next(runner):
    r, store = runner
    r.feed(Subscribed("fw-1"))
    await r.commit()
    store.gate.clear()
    store.entered.clear()
    r.feed(update("t1", TaskState.TASK_RUNNING, b"running"))
    await wait_for(store.entered.is_set, 5, message="the write of RUNNING to be under way")
    r.feed(update("t1", TaskState.TASK_FINISHED, b"finished"))  # during that write
    assert r.workload.states["t1"] == "TASK_FINISHED"  # folded in...
    assert acks(r) == []  # ...but not acknowledged: not even RUNNING's write landed
    store.gate.set()
    await wait_for(lambda: acks(r) == [b"running", b"finished"], 5,
                   message="both acknowledgements, in order, after their writes")
    assert {"id": "t1", "data": '{"state":"TASK_FINISHED"}'} in store.written


async def test_an_api_commit_releases_acknowledgements_too(runner):
    r, _ = runner
    r.feed(Subscribed("fw-1"))
    r.feed(update("t2", TaskState.TASK_RUNNING, b"u2"))
    await r.commit()  # what an HTTP handler awaits before it answers
    await wait_for(lambda: acks(r) == [b"u2"], 5, message="the acknowledgement of t2")
