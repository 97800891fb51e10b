"""Jobs' ``artifacts`` (and Metronome's ``run.artifacts``) on a real in-process
cluster: the agents fetch them into each task's sandbox before the command runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mesoslite.testing.artifacts import ArtifactServer, tar_bytes
from tests.batch.conftest import api, submit, wait_run

TOOL = b'#!/bin/sh\necho "report $1" > "$2"\n'


@pytest.fixture
async def server() -> AsyncIterator[ArtifactServer]:
    srv = await ArtifactServer().start()
    yield srv
    await srv.stop()


async def test_a_metronome_job_runs_its_fetched_artifact(batch_env, server, tmp_path):
    url = server.add("report-1.0.tgz", tar_bytes({"report/run": TOOL},
                                                 executable=("report/run",)))
    batch = await batch_env.server(await batch_env.cluster())
    job = {"id": "nightly.report", "run": {
        "cmd": f"report/run nightly {tmp_path}/out", "cpus": 0.1, "mem": 32,
        "artifacts": [{"uri": url, "extract": True, "executable": False, "cache": True}]}}
    status, body = await api(batch, "POST", "/v1/jobs", job)
    assert status == 201, body
    assert body["run"]["artifacts"] == [
        {"uri": url, "executable": False, "extract": True, "cache": True}]
    status, run = await api(batch, "POST", "/v1/jobs/nightly.report/runs")
    assert status == 201, run
    done = await wait_run(batch, run["id"])
    assert done["state"] == "SUCCEEDED", done["message"]
    assert (tmp_path / "out").read_text() == "report nightly\n"


async def test_every_task_of_a_native_step_gets_its_artifacts(batch_env, server, tmp_path):
    script = server.add("shard.sh", b'#!/bin/sh\ntouch "$1/shard-$BATCH_TASK_INDEX"\n')
    out = tmp_path / "shards"
    out.mkdir()
    batch = await batch_env.server(await batch_env.cluster())
    run = await submit(batch, {
        "id": "shards", "completions": 3, "command": f"./shard.sh {out}",
        "artifacts": [{"uri": script, "executable": True}]})
    done = await wait_run(batch, run["id"])
    assert done["state"] == "SUCCEEDED", done["message"]
    assert sorted(p.name for p in out.iterdir()) == ["shard-0", "shard-1", "shard-2"]
    assert server.requests["/shard.sh"] == 3


async def test_an_unfetchable_artifact_fails_the_attempt_with_the_uri(batch_env, server):
    url = server.url("gone.tgz")
    batch = await batch_env.server(await batch_env.cluster())
    run = await submit(batch, {"id": "missing-artifact", "command": "true",
                               "artifacts": [url]})
    done = await wait_run(batch, run["id"])
    assert done["state"] == "FAILED"
    assert url in done["message"] and "HTTP 404" in done["message"]
