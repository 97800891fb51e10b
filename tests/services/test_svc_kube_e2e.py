"""Kubernetes files run unchanged on a real Docker engine: the classic guestbook in
ReplicationController form (every controller runs; redis-master answers +PONG through
its port; the frontend serves HTTP), a Job that reads a ConfigMap (its output shows the
value), ``mesoslite get`` lists them, and ``mesoslite delete -f`` removes everything.

The images are the local stand-ins of scripts/build-standin-images.  The two-container
Pod example runs as a Marathon pod (one task group): its writer reaches its web server
over the pod's localhost and the page it fetched is served through the pod's host port.
(A Pod reading a Secret: tests/secrets/test_pods.py, on a master with a key.)
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from frameworks.batch.server import BatchConfig, BatchServer
from mesoslite.testing.poll import SERVER_LIMIT, wait_for, within
from tests.batch.conftest import fast_scheduler
from tests.services.conftest import Api

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "kubernetes"


@pytest.fixture
async def servers(engine, dcluster, services_factory, tmp_path
                  ) -> AsyncIterator[tuple[str, str, str]]:
    """(services, batch, master) URLs on one docker cluster."""
    services = await services_factory(dcluster.master_url)
    await wait_for(lambda: services.reconciled, 10, message="services reconciled")
    batch = BatchServer(BatchConfig(masters=[dcluster.master_url], work_dir=tmp_path / "batch",
                                    port=0, settings=fast_scheduler(), driver_backoff_max=0.5))
    await within(SERVER_LIMIT, "the batch framework to start", batch.start())
    await wait_for(lambda: batch.subscribed, 10, message="batch framework subscribed")
    yield services.url, batch.url, dcluster.master_url
    await within(SERVER_LIMIT, "the batch framework to stop", batch.stop())


async def cli(*args: str) -> subprocess.CompletedProcess:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mesoslite.cli.main", *args],
        capture_output=True, text=True, timeout=120)


async def get_json(url: str) -> tuple[int, object]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.json(content_type=None)


async def test_guestbook_and_a_job_reading_a_config_map(servers) -> None:
    services, batch, master = servers
    where = ("--server", services, "--batch", batch, "--master", master)
    api = Api(services)

    applied = await cli("apply", "-f", str(EXAMPLES / "guestbook"), *where)
    assert applied.returncode == 0, applied.stderr
    for app_id in ("/redis-master", "/redis-slave", "/frontend"):
        assert f"app {app_id} configured" in applied.stdout
    [master_task] = await api.running("/redis-master", 1, timeout=90)
    await api.running("/redis-slave", 2, timeout=90)
    frontends = await api.running("/frontend", 3, timeout=90)

    reader, writer = await asyncio.open_connection("127.0.0.1", master_task["ports"][0])
    writer.write(b"*1\r\n$4\r\nPING\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 10) == b"+PONG\r\n"
    writer.close()
    async with aiohttp.ClientSession() as s, s.get(
            f"http://127.0.0.1:{frontends[0]['ports'][0]}/") as r:
        assert r.status == 200 and "Guestbook" in await r.text()

    job = await cli("apply", "-f", str(EXAMPLES / "job-configmap.yaml"), *where)
    assert job.returncode == 0, job.stderr
    assert "config greeting configured (version 1, keys: LEVEL, message)" in job.stdout
    started = [line for line in job.stdout.splitlines() if "run " in line]
    assert started and started[0].startswith("job print-greeting created, run ")
    run_id = started[0].split("run ")[1].split()[0]

    async def finished() -> dict | None:
        _, run = await get_json(f"{batch}/v1/runs/{run_id}")
        return run if run["state"] in ("SUCCEEDED", "FAILED", "CANCELLED") else None

    run = await wait_for(finished, 120, interval=0.2, message=f"run {run_id} to end")
    assert run["state"] == "SUCCEEDED", run.get("message")
    logs = await cli("batch", "logs", run_id, "--server", batch)
    assert logs.returncode == 0, logs.stderr
    assert ("message=hello from the config map level=debug "
            "file=hello from the config map") in logs.stdout

    listed = await cli("get", *where)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any(line.startswith("app /redis-master  running  1/1 running") for line in lines)
    assert any(line.startswith("app /frontend  running  3/3 running") for line in lines)
    assert any(line.startswith(f"job print-greeting  SUCCEEDED  last run {run_id}")
               for line in lines), lines
    assert "config greeting  version 1  keys: LEVEL, message" in lines

    deleted = await cli("delete", "-f", str(EXAMPLES / "guestbook"), "-f",
                        str(EXAMPLES / "job-configmap.yaml"), *where)
    assert deleted.returncode == 0, deleted.stderr
    for line in ("app /frontend deleted", "app /redis-master deleted",
                 "job print-greeting deleted", "config greeting deleted"):
        assert line in deleted.stdout
    assert (await api.ok("GET", "/v2/apps"))["apps"] == []
    assert (await get_json(f"{batch}/v1/jobs"))[1] == []
    assert (await get_json(f"{master}/master/configs/greeting"))[0] == 404

    async def no_tasks() -> bool:
        _, state = await get_json(f"{master}/master/state")
        return not any(t["state"] in ("TASK_RUNNING", "TASK_STAGING", "TASK_STARTING")
                       for f in state["frameworks"] for t in f.get("tasks", []))

    await wait_for(no_tasks, 60, interval=0.2, message="every container to be killed")
    again = await cli("delete", "-f", str(EXAMPLES / "job-configmap.yaml"), *where)
    assert again.returncode == 0 and "job print-greeting not found" in again.stdout


async def pod_page(services: str, pod_id: str, path: str) -> str | None:
    """``path`` as the pod's ``http`` endpoint serves it through its host port, once
    the pod's one instance is running (None until then)."""
    status, pod = await get_json(f"{services}/v2/pods/{pod_id}::status")
    instances = pod.get("instances", []) if status == 200 else []
    if not instances or instances[0]["status"] != "STABLE":
        return None
    ports = [e["allocatedHostPort"] for c in instances[0]["containers"]
             for e in c.get("endpoints", []) if "allocatedHostPort" in e]
    if not ports:
        return None
    try:
        async with aiohttp.ClientSession() as s, s.get(
                f"http://127.0.0.1:{ports[0]}{path}") as r:
            return await r.text() if r.status == 200 else None
    except aiohttp.ClientError:
        return None


async def test_a_two_container_pod_shares_localhost_and_a_volume(servers) -> None:
    services, batch, master = servers
    where = ("--server", services, "--batch", batch, "--master", master)
    example = str(EXAMPLES / "two-container-pod.yaml")
    applied = await cli("apply", "-f", example, *where)
    assert applied.returncode == 0, applied.stderr
    assert "pod /web-and-writer configured" in applied.stdout, applied.stdout

    # seen.html exists only once the writer fetched index.html from 127.0.0.1:8080,
    # i.e. from the other container; the web container serves it from the shared volume.
    seen = await wait_for(lambda: pod_page(services, "/web-and-writer", "/seen.html"),
                          120, interval=0.5, message="the writer to reach web over localhost")
    assert seen.strip() == "written by the writer container"
    _, pod = await get_json(f"{services}/v2/pods/web-and-writer::status")
    [instance] = pod["instances"]
    assert sorted(c["name"] for c in instance["containers"]) == ["web", "writer"]
    assert all(c["status"] == "TASK_RUNNING" for c in instance["containers"]), instance

    listed = await cli("get", "pods", *where)
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("pod /web-and-writer") and "1/1" in line
               for line in listed.stdout.splitlines()), listed.stdout

    deleted = await cli("delete", "-f", example, *where)
    assert deleted.returncode == 0 and "pod /web-and-writer deleted" in deleted.stdout, \
        deleted.stdout + deleted.stderr
    assert (await get_json(f"{services}/v2/pods"))[1] == []

