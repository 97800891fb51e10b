"""Test helpers: find and kill a task's processes by hand, as an operator (or the
OOM killer) would."""

from __future__ import annotations

import os
import signal

import psutil


def task_pids(task_id: str) -> list[int]:
    """Processes whose environment carries ``MESOS_TASK_ID=task_id``."""
    pids = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("MESOS_TASK_ID") == task_id:
                pids.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return pids


def kill_task_processes(task_id: str) -> int:
    """SIGKILL every process of the task; returns how many were signalled."""
    count = 0
    for pid in task_pids(task_id):
        try:
            os.kill(pid, signal.SIGKILL)
            count += 1
        except ProcessLookupError:
            pass
    return count
