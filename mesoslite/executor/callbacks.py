"""The ``Executor`` callback interface an executor implements.

Subclass ``Executor`` and override the callbacks you need; every default does
nothing.  Callbacks may be ``async def`` (recommended) or plain methods.  The driver
calls them one at a time, in the order the agent sent the events, and waits for each
to finish before reading the next event: a callback must return soon.  Run a task's
work in its own ``asyncio`` task (or ``asyncio.to_thread``) from ``launch`` and
report on it with ``driver.update``; a KILL for it can then arrive while it runs.  A
callback that raises is logged and the driver carries on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesoslite.messages.executor import Subscribed
from mesoslite.messages.mesos import KillPolicy, TaskGroupInfo, TaskInfo

if TYPE_CHECKING:
    from mesoslite.executor.driver import ExecutorDriver


class Executor:
    """Base class for executors (asyncio); override what you need."""

    async def subscribed(self, driver: ExecutorDriver, info: Subscribed) -> None:
        """The agent accepted SUBSCRIBE: ``info`` holds the executor's, the framework's
        and the agent's info.  Called again after each re-subscription (an agent
        restart); tasks and unacknowledged updates were carried over by the driver."""

    async def launch(self, driver: ExecutorDriver, task: TaskInfo) -> None:
        """Run ``task``.  Send TASK_RUNNING (or TASK_FAILED) soon, and a terminal
        update when it ends: its resources are released only then."""

    async def launch_group(self, driver: ExecutorDriver, group: TaskGroupInfo) -> None:
        """Run a task group (all its tasks together); update each task."""

    async def kill(self, driver: ExecutorDriver, task_id: str,
                   kill_policy: KillPolicy | None) -> None:
        """Stop ``task_id`` (within ``kill_policy``'s grace period, when given) and
        send its terminal update (TASK_KILLED)."""

    async def acknowledged(self, driver: ExecutorDriver, task_id: str, uuid: bytes) -> None:
        """The update ``uuid`` of ``task_id`` was acknowledged: the driver no longer
        holds it (nothing to do unless you track updates yourself)."""

    async def message(self, driver: ExecutorDriver, data: bytes) -> None:
        """A framework message from the scheduler (best effort: it may be lost)."""

    async def shutdown(self, driver: ExecutorDriver) -> None:
        """Stop every task and leave: the agent asked (SHUTDOWN), or the agent was lost
        for good.  Send TASK_KILLED for each task still running.  The driver waits at
        most the shutdown grace period for this to return, then ``run`` ends; the
        agent kills the executor once the grace period is over."""

    async def error(self, driver: ExecutorDriver, message: str) -> None:
        """The agent reported an error (an ERROR event); the driver re-subscribes."""

    async def disconnected(self, driver: ExecutorDriver) -> None:
        """The event stream was lost (the agent restarted, or went silent).  Tasks go
        on; updates sent meanwhile are held and go out with the next SUBSCRIBE."""
