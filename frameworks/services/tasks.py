"""Task records: what the framework knows of each task it launched.

A record is created (and committed) before the LAUNCH is sent, so after a crash
every task that might exist is known; status updates and reconciliation fill in the
rest.  Terminal tasks are dropped (Marathon forgets them too; the last failure per
app is kept for ``lastTaskFailure``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from frameworks.services.model import timestamp
from frameworks.services.views import TaskView
from mesoslite.messages.mesos import TaskState

# Terminal states that mean "the app's task failed" (they advance the launch backoff);
# the others (lost, gone, dropped, unreachable) are the cluster's doing.
FAILURE_STATES = frozenset({
    TaskState.TASK_FAILED, TaskState.TASK_ERROR, TaskState.TASK_FINISHED,
    TaskState.TASK_KILLED,
})


class ContainerRecord(msgspec.Struct, omit_defaults=True):
    """One container of a pod instance: its Mesos task and what it last reported."""

    name: str
    task_id: str
    state: str = "TASK_STAGING"
    has_check: bool = False
    healthy: bool | None = None
    message: str | None = None
    since: float = 0.0  # when ``state`` last changed
    updated_at: float = 0.0


class TaskRecord(msgspec.Struct, omit_defaults=True):
    id: str
    app_id: str
    version: str  # the app's version when launched (Marathon's task.version)
    config_version: str  # the configuration it runs (see model.App.config_version)
    agent_id: str
    hostname: str
    staged_at: float
    address: str | None = None
    attributes: dict[str, str] = {}  # the agent's, for constraints when it is not offered
    ports: list[int] = []
    service_ports: list[int] = []
    state: str = "TASK_STAGING"
    healthy: bool | None = None  # all checks: the agent's and the framework's
    agent_healthy: bool | None = None
    probe_healthy: list[bool | None] = []  # per framework-run check (health.py)
    ready: bool = False
    started_at: float | None = None
    first_healthy_at: float | None = None
    last_healthy_at: float | None = None
    last_unhealthy_at: float | None = None
    kill_requested_at: float | None = None
    kill_reason: str | None = None
    kill_is_failure: bool = False  # killed for failing its checks: counts for backoff
    message: str | None = None
    local_volumes: list[dict[str, str]] = []  # persistent volumes (Marathon's shape)
    # unreachableStrategy (unreachable.py): when it was first reported unreachable, and
    # whether it was replaced since (no longer counts as an instance)
    unreachable_since: float | None = None
    inactive: bool = False
    # A pod instance (``app_id`` is the pod's): one task group, a task per container.
    containers: list[ContainerRecord] = []

    @property
    def running(self) -> bool:
        return self.state == TaskState.TASK_RUNNING.value

    def view(self) -> TaskView:
        return TaskView(
            id=self.id, app_id=self.app_id, config_version=self.config_version,
            running=self.running, healthy=self.healthy, ready=self.ready,
            staged_at=self.staged_at, started_at=self.started_at,
            kill_requested_at=self.kill_requested_at,
            unreachable=self.state == TaskState.TASK_UNREACHABLE.value,
        )

    def note_health(self, has_agent_check: bool, probes: int, now: float,
                    agent: bool | None = None, probe: tuple[int, bool] | None = None) -> bool:
        """Record an agent result (``agent``) or a framework check's (``probe``: its
        position among the framework checks, result); recompute the task's health
        (healthy when every check is, unknown while one has no result yet).  True
        when the task's health changed."""
        if agent is not None:
            self.agent_healthy = agent
        if probe is not None:
            index, result = probe
            results = list(self.probe_healthy) + [None] * (probes - len(self.probe_healthy))
            results[index] = result
            self.probe_healthy = results
        parts = ([self.agent_healthy] if has_agent_check else []) + [
            (self.probe_healthy[i] if i < len(self.probe_healthy) else None)
            for i in range(probes)]
        healthy = False if False in parts else (None if None in parts or not parts else True)
        changed = healthy != self.healthy
        self.healthy = healthy
        if healthy:
            self.last_healthy_at = now
            if self.first_healthy_at is None:
                self.first_healthy_at = now
        elif healthy is False:
            self.last_unhealthy_at = now
        return changed


def _iso(value: float | None) -> str | None:
    return timestamp(value) if value is not None else None


def task_json(task: TaskRecord, has_health_checks: bool, role: str = "*") -> dict[str, Any]:
    """Marathon's task shape (``GET /v2/apps/{id}/tasks``, ``GET /v2/tasks``)."""
    out: dict[str, Any] = {
        "id": task.id,
        "appId": task.app_id,
        "host": task.hostname,
        "ports": list(task.ports),
        "servicePorts": list(task.service_ports),
        "slaveId": task.agent_id,
        "stagedAt": _iso(task.staged_at),
        "startedAt": _iso(task.started_at),
        "version": task.version,
        "state": task.state,
        "ipAddresses": [{"ipAddress": task.address, "protocol": "IPv4"}] if task.address else [],
        "localVolumes": [dict(v) for v in task.local_volumes],
        "role": role,
    }
    if has_health_checks and task.healthy is not None:
        out["healthCheckResults"] = [{
            "alive": task.healthy,
            "consecutiveFailures": 0 if task.healthy else 1,
            "firstSuccess": _iso(task.first_healthy_at),
            "lastSuccess": _iso(task.last_healthy_at),
            "lastFailure": _iso(task.last_unhealthy_at),
            "lastFailureCause": None if task.healthy else "health check failed",
            "taskId": task.id,
            "instanceId": task.id,
        }]
    return out


def task_counts(tasks: list[TaskRecord], has_health_checks: bool) -> dict[str, int]:
    """Marathon's ``tasksStaged / Running / Healthy / Unhealthy``."""
    running = [t for t in tasks if t.running]
    unreachable = [t for t in tasks if t.state == TaskState.TASK_UNREACHABLE.value]
    healthy = [t for t in running if (t.healthy is True if has_health_checks else True)]
    unhealthy = [t for t in running if has_health_checks and t.healthy is False]
    return {
        "tasksStaged": len(tasks) - len(running) - len(unreachable),
        "tasksRunning": len(running),
        "tasksHealthy": len(healthy) if has_health_checks else 0,
        "tasksUnhealthy": len(unhealthy),
    }
