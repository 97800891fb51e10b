"""Small OS helpers shared by the process containerizer and its supervisor.

Standard library only: ``supervisor.py`` imports this file by path and runs without
site-packages (``python -S``), so nothing here may import mesoslite or third-party code.
"""

from __future__ import annotations

import json
import os
import signal

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time

if TYPE_CHECKING:
    from typing import Any


def proc_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat).

    Together with the pid it names one process for good: a recycled pid has a later
    start time.  Returns None when no such process exists (zombies still have one).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def proc_state(pid: int) -> str | None:
    """One-letter state of ``pid`` ('R', 'S', 'Z', ...), None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[0] if fields else None


def same_process(pid: int | None, start_time: int | None) -> bool:
    """True while ``pid`` is still the process that started at ``start_time``.

    A zombie counts as gone: it has run to completion and only awaits its reaper.
    """
    if not pid or pid <= 0 or start_time is None:
        return False
    if proc_start_time(pid) != start_time:
        return False
    return proc_state(pid) not in (None, "Z", "X")


def open_pidfd(pid: int, start_time: int | None) -> int | None:
    """A pidfd for ``pid`` if it is still the process that started at ``start_time``.

    Returns None when that process is gone.  Raises OSError (ENOSYS, ...) when the
    kernel has no pidfd support, so callers can fall back to polling.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    # The pidfd pins the process we opened: checking the start time *after* opening
    # guarantees it is not a recycled pid.
    if proc_start_time(pid) != start_time:
        os.close(fd)
        return None
    return fd


def killpg_quietly(pgid: int, sig: int) -> bool:
    """Signal a process group; False when it no longer exists."""
    if pgid <= 1:  # never signal init's group or "every process" by accident
        return False
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def signal_name(sig: int) -> str:
    """Human description as strsignal(3) gives it ("Killed", "Terminated")."""
    try:
        return signal.strsignal(sig) or f"signal {sig}"
    except ValueError:
        return f"signal {sig}"


def atomic_write_json(path: str, data: Any) -> None:
    """Write ``data`` as JSON so readers see either the old file or the whole new one.

    tmp + fsync + rename + directory fsync: survives a crash of the writer (and of the
    host, as far as the filesystem honours fsync).
    """
    directory = os.path.dirname(path) or "."
    tmp = f"{path}.tmp.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, json.dumps(data, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def read_json(path: str) -> Any | None:
    """The JSON document at ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
