"""The services and batch frameworks' /metrics, hosted on an in-process cluster as
``mesoslite up`` hosts them, read as Prometheus parses them: the names follow
Prometheus' conventions and the values follow what the frameworks do."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mesoslite.testing.poll import wait_for
from tests.integration.test_agent_metrics import scrape, value
from tests.ui.hosted import Client, Hosted, host_frameworks

NAME = re.compile(r"^mesoslite_(services|batch)_[a-z][a-z0-9_]*$")


@pytest.fixture
async def hosted(cluster, tmp_path) -> AsyncIterator[Hosted]:
    async with host_frameworks(cluster, tmp_path / "frameworks") as frameworks:
        yield frameworks


async def families(client: Client) -> dict[str, str]:
    """name -> type of every family of the framework's /metrics."""
    status, text = await client.call("GET", "/metrics")
    assert status == 200
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def assert_conventional(types: dict[str, str]) -> None:
    for name, kind in types.items():
        assert NAME.match(name), name
        assert not name.endswith("_total"), f"{name}: the client adds _total to counters"
        if kind == "histogram":
            assert name.endswith("_seconds"), name


async def reaches(url: str, *expected: tuple[str, dict[str, str], float]) -> dict:
    """Scrape until every (name, labels, value) holds (events are published after the
    commit the API answers from, so a counter may lag the API by a moment)."""
    last: dict = {}

    async def check() -> dict:
        nonlocal last
        last = await scrape(url)
        return last if all(value(last, n, **labels) == v for n, labels, v in expected) else {}

    try:
        return await wait_for(check, 10, interval=0.05)
    except AssertionError:
        got = {n: value(last, n, **labels) for n, labels, _ in expected}
        raise AssertionError(f"metrics never reached {expected}; last {got}") from None


async def no_deployment(api: Client, app_id: str) -> bool:
    return not [d for d in await api.ok("GET", "/v2/deployments")
                if app_id in d["affectedApps"]]


async def test_frameworks_link_to_their_dashboard_pages(hosted: Hosted):
    for client, page in ((hosted.svc, f"x/services/{hosted.services_id}"),
                         (hosted.jobs, f"x/batch/{hosted.batch_id}")):
        async with aiohttp.ClientSession() as s, s.get(client.url + "/",
                                                       allow_redirects=False) as r:
            assert r.status == 307
            assert r.headers["Location"] == f"{hosted.master_url}/#/{page}"


async def test_services_metrics_follow_apps_instances_and_deployments(hosted: Hosted):
    api, url = hosted.svc, hosted.services.url
    types = await families(api)
    assert_conventional(types)
    assert types["mesoslite_services_deployments_ended"] == "counter"
    assert types["mesoslite_services_deployment_duration_seconds"] == "histogram"
    assert types["mesoslite_services_instances"] == "gauge"
    before = await scrape(url)
    assert value(before, "mesoslite_services_apps") == 0
    assert value(before, "mesoslite_services_deployments_ended_total", outcome="succeeded") == 0

    await api.ok("POST", "/v2/apps", {"id": "/web", "cmd": "sleep 600", "instances": 2,
                                      "cpus": 0.1, "mem": 32})
    await wait_for(lambda: no_deployment(api, "/web"), 20, interval=0.05,
                   message="/web deployed")
    await reaches(url, ("mesoslite_services_apps", {}, 1),
                  ("mesoslite_services_instances", {"state": "TASK_RUNNING"}, 2),
                  ("mesoslite_services_deployments_started_total", {"kind": "start"}, 1),
                  ("mesoslite_services_deployments_ended_total", {"outcome": "succeeded"}, 1),
                  ("mesoslite_services_deployment_duration_seconds_count",
                   {"outcome": "succeeded"}, 1))

    # an app no agent can hold: its deployment stays in progress, its instance waits
    big = await api.ok("POST", "/v2/apps", {"id": "/big", "cmd": "sleep 600", "instances": 1,
                                            "cpus": 0.1, "mem": 4096})
    deployment = big["deployments"][0]["id"]

    async def waiting() -> dict:
        m = await scrape(url)
        return m if value(m, "mesoslite_services_instances_waiting") == 1 else {}

    m = await wait_for(waiting, 10, interval=0.05, message="/big's instance waiting")
    assert value(m, "mesoslite_services_deployments", kind="start") == 1
    # cancelled: rolled back, which for a new app is a deployment removing it
    await api.ok("DELETE", f"/v2/deployments/{deployment}")
    await wait_for(lambda: no_deployment(api, "/big"), 20, interval=0.05,
                   message="/big rolled back")
    await reaches(url, ("mesoslite_services_deployments_ended_total", {"outcome": "cancelled"}, 1),
                  ("mesoslite_services_deployments_started_total", {"kind": "stop"}, 1),
                  ("mesoslite_services_deployments_ended_total", {"outcome": "succeeded"}, 2),
                  ("mesoslite_services_deployments", {"kind": "start"}, 0),
                  ("mesoslite_services_apps", {}, 1),
                  ("mesoslite_services_instances_waiting", {}, 0))


def job(job_id: str, command: str, cpus: float = 0.1) -> dict:
    return {"id": job_id, "user": "ana", "cpus": cpus, "mem": 32,
            "steps": [{"name": "only", "command": command}]}


async def run_ends(api: Client, run_id: str) -> str | None:
    state = (await api.ok("GET", f"/v1/runs/{run_id}"))["state"]
    return state if state in ("SUCCEEDED", "FAILED", "CANCELLED") else None


async def test_batch_metrics_follow_the_queue_waits_and_runs(hosted: Hosted):
    api, url = hosted.jobs, hosted.batch.url
    types = await families(api)
    assert_conventional(types)
    assert types["mesoslite_batch_queue_wait_seconds"] == "histogram"
    assert types["mesoslite_batch_queue_depth"] == "gauge"
    assert types["mesoslite_batch_runs_finished"] == "counter"
    before = await scrape(url)
    assert value(before, "mesoslite_batch_queue_depth", status="ready") == 0
    assert value(before, "mesoslite_batch_queue_wait_seconds_count") == 0

    for job_id, command in (("ok", "true"), ("bad", "exit 3")):
        await api.ok("POST", "/v1/jobs", job(job_id, command))
        run = await api.ok("POST", f"/v1/jobs/{job_id}/runs")
        await wait_for(lambda run=run: run_ends(api, run["id"]), 20, interval=0.05)
    m = await reaches(url, ("mesoslite_batch_runs_finished_total", {"outcome": "SUCCEEDED"}, 1),
                      ("mesoslite_batch_runs_finished_total", {"outcome": "FAILED"}, 1),
                      ("mesoslite_batch_attempts_launched_total", {}, 2),
                      ("mesoslite_batch_queue_wait_seconds_count", {}, 2))
    assert value(m, "mesoslite_batch_attempts_finished_total", state="FAILED") >= 1

    # a task no agent can hold stays in the queue, ready, and counts in its depth
    await api.ok("POST", "/v1/jobs", job("huge", "true", cpus=16))
    run = await api.ok("POST", "/v1/jobs/huge/runs")

    async def queued() -> dict:
        m = await scrape(url)
        return m if value(m, "mesoslite_batch_queue_depth", status="ready") == 1 else {}

    m = await wait_for(queued, 10, interval=0.05, message="the huge task queued")
    assert value(m, "mesoslite_batch_runs", phase="QUEUED") == 1
    await api.ok("POST", f"/v1/runs/{run['id']}/actions/stop")
    await wait_for(lambda: run_ends(api, run["id"]), 10, interval=0.05)
    await reaches(url, ("mesoslite_batch_queue_depth", {"status": "ready"}, 0),
                  ("mesoslite_batch_runs_finished_total", {"outcome": "CANCELLED"}, 1),
                  ("mesoslite_batch_runs", {"phase": "QUEUED"}, 0))
