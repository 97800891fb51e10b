"""What the soak observes, from outside the cluster: live task copies (processes and
containers), the batch side file and store, and every file a secret could leak into.
Small blocking functions (call them from a worker thread in async code), each
tolerant of what changes under it while it looks.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID, LABEL_TASK_ID
from mesoslite.agent.secret_files import MOUNT_DIR, mounted_under

# ------------------------------------------------------------------ live copies

_DELETED = " (deleted)"  # what the kernel appends to a cwd whose directory was removed


def _task_of(rest: list[str], framework_dir: Path) -> str | None:
    """The task id a cwd below ``sandboxes/`` belongs to; ``rest`` is the path after
    ``sandboxes/<framework id>/`` split on "/" (mesoslite/agent/checkpoint.py layout)."""
    if not rest or not rest[0]:
        return None
    if rest[0] == "executors":
        return None  # a custom executor's sandbox: no task id in the path
    if len(rest) >= 3 and rest[1] == "tasks" and rest[2] and (
            framework_dir / rest[2]).is_symlink():
        # ``<executor id>/tasks/<task id>``: a task group's task; the agent links
        # ``<framework id>/<task id>`` to it (a plain task's own "tasks" subdirectory
        # has no such link)
        return rest[2]
    return rest[0]


def live_process_tasks(agent_work_dirs: dict[str, Path]) -> dict[str, set[str]]:
    """Per agent (every key of ``agent_work_dirs``, even with nothing live), the task
    ids with at least one live process: a process whose working directory is
    ``<work dir>/sandboxes/<framework id>/<task id>`` or below it (the supervisor
    chdirs there before it execs the command, and children inherit it).  A cwd whose
    directory was removed meanwhile still counts: the process lives on.

    Agents in network namespaces share the filesystem and the pid namespace, so one
    /proc scan sees them all.  Processes that end during the scan, zombies and kernel
    threads are passed over.  Docker tasks run in their own mount namespace and are
    found by ``live_docker_tasks`` instead."""
    roots = {}
    for name, work in agent_work_dirs.items():
        # /proc shows resolved paths: compare with the resolved work dir
        roots[os.path.realpath(work) + "/sandboxes/"] = name
    found: dict[str, set[str]] = {name: set() for name in agent_work_dirs}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for pid in entries:
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue  # gone meanwhile, a zombie, or a kernel thread
        cwd = cwd.removesuffix(_DELETED)
        for root, agent in roots.items():
            if cwd.startswith(root):
                framework, _, rest = cwd[len(root):].partition("/")
                task = _task_of(rest.split("/"), Path(root) / framework) if framework else None
                if task:
                    found[agent].add(task)
                break
    return found


def live_docker_tasks(client: Any, runtime_ids: dict[str, str]) -> dict[str, set[str]]:
    """Per agent (every key of ``runtime_ids``: agent name -> the agent's runtime id,
    from ``<agent work dir>/runtime_id``), the task ids of its running containers,
    from their labels ``mesoslite.runtime_id`` and ``mesoslite.task_id``
    (``mesoslite/agent/containerizers/docker_spec.py``).  ``client`` is a
    ``docker.DockerClient``; one list call (the low-level API: the list answer
    carries the labels, so no container can vanish between list and inspect).
    Raises what the client raises when the engine does not answer."""
    by_runtime = {rid: agent for agent, rid in runtime_ids.items()}
    found: dict[str, set[str]] = {agent: set() for agent in runtime_ids}
    for container in client.api.containers(filters={"label": LABEL_RUNTIME_ID}):
        labels = container.get("Labels") or {}
        agent = by_runtime.get(labels.get(LABEL_RUNTIME_ID, ""))
        task = labels.get(LABEL_TASK_ID)
        if agent is not None and task:
            found[agent].add(task)
    return found


# ------------------------------------------------------------------ batch


def read_side_file(path: Path) -> list[str]:
    """The attempt ids appended to the side file, in order, one per line (none when
    there is no file yet).  An unterminated last line is left out: it is a write in
    progress (``echo`` writes its line and newline at once), to be read complete
    next time.  Blank lines are skipped."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # the part after the last newline is unfinished
    return [text for line in lines if (text := line.decode(errors="replace").strip())]


def _connect(db: Path) -> contextlib.closing[sqlite3.Connection]:
    # read-only, so the soak can never change what it checks; a writer holding the
    # lock makes us wait, not fail (WAL readers rarely wait at all)
    uri = Path(db).resolve().as_uri() + "?mode=ro"
    return contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10))


def batch_attempts(db: Path) -> list[dict[str, Any]]:
    """Every attempt document in the batch framework's SQLite store (table
    ``batch_attempts``, column ``data``: ``Attempt.to_json``), read-only."""
    with _connect(db) as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT data FROM batch_attempts")]


def batch_runs(db: Path, job_id: str | None = None) -> list[dict[str, Any]]:
    """Every run document (``Run.to_json``: spec, state, trigger, scheduled_for,
    steps ...) in the batch store, or those of ``job_id``, oldest first.  All of them:
    the API pages runs (50 by default)."""
    with _connect(db) as conn:
        if job_id is None:
            rows = conn.execute("SELECT data FROM batch_runs ORDER BY created_at")
        else:
            rows = conn.execute("SELECT data FROM batch_runs WHERE job_id = ? "
                                "ORDER BY created_at", (job_id,))
        return [json.loads(row[0]) for row in rows]


def batch_job(db: Path, job_id: str) -> dict[str, Any] | None:
    """A job's record in the batch store (``JobRecord.to_json``: spec, created_at,
    cursors per schedule, skips), None when there is none."""
    with _connect(db) as conn:
        row = conn.execute("SELECT data FROM batch_jobs WHERE id = ?", (job_id,)).fetchone()
    return json.loads(row[0]) if row else None


@dataclass(frozen=True)
class BatchView:
    """The side file read before and after one read transaction of the store."""

    side_before: list[str]
    attempts: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    side_after: list[str]


def batch_view(side_file: Path, db: Path) -> BatchView:
    """What ``checks.check_exactly_once`` needs, read in the order that makes it
    sound while work goes on: the side file (every id there belongs to an attempt
    already durable), then attempts and runs in one read transaction (one snapshot),
    then the side file again (every attempt the snapshot says ran has written its
    line by then)."""
    before = read_side_file(side_file)
    with _connect(db) as conn:
        conn.execute("BEGIN")
        attempts = [json.loads(r[0]) for r in conn.execute("SELECT data FROM batch_attempts")]
        runs = [json.loads(r[0]) for r in conn.execute(
            "SELECT data FROM batch_runs ORDER BY created_at")]
        conn.execute("COMMIT")
    return BatchView(before, attempts, runs, read_side_file(side_file))


def sandbox_outputs(agent_dirs: list[Path], task_ids: list[str]
                    ) -> dict[str, tuple[bytes, bytes] | None]:
    """The (stdout, stderr) of each task's sandbox on any of the agents
    (``<work_dir>/sandboxes/<framework_id>/<task_id>``); None where none is found."""
    out: dict[str, tuple[bytes, bytes] | None] = dict.fromkeys(task_ids)
    for task_id in task_ids:
        for work in agent_dirs:
            for box in (work / "sandboxes").glob(f"*/{task_id}"):
                with contextlib.suppress(OSError):
                    out[task_id] = ((box / "stdout").read_bytes(),
                                    (box / "stderr").read_bytes())
    return out


# ------------------------------------------------------------------ files

CHUNK = 16 * 2**20  # files are read in pieces this large ...
OVERLAP = 4096  # ... each repeating the previous one's tail, so no value is cut in two


def mounted_secret_dir(path: Path) -> bool:
    """Whether ``path`` is a mounted secret tmpfs (``<sandbox>/.secrets`` of a running
    task, ``mesoslite/agent/secret_files.py``): its values are meant to be there and
    it goes away with the task."""
    return path.name == MOUNT_DIR and os.path.ismount(path)


def file_chunks(roots: list[Path], skip: Callable[[Path], bool] = mounted_secret_dir
                ) -> Iterator[tuple[str, bytes]]:
    """``(path, content)`` of every regular file under ``roots`` (files bigger than
    ``CHUNK`` come in overlapping pieces named ``path@offset``).  Not entered or read:
    paths ``skip`` names, mounted secret tmpfs dirs (whatever ``skip`` is), symlinks
    (a task's link to its secret file would otherwise be followed), and anything that
    is no regular file (FIFOs would block) or cannot be read (gone meanwhile,
    permissions)."""
    secret_mounts = {str(s) + "/" + MOUNT_DIR for root in roots for s in mounted_under(root)}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            dirs[:] = [d for d in dirs
                       if os.path.realpath(here / d) not in secret_mounts and not skip(here / d)]
            for name in files:
                path = here / name
                if skip(path):
                    continue
                yield from _read(path)


def _read(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return  # a symlink (ELOOP), gone, or not ours to read
    with os.fdopen(fd, "rb") as f:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return
            offset, tail = 0, b""
            while True:
                piece = f.read(CHUNK)
                if not piece:
                    break
                where = str(path) if offset == 0 and len(piece) < CHUNK else f"{path}@{offset}"
                yield where, tail + piece
                offset += len(piece)
                tail = piece[-OVERLAP:]
                if len(piece) < CHUNK:
                    break
        except OSError:
            return
