"""Resource usage reporting: every ``--usage-interval`` the agent samples each running
task (cumulative CPU seconds and memory from its containerizer: cgroup accounting for
process tasks, the engine's stats for Docker) and each local persistent volume (disk
blocks under it), and sends one ``Usage`` message to the master.

A task's ``cpus_used`` is the rate between its last two samples (CPU seconds per
second, i.e. cores); a task's first sample has none.  Limits are the task's ``cpus``
and ``mem`` resources.  Nothing is sent while the agent is not registered; samples
are independent, so a lost message costs one interval of freshness, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from mesoslite.agent.containerizers.base import LaunchSpec, ResourceUsage
from mesoslite.agent.volumes import VolumeManager, persistent_ids
from mesoslite.messages.agent import DestroyVolumes, TaskUsage, Usage
from mesoslite.messages.mesos import TaskState, to_resources

if TYPE_CHECKING:
    from mesoslite.agent.lifecycle import AgentTaskState
    from mesoslite.agent.tasks import TaskManager

log = logging.getLogger(__name__)

SAMPLE_TIMEOUT = 10.0  # one slow engine call must not hold the whole report


def cpu_rate(previous: tuple[float, float] | None, cpu_seconds: float, timestamp: float
             ) -> float | None:
    """Cores used between ``previous`` (cpu seconds, timestamp) and now; None without a
    usable previous sample (first sample, clock step back, counter reset)."""
    if previous is None:
        return None
    cpu0, t0 = previous
    elapsed = timestamp - t0
    if elapsed <= 0 or cpu_seconds < cpu0:
        return None
    return (cpu_seconds - cpu0) / elapsed


def volume_users(tasks: TaskManager, exclude: str | None = None) -> dict[str, str]:
    """Persistent volume id -> the live task using it."""
    return {vid: t.task_id for t in tasks.tasks.values()
            if not t.state.terminal and t.task_id != exclude for vid in persistent_ids(t.info)}


class UsageSampler:
    """Samples the agent's tasks and volumes and hands each ``Usage`` to ``send``
    (which returns False when the link is down)."""

    def __init__(self, tasks: TaskManager, volumes: VolumeManager,
                 send: Callable[[Usage], bool], interval: float) -> None:
        self.tasks = tasks
        self.volumes = volumes
        self.send = send
        self.interval = interval
        self.latest: Usage | None = None
        self._previous: dict[tuple[str, str], tuple[float, float]] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.latest = await self.sample()
                self.send(self.latest)
            except Exception:  # a report is worth less than the agent staying up
                log.exception("usage sampling failed")

    async def sample(self) -> Usage:
        """One report: every RUNNING task with a container, and every volume."""
        running = [t for t in self.tasks.tasks.values()
                   if t.state == TaskState.TASK_RUNNING and t.container is not None]
        samples = await asyncio.gather(*(self._task_usage(t) for t in running))
        keys = {(t.framework_id, t.task_id) for t in running}
        for key in [k for k in self._previous if k not in keys]:
            del self._previous[key]
        volumes = await asyncio.to_thread(self.volumes.usage, volume_users(self.tasks))
        return Usage(tasks=[s for s in samples if s is not None], volumes=volumes,
                     interval=self.interval)

    async def _task_usage(self, task: AgentTaskState) -> TaskUsage | None:
        assert task.container is not None
        try:
            usage: ResourceUsage | None = await asyncio.wait_for(task.container.usage(),
                                                                 SAMPLE_TIMEOUT)
        except (TimeoutError, OSError, ValueError) as exc:
            log.debug("no usage for %s: %s", task.task_id, exc)
            return None
        if usage is None:
            return None
        key = (task.framework_id, task.task_id)
        stamp = usage.timestamp or time.time()
        rate = cpu_rate(self._previous.get(key), usage.cpu_seconds, stamp)
        self._previous[key] = (usage.cpu_seconds, stamp)
        resources = to_resources(task.info.resources)
        return TaskUsage(
            framework_id=task.framework_id, task_id=task.task_id,
            cpus_used=round(rate, 4) if rate is not None else None,
            cpus_limit=resources.scalar("cpus"),
            mem_used_mb=round(usage.mem_bytes / 2**20, 3),
            mem_limit_mb=resources.scalar("mem"), timestamp=stamp,
            cpu_seconds=round(usage.cpu_seconds, 4),
            cpus_user_time_secs=_seconds(usage.extra.get("cpus_user_time_secs")),
            cpus_system_time_secs=_seconds(usage.extra.get("cpus_system_time_secs")))


def _seconds(value: object) -> float | None:
    return round(float(value), 4) if isinstance(value, int | float) else None


def monitor_statistics(tasks: TaskManager, report: Usage | None) -> list[dict[str, object]]:
    """Mesos' agent ``/monitor/statistics``: one entry per running task sampled in
    ``report`` (the latest usage report), ``statistics`` named as Mesos'
    ``ResourceStatistics`` (``cpus_limit``, ``cpus_user_time_secs``,
    ``cpus_system_time_secs``, ``mem_rss_bytes``, ``mem_limit_bytes``, ``timestamp``)
    plus mesoslite's ``cpus_used`` (cores over the last interval) and
    ``cpus_total_time_secs``.  A task's executor is the task itself (command tasks)."""
    out: list[dict[str, object]] = []
    for t in report.tasks if report is not None else []:
        task = tasks.tasks.get((t.framework_id, t.task_id))
        if task is None or task.state.terminal:
            continue
        out.append({"executor_id": t.task_id, "executor_name": task.info.name,
                    "framework_id": t.framework_id, "source": t.task_id,
                    "statistics": t.statistics()})
    return out


class AgentVolumes:
    """The agent's side of volumes: the task manager's ``prepare_spec`` hook and the
    master's ``DestroyVolumes`` command, run in the agent's I/O thread."""

    def __init__(self, tasks: TaskManager, volumes: VolumeManager, io: Executor) -> None:
        self.tasks = tasks
        self.volumes = volumes
        self.io = io

    async def prepare(self, task: AgentTaskState, spec: LaunchSpec) -> LaunchSpec:
        framework = self.tasks.frameworks.get(task.framework_id)
        role = framework.effective_roles()[0] if framework is not None else "*"
        users = volume_users(self.tasks, exclude=task.task_id)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.io, self.volumes.prepare, spec,
                                          task.cp.containerizer, role, users)

    async def destroy(self, message: DestroyVolumes) -> None:
        loop = asyncio.get_running_loop()
        done, refused = await loop.run_in_executor(
            self.io, self.volumes.destroy, message.volume_ids, message.role,
            volume_users(self.tasks))
        if done:
            log.info("destroyed persistent volumes %s for framework %s", done,
                     message.framework_id)
        for volume_id, why in refused.items():
            log.warning("not destroying persistent volume %s: %s", volume_id, why)
