"""What the services framework tells about itself besides Marathon's API.

* ``GET /metrics``: Prometheus metrics (``mesoslite_services_*``): deployments in
  progress by kind, started by kind, ended by outcome, their duration; apps, app
  instances by state, instances waiting to launch (docs/observability.md lists them).
* ``GET /dashboard/v1/deployments``: the master dashboard's view of deployments: each
  one in progress with its kind, deadline and progress (tasks of the new and the old
  configuration, healthy and ready, the floor and the ceiling of the rolling rule),
  and the recent ones that ended, with their outcome and the rollback that followed
  (automatic after a timeout, or asked for).  Marathon's ``/v2/deployments`` stays
  Marathon's shape, which clients parse strictly.
* ``GET /``: a redirect to the master's dashboard page for this framework.

``install(app, server)`` wires it once, when the HTTP API is built; the server hands
it every event once it is durable (``notice``: ``deployment_info``,
``deployment_success``, ``deployment_failed``), so no operation changes; gauges are
read from the state when Prometheus scrapes.  The recent outcomes live in memory (the
newest ``HISTORY``): a restarted framework starts with none.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from frameworks.services.deployments import KINDS, Deployment, deployment_json
from frameworks.services.state import app_view
from frameworks.services.views import is_healthy, is_ready
from mesoslite.httpapi import json_response
from mesoslite.metrics_helpers import WAIT_BUCKETS, ScrapeGauge, add_metrics_route

if TYPE_CHECKING:
    from frameworks.services.server import ServicesServer

log = logging.getLogger(__name__)

HISTORY = 200
OUTCOMES = ("succeeded", "timed_out", "cancelled", "superseded", "failed")
PREFIX = "mesoslite_services_"


def outcome_of(event_type: str, reason: str) -> str:
    """How a deployment ended, from its ``deployment_success``/``_failed`` event."""
    if event_type == "deployment_success":
        return "succeeded"
    if reason.startswith("not finished within its timeout"):
        return "timed_out"
    if reason == "cancelled by a forced change":
        return "superseded"
    if reason.startswith("cancelled"):
        return "cancelled"
    return "failed"


class ServicesObserver:
    """Metrics and the deployments' history, fed by the committed events."""

    def __init__(self, server: ServicesServer) -> None:
        self.server = server
        self.registry = CollectorRegistry()
        self.started = Counter(f"{PREFIX}deployments_started", "Deployments started",
                               ["kind"], registry=self.registry)
        self.ended = Counter(f"{PREFIX}deployments_ended", "Deployments that ended",
                             ["outcome"], registry=self.registry)
        self.duration = Histogram(f"{PREFIX}deployment_duration_seconds",
                                  "From a deployment's start to its end", ["outcome"],
                                  buckets=WAIT_BUCKETS, registry=self.registry)
        for kind in KINDS:
            self.started.labels(kind)
        for outcome in OUTCOMES:
            self.ended.labels(outcome)
            self.duration.labels(outcome)
        gauges: list[tuple[str, str, Callable[[], Mapping[tuple[str, ...], float]],
                           tuple[str, ...]]] = [
            ("deployments", "Deployments in progress", self._active, ("kind",)),
            ("apps", "Apps defined", lambda: {(): len(self.state.apps)}, ()),
            ("instances", "App instances (tasks) the framework knows, by state",
             self._instances, ("state",)),
            ("instances_waiting", "Instances waiting to be launched (the /v2/queue)",
             self._waiting, ()),
        ]
        for name, doc, read, labels in gauges:
            self.registry.register(ScrapeGauge(PREFIX + name, doc, read, labels))
        self.known: dict[str, Deployment] = dict(self.state.deployments)
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)

    @property
    def state(self) -> Any:
        return self.server.state

    def now(self) -> float:
        return self.server.now()

    # ---------------------------------------------------------------- gauges

    def _active(self) -> dict[tuple[str, ...], float]:
        counts = Tally(d.kind for d in self.state.deployments.values())
        return {(kind,): float(counts.get(kind, 0)) for kind in KINDS}

    def _instances(self) -> dict[tuple[str, ...], float]:
        counts = Tally(t.state for t in self.state.tasks.values())
        # the usual states always present, so a query sees a 0 rather than no series
        for state in ("TASK_STAGING", "TASK_RUNNING"):
            counts.setdefault(state, 0)
        return {(state,): float(n) for state, n in counts.items()}

    def _waiting(self) -> dict[tuple[str, ...], float]:
        plan = self.server.workload.last_plan
        waiting = sum(plan.launches.values()) + sum(w.count for w in plan.waiting.values())
        return {(): float(waiting)}

    # ---------------------------------------------------------------- events

    def notice(self, event_type: str, payload: Any, subject: Any = None) -> None:
        """``observe``, never failing: metrics must never break the event stream."""
        try:
            self.observe(event_type, payload, subject)
        except Exception:
            log.exception("services metrics: cannot observe %s", event_type)

    def observe(self, event_type: str, payload: Any, subject: Any = None) -> None:
        """A durable event; ``subject``: the ``Deployment`` a ``deployment_info`` is about
        (it may have ended by the time its event is published)."""
        if not isinstance(payload, dict):
            return
        if event_type == "deployment_info":
            plan = payload.get("plan") or {}
            d = subject if isinstance(subject, Deployment) else self.state.deployments.get(
                plan.get("id"))
            if d is None or d.id in self.known:
                return
            self.known[d.id] = d
            self.started.labels(d.kind).inc()
            if d.rollback_of:
                for entry in self.history:
                    if entry["id"] == d.rollback_of:
                        entry["rolledBackBy"] = d.id
                        break
        elif event_type in ("deployment_success", "deployment_failed"):
            deployment_id = str(payload.get("id", ""))
            reason = str(payload.get("reason", ""))
            outcome = outcome_of(event_type, reason)
            d = self.known.pop(deployment_id, None)
            now = self.now()
            self.ended.labels(outcome).inc()
            if d is not None:
                self.duration.labels(outcome).observe(max(0.0, now - d.started_at))
            self.history.appendleft({
                "id": deployment_id, "appId": d.app_id if d else None,
                "kind": d.kind if d else None, "version": d.version if d else None,
                "startedAt": d.started_at if d else None, "endedAt": now,
                "outcome": outcome, "reason": reason,
                "rollbackOf": d.rollback_of if d else None, "rolledBackBy": None})

    # ---------------------------------------------------------------- views

    def deployment_view(self, d: Deployment) -> dict[str, Any]:
        """A deployment in progress: Marathon's fields, what it is, and how far."""
        out = deployment_json(d)
        out.update(appId=d.app_id, kind=d.kind, startedAt=d.started_at, timeout=d.timeout,
                   deadline=d.started_at + d.timeout if d.timeout is not None else None,
                   rollbackOf=d.rollback_of, progress=self.progress(d))
        return out

    def progress(self, d: Deployment) -> dict[str, Any]:
        app = self.state.targets().get(d.app_id)
        if app is None:
            return {}
        view = app_view(app)
        tasks = self.state.app_tasks(d.app_id)
        live = [t.view() for t in tasks if t.kill_requested_at is None]
        new = [t for t in live if t.config_version == view.config_version]
        step = self.server.workload.last_plan.steps.get(d.app_id)
        return {
            "instances": view.instances,
            "updated": len(new),
            "updatedRunning": sum(1 for t in new if t.running),
            "updatedHealthy": sum(1 for t in new if is_healthy(t, view)),
            "updatedReady": sum(1 for t in new if is_ready(t, view)),
            "old": len(live) - len(new),
            "killing": len(tasks) - len(live),
            "healthy": step.healthy if step else None,
            "floor": step.floor if step else None,
            "ceiling": step.ceiling if step else None,
        }

    async def deployments(self, request: web.Request) -> web.Response:
        """``GET /dashboard/v1/deployments[?appId=/x]``."""
        app_id = request.query.get("appId")
        active = sorted((d for d in self.state.deployments.values()
                         if not app_id or d.app_id == app_id), key=lambda d: d.started_at)
        recent = [e for e in self.history if not app_id or e["appId"] == app_id]
        return json_response({"deployments": [self.deployment_view(d) for d in active],
                                  "recent": recent, "now": self.now()})

    async def root(self, request: web.Request) -> web.Response:
        """``GET /``: to the master's dashboard page for this framework."""
        raise web.HTTPTemporaryRedirect(dashboard_url(
            self.server.config.masters, "services", self.server.framework_id))


def dashboard_url(masters: list[str], plugin: str, framework_id: str | None) -> str:
    """The master's dashboard page of a framework (the overview until it has an id)."""
    master = (masters[0] if masters else "").rstrip("/")
    if not framework_id:
        return f"{master}/#/"
    return f"{master}/#/x/{plugin}/{framework_id}"


def install(app: web.Application, server: ServicesServer) -> ServicesObserver:
    """Add the routes to the framework's ``app`` and start observing its events."""
    observer = ServicesObserver(server)
    add_metrics_route(app, observer.registry)
    app.router.add_get("/dashboard/v1/deployments", observer.deployments)
    app.router.add_get("/", observer.root)
    return observer
