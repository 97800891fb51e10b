"""Where an app is served, as users ask for it: ``mesoslite services endpoints`` and
the endpoints event stream follow the tasks, and a task that declares a dependency
finds it through its environment (and the local load balancer)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import pytest

from mesoslite.testing.poll import wait_for
from tests.discovery.conftest import BACKEND, backend_app, endpoint_ids, greet
from tests.services.conftest import Api

pytestmark = pytest.mark.asyncio


async def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mesoslite.cli.main", "services", *args],
        capture_output=True, text=True, timeout=60)


async def test_endpoints_command_follows_tasks(api: Api, services) -> None:
    await api.ok("POST", "/v2/apps", backend_app("/cli/echo", 18301, 2))
    tasks = await api.running("/cli/echo", 2, healthy=True, timeout=60)
    await wait_for(lambda: endpoint_ids(api, "/cli/echo"), 10, interval=0.05)

    done = await cli("endpoints", "/cli/echo", "--server", api.url)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "/cli/echo  (round-robin)"
    for t in tasks:
        where = f"{t['ipAddresses'][0]['ipAddress']}:{t['ports'][0]}"
        assert f"  18301/tcp (echo)  {where}  {t['id']}  healthy" in lines

    # One task turns unhealthy: gone from the list at once; --all shows it, unhealthy.
    sick = tasks[0]
    reader, writer = await asyncio.open_connection(sick["ipAddresses"][0]["ipAddress"],
                                                   sick["ports"][0])
    await reader.readline()
    writer.write(b"SICK\n")
    await writer.drain()
    writer.close()
    await wait_for(lambda: _without(api, sick["id"]), 30, interval=0.05,
                   message="the unhealthy task out of the endpoints")
    done = await cli("endpoints", "/cli/echo", "--server", api.url, "--all", "--json")
    assert done.returncode == 0, done.stderr
    listed = {e["taskId"]: e for e in
              json.loads(done.stdout)["app"]["servicePorts"][0]["endpoints"]}
    if sick["id"] in listed:  # not yet killed and replaced
        assert listed[sick["id"]]["routable"] is False

    # Bad input: one plain line and a non-zero exit.
    done = await cli("endpoints", "/no/such/app", "--server", api.url)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "/no/such/app" in done.stderr


async def _without(api: Api, task_id: str) -> bool:
    ids = await endpoint_ids(api, "/cli/echo")
    return bool(ids) and task_id not in ids


async def test_endpoint_events_announce_each_change(api: Api, services) -> None:
    events: list[dict] = []

    async def follow() -> None:
        async with aiohttp.ClientSession() as s, s.get(
                api.url + "/v2/events", params={"event_type": "endpoints_changed_event"},
                timeout=aiohttp.ClientTimeout(total=None)) as r:
            async for line in r.content:
                if line.startswith(b"data:"):
                    events.append(json.loads(line[5:]))

    follower = asyncio.create_task(follow())
    try:
        await api.ok("POST", "/v2/apps", backend_app("/evented", 18302, 2))
        tasks = await api.running("/evented", 2, healthy=True, timeout=60)
        ids = {t["id"] for t in tasks}

        def announced() -> bool:
            mine = [e for e in events if e["appId"] == "/evented"]
            return bool(mine) and {e["taskId"] for p in (mine[-1]["app"] or {}).get(
                "servicePorts", []) for e in p["endpoints"]} == ids

        await wait_for(announced, 30, interval=0.05, message="events naming both tasks")
        mine = [e for e in events if e["appId"] == "/evented"]
        assert set().union(*(set(e["added"]) for e in mine)) == ids
        generations = [e["generation"] for e in mine]
        assert generations == sorted(set(generations))  # each change once, in order

        await api.ok("DELETE", "/v2/apps/evented", force=True)
        await wait_for(lambda: any(e["appId"] == "/evented" and e["app"] is None
                                   for e in events), 30, interval=0.05,
                       message="the event for the deleted app")
    finally:
        follower.cancel()


async def test_a_task_finds_its_dependency_in_its_environment(api: Api, lb) -> None:
    await api.ok("POST", "/v2/apps", backend_app("/deps/db", 18303, 1))
    [db] = await api.running("/deps/db", 1, healthy=True, timeout=60)
    # The client's greeting is what its environment says about /deps/db.
    client = backend_app("/deps/client", 18304, 1, dependencies=["/deps/db"])
    client["cmd"] = (f"exec {sys.executable} {BACKEND} $PORT0 "
                     '"$DEPS_DB_HOST|$DEPS_DB_PORT|$DEPS_DB_SERVICE_PORT|$DEPS_DB_ENDPOINTS"')
    await api.ok("POST", "/v2/apps", client)
    [task] = await api.running("/deps/client", 1, healthy=True, timeout=60)
    told = await greet(task["ports"][0], task["ipAddresses"][0]["ipAddress"])
    host, port, service_port, endpoints = told.split("|")
    assert (host, port, service_port) == ("127.0.0.1", "18303", "18303")
    assert endpoints == f"{db['ipAddresses'][0]['ipAddress']}:{db['ports'][0]}"
    # What it was told works: the local load balancer answers there for the db.
    await wait_for(lambda: lb.proxy.routes.get(18303), 30, interval=0.05)
    assert await greet(int(port), host) == db["id"]
