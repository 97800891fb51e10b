"""A custom executor as the agent sees it (pure data and decisions, no I/O).

An executor runs once per (framework, executor id) on an agent.  Its phases::

    LAUNCHING     sandbox, checkpoint, fetch, container start
    REGISTERING   running, waiting for SUBSCRIBE (registration timeout)
    RECOVERING    re-attached after an agent restart, waiting for re-SUBSCRIBE
    SUBSCRIBED    has an event stream: tasks go out as LAUNCH events
    DISCONNECTED  its stream broke (it re-subscribes; tasks queue meanwhile)
    TERMINATING   SHUTDOWN sent or killed; its container is ending
    TERMINATED    its container ended: its tasks were reported, it is forgotten

Tasks handed to it wait in ``queued`` until it subscribes; ``tasks`` holds every
task it was handed and has not been forgotten (a task is forgotten once its terminal
update is acknowledged by the scheduler).
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mesoslite.agent.checkpoint import ExecutorCheckpoint
from mesoslite.messages.mesos import (
    ExecutorInfo,
    Reason,
    TaskInfo,
    TaskState,
)

if TYPE_CHECKING:
    from mesoslite.agent.containerizers.base import Container

ExecutorKey = tuple[str, str]  # (framework id, executor id)
DEFAULT_SHUTDOWN_GRACE = 5.0  # Mesos' default executor shutdown grace period


class ExecutorPhase(enum.Enum):
    LAUNCHING = "launching"
    REGISTERING = "registering"
    RECOVERING = "recovering"
    SUBSCRIBED = "subscribed"
    DISCONNECTED = "disconnected"
    TERMINATING = "terminating"
    TERMINATED = "terminated"


@dataclass
class ExecutorTask:
    info: TaskInfo
    sent: bool = False  # went out in a LAUNCH event
    state: TaskState = TaskState.TASK_STAGING  # the latest the executor reported

    @property
    def task_id(self) -> str:
        return self.info.task_id.value


@dataclass
class ExecutorRun:
    cp: ExecutorCheckpoint
    sandbox_path: str
    phase: ExecutorPhase = ExecutorPhase.LAUNCHING
    container: Container | None = None
    tasks: dict[str, ExecutorTask] = field(default_factory=dict)
    # Why it is being stopped, for its unfinished tasks' terminal updates.
    stop_reason: Reason | None = None
    stop_state: TaskState = TaskState.TASK_FAILED
    stop_message: str = ""
    stream_id: str = ""  # the current subscription's Mesos-Stream-Id
    limits: tuple[float, float] = (0.0, 0.0)  # cpus, mem (MB) its container has now
    resizing: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def key(self) -> ExecutorKey:
        return (self.cp.framework_id, self.cp.executor_id)

    @property
    def info(self) -> ExecutorInfo:
        return self.cp.info

    @property
    def live(self) -> bool:
        return self.phase not in (ExecutorPhase.TERMINATING, ExecutorPhase.TERMINATED)

    @property
    def queued(self) -> list[ExecutorTask]:
        return [t for t in self.tasks.values() if not t.sent and not t.state.terminal]

    def unfinished(self) -> list[ExecutorTask]:
        return [t for t in self.tasks.values() if not t.state.terminal]

    def grace_seconds(self) -> float:
        grace = self.info.shutdown_grace_period
        return grace.nanoseconds / 1e9 if grace is not None else DEFAULT_SHUTDOWN_GRACE


def executor_stop_outcome(run: ExecutorRun, exit_code: int | None, signal: int | None
                          ) -> tuple[TaskState, Reason, str]:
    """The terminal update of a task left unfinished when its executor ended."""
    if run.stop_reason is not None:
        return run.stop_state, run.stop_reason, run.stop_message
    how = (f"exit status {exit_code}" if exit_code is not None
           else f"signal {signal}" if signal is not None else "an unknown cause")
    return (TaskState.TASK_FAILED, Reason.REASON_EXECUTOR_TERMINATED,
            f"Executor terminated ({how})")


def duration_text(seconds: float) -> str:
    """A duration as Mesos writes it in an executor's environment ("5secs")."""
    if seconds == int(seconds):
        return f"{int(seconds)}secs"
    return f"{int(seconds * 1000)}ms"
