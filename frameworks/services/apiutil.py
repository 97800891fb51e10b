"""What the HTTP handlers share: the context they act on, Marathon's error shapes,
query-string parsing and the rendering of an app with its embedded parts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from frameworks.common.sse import SseBroadcaster
from frameworks.services.deployments import deployment_json
from frameworks.services.group_plans import holding, plan_deployment_json
from frameworks.services.model import App, app_json
from frameworks.services.readiness import ReadinessProber
from frameworks.services.state import Conflict, NotFound, ServicesState
from frameworks.services.tasks import task_counts, task_json
from frameworks.services.validation import Invalid
from frameworks.services.workload import ServicesWorkload
from mesoslite.framework import FrameworkRunner
from mesoslite.httpapi import HTTPError, json_response

EMBEDS = {"tasks", "counts", "deployments", "readiness", "lastTaskFailure", "failures",
          "taskStats"}


@dataclass
class ApiContext:
    """What the handlers act on: the framework's state and decisions (``workload``,
    pure) and the I/O around them (``runner``: durable writes, the subscription)."""

    workload: ServicesWorkload
    runner: FrameworkRunner
    readiness: ReadinessProber
    bus: SseBroadcaster
    info: dict[str, Any]
    role: str = "*"  # the framework's role: reservations need a named one

    @property
    def state(self) -> ServicesState:
        return self.workload.state

    @property
    def reconciled(self) -> bool:
        """Subscribed, and the master has answered for every task we know."""
        return self.runner.core.reconciled

    def now(self) -> float:
        return self.runner.clock.now()

    async def commit(self) -> None:
        """Make the change durable, then let the framework act on it."""
        await self.runner.commit()
        self.runner.kick()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def marathon_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain exceptions -> Marathon's status codes and bodies (plus an empty
    ``details``: every mesoslite error has ``message`` and ``details``)."""
    try:
        return await handler(request)
    except NotFound as exc:
        return json_response({"message": str(exc), "details": []}, 404)
    except Conflict as exc:
        return json_response({"message": exc.message, "details": [],
                              "deployments": [{"id": d} for d in exc.deployments]}, 409)
    except Invalid as exc:
        return json_response({"message": exc.message, "details": [
            {"path": p, "errors": e} for p, e in exc.details]}, 422)


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter (``true``/``false``, any case; bare ``?force`` is true)."""
    if name not in request.query:
        return default
    value = request.query[name].strip().lower()
    if value in ("", "true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise HTTPError(400, f"query parameter {name} must be true or false, not {value!r}")


def embeds(request: web.Request, defaults: set[str]) -> set[str]:
    """``embed=apps.tasks`` / ``embed=app.counts`` (repeatable) on top of ``defaults``."""
    chosen = set(defaults)
    for raw in request.query.getall("embed", []):
        for item in raw.split(","):
            name = item.strip().split(".", 1)[-1]
            if name in EMBEDS:
                chosen.add(name)
    return chosen


def app_info(ctx: ApiContext, app: App, embed: set[str]) -> dict[str, Any]:
    out = app_json(app)
    tasks = ctx.state.app_tasks(app.id)
    hc = app.has_health_checks
    if "counts" in embed or "taskStats" in embed:
        out.update(task_counts(tasks, hc))
    if "deployments" in embed:  # a group's plan is known by its own id
        out["deployments"] = [{"id": holding(ctx.state, d)}
                              for d in ctx.state.deployments_of(app.id)]
    if "tasks" in embed:
        out["tasks"] = [task_json(t, hc) for t in tasks]
    if ("lastTaskFailure" in embed or "failures" in embed) and app.id in ctx.state.last_failure:
        out["lastTaskFailure"] = ctx.state.last_failure[app.id]
    if "readiness" in embed:
        results = ctx.readiness.results
        out["readinessCheckResults"] = [results[t.id] for t in tasks if t.id in results]
    if "taskStats" in embed:
        counts = task_counts(tasks, hc)
        stats = {"stats": {"counts": {"staged": counts["tasksStaged"],
                                      "running": counts["tasksRunning"],
                                      "healthy": counts["tasksHealthy"],
                                      "unhealthy": counts["tasksUnhealthy"]}}}
        out["taskStats"] = {"totalSummary": stats}
    return out


def kill_flags(request: web.Request) -> tuple[bool, bool, bool]:
    """``scale``, ``force`` and ``wipe`` of a kill request (Marathon: 400 for scale with
    wipe, which would both lower the instances and replace them)."""
    scale, wipe = flag(request, "scale"), flag(request, "wipe")
    if scale and wipe:
        raise HTTPError(400, "You cannot use scale and wipe at the same time.")
    return scale, flag(request, "force"), wipe


def deployment_result(deployment_id: str, version: str) -> dict[str, str]:
    return {"deploymentId": deployment_id, "version": version}


def deployments_json(ctx: ApiContext) -> list[dict[str, Any]]:
    """Every deployment: those of one app, and group changes' plans (one item each,
    for all their apps)."""
    results = ctx.readiness.results
    state = ctx.state

    def ready(app_id: str) -> list[dict[str, Any]]:
        return [r for t in state.app_tasks(app_id) if (r := results.get(t.id))]

    items: list[tuple[float, dict[str, Any]]] = []
    for d in state.deployments.values():
        if d.plan_id not in state.plans:
            items.append((d.started_at, deployment_json(d, ready(d.app_id))))
    for plan in state.plans.values():
        apps = {a.app for step in plan.steps for a in step}
        items.append((plan.started_at, plan_deployment_json(plan, {a: ready(a) for a in apps})))
    return [item for _, item in sorted(items, key=lambda i: i[0])]
