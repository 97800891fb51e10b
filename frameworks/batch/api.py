"""The batch framework's HTTP API (aiohttp): Metronome's ``/v1`` and the native one.

``/v1/jobs...`` answers in Metronome's shapes (``metronome_api.py``), so Metronome
clients read it.  The native shape (pipelines, attempts, counts: what the CLI and the
dashboard read) is served under ``/mesoslite/v1`` (``NATIVE``):

| method and path (under ``/mesoslite/v1``) | what |
|---|---|
| ``GET /jobs`` | every job |
| ``POST /jobs`` | create a job (409 if it exists); native or Metronome shape |
| ``GET/PUT/DELETE /jobs/{id}`` | read, create-or-replace, delete (``?stop_current_runs=true``) |
| ``GET/POST /jobs/{id}/runs`` | the job's runs (newest first); start a run |
| ``GET /jobs/{id}/runs/{run}``, ``POST .../actions/stop`` | a run of the job; cancel it |
| ``GET /runs`` | recent runs of every job (``?active=true``, ``?limit=N``) |
| ``GET /runs/{id}`` | a run: steps with task counts, attempts |
| ``POST /runs/{id}/actions/stop`` | cancel the run |
| ``POST /runs/{id}/actions/rerun`` | a new run of the same spec (``{"failed_only": true}``) |
| ``GET /queue`` | every task that has not started, and why |
| ``GET /events`` | SSE: job, run, step and attempt changes (``Last-Event-ID`` resumes) |
| ``GET /info`` | master URL, framework id |

The paths Metronome does not have (``/runs...``, ``/events``, ``/info``) answer under
``/v1`` too, in the native shape; ``/v1/queue`` answers in Metronome's.  ``GET /health``: liveness.

Invalid jobs are refused with 422 and ``details`` naming each offending field;
every error is JSON ``{"message", "details"}`` (``mesoslite.httpapi``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from frameworks.batch.model import SpecError, parse_job
from frameworks.batch.observe import install as install_observer
from frameworks.batch.records import Attempt, Run
from frameworks.batch.views import job_json, queue_json, run_json, run_summary
from mesoslite.auth import Auth, api_guard
from mesoslite.httpapi import HTTPError, json_response, make_app, read_json

if TYPE_CHECKING:
    from frameworks.batch.server import BatchServer

MAX_LIST = 500


NATIVE = "/mesoslite/v1"


def build_app(server: BatchServer) -> web.Application:
    from frameworks.batch.metronome_api import MetronomeApi

    api = Api(server)
    app = make_app(middlewares=api_guard(server.config.auth or Auth(), "batch",
                                         write="manage_job", public={"/health"}))
    r = app.router
    r.add_get("/health", api.health)
    n = NATIVE
    r.add_get(f"{n}/jobs", api.list_jobs)
    r.add_post(f"{n}/jobs", api.create_job)
    r.add_get(f"{n}/jobs/{{job}}", api.get_job)
    r.add_put(f"{n}/jobs/{{job}}", api.put_job)
    r.add_delete(f"{n}/jobs/{{job}}", api.delete_job)
    r.add_get(f"{n}/jobs/{{job}}/runs", api.job_runs)
    r.add_post(f"{n}/jobs/{{job}}/runs", api.start_run)
    r.add_get(f"{n}/jobs/{{job}}/runs/{{run}}", api.get_run)
    r.add_post(f"{n}/jobs/{{job}}/runs/{{run}}/actions/stop", api.stop_run)
    for prefix in (n, "/v1"):  # paths Metronome lacks: the native shape on /v1 as well
        r.add_get(f"{prefix}/info", api.info)
        r.add_get(f"{prefix}/runs", api.list_runs)
        r.add_get(f"{prefix}/runs/{{run}}", api.get_run)
        r.add_post(f"{prefix}/runs/{{run}}/actions/stop", api.stop_run)
        r.add_post(f"{prefix}/runs/{{run}}/actions/rerun", api.rerun)
        r.add_get(f"{prefix}/events", api.events)
    r.add_get(f"{n}/queue", api.queue)  # /v1/queue: Metronome's shape (MetronomeApi)
    MetronomeApi(api).add_routes(r)
    install_observer(app, server)  # /metrics, dashboard views, GET / redirect
    return app


class Api:
    def __init__(self, server: BatchServer) -> None:
        self.server = server

    @property
    def state(self) -> Any:
        return self.server.state

    def now(self) -> float:
        return self.server.clock.now()

    # ------------------------------------------------------------ info

    async def health(self, request: web.Request) -> web.Response:
        return json_response({"status": "ok", "subscribed": self.server.subscribed})

    async def info(self, request: web.Request) -> web.Response:
        return json_response({"name": self.server.config.name,
                              "master": self.server.master_url,
                              "framework_id": self.server.framework_id,
                              "subscribed": self.server.subscribed,
                              "store": self.server.store.describe()})

    # ------------------------------------------------------------ jobs

    async def _spec(self, request: web.Request, path_id: str | None = None) -> Any:
        return self.spec_of(await read_json(request), path_id)

    def spec_of(self, body: Any, path_id: str | None = None) -> Any:
        """The validated ``JobSpec`` of a request body (422 naming every bad field)."""
        if path_id is not None and isinstance(body, dict) and "id" not in body:
            body = {**body, "id": path_id}
        try:
            spec = parse_job(body)
        except SpecError as exc:
            details = [(p or "(job)", [m]) for p, m in exc.details]
            raise HTTPError(422, f"Invalid job: {exc}", details) from None
        if path_id is not None and spec.id != path_id:
            raise HTTPError(422, f"Invalid job: id: {spec.id!r} differs from the path's "
                                 f"{path_id!r}", [("id", ["must match the job id in the path"])])
        return spec

    def job(self, job_id: str) -> Any:
        record = self.state.jobs.get(job_id)
        if record is None:
            raise HTTPError(404, f"Job '{job_id}' does not exist")
        return record

    def _job_json(self, record: Any) -> dict[str, Any]:
        return job_json(record, self.state.active_runs(record.spec.id), self.now())

    async def list_jobs(self, request: web.Request) -> web.Response:
        jobs = sorted(self.state.jobs.values(), key=lambda r: r.spec.id)
        return json_response([self._job_json(r) for r in jobs])

    async def create_job(self, request: web.Request) -> web.Response:
        spec = await self._spec(request)
        if spec.id in self.state.jobs:
            raise HTTPError(409, f"Job '{spec.id}' already exists (PUT /v1/jobs/{spec.id} "
                                 "replaces it)")
        record, _ = self.state.put_job(spec, self.now())
        await self.server.commit()
        return json_response(self._job_json(record), 201)

    async def put_job(self, request: web.Request) -> web.Response:
        spec = await self._spec(request, request.match_info["job"])
        record, created = self.state.put_job(spec, self.now())
        await self.server.commit()
        return json_response(self._job_json(record), 201 if created else 200)

    async def get_job(self, request: web.Request) -> web.Response:
        record = self.job(request.match_info["job"])
        doc = self._job_json(record)
        runs = await asyncio.to_thread(self.server.store.list_runs, record.spec.id, 10)
        doc["recent_runs"] = [run_summary(r) for r in runs]
        return json_response(doc)

    async def delete_job(self, request: web.Request) -> web.Response:
        return json_response(self._job_json(await self.remove_job(request)))

    async def remove_job(self, request: web.Request) -> Any:
        """Delete the path's job (409 while it has active runs, unless asked to stop
        them); returns its record."""
        record = self.job(request.match_info["job"])
        active = self.state.active_runs(record.spec.id)
        stop = request.query.get("stop_current_runs", request.query.get(
            "stopCurrentJobRuns", "false")).lower() == "true"
        if active and not stop:
            raise HTTPError(409, f"Job '{record.spec.id}' has {len(active)} active run(s); "
                                 "add ?stop_current_runs=true to cancel them")
        for run in active:
            self.state.cancel_run(run, "job deleted")
        self.state.delete_job(record.spec.id)
        await self.server.commit()
        return record

    # ------------------------------------------------------------ runs

    async def start_run(self, request: web.Request) -> web.Response:
        record = self.job(request.match_info["job"])
        run = self.state.start_run(record.spec, self.now())
        await self.server.commit()
        return json_response(run_json(run), 201)

    async def job_runs(self, request: web.Request) -> web.Response:
        record = self.job(request.match_info["job"])
        limit = _limit(request)
        docs = await asyncio.to_thread(self.server.store.list_runs, record.spec.id, limit)
        return json_response([run_summary(d) for d in docs])

    async def list_runs(self, request: web.Request) -> web.Response:
        if request.query.get("active", "").lower() == "true":
            runs = sorted(self.state.active_runs(), key=lambda r: r.created_at, reverse=True)
            return json_response([run_json(r, attempts=False) for r in runs])
        docs = await asyncio.to_thread(self.server.store.list_runs, None, _limit(request))
        return json_response([run_summary(d) for d in docs])

    async def run(self, run_id: str, job_id: str | None = None) -> Run:
        run = self.state.runs.get(run_id)
        if run is None:
            found = await asyncio.to_thread(self.server.store.get_run, run_id)
            if found is not None:
                doc, attempts = found
                run = Run.from_json(doc, [Attempt.from_json(a) for a in attempts])
        if run is None or (job_id is not None and run.job_id != job_id):
            raise HTTPError(404, f"Run '{run_id}' does not exist")
        return run

    async def get_run(self, request: web.Request) -> web.Response:
        run = await self.run(request.match_info["run"], request.match_info.get("job"))
        return json_response(run_json(run))

    async def stop_run(self, request: web.Request) -> web.Response:
        return json_response(run_json(await self.cancel(request), attempts=False), 202)

    async def cancel(self, request: web.Request) -> Run:
        """Cancel the path's run (409 once it has ended); returns the live run."""
        run = await self.run(request.match_info["run"], request.match_info.get("job"))
        if run.state.terminal:
            raise HTTPError(409, f"Run '{run.id}' has already ended ({run.state.value})")
        live = self.state.runs.get(run.id, run)
        self.state.cancel_run(live, "cancelled by request")
        await self.server.commit()
        return live

    async def rerun(self, request: web.Request) -> web.Response:
        run = await self.run(request.match_info["run"])
        body = await read_json(request) if request.can_read_body else {}
        failed_only = bool(body.get("failed_only", False)) if isinstance(body, dict) else False
        new = self.state.start_run(run.spec, self.now(), f"rerun:{run.id}", rerun_of=run,
                                   failed_only=failed_only)
        await self.server.commit()
        return json_response(run_json(new), 201)

    # ------------------------------------------------------------ queue and events

    async def queue(self, request: web.Request) -> web.Response:
        return json_response(queue_json(self.state, self.server.workload, self.server.core,
                                        self.now()))

    async def events(self, request: web.Request) -> web.StreamResponse:
        types = [t for t in request.query.get("types", "").split(",") if t] or None
        return await self.server.events.handle(request, types)


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST:
        raise HTTPError(400, f"limit must be an integer from 1 to {MAX_LIST}",
                        [("limit", [f"must be an integer from 1 to {MAX_LIST}"])])
    return int(raw)
