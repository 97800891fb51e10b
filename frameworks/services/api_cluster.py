"""The rest of Marathon's API: ``/v2/tasks``, ``/v2/deployments``, ``/v2/queue``,
``/v2/info``, ``/v2/leader``, ``/ping`` (and ``/health`` for process supervisors)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from frameworks.services import group_plans, operations
from frameworks.services.apiutil import (
    ApiContext,
    deployment_result,
    deployments_json,
    flag,
    kill_flags,
)
from frameworks.services.model import app_json, timestamp
from frameworks.services.pod_model import pod_json
from frameworks.services.tasks import task_json
from frameworks.services.validation import Invalid, normalize_id
from mesoslite.httpapi import json_response, read_json

STATUS_FILTERS = {"running": {"TASK_RUNNING"},
                  "staging": {"TASK_STAGING", "TASK_STARTING"}}


class ClusterApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/tasks", self.tasks),
            web.post("/v2/tasks/delete", self.kill_tasks),
            web.get("/v2/deployments", self.deployments),
            web.delete("/v2/deployments/{id}", self.cancel_deployment),
            web.get("/v2/queue", self.queue),
            web.delete("/v2/queue/{app:.+}/delay", self.reset_delay),
            web.get("/v2/info", self.info),
            web.get("/v2/leader", self.leader),
            web.get("/ping", self.ping),
            web.get("/health", self.health),
        ]

    async def tasks(self, request: web.Request) -> web.Response:
        wanted: set[str] = set()
        for raw in request.query.getall("status", []):
            wanted |= STATUS_FILTERS.get(raw.lower(), set())
        state = self.ctx.state
        out = []
        for task in sorted(state.tasks.values(), key=lambda t: (t.app_id, t.staged_at)):
            if wanted and task.state not in wanted:
                continue
            app = state.targets().get(task.app_id)
            out.append(task_json(task, bool(app and app.has_health_checks)))
        return json_response({"tasks": out})

    async def kill_tasks(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise Invalid([("/ids", ["expected a list of task ids"])])
        scale, force, wipe = kill_flags(request)
        killed, deployments = operations.kill_tasks(self.ctx.state, ids, self.ctx.now(),
                                                    scale, force, wipe)
        await self.ctx.commit()
        if scale and deployments:
            return json_response(deployment_result(deployments[0].id, deployments[0].version))
        # Marathon's answer: the tasks it killed (unknown ids are left out)
        apps = self.ctx.state.targets()
        return json_response({"tasks": [
            task_json(t, bool((app := apps.get(t.app_id)) and app.has_health_checks))
            for t in killed]})

    async def deployments(self, request: web.Request) -> web.Response:
        return json_response(deployments_json(self.ctx))

    async def cancel_deployment(self, request: web.Request) -> web.Response:
        force, deployment_id = flag(request, "force"), request.match_info["id"]
        if deployment_id in self.ctx.state.plans:  # a group change's, over several apps
            return await self._cancel_plan(deployment_id, force)
        rollback = operations.cancel_deployment(
            self.ctx.state, deployment_id, self.ctx.now(), force,
            reason="cancelled through the API")
        await self.ctx.commit()
        if rollback is None:
            return web.Response(status=202)
        return json_response(deployment_result(rollback.id, rollback.version))

    async def _cancel_plan(self, plan_id: str, force: bool) -> web.Response:
        """Each app's deployment stops where it stands (``force``) or is rolled back;
        the answer names the first rollback (Marathon's shape)."""
        state, now = self.ctx.state, self.ctx.now()
        members = group_plans.cancel_plan(state, plan_id, now, "cancelled through the API")
        rollbacks = [operations.cancel_deployment(state, d.id, now, force,
                                                  reason="cancelled through the API")
                     for d in members]
        await self.ctx.commit()
        first = next((r for r in rollbacks if r is not None), None)
        if first is None:
            return web.Response(status=202)
        return json_response(deployment_result(first.id, first.version))

    async def queue(self, request: web.Request) -> web.Response:
        plan, now = self.ctx.workload.last_plan, self.ctx.now()
        items = []
        for app_id in sorted(set(plan.launches) | set(plan.waiting)):
            app = self.ctx.state.apps.get(app_id)
            pod = self.ctx.state.pods.get(app_id)
            if app is not None:
                items.append(self._queue_item(app_id, app_json(app), plan, now))
            elif pod is not None:  # Marathon's queue names a pod under "pod"
                item = self._queue_item(app_id, pod_json(pod), plan, now)
                items.append({**item, "pod": item.pop("app")})
        return json_response({"queue": items})

    def _queue_item(self, app_id: str, app: dict[str, Any], plan: Any, now: float
                    ) -> dict[str, Any]:
        workload = self.ctx.workload
        waiting = plan.waiting.get(app_id)
        count = plan.launches.get(app_id, 0) + (waiting.count if waiting else 0)
        left = max(0.0, workload.backoff.ready_at(app_id) - now)
        since = workload.queue.waiting_since.get(app_id, now)
        summary = workload.queue.summary(app_id)
        if waiting is not None:
            summary["waitingReason"] = waiting.reason
        return {
            "count": count, "delay": {"timeLeftSeconds": round(left, 3), "overdue": left == 0},
            "since": timestamp(since), "app": app, "processedOffersSummary": summary,
            "lastUnusedOffers": [],
        }

    async def reset_delay(self, request: web.Request) -> web.Response:
        app = self.ctx.state.app(normalize_id(request.match_info["app"]))
        self.ctx.workload.reset_delay(app.id)
        self.ctx.runner.kick()
        return web.Response(status=204)

    async def info(self, request: web.Request) -> web.Response:
        return json_response({**self.ctx.info, "frameworkId": self.ctx.runner.framework_id})

    async def leader(self, request: web.Request) -> web.Response:
        return json_response({"leader": self.ctx.info["leader"]})

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(text="pong", content_type="text/plain")

    async def health(self, request: web.Request) -> web.Response:
        driver = self.ctx.runner.driver
        return json_response({"healthy": True,
                              "subscribed": bool(driver and driver.subscribed),
                              "reconciled": self.ctx.reconciled})
