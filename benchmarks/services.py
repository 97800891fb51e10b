"""Deployment times of the services framework on a local cluster.

An in-process cluster (one master, ``--agents`` agents with real process tasks) and
the services framework on the same event loop, talking over loopback HTTP as
everywhere else.  Measured, from the framework's own API:

1. **deploy**: POST an app of ``--instances`` instances (an HTTP server each --
   busybox httpd when the host has busybox, else ``python3 -m http.server`` -- with an
   HTTP health check every second) until all are running and healthy, and until the
   deployment is reported finished;
2. **rolling upgrade**: change the app's environment and time until every instance
   was replaced by a healthy one of the new version and the deployment finished
   (``--min-health`` / ``--over-capacity`` set the upgrade strategy; Marathon's
   defaults are 1.0 / 1.0).

Printed beside Marathon's published figure: a 500-instance app deployed in about 14 s
on 189 agents (Mesosphere's Marathon 1.x scale tests), i.e. ~36 instances/s.

    .venv/bin/python benchmarks/services.py                 # 50 instances, 3 agents
    .venv/bin/python benchmarks/services.py --instances 200 --agents 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frameworks.services.server import ServicesConfig, ServicesServer
from frameworks.services.workload import ServicesSettings
from mesoslite.master.core import MasterConfig
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster

MARATHON_INSTANCES, MARATHON_SECONDS, MARATHON_AGENTS = 500, 14.0, 189


def server_cmd() -> str:
    busybox = shutil.which("busybox")
    if busybox:
        return f"mkdir -p www && echo ok > www/index.html && exec {busybox} httpd -f -p $PORT0 -h www"
    return f"exec {sys.executable} -m http.server $PORT0 --bind 127.0.0.1"


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with session.request(method, url, json=body) as resp:
        data = await resp.json(content_type=None)
        if resp.status >= 400:
            raise RuntimeError(f"{method} {url}: {resp.status} {data}")
        return data


async def wait_all_healthy(session: aiohttp.ClientSession, url: str, n: int, version: str | None,
                           started: float, timeout: float) -> tuple[float, float, float]:
    """Seconds until n tasks of ``version`` were launched, until all were healthy, and
    until the deployment was reported finished."""
    launched_at = healthy_at = done_at = None
    while time.monotonic() - started < timeout:
        app = (await call(session, "GET", url + "/v2/apps/bench"))["app"]
        mine = [t for t in app["tasks"] if version is None or t["version"] == version]
        if launched_at is None and len(mine) >= n:
            launched_at = time.monotonic() - started
        good = [t for t in mine if t["state"] == "TASK_RUNNING"
                and all(r["alive"] for r in t.get("healthCheckResults", []))
                and t.get("healthCheckResults")]
        if healthy_at is None and len(good) >= n and len(app["tasks"]) == n:
            healthy_at = time.monotonic() - started
        if healthy_at is not None and not app["deployments"]:
            done_at = time.monotonic() - started
            return launched_at or healthy_at, healthy_at, done_at
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not done within {timeout}s")


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="mesoslite-bench-services-"))
    # Below Linux's ephemeral range (32768-60999 by default), which the agent warns
    # about: an outgoing connection could take a port the benchmark's app is offered.
    per_agent = Resources.parse("cpus:16;mem:16384;disk:16384;ports:[24000-25999]")
    master = MasterConfig(allocation_interval=0.05, agent_ping_timeout=1.0,
                          max_agent_ping_timeouts=5, heartbeat_interval=5.0)
    cluster = LocalCluster(ClusterSpec(work_dir=work / "cluster", agents=args.agents,
                                       agent_resources=per_agent, master_config=master,
                                       status_update_retry=1.0))
    await cluster.start()
    services = ServicesServer(ServicesConfig(
        masters=[cluster.master_url], work_dir=work / "services", port=0,
        settings=ServicesSettings(tick_s=0.1, time_limit_s=0.2, refuse_waiting_s=0.5,
                                  refuse_idle_s=5.0)))
    url = await services.start()
    n = args.instances
    app = {"id": "/bench", "cmd": server_cmd(), "instances": n, "cpus": 0.01, "mem": 8,
           "healthChecks": [{"protocol": "HTTP", "portIndex": 0, "path": "/",
                             "gracePeriodSeconds": 30, "intervalSeconds": 1,
                             "timeoutSeconds": 2, "maxConsecutiveFailures": 5,
                             "delaySeconds": 0}],
           "upgradeStrategy": {"minimumHealthCapacity": args.min_health,
                               "maximumOverCapacity": args.over_capacity}}
    try:
        async with aiohttp.ClientSession() as session:
            while not services.reconciled:
                await asyncio.sleep(0.05)
            started = time.monotonic()
            await call(session, "POST", url + "/v2/apps", app)
            times = await wait_all_healthy(session, url, n, None, started, args.timeout)
            report("deploy", n, args.agents, *times)
            started = time.monotonic()
            result = await call(session, "PUT", url + "/v2/apps/bench",
                                {"env": {"RELEASE": "2"}})
            times = await wait_all_healthy(session, url, n, result["version"], started,
                                           args.timeout)
            report("rolling upgrade", n, args.agents, *times)
            await call(session, "DELETE", url + "/v2/apps/bench?force=true")
            while services.state.tasks:
                await asyncio.sleep(0.1)
    finally:
        await cluster.stop()
        await services.stop()
        shutil.rmtree(work, ignore_errors=True)


def report(what: str, n: int, agents: int, launched: float, healthy: float, done: float
           ) -> None:
    marathon_rate = MARATHON_INSTANCES / MARATHON_SECONDS
    print(f"{what:16s} {n:4d} instances on {agents} agents: launched {launched:5.2f} s, "
          f"all healthy {healthy:6.2f} s, deployment finished {done:6.2f} s "
          f"({n / done:5.1f} instances/s); Marathon: {MARATHON_INSTANCES} in "
          f"~{MARATHON_SECONDS:g} s on {MARATHON_AGENTS} agents ({marathon_rate:.0f}/s)",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--min-health", type=float, default=1.0)
    parser.add_argument("--over-capacity", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args()
    print(f"host: {os.cpu_count()} cores; tasks: {server_cmd().split()[-6:]}", flush=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
