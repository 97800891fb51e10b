"""What the batch framework tells about itself besides its ``/v1`` API.

* ``GET /metrics``: Prometheus metrics (``mesoslite_batch_*``): the queue's depth (tasks
  that have not started, by why: ready, backoff, dependencies, parallelism), the time
  tasks waited in it, active runs by phase, runs and attempts that ended, offers held.
* ``GET /dashboard/v1/runs``: the master dashboard's list of runs: every field of
  ``GET /v1/runs`` plus the user, the steps and their task counts (``GET /v1/runs``
  trims those, and asking for each run would cost a request per row).
* ``GET /``: a redirect to the master's dashboard page for this framework.

``install(app, server)`` wires it once, when the HTTP API is built: the server hands
it the events once they are durable (``notice``: runs and attempts that end) and the
state tells it of every attempt recorded for launch (``launched``: its queue wait);
the queue's depth and the run gauges are read from the state when Prometheus
scrapes.

**Queue wait** of an attempt: from when its task could first be queued for it (its
step started, or the task's previous attempt ended: a back-off counts as waiting) to
when the framework placed it and recorded it for launch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from frameworks.batch.records import Attempt, AttemptState, Run, attempt_id
from frameworks.batch.views import phase, queue_json, run_json
from mesoslite.httpapi import HTTPError, json_response
from mesoslite.metrics_helpers import WAIT_BUCKETS, ScrapeGauge, add_metrics_route

if TYPE_CHECKING:
    from frameworks.batch.server import BatchServer

log = logging.getLogger(__name__)

PREFIX = "mesoslite_batch_"
QUEUE_STATUSES = ("ready", "backoff", "dependencies", "parallelism")
PHASES = ("QUEUED", "RUNNING", "CANCELLING")
RUN_ENDS = ("SUCCEEDED", "FAILED", "CANCELLED")
ATTEMPT_ENDS = tuple(s.value for s in AttemptState if not s.active)
MAX_RUNS = 500


class BatchObserver:
    def __init__(self, server: BatchServer) -> None:
        self.server = server
        self.registry = CollectorRegistry()
        self.wait = Histogram(f"{PREFIX}queue_wait_seconds",
                              "Time a task waited in the queue before its attempt launched",
                              buckets=WAIT_BUCKETS, registry=self.registry)
        self.runs_ended = Counter(f"{PREFIX}runs_finished", "Runs that ended, by outcome",
                                  ["outcome"], registry=self.registry)
        self.attempts_ended = Counter(f"{PREFIX}attempts_finished", "Attempts that ended",
                                      ["state"], registry=self.registry)
        self.launches = Counter(f"{PREFIX}attempts_launched", "Attempts recorded for launch",
                                registry=self.registry)
        for state in RUN_ENDS:
            self.runs_ended.labels(state)
        for state in ATTEMPT_ENDS:
            self.attempts_ended.labels(state)
        gauges: list[tuple[str, str, Callable[[], Mapping[tuple[str, ...], float]],
                           tuple[str, ...]]] = [
            ("queue_depth", "Tasks that have not started, by why (GET /mesoslite/v1/queue)",
             self._queue_depth, ("status",)),
            ("runs", "Active runs by phase", self._runs, ("phase",)),
            ("offers_held", "Offers the framework holds",
             lambda: {(): float(len(self.server.core.held))}, ()),
        ]
        for name, doc, read, labels in gauges:
            self.registry.register(ScrapeGauge(PREFIX + name, doc, read, labels))

    @property
    def state(self) -> Any:
        return self.server.state

    # ---------------------------------------------------------------- gauges

    def _queue_depth(self) -> dict[tuple[str, ...], float]:
        doc = queue_json(self.state, self.server.workload, self.server.core,
                         self.server.clock.now())
        counts: Tally[str] = Tally()
        for entry in doc["queue"]:
            counts[entry["status"]] += len(entry.get("tasks") or ())
        return {(s,): float(counts.get(s, 0)) for s in (*QUEUE_STATUSES, *(
            set(counts) - set(QUEUE_STATUSES)))}

    def _runs(self) -> dict[tuple[str, ...], float]:
        counts = Tally(phase(r) for r in self.state.active_runs())
        return {(p,): float(counts.get(p, 0)) for p in PHASES}

    # ---------------------------------------------------------------- hooks

    def notice(self, event_type: str, payload: Any) -> None:
        """A durable event: count the runs and attempts that ended."""
        try:
            if event_type == "run_finished":
                self.runs_ended.labels(str(payload["state"])).inc()
            elif event_type == "attempt_updated" and payload["state"] in ATTEMPT_ENDS:
                self.attempts_ended.labels(str(payload["state"])).inc()
        except Exception:  # metrics must never break the event stream
            log.exception("batch metrics: cannot observe %s", event_type)

    def launched(self, run: Run, attempts: list[Attempt]) -> None:
        """``attempts`` were recorded for launch: count them and their queue wait."""
        for a in attempts:
            self.launches.inc()
            self.wait.observe(max(0.0, a.created_at - queued_since(run, a)))

    # ---------------------------------------------------------------- views

    async def runs(self, request: web.Request) -> web.Response:
        """``GET /dashboard/v1/runs[?limit=N][&job=ID]``: newest first."""
        raw = request.query.get("limit", "50")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_RUNS:
            raise HTTPError(400, f"limit must be an integer from 1 to {MAX_RUNS}",
                            [("limit", [f"must be an integer from 1 to {MAX_RUNS}"])])
        job = request.query.get("job") or None
        docs = await asyncio.to_thread(self.server.store.list_runs, job, int(raw))
        out = []
        for doc in docs:
            live = self.state.runs.get(doc.get("id"))
            out.append(run_row(live) if live is not None else stored_row(doc))
        return json_response({"runs": out, "now": self.server.clock.now()})

    async def root(self, request: web.Request) -> web.Response:
        """``GET /``: to the master's dashboard page for this framework."""
        master = (self.server.config.masters or [""])[0].rstrip("/")
        fid = self.server.framework_id
        raise web.HTTPTemporaryRedirect(f"{master}/#/x/batch/{fid}" if fid else f"{master}/#/")


def queued_since(run: Run, a: Attempt) -> float:
    """When the task of ``a`` could first be queued for this attempt."""
    since = run.steps[a.step].started_at if a.step in run.steps else None
    previous = run.attempts.get(attempt_id(run.id, a.step, a.index, a.number - 1))
    if previous is not None:
        ended = previous.finished_at or previous.created_at
        since = max(since or ended, ended)
    return since if since is not None else run.created_at


def run_row(run: Run) -> dict[str, Any]:
    """A run in memory: ``run_json`` without attempts, plus task totals."""
    doc = run_json(run, attempts=False)
    totals = {"pending": 0, "running": 0, "done": 0, "failed": 0}
    for step in doc["steps"]:
        for key in totals:
            totals[key] += step["counts"][key]
    doc["tasks"] = totals | {"total": sum(totals.values())}
    return doc


def stored_row(doc: dict[str, Any]) -> dict[str, Any]:
    """A run only the store has (old, or from before a restart): no task counts."""
    spec = doc.get("spec") or {}
    state = doc.get("state")
    return {k: doc.get(k) for k in ("id", "job_id", "state", "trigger", "scheduled_for",
                                    "created_at", "finished_at", "message", "rerun_of")} | {
        "user": spec.get("user"), "phase": state, "tasks": None,
        "steps": [{"name": s.get("name"), "state": s.get("state"),
                   "started_at": s.get("started_at"), "finished_at": s.get("finished_at"),
                   "counts": None} for s in doc.get("steps") or []]}


def install(app: web.Application, server: BatchServer) -> BatchObserver:
    """Add the routes to the framework's ``app`` and install the hooks."""
    observer = BatchObserver(server)
    server.observer = server.state.observer = observer
    add_metrics_route(app, observer.registry)
    app.router.add_get("/dashboard/v1/runs", observer.runs)
    app.router.add_get("/", observer.root)
    return observer
