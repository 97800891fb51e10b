"""The soak's observers (``mesoslite/testing/soak/observe.py``) on real things: child
processes whose working directory is a fake agent's sandbox, a batch store written
by the framework's own journal, side files, a directory tree to scan.
``live_docker_tasks`` gets a stand-in client (the list call's answer is all it reads);
the real engine is exercised by the soak itself."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from frameworks.batch.model import parse_job
from frameworks.batch.records import Attempt, AttemptState, Run
from frameworks.batch.state import JobRecord
from frameworks.batch.store import ATTEMPTS, JOBS, RUNS, BatchStore, batch_journal
from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID, LABEL_TASK_ID
from mesoslite.testing.poll import wait_until
from mesoslite.testing.soak import observe
from mesoslite.testing.soak.checks import check_exactly_once
from tests.conftest import require

WEB1 = "soak_web." + "a" * 32
WEB2 = "soak_web." + "b" * 32


@pytest.fixture
def spawn():
    """Start ``sleep`` in a directory; every child is killed at teardown."""
    children: list[subprocess.Popen] = []

    def start(cwd: Path) -> subprocess.Popen:
        child = subprocess.Popen(["sleep", "120"], cwd=cwd, start_new_session=True)
        children.append(child)
        # Popen returns once the exec succeeded, i.e. after the chdir; this bounds it
        wait_until(lambda: os.path.realpath(f"/proc/{child.pid}/cwd") == os.path.realpath(cwd)
                   or child.poll() is not None, 10, message="the child in its directory")
        assert child.poll() is None
        return child

    yield start
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)


def kill(child: subprocess.Popen) -> None:
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=10)


def test_live_process_tasks_are_found_by_their_sandbox(tmp_path, spawn):
    a1, d1 = tmp_path / "a1", tmp_path / "d1"
    web1 = a1 / "sandboxes" / "fw-1" / WEB1
    deep = a1 / "sandboxes" / "fw-1" / WEB2 / "sub"
    for d in (web1, deep, d1 / "sandboxes" / "fw-1", tmp_path / "elsewhere"):
        d.mkdir(parents=True)
    dirs = {"a1": a1, "d1": d1}
    assert observe.live_process_tasks(dirs) == {"a1": set(), "d1": set()}
    first = spawn(web1)
    spawn(deep)
    spawn(tmp_path / "elsewhere")
    assert observe.live_process_tasks(dirs) == {"a1": {WEB1, WEB2}, "d1": set()}
    # through a symlinked work dir, as /tmp may be: /proc shows the resolved path
    (tmp_path / "link").symlink_to(a1)
    assert observe.live_process_tasks({"a1": tmp_path / "link"}) == {"a1": {WEB1, WEB2}}
    kill(first)
    assert observe.live_process_tasks(dirs) == {"a1": {WEB2}, "d1": set()}


def test_a_process_outliving_its_sandbox_still_counts(tmp_path, spawn):
    sandbox = tmp_path / "a1" / "sandboxes" / "fw-1" / WEB1
    sandbox.mkdir(parents=True)
    spawn(sandbox)
    shutil.rmtree(sandbox)  # "<path> (deleted)" in /proc
    assert observe.live_process_tasks({"a1": tmp_path / "a1"}) == {"a1": {WEB1}}


def test_group_tasks_and_executors(tmp_path, spawn):
    fw = tmp_path / "a1" / "sandboxes" / "fw-1"
    group_task = fw / "group-exec" / "tasks" / "pod-task"
    group_task.mkdir(parents=True)
    (fw / "pod-task").symlink_to(group_task)  # what the agent leaves for a group's task
    own_tasks_dir = fw / WEB1 / "tasks" / "x"  # a plain task's own "tasks" directory
    own_tasks_dir.mkdir(parents=True)
    executor = fw / "executors" / "custom"
    executor.mkdir(parents=True)
    for d in (group_task, own_tasks_dir, executor):
        spawn(d)
    assert observe.live_process_tasks({"a1": tmp_path / "a1"}) == {"a1": {"pod-task", WEB1}}


def test_live_docker_tasks_read_the_labels_of_the_list_answer():
    class Api:
        def containers(self, filters):
            assert filters == {"label": LABEL_RUNTIME_ID}
            return [{"Labels": {LABEL_RUNTIME_ID: "rid-1", LABEL_TASK_ID: WEB1}},
                    {"Labels": {LABEL_RUNTIME_ID: "rid-2", LABEL_TASK_ID: WEB2}},
                    {"Labels": {LABEL_RUNTIME_ID: "someone-else", LABEL_TASK_ID: "x"}},
                    {"Labels": None}]

    class Client:
        api = Api()

    assert observe.live_docker_tasks(Client(), {"d1": "rid-1", "d2": "rid-2", "d3": "rid-3"}) \
        == {"d1": {WEB1}, "d2": {WEB2}, "d3": set()}


def test_the_side_file_gives_its_complete_lines(tmp_path):
    side = tmp_path / "attempts.log"
    assert observe.read_side_file(side) == []
    side.write_text("a.s.0.1\n\na.s.1.1\na.s.2.")  # the last line is still being written
    assert observe.read_side_file(side) == ["a.s.0.1", "a.s.1.1"]
    with open(side, "a") as f:
        f.write("1\n")
    assert observe.read_side_file(side) == ["a.s.0.1", "a.s.1.1", "a.s.2.1"]


JOB = {"id": "pipe", "cpus": 0.05, "mem": 32,
       "steps": [{"name": "prep", "completions": 2, "command": "true"},
                 {"name": "gang", "depends_on": ["prep"], "completions": 2, "gang": True,
                  "command": "true"}],
       "schedules": [{"id": "default", "cron": "* * * * *"}]}


@pytest.fixture
def batch_db(tmp_path):
    """A batch store written the framework's way: records through its journal."""
    db = tmp_path / "batch.db"
    store = BatchStore(f"sqlite:///{db}")
    spec = parse_job(JOB)
    journal = batch_journal()
    journal.put(JOBS, "pipe", JobRecord(spec, 100.0, 100.0, {"default": 160.0},
                                        [{"schedule": "default", "fire_time": 120.0,
                                          "reason": "FORBID: a run of this job is still active"}]))
    run = Run("pipe-1", "pipe", spec, 101.0)
    journal.put(RUNS, run.id, run)
    for i, state in ((0, AttemptState.FINISHED), (1, AttemptState.RUNNING)):
        journal.put(ATTEMPTS, f"pipe-1.prep.{i}.1",
                    Attempt(f"pipe-1.prep.{i}.1", "pipe-1", "prep", i, 1, state, 102.0))
    batch = journal.take()
    assert batch is not None
    store.apply(batch)
    yield db, store
    store.close()


def test_the_batch_store_is_read_as_the_framework_wrote_it(batch_db, tmp_path):
    db, store = batch_db
    attempts = sorted(observe.batch_attempts(db), key=lambda a: a["id"])
    assert [(a["id"], a["run_id"], a["step"], a["index"], a["number"], a["state"])
            for a in attempts] == [("pipe-1.prep.0.1", "pipe-1", "prep", 0, 1, "FINISHED"),
                                   ("pipe-1.prep.1.1", "pipe-1", "prep", 1, 1, "RUNNING")]
    runs = observe.batch_runs(db)
    assert [r["id"] for r in runs] == ["pipe-1"] == [r["id"] for r in observe.batch_runs(db, "pipe")]
    assert observe.batch_runs(db, "other") == []
    assert [s["gang"] for s in runs[0]["spec"]["steps"]] == [False, True]
    job = observe.batch_job(db, "pipe")
    assert job is not None and job["created_at"] == 100.0
    assert job["cursors"] == {"default": 160.0} and job["skips"][0]["fire_time"] == 120.0
    assert observe.batch_job(db, "nope") is None
    side = tmp_path / "attempts.log"
    side.write_text("pipe-1.prep.0.1\n")
    view = observe.batch_view(side, db)
    assert view.side_before == view.side_after == ["pipe-1.prep.0.1"]
    assert check_exactly_once(view.side_after, view.attempts, side_ids_before=view.side_before,
                              runs=view.runs) == []
    store.close()  # the framework stopped: still readable, and never written by us
    before = db.stat().st_mtime_ns
    assert len(observe.batch_attempts(db)) == 2
    assert db.stat().st_mtime_ns == before
    with pytest.raises(sqlite3.OperationalError):  # a missing store is not made up
        observe.batch_attempts(tmp_path / "missing.db")


def test_file_chunks_read_regular_files_only(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.log").write_bytes(b"hello")
    (tmp_path / "sub" / "b").write_bytes(b"x")
    (tmp_path / "skipped").mkdir()
    (tmp_path / "skipped" / "c").write_bytes(b"no")
    (tmp_path / "link").symlink_to(tmp_path / "a.log")
    os.mkfifo(tmp_path / "fifo")  # reading it would block
    unreadable = tmp_path / "gone"
    unreadable.symlink_to(tmp_path / "nowhere")
    got = dict(observe.file_chunks([tmp_path], skip=lambda p: p.name == "skipped"))
    assert got == {str(tmp_path / "a.log"): b"hello", str(tmp_path / "sub" / "b"): b"x"}
    assert str(tmp_path / "skipped" / "c") in dict(observe.file_chunks([tmp_path]))


def test_big_files_come_in_overlapping_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(observe, "CHUNK", 10)
    monkeypatch.setattr(observe, "OVERLAP", 4)
    (tmp_path / "big").write_bytes(b"0123456789abcdefghijKLM")
    pieces = list(observe.file_chunks([tmp_path]))
    big = str(tmp_path / "big")
    assert pieces == [(f"{big}@0", b"0123456789"), (f"{big}@10", b"6789abcdefghij"),
                      (f"{big}@20", b"ghijKLM")]


def test_a_mounted_secret_tmpfs_is_never_read(tmp_path):
    sandbox = tmp_path / "a1" / "sandboxes" / "fw-1" / WEB1
    secrets_dir = sandbox / ".secrets"
    secrets_dir.mkdir(parents=True)
    (sandbox / "stdout").write_bytes(b"out")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                              str(secrets_dir)], check=False, capture_output=True,
                             timeout=30)
    # secret tmpfs mounts need root, as the agents do (CI runs as root)
    require(mounted.returncode == 0,
            f"mounting a tmpfs (root): {mounted.stderr.decode().strip()}")
    try:
        (secrets_dir / "0").write_bytes(b"the value")
        everything = dict(observe.file_chunks([tmp_path], skip=lambda p: False))
        assert everything == {str(sandbox / "stdout"): b"out"}
        assert dict(observe.file_chunks([tmp_path])) == everything
    finally:
        subprocess.run(["umount", "-l", str(secrets_dir)], check=True, timeout=30)
    # unmounted, the directory is an ordinary one again, and read
    (secrets_dir / "left").write_bytes(b"plain")
    assert dict(observe.file_chunks([tmp_path]))[str(secrets_dir / "left")] == b"plain"
