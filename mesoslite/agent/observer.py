"""What the agent tells whoever watches it (its metrics): an explicit interface.

The task manager and the status update manager call an ``AgentObserver`` at the
points worth counting; ``AgentMetrics`` implements it, ``NoObserver`` ignores
everything (the default, for tests and tools).  Observers must be quick and must not
raise: they run inline, on the event loop.
"""

from __future__ import annotations

from typing import Protocol

from mesoslite.messages.mesos import TaskStatus


class AgentObserver(Protocol):
    def on_launch_started(self, containerizer: str) -> None:
        """A containerizer was asked to start a task."""

    def on_launch_finished(self, containerizer: str, seconds: float, failed: bool) -> None:
        """That call returned (``failed``: it raised) after ``seconds``."""

    def on_update(self, status: TaskStatus, launch_seconds: float | None) -> None:
        """A status update was generated (and checkpointed); ``launch_seconds``, for
        the update that reports a task RUNNING, is the time since the agent got it."""

    def on_sent(self, first: int, resent: int) -> None:
        """A batch went to the master: ``first`` updates for the first time, ``resent``
        again because their acknowledgement has not come."""


class NoObserver:
    """An ``AgentObserver`` that ignores everything."""

    def on_launch_started(self, containerizer: str) -> None:
        pass

    def on_launch_finished(self, containerizer: str, seconds: float, failed: bool) -> None:
        pass

    def on_update(self, status: TaskStatus, launch_seconds: float | None) -> None:
        pass

    def on_sent(self, first: int, resent: int) -> None:
        pass
