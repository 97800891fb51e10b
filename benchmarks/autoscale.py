"""Autoscaling reaction time of the services framework on a local cluster.

An in-process cluster (one master, ``--agents`` agents with the Docker
containerizer) and the services framework on the same event loop.  One app of
busybox containers (``cpus`` 0.1 each, capped by the engine) with
``autoscale: {min: 1, max: --max, target_cpu_utilization: 0.3, cooldown_seconds:
--cooldown}`` and a COMMAND health check every second.  Its tasks idle until the
file ``go`` exists in a shared host-path volume, then burn CPU until ``stop`` exists.

Measured (wall clock, polling the framework's API every 50 ms):

1. **scale-out**: from creating ``go`` (load starts) to the first ``scale_up``
   decision, and to ``--max`` instances running and healthy;
2. **scale-in**: from creating ``stop`` (load ends) to the first ``scale_down``
   decision, and to 1 instance running.

Printed beside the baseline the configuration implies: a rate needs two usage
samples (one ``--usage-interval`` apart) and the autoscaler reads them every
``--autoscale-interval``, so a decision cannot come sooner than about
``usage + autoscale`` intervals after the load changes, nor (after a change) sooner
than ``--cooldown``.

    .venv/bin/python benchmarks/autoscale.py
    .venv/bin/python benchmarks/autoscale.py --usage-interval 0.5 --cooldown 2 --max 4
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frameworks.services.autoscaler import AutoscaleSettings
from frameworks.services.server import ServicesConfig, ServicesServer
from frameworks.services.workload import ServicesSettings
from mesoslite.master.core import MasterConfig
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster

IMAGE = "mesoslite/busybox:latest"
SCRIPT = ("while [ ! -e /ctl/go ]; do sleep 0.1; done; "
          "while [ ! -e /ctl/stop ]; do :; done; exec sleep 3600")


def app(ctl: Path, args: argparse.Namespace) -> dict[str, Any]:
    return {"id": "/burn", "cmd": SCRIPT, "instances": 1, "cpus": 0.1, "mem": 32,
            "taskKillGracePeriodSeconds": 0,
            "autoscale": {"min": 1, "max": args.max, "target_cpu_utilization": 0.3,
                          "cooldown_seconds": args.cooldown},
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
                              "gracePeriodSeconds": 5, "intervalSeconds": 1,
                              "timeoutSeconds": 2, "maxConsecutiveFailures": 3}],
            "container": {"type": "DOCKER", "docker": {"image": IMAGE},
                          "volumes": [{"containerPath": "/ctl", "hostPath": str(ctl),
                                       "mode": "RO"}]},
            "networks": [{"mode": "container/bridge"}]}


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        return await resp.json(content_type=None)


async def until(predicate: Any, timeout: float, what: str) -> float:
    """Monotonic time at which the async ``predicate`` first held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="mesoslite-bench-autoscale-"))
    ctl = work / "ctl"
    ctl.mkdir()
    spec = ClusterSpec(
        work_dir=work / "cluster", agents=args.agents,
        agent_resources=Resources.parse("cpus:4;mem:4096;disk:4096;ports:[28000-28899]"),
        master_config=MasterConfig(allocation_interval=0.1, agent_ping_timeout=1.0),
        containerizers=["docker", "process"], usage_interval=args.usage_interval,
        allowed_host_paths=[str(ctl)])
    cluster = LocalCluster(spec)
    await cluster.start()
    config = ServicesConfig(
        masters=[cluster.master_url], work_dir=work / "services", port=0,
        settings=ServicesSettings(tick_s=0.1, time_limit_s=0.1, refuse_waiting_s=0.5),
        autoscale=AutoscaleSettings(interval_s=args.autoscale_interval, stale_s=30.0))
    server = ServicesServer(config)
    url = await server.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(url + "/v2/apps", json=app(ctl, args)) as resp:
                assert resp.status == 201, await resp.text()

            async def tasks(healthy: bool) -> list[dict[str, Any]]:
                body = await get(s, url + "/v2/apps/burn")
                return [t for t in body["app"]["tasks"] if t["state"] == "TASK_RUNNING"
                        and (not healthy or any(r.get("alive")
                                                for r in t.get("healthCheckResults", [])))]

            async def decision(action: str, after: float) -> bool:
                body = await get(s, url + "/v2/apps/burn/autoscale")
                return any(d["action"] == action and d["at"] >= after
                           for d in body["decisions"])

            async def observed() -> bool:  # the autoscaler has a full picture, idle
                body = await get(s, url + "/v2/apps/burn/autoscale")
                obs = body["observation"] or {}
                return obs.get("sampledTasks") == 1 and len(await tasks(True)) == 1

            await until(observed, 120, "the idle app, sampled and healthy")

            wall, start = time.time(), time.monotonic()
            (ctl / "go").write_text("")
            up = await until(lambda: decision("scale_up", wall), 120, "a scale_up decision")
            out = await until(lambda: _count(tasks(True), args.max), 180,
                              f"{args.max} healthy instances")

            wall, start_in = time.time(), time.monotonic()
            (ctl / "stop").write_text("")
            down = await until(lambda: decision("scale_down", wall), 120,
                               "a scale_down decision")
            back = await until(lambda: _count_exact(tasks(False), 1, s, url), 180,
                               "1 instance")
            decisions = (await get(s, url + "/v2/apps/burn/autoscale"))["decisions"]
    finally:
        await server.stop()
        await cluster.stop()

    base = args.usage_interval + args.autoscale_interval
    print(f"autoscaling reaction ({args.agents} agents, Docker, min 1 / max {args.max}, "
          f"target 0.3)")
    print(f"  configured: usage interval {args.usage_interval:g}s, autoscaler interval "
          f"{args.autoscale_interval:g}s, cooldown {args.cooldown:g}s "
          f"-> baseline decision delay ~{base:g}s")
    rows = [("load start -> scale_up decision", up - start),
            (f"load start -> {args.max} instances healthy", out - start),
            ("load end -> scale_down decision", down - start_in),
            ("load end -> 1 instance", back - start_in)]
    for label, seconds in rows:
        print(f"  {label:<38} {seconds:6.2f}s  ({seconds / base:4.1f} x baseline)")
    steps = [f"{d['from']}->{d['to']}" for d in reversed(decisions) if d["action"] != "hold"]
    print(f"  scaling steps: {', '.join(steps)}")
    if args.verbose:
        for d in reversed(decisions):
            print(f"    {d['at'] - wall:+7.2f}s {d['action']:<10} {d['reason']}")


async def _count(coro: Any, n: int) -> bool:
    return len(await coro) >= n


async def _count_exact(coro: Any, n: int, s: aiohttp.ClientSession, url: str) -> bool:
    body = await get(s, url + "/v2/apps/burn")
    return len(await coro) == n and len(body["app"]["tasks"]) == n


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--max", type=int, default=3)
    parser.add_argument("--usage-interval", type=float, default=1.0)
    parser.add_argument("--autoscale-interval", type=float, default=1.0)
    parser.add_argument("--cooldown", type=float, default=3.0)
    parser.add_argument("--verbose", action="store_true",
                        help="also list every decision (times relative to the load's end)")
    asyncio.run(main(parser.parse_args()))
