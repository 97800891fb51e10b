"""Metronome both ways on a real cluster: jobs, runs and schedules answered in
Metronome's shapes on ``/v1`` (a GET body PUT back unchanged), ``embed``, host-path
volumes, artifacts from a loopback HTTP server, and ``restart`` with its deadline."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from mesoslite.clock import ManualClock
from mesoslite.testing.artifacts import ArtifactServer
from mesoslite.testing.poll import wait_for
from tests.batch.conftest import api, get_run

INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
TOOL = b'#!/bin/sh\ncat "$1/in" > "$1/out"\necho "$GREETING" >> "$1/out"\n'


@pytest.fixture
async def files() -> AsyncIterator[ArtifactServer]:
    srv = await ArtifactServer().start()
    yield srv
    await srv.stop()


async def metronome_run(server, job_id: str, run_id: str, status: str) -> dict:
    """The run as ``/v1`` shows it, once it has ``status``."""
    async def reached() -> dict | None:
        code, run = await api(server, "GET", f"/v1/jobs/{job_id}/runs/{run_id}")
        assert code == 200, run
        return run if run["status"] == status else None

    return await wait_for(reached, 30, interval=0.05, message=f"run {run_id} {status}")


async def test_a_metronome_job_round_trips_and_runs_with_its_volume_and_artifact(
        batch_env, files, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in").write_text("from the host\n")
    tool = files.add("tools/copy.sh", TOOL)
    server = await batch_env.server(await batch_env.cluster(
        agents=1, allowed_host_paths=[str(shared)]))
    job = {"id": "prod.copy", "description": "copies", "labels": {"team": "data"},
           "run": {"cmd": "./copy.sh data", "cpus": 0.2, "mem": 32, "disk": 0,
                   "env": {"GREETING": "hello"},
                   "artifacts": [{"uri": tool, "executable": True, "extract": False,
                                  "cache": False}],
                   "volumes": [{"containerPath": "data", "hostPath": str(shared),
                                "mode": "RW"}],
                   "restart": {"policy": "NEVER"}}}
    status, created = await api(server, "POST", "/v1/jobs", job)
    assert status == 201, created
    assert created["schedules"] == [] and created["run"]["cmd"] == "./copy.sh data"

    status, shown = await api(server, "GET", "/v1/jobs/prod.copy")
    assert status == 200
    assert set(shown) == {"id", "description", "labels", "run"}
    run_spec = shown["run"]
    assert (run_spec["cpus"], run_spec["mem"], run_spec["env"]) == (0.2, 32, {"GREETING": "hello"})
    assert run_spec["volumes"] == job["run"]["volumes"]
    assert run_spec["artifacts"] == job["run"]["artifacts"]
    assert run_spec["restart"] == {"policy": "NEVER"}
    # Round trip: what GET gave, PUT back, reads the same.
    status, _ = await api(server, "PUT", "/v1/jobs/prod.copy", shown)
    assert status == 200
    assert (await api(server, "GET", "/v1/jobs/prod.copy"))[1] == shown

    status, run = await api(server, "POST", "/v1/jobs/prod.copy/runs")
    assert status == 201, run
    assert set(run) == {"id", "jobId", "status", "createdAt", "completedAt", "tasks"}
    assert run["jobId"] == "prod.copy" and run["status"] in ("STARTING", "ACTIVE")
    assert INSTANT.match(run["createdAt"]) and run["completedAt"] is None
    done = await metronome_run(server, "prod.copy", run["id"], "SUCCESS")
    [task] = done["tasks"]
    assert task["status"] == "TASK_FINISHED" and INSTANT.match(task["completedAt"])
    assert (shared / "out").read_text() == "from the host\nhello\n"
    assert files.requests["/tools/copy.sh"] == 1
    # The native shape is still there for the CLI and the dashboard.
    status, native = await api(server, "GET", "/mesoslite/v1/jobs/prod.copy")
    assert status == 200 and native["steps"][0]["volumes"] == [
        {"container_path": "data", "host_path": str(shared), "mode": "RW"}]


async def test_a_host_path_outside_the_agents_prefixes_fails_the_run(batch_env, tmp_path):
    server = await batch_env.server(await batch_env.cluster(agents=1))
    job = {"id": "escape", "run": {"cmd": "true", "cpus": 0.1, "mem": 32, "volumes": [
        {"containerPath": "etc", "hostPath": "/etc", "mode": "RO"}]}}
    assert (await api(server, "POST", "/v1/jobs", job))[0] == 201
    _, run = await api(server, "POST", "/v1/jobs/escape/runs")
    failed = await metronome_run(server, "escape", run["id"], "FAILED")
    assert [t["status"] for t in failed["tasks"]] == ["TASK_FAILED"]
    native = await get_run(server, run["id"])
    assert "/etc is not allowed on this agent" in native["message"]


async def test_schedules_as_metronome_and_bad_input_named(batch_env):
    server = await batch_env.server(await batch_env.cluster(agents=1))
    job = {"id": "nightly", "run": {"cmd": "true", "cpus": 0.1, "mem": 32}}
    assert (await api(server, "POST", "/v1/jobs", job))[0] == 201
    base = "/v1/jobs/nightly/schedules"
    assert (await api(server, "GET", base)) == (200, [])
    schedule = {"id": "every-night", "cron": "20 0 * * *", "timezone": "Europe/Berlin",
                "startingDeadlineSeconds": 60, "concurrencyPolicy": "FORBID",
                "enabled": True}
    status, created = await api(server, "POST", base, schedule)
    assert status == 201, created
    assert {k: created[k] for k in schedule} == schedule
    assert INSTANT.match(created["nextRunAt"])
    assert (await api(server, "POST", base, schedule))[0] == 409
    assert (await api(server, "GET", base))[1] == [created]
    assert (await api(server, "GET", f"{base}/every-night"))[1] == created

    changed = {**schedule, "cron": "0 6 * * 1", "enabled": False}
    status, replaced = await api(server, "PUT", f"{base}/every-night", changed)
    assert status == 200 and replaced["cron"] == "0 6 * * 1" and "nextRunAt" not in replaced
    assert (await api(server, "PUT", f"{base}/nope", changed))[0] == 404
    # A job PUT in Metronome's shape keeps the schedules, as Metronome does.
    _, shown = await api(server, "GET", "/v1/jobs/nightly")
    assert (await api(server, "PUT", "/v1/jobs/nightly", shown))[0] == 200
    _, embedded = await api(server, "GET", "/v1/jobs/nightly?embed=schedules")
    assert embedded["schedules"] == [replaced]

    status, body = await api(server, "POST", base, {"id": "bad", "cron": "61 * * * *",
                                                    "concurrencyPolicy": "SOMETIMES"})
    assert status == 422
    assert {d["path"] for d in body["details"]} == {"cron", "concurrencyPolicy"}
    status, body = await api(server, "POST", base, {"cron": "* * * * *"})
    assert status == 422 and body["details"][0]["path"] == "id"

    status, _ = await api(server, "DELETE", f"{base}/every-night")
    assert status == 200
    assert (await api(server, "GET", f"{base}/every-night"))[0] == 404
    assert (await api(server, "GET", "/v1/jobs/nope/schedules"))[0] == 404

    bad = {"id": "broken", "run": {"cmd": "x", "cpus": -1, "restart": {"policy": "SOMETIMES"},
                                   "volumes": [{"containerPath": "a"}]}}
    status, body = await api(server, "POST", "/v1/jobs", bad)
    assert status == 422
    assert {d["path"] for d in body["details"]} == {
        "run.cpus", "run.restart.policy", "run.volumes[0]"}
    assert (await api(server, "GET", "/v1/jobs?embed=everything"))[0] == 400
    # A pipeline is not flattened by a Metronome body.
    pipeline = {"id": "etl", "command": "true", "steps": [{"name": "a"}, {"name": "b"}]}
    assert (await api(server, "PUT", "/mesoslite/v1/jobs/etl", pipeline))[0] == 201
    assert (await api(server, "PUT", "/v1/jobs/etl", job | {"id": "etl"}))[0] == 409


async def test_embed_history_summary_and_active_runs(batch_env, tmp_path):
    server = await batch_env.server(await batch_env.cluster(agents=1))
    flag, go = tmp_path / "flag", tmp_path / "go"
    job = {"id": "flaky", "run": {"cpus": 0.1, "mem": 32, "restart": {"policy": "NEVER"},
                                  "cmd": f"test -f {flag} && while [ ! -f {go} ]; "
                                         "do sleep 0.05; done"}}
    assert (await api(server, "POST", "/v1/jobs", job))[0] == 201
    _, first = await api(server, "POST", "/v1/jobs/flaky/runs")
    failed = await metronome_run(server, "flaky", first["id"], "FAILED")
    flag.touch()
    go.touch()
    _, second = await api(server, "POST", "/v1/jobs/flaky/runs")
    await metronome_run(server, "flaky", second["id"], "SUCCESS")
    go.unlink()
    _, third = await api(server, "POST", "/v1/jobs/flaky/runs")
    await metronome_run(server, "flaky", third["id"], "ACTIVE")

    status, doc = await api(server, "GET", "/v1/jobs/flaky?embed=history&embed=historySummary"
                                           "&embed=activeRuns")
    assert status == 200, doc
    history = doc["history"]
    assert (history["successCount"], history["failureCount"]) == (1, 1)
    assert INSTANT.match(history["lastSuccessAt"]) and INSTANT.match(history["lastFailureAt"])
    [good] = history["successfulFinishedRuns"]
    [bad] = history["failedFinishedRuns"]
    assert good["id"] == second["id"] and bad["id"] == first["id"]
    assert bad["tasks"] == [t["id"] for t in failed["tasks"]]
    assert doc["historySummary"] == {k: history[k] for k in (
        "successCount", "failureCount", "lastSuccessAt", "lastFailureAt")}
    assert [r["id"] for r in doc["activeRuns"]] == [third["id"]]
    assert "schedules" not in doc
    _, active = await api(server, "GET", "/v1/jobs/flaky/runs")
    assert [r["id"] for r in active] == [third["id"]]
    _, listed = await api(server, "GET", "/v1/jobs?embed=historySummary")
    assert [j["historySummary"]["successCount"] for j in listed] == [1]
    status, stopped = await api(server, "POST",
                                f"/v1/jobs/flaky/runs/{third['id']}/actions/stop")
    assert status == 200 and stopped["id"] == third["id"]
    await metronome_run(server, "flaky", third["id"], "FAILED")


async def test_restart_on_failure_relaunches_until_the_deadline(batch_env):
    clock = ManualClock()
    server = await batch_env.server(await batch_env.cluster(agents=1), clock=clock)
    job = {"id": "retrying", "run": {"cmd": "exit 3", "cpus": 0.1, "mem": 32, "restart": {
        "policy": "ON_FAILURE", "activeDeadlineSeconds": 10}}}
    assert (await api(server, "POST", "/v1/jobs", job))[0] == 201
    _, run = await api(server, "POST", "/v1/jobs/retrying/runs")

    async def failed_attempts(n: int) -> dict | None:
        native = await get_run(server, run["id"])
        ended = [a for a in native["attempts"] if a["state"] == "FAILED"]
        return native if len(ended) >= n else None

    await wait_for(lambda: failed_attempts(1), 30, message="the first attempt failed")
    clock.advance(2)  # past the first backoff, well within the deadline: relaunched
    await wait_for(lambda: failed_attempts(2), 30, message="the second attempt failed")
    clock.advance(20)  # the next relaunch fails after the deadline: the run ends
    done = await metronome_run(server, "retrying", run["id"], "FAILED")
    assert [t["status"] for t in done["tasks"]] == ["TASK_FAILED"] * 3
    native = await get_run(server, run["id"])
    assert "past the retry deadline of 10s" in native["message"]


async def test_the_queue_lists_waiting_runs_in_metronomes_shape(batch_env):
    server = await batch_env.server(await batch_env.cluster(agents=1))
    job = {"id": "too-big", "run": {"cpus": 500, "mem": 32, "cmd": "true"}}
    assert (await api(server, "POST", "/v1/jobs", job))[0] == 201
    _, run = await api(server, "POST", "/v1/jobs/too-big/runs")

    async def queued() -> list | None:
        _, queue = await api(server, "GET", "/v1/queue")
        return queue or None

    queue = await wait_for(queued, 30, interval=0.05, message="the run in /v1/queue")
    assert queue == [{"jobId": "too-big", "runs": [{"runId": run["id"]}]}]
    _, native = await api(server, "GET", "/mesoslite/v1/queue")
    [entry] = native["queue"]
    assert entry["run"] == run["id"] and entry["status"] == "ready" and entry["why"]
    await api(server, "POST", f"/v1/jobs/too-big/runs/{run['id']}/actions/stop")

    async def emptied() -> bool:
        return (await api(server, "GET", "/v1/queue"))[1] == []

    await wait_for(emptied, 30, interval=0.05, message="an empty queue once the run stopped")
