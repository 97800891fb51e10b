"""Deployments: the rolling-replacement rule (pure) and the deployment record.

A deployment brings one app to its target: ``instances`` tasks of the target
configuration, all healthy (and ready).  Starting, scaling, stopping, upgrading and
rolling back are all that one rule with different starting points:

* ``floor = ceil(instances x minimumHealthCapacity)`` healthy tasks (old-version tasks
  that are healthy plus new-version tasks that are healthy and ready) are kept at all
  times: an old healthy task is killed only when the healthy count stays at or above
  the floor without it;
* ``ceiling = floor(instances x (1 + maximumOverCapacity))`` tasks may exist at once
  (tasks being killed included, since they still hold their resources); new tasks are
  launched only within it.  When floor == ceiling nothing could ever move, so (as
  Marathon does) one extra task is allowed;
* old tasks that are not healthy do not count toward the floor and are killed at once;
* the deployment is done when exactly ``instances`` target tasks are healthy and ready
  and no other task of the app is left (killed ones confirmed gone).

A deployment that is not done after its timeout is rolled back: a new deployment
brings the app back to its previous definition by the same rule, so the rollback is
capacity-safe too (the previous version's tasks were protected by the floor and are
now the target; the failed new ones are unhealthy and go first).  Rollbacks and app
removals never time out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from frameworks.services.views import AppView, TaskView, is_healthy, is_ready

KINDS = ("start", "scale", "upgrade", "restart", "stop", "rollback")
EPS = 1e-9


# ---------------------------------------------------------------- the rule (pure)


def floor_and_ceiling(app: AppView, has_old: bool) -> tuple[int, int]:
    """The healthy floor and the task ceiling for ``app`` during a deployment."""
    n = app.instances
    floor = math.ceil(n * app.min_health_capacity - EPS)
    ceiling = math.floor(n * (1 + app.max_over_capacity) + EPS)
    if n > 0 and has_old and floor >= ceiling:
        ceiling = floor + 1  # otherwise no task could be started or stopped
    return floor, ceiling


def kill_order(tasks: Sequence[TaskView], app: AppView) -> list[TaskView]:
    """Which tasks to kill first: not running, then unhealthy, then not ready, then
    ready; within each, by the app's ``killSelection`` (youngest or oldest first)."""
    youngest = app.kill_selection != "OLDEST_FIRST"

    def key(t: TaskView) -> tuple[int, float, str]:
        if not t.running:
            rank = 0
        elif not is_healthy(t, app):
            rank = 1
        else:
            rank = 3 if is_ready(t, app) else 2
        age = -t.age_key if youngest else t.age_key
        return (rank, age, t.id)

    return sorted(tasks, key=key)


@dataclass
class Step:
    """One evaluation of the rule for one app."""

    kills: list[tuple[TaskView, str]] = field(default_factory=list)
    launch: int = 0
    done: bool = False
    healthy: int = 0  # healthy tasks counted toward the floor, after ``kills``
    floor: int = 0
    ceiling: int = 0
    old_left: int = 0


def rolling_step(app: AppView, live: Sequence[TaskView], killing: Sequence[TaskView]) -> Step:
    """Kills and launches that move ``app`` toward its target without breaking the floor
    or the ceiling.  ``live``: the app's tasks not being killed; ``killing``: those we
    asked to kill that are not gone yet."""
    current = [t for t in live if t.config_version == app.config_version]
    old = [t for t in live if t.config_version != app.config_version]
    floor, ceiling = floor_and_ceiling(app, bool(old))
    step = Step(floor=floor, ceiling=ceiling)
    old_healthy = [t for t in old if is_healthy(t, app)]
    for t in old:
        if not is_healthy(t, app):
            step.kills.append((t, "old version, not healthy"))
    ready = [t for t in current if is_ready(t, app)]
    # Extras beyond ``instances`` are killed below, not-ready ones first, so at most
    # ``instances`` ready tasks remain to count toward the floor.
    surplus = len(old_healthy) + min(len(ready), app.instances) - floor
    for t in kill_order(old_healthy, app)[:max(0, surplus)]:
        step.kills.append((t, "replaced by the new version"))
    extra = len(current) - app.instances
    if extra > 0:
        why = "scaling down" if app.instances else "stopping the app"
        for t in kill_order(current, app)[:extra]:
            step.kills.append((t, why))
    killed = {t.id for t, _ in step.kills}
    step.healthy = sum(1 for t in old_healthy if t.id not in killed) + sum(
        1 for t in ready if t.id not in killed)
    total = len(live) + len(killing)  # tasks killed now still hold resources
    step.launch = max(0, min(app.instances - len(current), ceiling - total))
    step.old_left = len(old)
    step.done = (not old and not killing and len(current) == app.instances
                 and len(ready) == app.instances)
    return step


def steady_step(app: AppView, live: Sequence[TaskView]) -> Step:
    """Outside deployments: keep ``instances`` tasks (of any configuration: after a
    forced cancel, tasks of an older configuration are kept, as Marathon does)."""
    step = Step()
    n = len(live)
    if n > app.instances:
        for t in kill_order(live, app)[:n - app.instances]:
            step.kills.append((t, "scaling down"))
    step.launch = max(0, app.instances - n)
    step.healthy = sum(1 for t in live if is_healthy(t, app))
    step.done = True
    return step


# ---------------------------------------------------------------- records


class Deployment(msgspec.Struct, omit_defaults=True):
    """A deployment as stored.  ``previous`` is the app's JSON definition before the
    change (None when the app did not exist): what a rollback restores."""

    id: str
    app_id: str
    version: str
    kind: str
    started_at: float
    timeout: float | None = None
    previous: dict[str, Any] | None = None
    rollback_of: str | None = None
    # The group deployment (``groups.GroupPlan``) this one is part of: it announces
    # the plan's events instead of its own.
    plan_id: str | None = None
    pod: bool = False  # of a pod (docs/services.md "Pods"), not an app


_ACTIONS = {
    "start": ["StartApplication", "ScaleApplication"],
    "scale": ["ScaleApplication"],
    "upgrade": ["RestartApplication"],
    "restart": ["RestartApplication"],
    "rollback": ["RestartApplication"],
    "stop": ["StopApplication"],
}


def deployment_json(d: Deployment, ready_results: list[dict[str, Any]] | None = None
                    ) -> dict[str, Any]:
    """Marathon's ``GET /v2/deployments`` item."""
    actions = _ACTIONS[d.kind]
    step = len(actions)  # the instantaneous steps (StartApplication) are behind us
    subject = "pod" if d.pod else "app"  # Marathon names a pod's actions' target "pod"
    return {
        "id": d.id,
        "version": d.version,
        "affectedApps": [] if d.pod else [d.app_id],
        "affectedPods": [d.app_id] if d.pod else [],
        "steps": [{"actions": [{"action": a, subject: d.app_id}]} for a in actions],
        "currentActions": [{"action": actions[step - 1], subject: d.app_id,
                            "readinessCheckResults": ready_results or []}],
        "currentStep": step,
        "totalSteps": len(actions),
    }
