"""The reconciler: desired state + observed tasks + now -> actions.  Pure.

``reconcile`` is called whenever something changed (an API call, a status update, an
offer round) and on a timer.  It never does I/O and never reads a clock; the
scheduler carries out what it returns:

* ``launches``: how many tasks of each app's current configuration to launch now;
* ``waiting``: launches held back, and why (launch backoff, an unmet dependency,
  the deployment's capacity ceiling) -- what ``/v2/queue`` shows;
* ``kills``: tasks to kill, each with its reason (scaling down, replaced by a new
  version, app removed, unknown task, stuck in staging, a kill not yet confirmed);
* ``finished`` / ``timed_out``: deployments that reached their target, or passed
  their timeout (the caller rolls those back);
* ``steps``: the per-app evaluation, for the API (healthy counts, floor, ceiling).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from frameworks.services.deployments import Step, rolling_step, steady_step
from frameworks.services.views import AppView, DeploymentView, TaskView, is_ready


@dataclass(frozen=True)
class Kill:
    task_id: str
    app_id: str
    reason: str


@dataclass(frozen=True)
class Waiting:
    count: int
    reason: str
    ready_at: float = 0.0  # for backoff: when the launch is due


@dataclass
class Plan:
    launches: dict[str, int] = field(default_factory=dict)
    waiting: dict[str, Waiting] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    steps: dict[str, Step] = field(default_factory=dict)

    @property
    def wants_offers(self) -> bool:
        return any(self.launches.values())


@dataclass(frozen=True)
class Settings:
    kill_retry_s: float = 10.0  # re-send a kill not confirmed within this time
    staging_timeout_s: float = 300.0  # kill a task not running after this long


def reconcile(
    apps: Mapping[str, AppView],
    tasks: Iterable[TaskView],
    deployments: Iterable[DeploymentView],
    now: float,
    settings: Settings = Settings(),
) -> Plan:
    """Decide what to launch and kill.  ``apps`` holds every app with tasks to manage,
    including apps being removed (with ``instances`` 0 and a deployment)."""
    plan = Plan()
    by_app: dict[str, list[TaskView]] = defaultdict(list)
    for task in tasks:
        if task.app_id in apps:
            by_app[task.app_id].append(task)
        else:
            _kill_once(plan, task, "its app no longer exists", now, settings)
    active = {d.app_id: d for d in deployments}
    satisfied = _dependencies_met(apps, by_app)
    for app_id, app in apps.items():
        deployment = active.get(app_id)
        _plan_app(plan, app, by_app.get(app_id, []), deployment, satisfied, now, settings)
    return plan


def _plan_app(plan: Plan, app: AppView, tasks: list[TaskView],
              deployment: DeploymentView | None, satisfied: set[str], now: float,
              settings: Settings) -> None:
    live = [t for t in tasks if not t.kill_requested]
    killing = [t for t in tasks if t.kill_requested]
    for t in killing:
        assert t.kill_requested_at is not None
        if now - t.kill_requested_at >= settings.kill_retry_s:
            plan.kills.append(Kill(t.id, app.id, "kill not confirmed yet; asking again"))
    stuck = [t for t in live if not t.running and not t.unreachable
             and now - t.staged_at > settings.staging_timeout_s]
    for t in stuck:
        plan.kills.append(Kill(t.id, app.id, "did not start within "
                                             f"{settings.staging_timeout_s:g}s"))
    if stuck:
        ids = {t.id for t in stuck}
        live = [t for t in live if t.id not in ids]
        killing = killing + stuck
    step = rolling_step(app, live, killing) if deployment else steady_step(app, live)
    plan.steps[app.id] = step
    for task, reason in step.kills:
        plan.kills.append(Kill(task.id, app.id, reason))
    if deployment is not None:
        if step.done:
            plan.finished.append(deployment.id)
        elif deployment.timeout is not None and now - deployment.started_at > deployment.timeout:
            plan.timed_out.append(deployment.id)
    _plan_launch(plan, app, step, deployment, satisfied, now, live, killing)


def _plan_launch(plan: Plan, app: AppView, step: Step, deployment: DeploymentView | None,
                 satisfied: set[str], now: float, live: list[TaskView],
                 killing: list[TaskView]) -> None:
    wanted = step.launch
    missing = [d for d in app.dependencies if d not in satisfied]
    if wanted and missing:
        plan.waiting[app.id] = Waiting(wanted, f"waiting for dependency {missing[0]} to be "
                                               "healthy")
    elif wanted and now < app.launch_ready_at:
        plan.waiting[app.id] = Waiting(wanted, "launch backoff after task failures",
                                       app.launch_ready_at)
    elif wanted:
        plan.launches[app.id] = wanted
    elif deployment is not None:
        short = app.instances - sum(1 for t in live if t.config_version == app.config_version)
        if short > 0:
            plan.waiting[app.id] = Waiting(
                short, f"deployment capacity: {len(live) + len(killing)} tasks of at most "
                       f"{step.ceiling}; waiting for old tasks to be killed")


def _kill_once(plan: Plan, task: TaskView, reason: str, now: float, settings: Settings) -> None:
    if task.kill_requested_at is None or now - task.kill_requested_at >= settings.kill_retry_s:
        plan.kills.append(Kill(task.id, task.app_id, reason))


def _dependencies_met(apps: Mapping[str, AppView], by_app: Mapping[str, list[TaskView]]
                      ) -> set[str]:
    """Apps with ``instances`` ready tasks of their current configuration."""
    out = set()
    for app_id, app in apps.items():
        ready = sum(1 for t in by_app.get(app_id, []) if not t.kill_requested
                    and t.config_version == app.config_version and is_ready(t, app))
        if ready >= app.instances:
            out.add(app_id)
    return out
