"""The agent's checkpoints: what it must remember across ``kill -9``.

Layout under the work dir::

    agent_id                                   the id the master gave us
    meta/<framework_id>/framework.json         FrameworkInfo
    meta/<framework_id>/<task_id>/task.json    TaskInfo, container id and record
    meta/<framework_id>/<task_id>/updates.json unacknowledged updates + latest status
    meta/<framework_id>/<task_id>/executor_task.json
                                               a task handed to a custom executor
    executors/<framework_id>/<executor_id>/executor.json
                                               a custom executor: info, container record
    sandboxes/<framework_id>/<task_id>/        stdout, stderr, the task's files
    sandboxes/<framework_id>/executors/<executor_id>/
                                               a custom executor's (and its tasks') sandbox
    sandboxes/<framework_id>/<executor_id>/    a task group's sandbox, shared by its tasks
    sandboxes/<framework_id>/<executor_id>/tasks/<task_id>/   a group task's own sandbox;
        sandboxes/<framework_id>/<task_id> is then a symlink to it (HTTP, logs find it)

Every write is atomic (temporary file, fsync, rename, fsync of the directory), so a
crash leaves either the old or the new file, never a torn one.  A file that fails to
parse anyway (disk corruption) is reported and skipped, never fatal.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from mesoslite.messages.agent import StatusUpdate
from mesoslite.messages.mesos import ExecutorInfo, FrameworkInfo, TaskInfo, TaskStatus

log = logging.getLogger(__name__)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class GroupMembership(msgspec.Struct, omit_defaults=True):
    """The task group (LAUNCH_GROUP) a task belongs to, checkpointed with each of its
    tasks (see ``agent/task_groups.py``).  ``members``: every task id of the group in
    the order of the LAUNCH_GROUP (the first names the group); ``network_owner``: the
    task whose Docker network namespace the group's other Docker tasks join, and
    ``network_container`` the container id it runs as; ``failure``: set once the group
    is being killed, saying why (a restarted agent finishes the job)."""

    executor_id: str
    members: list[str]
    network_owner: str | None = None
    network_container: str | None = None
    failure: str | None = None
    executor: ExecutorInfo | None = None


class TaskCheckpoint(msgspec.Struct, omit_defaults=True):
    framework_id: str
    task: TaskInfo
    container_id: str
    containerizer: str
    record: dict[str, Any] | None = None  # set once the container runs
    launched_at: float = 0.0
    kill_requested: bool = False
    group: GroupMembership | None = None


class UpdatesCheckpoint(msgspec.Struct, omit_defaults=True):
    latest: TaskStatus
    pending: list[StatusUpdate] = []


class ExecutorCheckpoint(msgspec.Struct, omit_defaults=True):
    """A custom executor the agent started (docs/executors.md)."""

    framework: FrameworkInfo
    info: ExecutorInfo
    container_id: str
    containerizer: str
    record: dict[str, Any] | None = None  # set once the container runs
    launched_at: float = 0.0
    token: str = ""  # the executor's credential for the executor API

    @property
    def framework_id(self) -> str:
        return self.framework.id.value if self.framework.id else ""

    @property
    def executor_id(self) -> str:
        return self.info.executor_id.value if self.info.executor_id else ""


class ExecutorTaskCheckpoint(msgspec.Struct, omit_defaults=True):
    """A task handed to a custom executor; ``sent``: it went out in a LAUNCH event
    (else it waits for the executor to subscribe)."""

    framework_id: str
    executor_id: str
    task: TaskInfo
    sent: bool = False


@dataclass
class RecoveredExecutor:
    checkpoint: ExecutorCheckpoint
    tasks: list[tuple[ExecutorTaskCheckpoint, UpdatesCheckpoint | None]]


@dataclass
class RecoveredTask:
    checkpoint: TaskCheckpoint
    updates: UpdatesCheckpoint | None


class Checkpoints:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.meta = work_dir / "meta"
        self.sandboxes = work_dir / "sandboxes"
        self._enc = msgspec.json.Encoder()
        # framework.json as this process last wrote it: every launch saves the
        # framework, and rewriting the same bytes costs two fsyncs per task.
        self._frameworks_written: dict[str, bytes] = {}

    # -- agent id -------------------------------------------------------------

    def agent_id(self) -> str | None:
        path = self.work_dir / "agent_id"
        if not path.exists():
            return None
        value = path.read_text().strip()
        return value or None

    def save_agent_id(self, agent_id: str) -> None:
        atomic_write(self.work_dir / "agent_id", agent_id.encode())

    # -- paths ----------------------------------------------------------------

    def task_dir(self, framework_id: str, task_id: str) -> Path:
        return self.meta / framework_id / task_id

    def sandbox(self, framework_id: str, task_id: str) -> Path:
        """Where a task's (or an executor's) sandbox is found: for a group's task a
        symlink to its own sandbox inside the group's."""
        return self.sandboxes / framework_id / task_id

    def executor_dir(self, framework_id: str, executor_id: str) -> Path:
        return self.work_dir / "executors" / framework_id / executor_id

    def executor_sandbox(self, framework_id: str, executor_id: str) -> Path:
        return self.sandboxes / framework_id / "executors" / executor_id
    def group_task_sandbox(self, framework_id: str, executor_id: str, task_id: str) -> Path:
        """A group task's own sandbox, inside its group's (its executor's)."""
        return self.sandbox(framework_id, executor_id) / "tasks" / task_id

    def prepare_group_sandbox(self, framework_id: str, executor_id: str, task_id: str,
                              fresh_group: bool) -> None:
        """Make a group task's sandbox and the symlink ``sandbox(framework_id,
        task_id)`` to it; ``fresh_group``: first empty the group's sandbox (left by an
        earlier group of the same executor id)."""
        if fresh_group:
            _remove(self.sandbox(framework_id, executor_id))
        own = self.group_task_sandbox(framework_id, executor_id, task_id)
        _remove(own)
        own.mkdir(parents=True)
        link = self.sandbox(framework_id, task_id)
        _remove(link)
        link.symlink_to(own.relative_to(link.parent))

    # -- writes ---------------------------------------------------------------

    def save_framework(self, info: FrameworkInfo) -> None:
        assert info.id is not None
        fid, data = info.id.value, self._enc.encode(info)
        path = self.meta / fid / "framework.json"
        if self._frameworks_written.get(fid) == data and path.exists():
            return
        atomic_write(path, data)
        self._frameworks_written[fid] = data

    def save_task(self, cp: TaskCheckpoint) -> None:
        path = self.task_dir(cp.framework_id, cp.task.task_id.value) / "task.json"
        atomic_write(path, self._enc.encode(cp))

    def save_updates(self, framework_id: str, task_id: str, updates: UpdatesCheckpoint) -> None:
        path = self.task_dir(framework_id, task_id) / "updates.json"
        atomic_write(path, self._enc.encode(updates))

    def save_executor(self, cp: ExecutorCheckpoint) -> None:
        path = self.executor_dir(cp.framework_id, cp.executor_id) / "executor.json"
        atomic_write(path, self._enc.encode(cp))

    def remove_executor(self, framework_id: str, executor_id: str) -> None:
        shutil.rmtree(self.executor_dir(framework_id, executor_id), ignore_errors=True)

    def save_executor_task(self, cp: ExecutorTaskCheckpoint) -> None:
        path = self.task_dir(cp.framework_id, cp.task.task_id.value) / "executor_task.json"
        atomic_write(path, self._enc.encode(cp))

    def remove_task(self, framework_id: str, task_id: str) -> None:
        shutil.rmtree(self.task_dir(framework_id, task_id), ignore_errors=True)
        fw_dir = self.meta / framework_id
        if fw_dir.exists() and not any(p.is_dir() for p in fw_dir.iterdir()):
            self._frameworks_written.pop(framework_id, None)
            shutil.rmtree(fw_dir, ignore_errors=True)

    # -- reads ----------------------------------------------------------------

    def frameworks(self) -> dict[str, FrameworkInfo]:
        out: dict[str, FrameworkInfo] = {}
        if not self.meta.exists():
            return out
        for path in self.meta.glob("*/framework.json"):
            info = _read(path, FrameworkInfo)
            if info is not None and info.id is not None:
                out[info.id.value] = info
        return out

    def tasks(self) -> Iterator[RecoveredTask]:
        if not self.meta.exists():
            return
        for path in sorted(self.meta.glob("*/*/task.json")):
            cp = _read(path, TaskCheckpoint)
            if cp is None:
                continue
            updates = _read(path.parent / "updates.json", UpdatesCheckpoint)
            yield RecoveredTask(cp, updates)


    def executors(self) -> Iterator[RecoveredExecutor]:
        """Every checkpointed executor with the tasks it was handed."""
        tasks: dict[tuple[str, str], list] = {}
        if self.meta.exists():
            for path in sorted(self.meta.glob("*/*/executor_task.json")):
                task = _read(path, ExecutorTaskCheckpoint)
                if task is not None:
                    updates = _read(path.parent / "updates.json", UpdatesCheckpoint)
                    tasks.setdefault((task.framework_id, task.executor_id), []).append(
                        (task, updates))
        root = self.work_dir / "executors"
        if not root.exists():
            return
        for path in sorted(root.glob("*/*/executor.json")):
            cp = _read(path, ExecutorCheckpoint)
            if cp is not None:
                yield RecoveredExecutor(cp, tasks.get((cp.framework_id, cp.executor_id), []))


def _remove(path: Path) -> None:
    """Remove a file, a symlink (not its target) or a directory tree, if any."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _read(path: Path, cls: type) -> Any:
    if not path.exists():
        return None
    try:
        return msgspec.json.decode(path.read_bytes(), type=cls)
    except (msgspec.DecodeError, msgspec.ValidationError, OSError) as exc:
        log.error("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
