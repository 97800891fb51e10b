"""The load balancer on a real cluster: connections spread evenly over an app's
instances, an instance that fails stops getting connections as soon as the proxy's
table drops it, a redeploy drains the old instances, and the status endpoint counts
what each endpoint got."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter

import aiohttp
import pytest

from mesoslite.lb import LoadBalancer
from mesoslite.testing.poll import wait_for
from tests.discovery.conftest import Load, backend_app, endpoint_ids, greet
from tests.services.conftest import Api
from tests.services.helpers import kill_task_processes

pytestmark = pytest.mark.asyncio


async def status(lb: LoadBalancer) -> dict:
    async with aiohttp.ClientSession() as s, s.get(lb.url + "/status") as r:
        assert r.status == 200
        return await r.json()


async def routed(lb: LoadBalancer, port: int) -> set[str]:
    """Task ids the proxy routes ``port`` to (from its own status endpoint)."""
    route = lb.proxy.routes.get(port)
    return {b.task_id for b in route.backends} if route else set()


async def wait_routed(lb: LoadBalancer, port: int, n: int, timeout: float = 30.0) -> set[str]:
    async def check() -> set[str] | None:
        ids = await routed(lb, port)
        return ids if len(ids) == n else None

    return await wait_for(check, timeout, interval=0.05, message=f"{n} backends on {port}")


async def test_connections_spread_evenly_over_three_instances(api: Api, lb) -> None:
    await api.ok("POST", "/v2/apps", backend_app("/spread", 18101, 3))
    tasks = await api.running("/spread", 3, healthy=True, timeout=60)
    ids = await wait_routed(lb, 18101, 3)
    assert ids == {t["id"] for t in tasks}

    results = await Load(18101, concurrency=8, total=1000).run()
    assert None not in results  # every connection was answered
    counts = Counter(results)
    assert set(counts) == ids
    for task_id in ids:  # within 10 % of an even share
        assert abs(counts[task_id] - 1000 / 3) <= 1000 / 3 * 0.10, counts

    # The status endpoint counts the same connections, per endpoint.
    # (A proxied connection is closed on both sides a moment after the client got
    # its answer: wait for the last ones to be counted as closed.)
    async def settled() -> dict | None:
        report = await status(lb)
        by_task = {e["taskId"]: e for e in report["endpoints"] if e["servicePort"] == 18101}
        return report if all(by_task[t]["active"] == 0 for t in ids) else None

    report = await wait_for(settled, 10, interval=0.05, message="no open connections")
    by_task = {e["taskId"]: e for e in report["endpoints"] if e["servicePort"] == 18101}
    assert {t: by_task[t]["connections"] for t in ids} == dict(counts)
    assert all(by_task[t]["state"] == "active" for t in ids)
    assert {(x["address"], x["port"]) for x in report["listeners"]} == {("127.0.0.1", 18101)}


async def test_least_connections_sends_new_connections_to_the_idle_instance(
        api: Api, lb) -> None:
    await api.ok("POST", "/v2/apps", backend_app(
        "/least", 18102, 2, labels={"MESOSLITE_LB_STRATEGY": "least-connections"}))
    await api.running("/least", 2, healthy=True, timeout=60)
    await wait_routed(lb, 18102, 2)
    # Hold five connections open: least-connections spreads them 3/2 at worst.
    held = []
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", 18102)
        held.append(((await reader.readline()).split()[0].decode(), writer))
    busy = Counter(name for name, _ in held)
    assert sorted(busy.values()) == [2, 3]
    idle = min(busy, key=busy.__getitem__)
    # The next connection goes to the one with fewer open connections, every time.
    assert await greet(18102) == idle
    for _, writer in held:
        writer.close()


async def test_a_killed_instance_gets_no_more_connections(api: Api, lb) -> None:
    await api.ok("POST", "/v2/apps", backend_app("/victim", 18103, 3))
    tasks = await api.running("/victim", 3, healthy=True, timeout=60)
    await wait_routed(lb, 18103, 3)
    load = Load(18103, concurrency=4)
    running = asyncio.create_task(load.run())
    await wait_for(lambda: load.started > 30, 30, interval=0.05, message="load flowing")

    victim = tasks[0]["id"]
    assert await asyncio.to_thread(kill_task_processes, victim) > 0
    await wait_for(lambda: victim not in {b.task_id for b in lb.proxy.routes[18103].backends},
                   30, interval=0.02, message="the proxy's table to drop the killed task")
    dropped_at = load.started
    await wait_for(lambda: load.started > dropped_at + 200, 60, interval=0.05,
                   message="200 connections after the drop")
    load.stop()
    results = await running
    after = results[dropped_at:]
    assert victim not in after
    assert None not in after  # no client was turned away: the others took them all
    assert victim in results[:dropped_at]  # it did take traffic before it died


async def test_an_unhealthy_instance_is_dropped_before_it_is_killed(api: Api, lb) -> None:
    await api.ok("POST", "/v2/apps", backend_app("/sick", 18104, 2))
    await api.running("/sick", 2, healthy=True, timeout=60)
    ids = await wait_routed(lb, 18104, 2)
    reader, writer = await asyncio.open_connection("127.0.0.1", 18104)
    sick = (await reader.readline()).split()[0].decode()
    writer.write(b"SICK\n")  # its health check fails from now on
    await writer.drain()
    await reader.readline()
    writer.close()
    [healthy] = ids - {sick}
    await wait_for(lambda: sick not in {b.task_id for b in lb.proxy.routes[18104].backends},
                   30, interval=0.02, message="the proxy to drop the unhealthy task")
    answers = {await greet(18104) for _ in range(20)}
    assert answers == {healthy}


async def test_a_redeploy_drains_old_instances(api: Api, lb) -> None:
    # A grace period: the old task gets SIGTERM and lets its open connections finish.
    drain = backend_app("/drain", 18105, 1, taskKillGracePeriodSeconds=30)
    await api.ok("POST", "/v2/apps", drain)
    [old] = await api.running("/drain", 1, healthy=True, timeout=60)
    await wait_routed(lb, 18105, 1)
    reader, writer = await asyncio.open_connection("127.0.0.1", 18105)
    assert (await reader.readline()).split()[0].decode() == old["id"]

    await api.ok("PUT", "/v2/apps/drain", {**drain, "env": {"VERSION": "2"}})

    async def replaced() -> bool:
        route = lb.proxy.routes.get(18105)
        return bool(route and route.backends and old["id"] not in
                    {b.task_id for b in route.backends})

    await wait_for(replaced, 60, interval=0.05, message="the new task routed, the old not")
    [new] = [b.task_id for b in lb.proxy.routes[18105].backends]
    stats = {e["taskId"]: e for e in (await status(lb))["endpoints"]}
    assert stats[old["id"]]["state"] == "draining" and stats[old["id"]]["active"] == 1
    # New connections go to the new task; the open one still works end to end.
    assert await greet(18105) == new
    writer.write(b"still here\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 10) == b"still here\n"
    writer.close()

    async def removed() -> bool:
        stats = {e["taskId"]: e for e in (await status(lb))["endpoints"]}
        return stats[old["id"]]["state"] == "removed"

    await wait_for(removed, 30, interval=0.05, message="the drained endpoint removed")


async def test_endpoints_api_lists_routable_tasks_per_service_port(api: Api, lb) -> None:
    await api.ok("POST", "/v2/apps", backend_app("/listed", 18106, 2))
    tasks = await api.running("/listed", 2, healthy=True, timeout=60)
    by_id = {t["id"]: t for t in tasks}

    async def both_listed() -> bool:
        return await endpoint_ids(api, "/listed") == sorted(by_id)

    await wait_for(both_listed, 30, interval=0.05, message="both healthy tasks listed")
    data = await api.ok("GET", "/v2/endpoints/listed")
    [port] = data["app"]["servicePorts"]
    assert port["servicePort"] == 18106 and port["name"] == "echo"
    assert {e["taskId"] for e in port["endpoints"]} == set(by_id)
    for e in port["endpoints"]:
        assert e["port"] == by_id[e["taskId"]]["ports"][0]
        assert e["healthy"] is True
        assert e["host"].startswith("127.0.0.1")
        assert await greet(e["port"], e["host"]) == e["taskId"]
    status_code, body, _ = await api.call("GET", "/v2/endpoints/nope")
    assert status_code == 404 and "nope" in body["message"]


@pytest.mark.parametrize("args", [["--listen", "0.0.0.0"], ["--status", "nope"],
                                  ["--status", "0.0.0.0:8075"], ["--poll-interval", "0"]])
async def test_lb_command_refuses_bad_options_in_one_line(args: list[str]) -> None:
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mesoslite.cli.main", "lb",
                         "--services", "http://127.0.0.1:9", *args],
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    [error] = done.stderr.strip().splitlines()
    assert error.startswith("Error:") and "Traceback" not in done.stderr
