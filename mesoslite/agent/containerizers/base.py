"""The containerizer interface: how an agent runs, watches and stops one task.

The agent owns task state, checkpoints and status updates; a containerizer only
runs things.  Contract:

* ``launch(spec)`` starts the task and returns a ``Container`` once it is running
  (raises ``LaunchError`` with a user-facing message when it cannot start);
* ``Container.record`` is a JSON-serialisable dict the agent checkpoints right after
  launch; ``recover(spec, record)`` turns it back into a ``Container`` after an agent
  restart (the task kept running), or returns the ``Termination`` if it ended while
  the agent was down;
* ``Container.wait()`` returns once the task has ended, with how it ended; it may be
  awaited by several callers;
* ``Container.signal(kind)`` sends the graceful stop (``StopKind.TERM``: SIGTERM, or
  the image's stop signal for docker) or the forced one (``StopKind.KILL``: SIGKILL of
  everything in the container) and returns once it is sent, not waiting for the end
  (``wait()`` tells that).  The grace period between the two is not the container's
  business: the agent's task lifecycle (``agent/lifecycle.py``) times it;
* ``Container.update_limits(cpus, mem_mb)`` changes a running container's limits
  (False where it cannot);
* ``cleanup_orphans(known)`` removes what this containerizer runs for this agent that
  is not in ``known`` (container ids) and returns what it removed.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mesoslite.messages.mesos import TaskInfo


class LaunchError(Exception):
    """The task could not be started; the text is shown to the user."""


@dataclass(frozen=True)
class LaunchSpec:
    """Everything a containerizer needs to start one task."""

    container_id: str  # unique per launch; also the name of the cgroup / container
    agent_id: str
    framework_id: str
    task: TaskInfo
    sandbox: Path  # exists; stdout / stderr go there as files "stdout" and "stderr"
    env: dict[str, str]  # the full environment the agent computed (ports, ids, user env)
    cpus: float = 0.0
    mem_mb: float = 0.0
    disk_mb: float = 0.0
    ports: tuple[int, ...] = ()
    principal: str | None = None  # the framework's; the container policy decides by it
    # A task group's (agent/task_groups.py): the group's shared sandbox (exists), and
    # the container id of the group's task whose network namespace this one joins.
    group_sandbox: Path | None = None
    network_owner: str | None = None
    # TaskInfo.limits: the hard cpu / memory limits when above the request (``cpus``,
    # ``mem_mb``: then the guaranteed share); None: the request; ``math.inf``: none.
    cpu_limit: float | None = None
    mem_limit_mb: float | None = None
    # The user the task runs as (CommandInfo.user, else FrameworkInfo.user, where the
    # agent switches users: ``agent/task_user.py``); None: the agent's own user.
    user: str | None = None

    @property
    def task_id(self) -> str:
        return self.task.task_id.value


@dataclass(frozen=True)
class Termination:
    """How a task ended.  ``exit_code`` is None when it died of ``signal``."""

    exit_code: int | None = None
    signal: int | None = None
    oom_killed: bool = False
    message: str = ""

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.oom_killed


class StopKind(enum.Enum):
    """How ``Container.signal`` stops a container."""

    TERM = "term"  # graceful: the task may clean up and exit
    KILL = "kill"  # forced: nothing in the container survives it


@dataclass(frozen=True)
class ResourceUsage:
    cpu_seconds: float = 0.0  # cumulative user+system CPU time
    mem_bytes: int = 0
    timestamp: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class Container(abc.ABC):
    record: dict[str, Any]

    @abc.abstractmethod
    async def wait(self) -> Termination: ...

    @abc.abstractmethod
    async def signal(self, kind: StopKind) -> None:
        """Send the stop ``kind``; returns once it was sent.  A container that has
        ended ignores it."""

    async def usage(self) -> ResourceUsage | None:
        return None

    async def update_limits(self, cpus: float, mem_mb: float) -> bool:
        """Change the running container's cpu and memory limits (a custom executor's
        grow and shrink with its tasks); False when this container cannot."""
        return False

    async def exec(self, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run ``argv`` in the task's environment (for COMMAND health checks)."""
        raise NotImplementedError


class Containerizer(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    async def launch(self, spec: LaunchSpec) -> Container: ...

    @abc.abstractmethod
    async def recover(self, spec: LaunchSpec, record: dict[str, Any]) -> Container | Termination:
        ...

    async def cleanup_orphans(self, known: set[str]) -> list[str]:
        return []

    async def close(self) -> None:
        """Release client resources (not the tasks: they outlive the agent)."""
