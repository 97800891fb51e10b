"""The reconciler's inputs: small immutable views of apps, tasks and deployments.

Kept apart from the stored records so the pure core (``reconcile``, ``deployments``)
depends on nothing but these, and property tests can build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AppView:
    """What the reconciler needs of an app's current target."""

    id: str
    instances: int
    config_version: str
    min_health_capacity: float = 1.0
    max_over_capacity: float = 1.0
    kill_selection: str = "YOUNGEST_FIRST"
    has_health_checks: bool = False
    has_readiness_checks: bool = False
    dependencies: tuple[str, ...] = ()
    launch_ready_at: float = 0.0  # launch backoff: no launch before this time


@dataclass(frozen=True)
class TaskView:
    """One non-terminal task as last reported (or as launched, before any report)."""

    id: str
    app_id: str
    config_version: str
    running: bool = False  # TASK_RUNNING
    healthy: bool | None = None  # from the agent's health check (None: no result yet)
    ready: bool = False  # readiness check passed (meaningful only with readiness checks)
    staged_at: float = 0.0
    started_at: float | None = None
    kill_requested_at: float | None = None  # when we (last) asked the master to kill it
    unreachable: bool = False  # TASK_UNREACHABLE: its agent is out of sight, not stuck

    @property
    def kill_requested(self) -> bool:
        return self.kill_requested_at is not None

    @property
    def age_key(self) -> float:
        return self.started_at if self.started_at is not None else self.staged_at


@dataclass(frozen=True)
class DeploymentView:
    id: str
    app_id: str
    started_at: float
    timeout: float | None  # None: never times out (rollbacks, stops)


def is_healthy(task: TaskView, app: AppView) -> bool:
    """Marathon's rule: running, and healthy if the app has health checks."""
    return task.running and (task.healthy is True if app.has_health_checks else True)


def is_ready(task: TaskView, app: AppView) -> bool:
    """Healthy, and past its readiness check if the app has one."""
    return is_healthy(task, app) and (task.ready if app.has_readiness_checks else True)
