"""The HTTP API: validation errors naming the field, Metronome's job shape, status
codes, the event stream."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from mesoslite.testing.poll import wait_for
from tests.batch.conftest import api, submit, wait_run


async def test_invalid_jobs_are_refused_naming_every_field(batch_env):
    server = await batch_env.server(await batch_env.cluster())
    status, body = await api(server, "POST", "/v1/jobs", {
        "id": "Bad_Id", "cpus": -1, "retires": 2, "steps": [
            {"name": "a", "command": "true"},
            {"name": "b", "command": "true", "depends_on": ["a", "c"]}]})
    assert status == 422
    paths = {d["path"] for d in body["details"]}
    assert {"id", "cpus", "retires"} <= paths
    assert "did you mean 'retries'" in json.dumps(body)
    status, body = await api(server, "POST", "/v1/jobs", {
        "id": "cyclic", "command": "true", "steps": [
            {"name": "a", "depends_on": ["b"]}, {"name": "b", "depends_on": ["a"]}]})
    assert status == 422 and body["details"][0]["path"] == "steps[0].depends_on[0]"
    assert "cycle" in body["details"][0]["errors"][0]


async def test_bad_bodies_and_unknown_things_get_json_errors(batch_env):
    server = await batch_env.server(await batch_env.cluster())
    async with aiohttp.ClientSession() as s, s.post(server.url + "/v1/jobs",
                                                    data=b"{not json") as r:
        assert r.status == 400 and "message" in await r.json()
    for body in ([1, 2], "text", None, {"id": "x"}, {"id": "x", "command": ["a"]},
                 {"id": "x", "command": "a", "schedule": {"cron": "* *"}},
                 {"id": "x", "command": "a", "completions": 10**9},
                 {"id": "x", "command": "a", "env": {"A": {"b": 1}}}):
        status, answer = await api(server, "POST", "/v1/jobs", body)
        assert status in (400, 422), (body, status, answer)
        assert answer["message"]
    assert (await api(server, "GET", "/v1/jobs/nope"))[0] == 404
    assert (await api(server, "GET", "/v1/runs/nope"))[0] == 404
    assert (await api(server, "POST", "/v1/runs/nope/actions/stop"))[0] == 404
    assert (await api(server, "GET", "/v1/runs?limit=abc"))[0] == 400
    status, answer = await api(server, "PUT", "/v1/jobs/a", {"id": "b", "command": "x"})
    assert status == 422 and answer["details"][0]["path"] == "id"


async def test_metronome_job_shape_is_accepted(batch_env):
    server = await batch_env.server(await batch_env.cluster())
    job = {"id": "prod.example.app", "description": "Example Application",
           "labels": {"owner": "zeus"},
           "run": {"cmd": "echo $MON", "cpus": 0.1, "mem": 32, "disk": 0,
                   "env": {"MON": "test"}, "maxLaunchDelay": 3600,
                   "restart": {"policy": "ON_FAILURE", "activeDeadlineSeconds": 120},
                   "artifacts": [], "volumes": []},
           "schedules": [{"id": "nightly", "cron": "20 0 * * *", "timezone": "UTC",
                          "concurrencyPolicy": "FORBID", "startingDeadlineSeconds": 60}]}
    status, body = await api(server, "POST", "/v1/jobs", job)
    assert status == 201, body
    assert body["schedules"][0]["concurrencyPolicy"] == "FORBID"
    _, native = await api(server, "GET", "/mesoslite/v1/jobs/prod.example.app")
    step = native["steps"][0]
    # ON_FAILURE: relaunched until 120s after the run's creation (no kill deadline).
    assert (step["command"], step["retry_deadline"], step["timeout"]) == ("echo $MON", 120,
                                                                          None)
    assert step["retries"] > 0
    assert native["user"] == "zeus"
    assert native["schedules"][0]["concurrency_policy"] == "FORBID"
    assert (await api(server, "POST", "/v1/jobs", job))[0] == 409
    status, run = await api(server, "POST", "/v1/jobs/prod.example.app/runs")
    assert status == 201
    done = await wait_run(server, run["id"])
    assert done["state"] == "SUCCEEDED"
    status, same = await api(server, "GET", f"/v1/jobs/prod.example.app/runs/{run['id']}")
    assert status == 200 and same["id"] == run["id"] and same["status"] == "SUCCESS"
    bad = {"id": "m2", "run": {"cmd": "x", "cpus": -2, "mem": 32}}
    status, body = await api(server, "POST", "/v1/jobs", bad)
    assert status == 422 and body["details"][0]["path"] == "run.cpus"


async def test_delete_refuses_while_runs_are_active_unless_asked(batch_env):
    server = await batch_env.server(await batch_env.cluster())
    run = await submit(server, {"id": "busy", "command": "exec sleep 600", "kill_grace": 0.2})
    assert (await api(server, "DELETE", "/v1/jobs/busy"))[0] == 409
    status, _ = await api(server, "DELETE", "/v1/jobs/busy?stop_current_runs=true")
    assert status == 200
    assert (await wait_run(server, run["id"]))["state"] == "CANCELLED"
    assert (await api(server, "GET", "/v1/jobs/busy"))[0] == 404


async def test_event_stream_reports_a_run_from_start_to_end(batch_env):
    server = await batch_env.server(await batch_env.cluster())
    events: list[tuple[str, dict]] = []

    async def listen() -> None:
        async with aiohttp.ClientSession() as s, s.get(server.url + "/v1/events") as r:
            kind = None
            async for raw in r.content:
                line = raw.decode().strip()
                if line.startswith("event:"):
                    kind = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and kind:
                    events.append((kind, json.loads(line.split(":", 1)[1])))
                    if kind == "run_finished":
                        return

    listener = asyncio.create_task(listen())
    await wait_for(lambda: server.events.subscribers > 0, 10)  # connected before the run
    run = await submit(server, {"id": "evented", "command": "true"})
    await asyncio.wait_for(listener, 30)
    kinds = [k for k, e in events if e.get("run") == run["id"]]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert "attempt_updated" in kinds and "step_updated" in kinds
    assert events[-1][1]["state"] == "SUCCEEDED"
