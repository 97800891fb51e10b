"""Apps' ``fetch`` (and the older ``uris``) on a real in-process cluster: the agents
download the artifacts into each task's sandbox before the command runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.testing.artifacts import ArtifactServer, tar_bytes
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def server() -> AsyncIterator[ArtifactServer]:
    srv = await ArtifactServer().start()
    yield srv
    await srv.stop()


def sandbox(cluster, task_id: str) -> Path:
    for agent in cluster.agents:
        for path in agent.cp.sandboxes.glob(f"*/{task_id}"):
            return path
    raise AssertionError(f"no sandbox for task {task_id}")


async def test_an_app_runs_the_artifacts_it_fetched(cluster, api, server) -> None:
    tool = server.add("tool.sh", b'#!/bin/sh\necho "tool says $1"\n')
    bundle = server.add("site.tgz", tar_bytes({"site/index.html": b"<h1>hi</h1>\n"}))
    await api.ok("POST", "/v2/apps", {
        "id": "/fetcher", "instances": 2, "cpus": 0.1, "mem": 16,
        "cmd": "./bin/tool hello && cat site/index.html && exec sleep 1000",
        "fetch": [{"uri": tool, "executable": True, "destPath": "bin/tool", "cache": True},
                  {"uri": bundle}]})
    tasks = await api.running("/fetcher", 2)
    for task in tasks:
        out = sandbox(cluster, task["id"]) / "stdout"
        await wait_for(lambda out=out: out.read_text() == "tool says hello\n<h1>hi</h1>\n",
                       message=f"the fetched tool's output in {task['id']}")
    assert server.requests["/site.tgz"] == 2  # not cached: once per task


async def test_legacy_uris_are_fetched_too(cluster, api, server) -> None:
    url = server.add("app.tgz", tar_bytes({"app/run.sh": b"#!/bin/sh\necho legacy\n"},
                                          executable=("app/run.sh",)))
    await api.ok("POST", "/v2/apps", {"id": "/legacy", "instances": 1, "cpus": 0.1, "mem": 16,
                                      "cmd": "app/run.sh && exec sleep 1000", "uris": [url]})
    [task] = await api.running("/legacy", 1)
    out = sandbox(cluster, task["id"]) / "stdout"
    await wait_for(lambda: out.read_text() == "legacy\n", message="the legacy artifact's output")


async def test_an_unfetchable_artifact_is_the_app_s_last_task_failure(api, server) -> None:
    url = server.url("missing.tgz")
    await api.ok("POST", "/v2/apps", {"id": "/broken", "instances": 1, "cpus": 0.1, "mem": 16,
                                      "cmd": "sleep 1000", "fetch": [{"uri": url}]})

    async def failure() -> dict | None:
        return (await api.app("/broken")).get("lastTaskFailure")

    last = await wait_for(failure, 30, message="the failed launch as lastTaskFailure")
    assert last["state"] == "TASK_FAILED"
    assert url in last["message"] and "HTTP 404" in last["message"]
