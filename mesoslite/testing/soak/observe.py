"""What the soak observes, from outside the cluster: live task copies (processes and
containers), the batch side file and store, and every file a secret could leak into.
Small functions, each tolerant of what changes under it while it looks.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID, LABEL_TASK_ID
from mesoslite.agent.secret_files import mounted_under

MAX_FILE = 64 * 2**20  # larger files (none expected) are read up to here


def live_process_tasks(agent_work_dirs: dict[str, Path]) -> dict[str, set[str]]:
    """Per agent, the task ids with a live process: processes whose working directory
    is ``<work dir>/sandboxes/<framework id>/<task id>`` or below.  Agents in network
    namespaces share the filesystem and /proc, so one scan sees them all."""
    roots = {str(d.resolve()) + "/sandboxes/": name for name, d in agent_work_dirs.items()}
    found: dict[str, set[str]] = {name: set() for name in agent_work_dirs}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:
            continue  # gone meanwhile, or a kernel thread
        for root, agent in roots.items():
            if cwd.startswith(root):
                parts = cwd[len(root):].split("/")
                if len(parts) >= 2 and parts[1] and parts[1] != "executors":
                    found[agent].add(parts[1])
                break
    return found


def live_docker_tasks(client: Any, runtime_ids: dict[str, str]) -> dict[str, set[str]]:
    """Per agent, the task ids of its running containers (labels ``mesoslite.runtime_id``
    and ``mesoslite.task_id``)."""
    by_runtime = {rid: agent for agent, rid in runtime_ids.items()}
    found: dict[str, set[str]] = {agent: set() for agent in runtime_ids}
    for container in client.containers.list(filters={"label": LABEL_RUNTIME_ID}):
        labels = container.labels or {}
        agent = by_runtime.get(labels.get(LABEL_RUNTIME_ID, ""))
        task = labels.get(LABEL_TASK_ID)
        if agent is not None and task:
            found[agent].add(task)
    return found


def read_side_file(path: Path) -> list[str]:
    """The attempt ids appended to the side file, one per line (none: no file)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def batch_attempts(db: Path) -> list[dict[str, Any]]:
    """Every attempt document in the batch framework's SQLite store (read-only)."""
    with contextlib.closing(sqlite3.connect(Path(db).resolve().as_uri() + "?mode=ro",
                                            uri=True, timeout=10)) as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT data FROM batch_attempts")]


def mounted_secret_dir(path: Path) -> bool:
    """Whether ``path`` is a secret tmpfs a running task holds (its values are meant
    to be there; it is gone once the task ends)."""
    return path.name == ".secrets" and path.is_mount()


def file_chunks(roots: list[Path], skip: Callable[[Path], bool] = mounted_secret_dir
                ) -> Iterator[tuple[str, bytes]]:
    """(path, content) of every regular file under ``roots``, except directories
    ``skip`` names; unreadable files (gone, sockets, permissions) are passed over."""
    mounted = {str(p) for root in roots for p in mounted_under(root)}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            here = Path(folder)
            dirs[:] = [d for d in dirs if str(here / d) not in mounted and not skip(here / d)]
            for name in files:
                path = here / name
                with contextlib.suppress(OSError):
                    if path.is_file() and not path.is_symlink():
                        with open(path, "rb") as f:
                            yield str(path), f.read(MAX_FILE)
