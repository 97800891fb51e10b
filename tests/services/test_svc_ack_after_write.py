"""No acknowledgement leaves the framework before the write holding its update.

The race this pins down: a commit is being written; while it is, a status update
arrives and is folded into the state; the commit under way does not hold it.  If the
framework acknowledged that update when the commit returned, a crash before the next
commit would lose it (the agent, told it arrived, never sends it again; for a
terminal update the master then forgets the task, and reconciliation says LOST
instead of how it ended).

Deterministic: the store's write of task A's RUNNING update is held at a gate; while
it is held, task B (waiting for a file) is let finish and its TASK_FAILED reaches the
framework; then the gate opens.  Every acknowledgement the framework sends is
checked, at the moment it is sent, against what the store file holds.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from mesoslite.messages.mesos import TaskState
from mesoslite.scheduler import Driver
from mesoslite.scheduler import driver as driver_module
from mesoslite.testing.poll import wait_for
from tests.services.conftest import Api

ORDER = {"TASK_STAGING": 0, "TASK_STARTING": 1, "TASK_RUNNING": 2}  # anything else: 3


def rank(state: str) -> int:
    return ORDER.get(state, 3)


def durable_state(db: Path, task_id: str) -> str:
    """The task's state as the store file holds it ("gone" once its row is deleted)."""
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT data FROM services_tasks WHERE id = ?", (task_id,)).fetchone()
    return json.loads(row[0]).get("state", "TASK_STAGING") if row else "gone"


async def test_no_acknowledgement_before_its_update_is_durable(
        cluster, services, monkeypatch, tmp_path) -> None:
    api = Api(services.url)
    db = Path(services.store_url.removeprefix("sqlite:///"))
    go = tmp_path / "go"
    seen: dict[bytes, str] = {}  # update uuid -> its state, as the framework received it
    acked: list[tuple[str, str, str]] = []  # (task, acknowledged state, durable state)

    real_callback_for = driver_module.callback_for

    def recording_callback_for(event):  # type: ignore[no-untyped-def]
        if event.update is not None and event.update.status.uuid:
            status = event.update.status
            seen[status.uuid] = status.state.value
        return real_callback_for(event)

    real_acknowledge = Driver.acknowledge

    async def checked_acknowledge(self, agent_id, task_id, uuid):  # type: ignore[no-untyped-def]
        task = getattr(task_id, "value", task_id)
        acked.append((task, seen.get(uuid, "?"), durable_state(db, task)))
        await real_acknowledge(self, agent_id, task_id, uuid)

    monkeypatch.setattr(driver_module, "callback_for", recording_callback_for)
    monkeypatch.setattr(Driver, "acknowledge", checked_acknowledge)

    # B runs until the file appears, then fails.
    await api.ok("POST", "/v2/apps", {"id": "/b", "cpus": 0.1, "mem": 16,
                                      "cmd": f"while [ ! -f {go} ]; do sleep 0.05; done; exit 3"})
    (task_b,) = await api.running("/b", 1)

    # Hold the write that carries A's RUNNING at a gate.
    gate, entered = threading.Event(), threading.Event()
    real_apply = services.store.apply

    def gated_apply(*args):  # type: ignore[no-untyped-def]
        text = repr(args)  # the write's records, whatever their type
        if not entered.is_set() and "TASK_RUNNING" in text and (
                "'/a'" in text or '"/a"' in text):
            entered.set()
            gate.wait(30)
        return real_apply(*args)

    monkeypatch.setattr(services.store, "apply", gated_apply)
    await api.ok("POST", "/v2/apps", {"id": "/a", "cpus": 0.1, "mem": 16, "cmd": "sleep 300"})
    try:
        await wait_for(entered.is_set, 30, message="the write of A's RUNNING to be under way")
        go.touch()  # B fails while that write is held
        await wait_for(lambda: "TASK_FAILED" in seen.values(), 30,
                       message="B's TASK_FAILED to reach the framework")
    finally:
        gate.set()
    await wait_for(lambda: any(t == task_b["id"] and s == TaskState.TASK_FAILED.value
                               for t, s, _ in acked), 30,
                   message="B's TASK_FAILED to be acknowledged")
    early = [(t, s, d) for t, s, d in acked if rank(d) < rank(s)]
    assert not early, f"acknowledged before the store held the update: {early}"
