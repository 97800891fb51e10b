"""``/v1/jobs...``: the batch framework's jobs, runs and schedules as Metronome serves
them (shapes: ``metronome_views.py``; the native API: ``api.py``).

| method and path | what |
|---|---|
| ``GET /v1/jobs[?embed=...]`` | every job (``embed``: activeRuns, schedules, history, historySummary) |
| ``POST /v1/jobs`` | create a job (409 if it exists) |
| ``GET/PUT/DELETE /v1/jobs/{id}`` | read (``embed``), create-or-replace, delete (``?stopCurrentJobRuns=true``) |
| ``GET/POST /v1/jobs/{id}/runs`` | the job's active runs; start a run |
| ``GET /v1/jobs/{id}/runs/{run}``, ``POST .../actions/stop`` | a run; stop it |
| ``GET/POST /v1/jobs/{id}/schedules`` | the job's schedules; add one (409 if its id exists) |
| ``GET/PUT/DELETE /v1/jobs/{id}/schedules/{sid}`` | read, replace, remove a schedule |
| ``GET /v1/queue`` | runs waiting to launch: ``[{"jobId", "runs": [{"runId"}]}]`` |

Bodies may be Metronome's or the native shape.  As in Metronome, a PUT of a job in
Metronome's shape keeps the job's schedules (they are changed under ``schedules``),
and a pipeline cannot be replaced by a Metronome body (it would lose its steps): 409,
use ``/mesoslite/v1``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from frameworks.batch.fields import SpecError
from frameworks.batch.metronome import schedule_from_metronome
from frameworks.batch.metronome_views import (
    EMBEDS,
    FinishedRun,
    History,
    finished_run,
    history_doc,
    job_doc,
    run_doc,
    schedule_doc,
)
from frameworks.batch.views import queue_json
from mesoslite.httpapi import HTTPError, json_response, read_json

if TYPE_CHECKING:
    from frameworks.batch.api import Api
    from frameworks.batch.model import JobSpec, ScheduleSpec
    from frameworks.batch.state import JobRecord
    from frameworks.batch.store import BatchStore

HISTORY_LISTED = 50  # ended runs listed per outcome in ``history`` (all are counted)
FAILED_STATES = ("FAILED", "CANCELLED")


class MetronomeApi:
    """The handlers; shares lookups, validation and writes with the native ``Api``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.server = api.server

    def add_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/v1/jobs", self.list_jobs)
        r.add_post("/v1/jobs", self.create_job)
        r.add_get("/v1/jobs/{job}", self.get_job)
        r.add_put("/v1/jobs/{job}", self.put_job)
        r.add_delete("/v1/jobs/{job}", self.delete_job)
        r.add_get("/v1/jobs/{job}/runs", self.job_runs)
        r.add_post("/v1/jobs/{job}/runs", self.start_run)
        r.add_get("/v1/jobs/{job}/runs/{run}", self.get_run)
        r.add_post("/v1/jobs/{job}/runs/{run}/actions/stop", self.stop_run)
        r.add_get("/v1/jobs/{job}/schedules", self.list_schedules)
        r.add_post("/v1/jobs/{job}/schedules", self.create_schedule)
        r.add_get("/v1/jobs/{job}/schedules/{schedule}", self.get_schedule)
        r.add_put("/v1/jobs/{job}/schedules/{schedule}", self.put_schedule)
        r.add_delete("/v1/jobs/{job}/schedules/{schedule}", self.delete_schedule)
        r.add_get("/v1/queue", self.queue)

    async def queue(self, request: web.Request) -> web.Response:
        """Metronome's queue: the runs with a task ready to launch or backing off, by
        job (the native ``/mesoslite/v1/queue`` says why each task waits)."""
        server = self.server
        native = queue_json(server.state, server.workload, server.core, self.api.now())
        runs: dict[str, dict[str, None]] = {}
        for entry in native["queue"]:
            if entry["status"] in ("ready", "backoff"):
                runs.setdefault(entry["job"], {})[entry["run"]] = None
        return json_response([{"jobId": job, "runs": [{"runId": r} for r in runs[job]]}
                              for job in sorted(runs)])

    # ------------------------------------------------------------ jobs

    def _spec_doc(self, spec: JobSpec) -> dict[str, Any]:
        """A job as Metronome's POST/PUT/DELETE answer it: with its schedules."""
        now = self.api.now()
        return job_doc(spec) | {"schedules": [schedule_doc(s, now) for s in spec.schedules]}

    async def _info(self, record: JobRecord, embeds: set[str]) -> dict[str, Any]:
        """A job as GET answers it, with what ``embed`` asked for."""
        doc = job_doc(record.spec)
        job_id = record.spec.id
        if "schedules" in embeds:
            doc["schedules"] = [schedule_doc(s, self.api.now()) for s in record.spec.schedules]
        if "activeRuns" in embeds:
            doc["activeRuns"] = [run_doc(r) for r in self.api.state.active_runs(job_id)]
        if embeds & {"history", "historySummary"}:
            history = await asyncio.to_thread(load_history, self.server.store, job_id)
            if "history" in embeds:
                doc["history"] = history_doc(history, summary=False)
            if "historySummary" in embeds:
                doc["historySummary"] = history_doc(history, summary=True)
        return doc

    async def list_jobs(self, request: web.Request) -> web.Response:
        embeds = _embeds(request)
        jobs = sorted(self.api.state.jobs.values(), key=lambda r: r.spec.id)
        return json_response([await self._info(r, embeds) for r in jobs])

    async def get_job(self, request: web.Request) -> web.Response:
        embeds = _embeds(request)
        return json_response(await self._info(self.api.job(request.match_info["job"]), embeds))

    async def create_job(self, request: web.Request) -> web.Response:
        spec = self.api.spec_of(await read_json(request))
        if spec.id in self.api.state.jobs:
            raise HTTPError(409, f"Job '{spec.id}' already exists (PUT /v1/jobs/{spec.id} "
                                 "replaces it)")
        self.api.state.put_job(spec, self.api.now())
        await self.server.commit()
        return json_response(self._spec_doc(spec), 201)

    async def put_job(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job"]
        body = await read_json(request)
        spec = self.api.spec_of(body, job_id)
        old = self.api.state.jobs.get(job_id)
        if old is not None and _metronome_shaped(body):
            if old.spec.is_pipeline:
                raise HTTPError(409, f"Job '{job_id}' is a pipeline of {len(old.spec.steps)} "
                                     "step(s), which Metronome's shape cannot describe: "
                                     f"replace it with PUT /mesoslite/v1/jobs/{job_id}")
            spec = dataclasses.replace(spec, schedules=old.spec.schedules)
        _, created = self.api.state.put_job(spec, self.api.now())
        await self.server.commit()
        return json_response(self._spec_doc(spec), 201 if created else 200)

    async def delete_job(self, request: web.Request) -> web.Response:
        record = await self.api.remove_job(request)
        return json_response(self._spec_doc(record.spec))

    # ------------------------------------------------------------ runs

    async def job_runs(self, request: web.Request) -> web.Response:
        record = self.api.job(request.match_info["job"])
        active = sorted(self.api.state.active_runs(record.spec.id),
                        key=lambda r: r.created_at, reverse=True)
        return json_response([run_doc(r) for r in active])

    async def start_run(self, request: web.Request) -> web.Response:
        record = self.api.job(request.match_info["job"])
        run = self.api.state.start_run(record.spec, self.api.now())
        await self.server.commit()
        return json_response(run_doc(run), 201)

    async def get_run(self, request: web.Request) -> web.Response:
        self.api.job(request.match_info["job"])
        run = await self.api.run(request.match_info["run"], request.match_info["job"])
        return json_response(run_doc(run))

    async def stop_run(self, request: web.Request) -> web.Response:
        self.api.job(request.match_info["job"])
        return json_response(run_doc(await self.api.cancel(request)))

    # ------------------------------------------------------------ schedules

    def _schedule(self, record: JobRecord, schedule_id: str) -> ScheduleSpec:
        for s in record.spec.schedules:
            if s.id == schedule_id:
                return s
        raise HTTPError(404, f"Schedule '{schedule_id}' does not exist")

    async def _schedule_body(self, request: web.Request, path_id: str | None = None
                             ) -> ScheduleSpec:
        body = await read_json(request)
        if path_id is not None and isinstance(body, Mapping):
            body = {**body, "id": path_id}
        try:
            return schedule_from_metronome(body)
        except SpecError as exc:
            details = [(p or "(schedule)", [m]) for p, m in exc.details]
            raise HTTPError(422, f"Invalid schedule: {exc}", details) from None

    async def _save(self, record: JobRecord, schedules: tuple[ScheduleSpec, ...]) -> None:
        self.api.state.put_job(dataclasses.replace(record.spec, schedules=schedules),
                               self.api.now())
        await self.server.commit()

    async def list_schedules(self, request: web.Request) -> web.Response:
        record = self.api.job(request.match_info["job"])
        now = self.api.now()
        return json_response([schedule_doc(s, now) for s in record.spec.schedules])

    async def get_schedule(self, request: web.Request) -> web.Response:
        record = self.api.job(request.match_info["job"])
        schedule = self._schedule(record, request.match_info["schedule"])
        return json_response(schedule_doc(schedule, self.api.now()))

    async def create_schedule(self, request: web.Request) -> web.Response:
        record = self.api.job(request.match_info["job"])
        schedule = await self._schedule_body(request)
        if any(s.id == schedule.id for s in record.spec.schedules):
            raise HTTPError(409, f"A schedule with id '{schedule.id}' already exists")
        await self._save(record, (*record.spec.schedules, schedule))
        return json_response(schedule_doc(schedule, self.api.now()), 201)

    async def put_schedule(self, request: web.Request) -> web.Response:
        record = self.api.job(request.match_info["job"])
        schedule_id = request.match_info["schedule"]
        self._schedule(record, schedule_id)
        schedule = await self._schedule_body(request, schedule_id)
        await self._save(record, tuple(schedule if s.id == schedule_id else s
                                       for s in record.spec.schedules))
        return json_response(schedule_doc(schedule, self.api.now()))

    async def delete_schedule(self, request: web.Request) -> web.Response:
        record = self.api.job(request.match_info["job"])
        schedule_id = request.match_info["schedule"]
        self._schedule(record, schedule_id)
        await self._save(record, tuple(s for s in record.spec.schedules if s.id != schedule_id))
        return web.Response(status=200)


def _metronome_shaped(body: Any) -> bool:
    return isinstance(body, Mapping) and isinstance(body.get("run"), Mapping)


def _embeds(request: web.Request) -> set[str]:
    """``?embed=a&embed=b`` (or ``embed=a,b``); 400 naming an unknown one."""
    asked = {e for raw in request.query.getall("embed", []) for e in raw.split(",") if e}
    unknown = sorted(asked - set(EMBEDS))
    if unknown:
        choices = ", ".join(EMBEDS)
        raise HTTPError(400, f"Unknown embed {', '.join(unknown)}: choose from {choices}",
                        [("embed", [f"must be one of {choices}"])])
    return asked


def load_history(store: BatchStore, job_id: str) -> History:
    """The job's ended runs from the store (blocking: call in a worker thread)."""
    counts = store.count_runs(job_id)
    good = store.list_runs(job_id, HISTORY_LISTED, ("SUCCEEDED",))
    bad = store.list_runs(job_id, HISTORY_LISTED, FAILED_STATES)
    tasks = store.attempt_ids([d["id"] for d in good + bad])

    def infos(docs: list[dict[str, Any]]) -> tuple[FinishedRun, ...]:
        return tuple(finished_run(d, tasks[d["id"]]) for d in docs)

    return History(counts.get("SUCCEEDED", 0), sum(counts.get(s, 0) for s in FAILED_STATES),
                   infos(good), infos(bad))
