"""The soak's acknowledgement checker (``mesoslite/testing/soak/acks.py``) on real
processes, and proof that it can fail.

* services through the launcher (a real master and agent on loopback, process
  containerizer): an app of 2 ``sleep 1000`` instances runs, the launcher is killed
  with ``kill -9`` and started again on the same store and log, the app is scaled to
  0; the ack log holds the RUNNING and the terminal acknowledgement of both tasks,
  every one found durable (no ``ack-durable`` violation);
* batch through the launcher: a one-step job (``true``) runs to SUCCEEDED; its
  attempt's acknowledgements are logged, all found durable;
* the check itself: against a store written by the framework's own journal where the
  task is still STAGING (services) or LAUNCHING (batch), an acknowledged RUNNING is a
  violation; the same store holding RUNNING, or no row (services deleted it), is not;
* the log's reader skips a torn last line, and the launcher cuts one before appending.

Prints one line of figures per framework test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from frameworks.batch.records import Attempt, AttemptState
from frameworks.batch.store import ATTEMPTS, BatchStore, batch_journal
from frameworks.services.store import TASKS, ServicesStore, services_journal
from frameworks.services.tasks import TaskRecord
from mesoslite.store.db import sqlite_url
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import CLUSTER_LIMIT, SERVER_LIMIT, wait_for
from mesoslite.testing.processes import Process, agent_process, master_process
from mesoslite.testing.soak.acks import (
    AckCheckedProcess,
    ack_violations,
    batch_process,
    check_and_log,
    read_ack_log,
    repair_log,
    services_process,
)

pytestmark = pytest.mark.faults

RESOURCES = "cpus:2;mem:1024;disk:1024;ports:[31100-31199]"
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
            "TASK_DROPPED", "TASK_GONE"}


# -------------------------------------------------------------------- real processes


class Cluster:
    """A master and an agent on loopback; ``add`` registers a framework process.  On
    exit every process stops (last started first) and task processes left in the
    agent's work dir (an agent stopped with SIGTERM keeps its tasks) are killed."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.master = master_process(tmp_path / "master")
        self.agent = agent_process(self.master.url, tmp_path / "agent", RESOURCES)
        self.procs: list[Process] = []

    async def start(self) -> None:
        for proc in (self.master, self.agent):
            self.procs.append(proc)
            await proc.start(SERVER_LIMIT)

    async def add(self, proc: AckCheckedProcess) -> AckCheckedProcess:
        self.procs.append(proc)
        await proc.start(SERVER_LIMIT)
        return proc

    async def close(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                await proc.stop()
        _kill_strays(self.tmp / "agent")


def _kill_strays(root: Path) -> None:
    prefix = str(root.resolve()) + "/"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (os.readlink(f"/proc/{entry}/cwd") + "/").startswith(prefix):
                os.kill(int(entry), signal.SIGKILL)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        await c.start()
        yield c
    finally:
        await c.close()


async def _call(method: str, url: str, body: Any = None) -> Any:
    import json

    status, _, raw = await request(method, url, json=body)
    assert 200 <= status < 300, f"{method} {url} -> {status}: {raw[:500]!r}"
    return json.loads(raw) if raw else None


def _lines_for(log: Path, task_id: str) -> list[dict[str, Any]]:
    return [line for line in read_ack_log(log) if line["task_id"] == task_id]


@pytest.mark.timeout(400)
async def test_services_acknowledgements_are_durable(cluster: Cluster, tmp_path: Path) -> None:
    ack_log = tmp_path / "services-acks.jsonl"
    svc = await cluster.add(services_process([cluster.master.url], tmp_path / "services",
                                             ack_log))
    assert svc.db == tmp_path / "services" / "services.db"
    app = {"id": "/acks", "instances": 2, "cpus": 0.1, "mem": 16, "cmd": "sleep 1000",
           "portDefinitions": []}
    await _call("POST", f"{svc.url}/v2/apps", app)

    async def tasks() -> list[dict[str, Any]]:
        return (await get_json(f"{svc.url}/v2/apps/acks/tasks"))["tasks"]

    async def both_running() -> list[str] | None:
        current = await tasks()
        running = [t["id"] for t in current if t["state"] == "TASK_RUNNING"]
        return running if len(running) == 2 and len(current) == 2 else None

    ids = await wait_for(both_running, CLUSTER_LIMIT, interval=0.2,
                         message="both instances of /acks to run")
    # kill -9 the launcher and start it again on the same store and ack log: the
    # framework adopts its tasks, the log goes on where it stopped.
    before = read_ack_log(ack_log)
    svc.kill9()
    await svc.start(SERVER_LIMIT)
    assert read_ack_log(ack_log)[:len(before)] == before  # nothing lost or torn
    await _call("PUT", f"{svc.url}/v2/apps/acks?force=true", {"instances": 0})

    async def none_left() -> bool:
        return not await tasks()

    await wait_for(none_left, CLUSTER_LIMIT, interval=0.2,
                   message="/acks to have no task left")

    def acknowledged_through_the_end() -> bool:
        # The terminal ack goes out with the commit after the update is folded in:
        # it may trail the API's answer by one generation.
        return all({"TASK_RUNNING"} <= {x["acked_state"] for x in _lines_for(ack_log, t)}
                   and any(x["acked_state"] in TERMINAL for x in _lines_for(ack_log, t))
                   for t in ids)

    await wait_for(acknowledged_through_the_end, SERVER_LIMIT, interval=0.1,
                   message=f"RUNNING and terminal acknowledgements of {ids} in {ack_log}")
    lines = read_ack_log(ack_log)
    assert {x["kind"] for x in lines} == {"services"}
    for t in ids:
        mine = _lines_for(ack_log, t)
        assert all(x["ok"] for x in mine), mine
        ended = [x for x in mine if x["acked_state"] in TERMINAL]
        # services deletes a task's row with its terminal update
        assert all(x["durable_state"] == "gone" for x in ended), ended
    assert ack_violations(ack_log) == []
    print(f"\nservices acks: {len(lines)} checked, states "
          f"{sorted({x['acked_state'] for x in lines})}, 0 violations")


@pytest.mark.timeout(400)
async def test_batch_acknowledgements_are_durable(cluster: Cluster, tmp_path: Path) -> None:
    ack_log = tmp_path / "batch-acks.jsonl"
    batch = await cluster.add(batch_process([cluster.master.url], tmp_path / "batch", ack_log))
    assert batch.db == tmp_path / "batch" / "batch.db"
    job = {"id": "acks", "cpus": 0.1, "mem": 16, "steps": [{"name": "only", "command": "true"}]}
    await _call("PUT", f"{batch.url}/v1/jobs/acks", job)
    run_id = (await _call("POST", f"{batch.url}/v1/jobs/acks/runs"))["id"]

    async def ended() -> dict[str, Any] | None:
        run = await get_json(f"{batch.url}/v1/runs/{run_id}")
        return run if run["state"] != "ACTIVE" else None

    run = await wait_for(ended, CLUSTER_LIMIT, interval=0.2, message=f"run {run_id} to end")
    assert run["state"] == "SUCCEEDED", run
    (attempt,) = [a["id"] for a in run["attempts"]]

    def finished_acknowledged() -> bool:
        return any(x["acked_state"] == "TASK_FINISHED" for x in _lines_for(ack_log, attempt))

    await wait_for(finished_acknowledged, SERVER_LIMIT, interval=0.1,
                   message=f"the TASK_FINISHED acknowledgement of {attempt} in {ack_log}")
    mine = _lines_for(ack_log, attempt)
    assert all(x["ok"] and x["kind"] == "batch" for x in mine), mine
    # batch keeps attempt rows: the durable state is the attempt's own
    assert [x["durable_state"] for x in mine if x["acked_state"] == "TASK_FINISHED"][-1] \
        == AttemptState.FINISHED.value
    assert ack_violations(ack_log) == []
    print(f"\nbatch acks: {len(mine)} for attempt {attempt}: "
          f"{[x['acked_state'] for x in mine]}, 0 violations")


# -------------------------------------------------------------------- the check can fail


def _services_store(db: Path, state: str | None) -> None:
    """Write task "t1" the way services does (its journal, its store); ``None``: the
    row is deleted again (a terminal update)."""
    store = ServicesStore(sqlite_url(db))
    journal = services_journal()
    record = TaskRecord(id="t1", app_id="/a", version="v", config_version="c",
                        agent_id="agent", hostname="localhost", staged_at=time.time())
    if state is not None:
        record.state = state
    journal.put(TASKS, "t1", record)
    batch = journal.take()
    assert batch is not None
    store.apply(batch)
    journal.committed(batch)
    if state is None:
        journal.delete(TASKS, "t1")
        batch = journal.take()
        assert batch is not None
        store.apply(batch)
    store.close()


def _batch_store(db: Path, state: AttemptState) -> None:
    store = BatchStore(sqlite_url(db))
    journal = batch_journal()
    journal.put(ATTEMPTS, "r.only.0.0", Attempt("r.only.0.0", "r", "only", 0, 0, state,
                                                time.time(), "agent", "localhost"))
    batch = journal.take()
    assert batch is not None
    store.apply(batch)
    store.close()


@pytest.mark.parametrize("kind", ["services", "batch"])
def test_an_acknowledgement_ahead_of_the_store_is_a_violation(tmp_path: Path,
                                                              kind: str) -> None:
    db, log = tmp_path / f"{kind}.db", tmp_path / "acks.jsonl"
    if kind == "services":
        _services_store(db, "TASK_STAGING")  # the default: omitted from the document
        task = "t1"
    else:
        _batch_store(db, AttemptState.LAUNCHING)
        task = "r.only.0.0"
    uuid = bytes(range(16))
    assert check_and_log(log, kind, db, task, uuid, "TASK_RUNNING") is False
    (line,) = read_ack_log(log)
    assert line["ok"] is False and line["uuid"] == uuid.hex()
    assert line["durable_state"] == ("TASK_STAGING" if kind == "services" else "LAUNCHING")
    (violation,) = ack_violations(log)
    assert violation.invariant == "ack-durable" and violation.at == line["t"]
    assert task in violation.message and "TASK_RUNNING" in violation.message
    assert ack_violations(log, since=line["t"] + 1) == []  # older than ``since``


def test_acknowledgements_behind_or_level_with_the_store_pass(tmp_path: Path) -> None:
    log = tmp_path / "acks.jsonl"
    _services_store(tmp_path / "running.db", "TASK_RUNNING")
    _services_store(tmp_path / "gone.db", None)
    _batch_store(tmp_path / "batch.db", AttemptState.FINISHED)
    uuid = b"u" * 16
    assert check_and_log(log, "services", tmp_path / "running.db", "t1", uuid, "TASK_RUNNING")
    assert check_and_log(log, "services", tmp_path / "running.db", "t1", uuid, "TASK_STARTING")
    assert check_and_log(log, "services", tmp_path / "gone.db", "t1", uuid, "TASK_KILLED")
    assert check_and_log(log, "batch", tmp_path / "batch.db", "r.only.0.0", uuid,
                         "TASK_FINISHED")
    # a terminal ack while the row still says RUNNING is not durable
    assert not check_and_log(log, "services", tmp_path / "running.db", "t1", uuid,
                             "TASK_FAILED")
    assert [x["durable_state"] for x in read_ack_log(log)] == [
        "TASK_RUNNING", "TASK_RUNNING", "gone", "FINISHED", "TASK_RUNNING"]
    assert len(ack_violations(log)) == 1


def test_a_torn_last_line_is_skipped_and_cut_before_appending(tmp_path: Path) -> None:
    log = tmp_path / "acks.jsonl"
    _batch_store(tmp_path / "batch.db", AttemptState.STAGING)
    check_and_log(log, "batch", tmp_path / "batch.db", "r.only.0.0", b"a" * 16, "TASK_STAGING")
    with open(log, "a") as f:
        f.write('{"t": 1.0, "kind": "ba')  # a kill in the middle of a write
    assert len(read_ack_log(log)) == 1
    repair_log(log)  # what the launcher does when it starts again
    check_and_log(log, "batch", tmp_path / "batch.db", "r.only.0.0", b"b" * 16, "TASK_RUNNING")
    lines = read_ack_log(log)
    assert [x["uuid"] for x in lines] == [(b"a" * 16).hex(), (b"b" * 16).hex()]
    assert [x["ok"] for x in lines] == [True, False]
    assert read_ack_log(tmp_path / "missing.jsonl") == []
