"""Schedules on a real cluster with an injected clock: FORBID, REPLACE, missed runs."""

from __future__ import annotations

from mesoslite.clock import ManualClock
from mesoslite.testing.poll import wait_for
from tests.batch.conftest import api, get_run, wait_run

EVERY_5_MIN = "*/5 * * * *"


async def scheduled_runs(server, job_id):
    _, runs = await api(server, "GET", f"/mesoslite/v1/jobs/{job_id}/runs")
    return sorted((r for r in runs if r["trigger"].startswith("schedule:")),
                  key=lambda r: r["scheduled_for"])


async def put_job(server, clock, job):
    status, body = await api(server, "PUT", f"/mesoslite/v1/jobs/{job['id']}", job)
    assert status == 201, body
    return body["schedules"][0]["next_run_at"]


def advance_to(clock: ManualClock, t: float) -> None:
    clock.advance(max(0.0, t - clock.now()) + 1)


async def wait_runs(server, job_id, n):
    return await wait_for(lambda: _has(server, job_id, n), 20,
                          message=f"{n} scheduled runs of {job_id}")


async def _has(server, job_id, n):
    runs = await scheduled_runs(server, job_id)
    return runs if len(runs) >= n else None


async def wait_running(server, run_id):
    async def running():
        return any(a["state"] == "RUNNING" for a in (await get_run(server, run_id))["attempts"])

    await wait_for(running, 20)


async def test_forbid_skips_a_fire_time_while_a_run_is_active(batch_env, tmp_path):
    clock = ManualClock()
    server = await batch_env.server(await batch_env.cluster(), clock=clock)
    go = tmp_path / "go"
    first_fire = await put_job(server, clock, {
        "id": "nightly", "command": f"while [ ! -f {go} ]; do sleep 0.05; done",
        "schedule": {"cron": EVERY_5_MIN, "concurrency_policy": "FORBID"}})
    advance_to(clock, first_fire)
    [first] = await wait_runs(server, "nightly", 1)
    assert first["scheduled_for"] == first_fire
    await wait_running(server, first["id"])
    advance_to(clock, first_fire + 300)  # due again while the first still runs

    async def skipped():
        _, job = await api(server, "GET", "/mesoslite/v1/jobs/nightly")
        return job["skipped"]

    [skip] = await wait_for(skipped, 20)
    assert skip["fire_time"] == first_fire + 300 and skip["reason"].startswith("FORBID")
    assert len(await scheduled_runs(server, "nightly")) == 1
    go.touch()
    assert (await wait_run(server, first["id"]))["state"] == "SUCCEEDED"
    advance_to(clock, first_fire + 600)
    runs = await wait_runs(server, "nightly", 2)
    assert [r["scheduled_for"] for r in runs] == [first_fire, first_fire + 600]


async def test_replace_cancels_the_active_run(batch_env):
    clock = ManualClock()
    server = await batch_env.server(await batch_env.cluster(), clock=clock)
    first_fire = await put_job(server, clock, {
        "id": "report", "command": "exec sleep 600", "kill_grace": 0.2,
        "schedule": {"cron": EVERY_5_MIN, "concurrency_policy": "REPLACE",
                     "timezone": "Europe/Berlin"}})
    advance_to(clock, first_fire)
    [first] = await wait_runs(server, "report", 1)
    await wait_running(server, first["id"])
    advance_to(clock, first_fire + 300)
    runs = await wait_runs(server, "report", 2)
    replaced = await wait_run(server, first["id"])
    assert replaced["state"] == "CANCELLED" and "replaced" in replaced["message"]
    assert {a["state"] for a in replaced["attempts"]} == {"KILLED"}
    await wait_running(server, runs[1]["id"])
    await api(server, "POST", f"/v1/runs/{runs[1]['id']}/actions/stop")


async def test_missed_runs_while_down_start_once_not_in_a_burst(batch_env, tmp_path):
    clock = ManualClock()
    cluster = await batch_env.cluster()
    work = tmp_path / "batch-state"
    server = await batch_env.server(cluster, clock=clock, work_dir=work)
    first_fire = await put_job(server, clock, {
        "id": "every5", "command": "true", "schedule": {"cron": EVERY_5_MIN}})
    late = await put_job(server, clock, {
        "id": "strict", "command": "true",
        "schedule": {"cron": EVERY_5_MIN, "starting_deadline_seconds": 60}})
    assert late == first_fire
    await server.stop()
    batch_env.servers.remove(server)

    # Down for ten fire times (and two minutes past the last one).
    clock.advance(first_fire - clock.now() + 9 * 300 + 120)
    server = await batch_env.server(cluster, clock=clock, work_dir=work)
    [run] = await wait_runs(server, "every5", 1)
    assert run["scheduled_for"] == first_fire + 9 * 300  # only the latest
    assert (await wait_run(server, run["id"]))["state"] == "SUCCEEDED"
    _, job = await api(server, "GET", "/mesoslite/v1/jobs/every5")
    assert "9 earlier fire times" in job["skipped"][0]["reason"]
    # The strict schedule's latest fire time is 120 s late, past its 60 s deadline.
    _, strict = await api(server, "GET", "/mesoslite/v1/jobs/strict")
    assert any("starting deadline" in s["reason"] for s in strict["skipped"])
    assert await scheduled_runs(server, "strict") == []
    # Nothing else fires until the next fire time.
    for _ in range(3):
        passes = server.workload.passes
        await wait_for(lambda p=passes: server.workload.passes > p + 2, 10)
        assert len(await scheduled_runs(server, "every5")) == 1
