"""Horizontal autoscaling on a real cluster with the real Docker engine: an app whose
tasks burn CPU scales out to its maximum, and back to its minimum once they idle;
every decision is recorded with its reason (``/v2/apps/{id}/autoscale`` and the
``autoscale_decision`` events of ``/v2/events``); the usage it acts on is visible
in ``/master/state``, ``/metrics`` and the agents' ``/monitor/statistics``.

The tasks' CPU is capped by the engine (``cpus`` 0.1 each), so the burners cost
little on a shared machine; the target (0.3) is far from both their load and idle.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Self

import aiohttp
import pytest

from mesoslite.testing.poll import wait_for
from tests.autoscale.conftest import Cluster
from tests.services.conftest import IMAGE

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]

# Burns a core (capped at 0.1 by the engine) until /ctl/stop exists, then idles.
BURN = "while [ ! -e /ctl/stop ]; do :; done; exec sleep 3600"
POLICY = {"min": 1, "max": 3, "target_cpu_utilization": 0.3, "cooldown_seconds": 1}


def burner(app_id: str, ctl: Path, **extra: Any) -> dict[str, Any]:
    return {"id": app_id, "cmd": BURN, "instances": 1, "cpus": 0.1, "mem": 32,
            "taskKillGracePeriodSeconds": 0, "autoscale": POLICY,
            "container": {"type": "DOCKER", "docker": {"image": IMAGE},
                          "volumes": [{"containerPath": "/ctl", "hostPath": str(ctl),
                                       "mode": "RO"}]},
            "networks": [{"mode": "container/bridge"}], **extra}


class Events:
    """Collects the services framework's SSE events of some types in the background."""

    def __init__(self, url: str, *types: str) -> None:
        self.url, self.types = url, types
        self.seen: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self._ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        params = [("event_type", t) for t in self.types]
        async with aiohttp.ClientSession() as s, s.get(self.url + "/v2/events",
                                                       params=params) as stream:
            self._ready.set()
            async for line in stream.content:
                if line.startswith(b"data:"):
                    self.seen.append(json.loads(line[5:]))


async def test_scales_out_under_cpu_load_and_in_when_idle(usage_cluster, tmp_path) -> None:
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    c: Cluster = await usage_cluster(agents=2, allowed=[str(tmp_path)])
    api = c.api
    async with Events(c.server.url, "autoscale_decision") as events:
        await api.ok("POST", "/v2/apps", burner("/burn", ctl))

        # Under load: out to the maximum (3), never beyond it.
        await api.running("/burn", 3, timeout=90)
        scaling = await api.ok("GET", "/v2/apps/burn/autoscale")
        assert scaling["policy"]["max"] == 3 and scaling["policy"]["source"] == "field"
        ups = [d for d in scaling["decisions"] if d["action"] == "scale_up"]
        assert ups and ups[-1]["from"] == 1 and ups[-1]["kind"] == "utilization"
        assert "above the band" in ups[-1]["reason"]
        assert ups[-1]["utilization"] > 0.3

        await usage_is_visible(c, "/burn")

        # Idle: back in to the minimum (1).
        (ctl / "stop").write_text("")
        await wait_for(lambda: instances(api, "/burn", 1), 90, interval=0.2,
                       message="scaled in to 1")
        await api.running("/burn", 1, timeout=60)
        decisions = (await api.ok("GET", "/v2/apps/burn/autoscale"))["decisions"]
        downs = [d for d in decisions if d["action"] == "scale_down"]
        assert downs and downs[0]["to"] == 1 and "below the band" in downs[0]["reason"]
        assert all(1 <= d["to"] <= 3 for d in decisions), decisions

        # The same decisions went out as events, with their reasons.
        await wait_for(lambda: any(e["action"] == "scale_down" for e in events.seen), 10,
                       message="the scale_down event")
    assert {e["appId"] for e in events.seen} == {"/burn"}
    shown = [e for e in events.seen if e["action"] != "hold"]
    assert [e["action"] for e in shown][:1] == ["scale_up"] and all(e["reason"] for e in shown)


async def instances(api: Any, app_id: str, n: int) -> bool:
    return (await api.app(app_id))["instances"] == n


async def usage_is_visible(c: Cluster, app_id: str) -> None:
    """Each running task's CPU and memory in /master/state (``statistics``), /metrics
    and its agent's /monitor/statistics."""
    tasks = await c.api.running(app_id, 3)
    ids = {t["id"] for t in tasks}

    async def sampled() -> dict[str, Any] | None:
        state = await c.master_get("/master/state")
        stats = {t["id"]: t["statistics"] for f in state["frameworks"] for t in f["tasks"]
                 if t["id"] in ids and "cpus_used" in t.get("statistics", {})}
        return stats if len(stats) == 3 else None

    stats = await wait_for(sampled, 30, interval=0.2, message="statistics of 3 tasks")
    for s in stats.values():
        assert s["cpus_limit"] == pytest.approx(0.1)
        assert s["cpus_used"] > 0 and s["mem_limit_bytes"] == 32 * 2**20
        assert 0 < s["mem_rss_bytes"] < s["mem_limit_bytes"]

    metrics = await c.master_get("/metrics")
    for task_id in ids:
        assert f'mesoslite_task_cpus_used{{framework_id="{c.server.framework_id}",' \
               f'task_id="{task_id}"}}' in metrics
        assert f'task_id="{task_id}"' in metrics.split("mesoslite_task_mem_bytes", 1)[1]

    by_host: dict[str, set[str]] = {}
    for t in tasks:
        by_host.setdefault(t["host"], set()).add(t["id"])
    for host, host_ids in by_host.items():
        agent = c.agent(host)
        url = f"http://{agent.address}:{agent.config.port}/monitor/statistics"

        async def listed(url: str = url, host_ids: set[str] = host_ids) -> bool:
            async with aiohttp.ClientSession() as s, s.get(url) as r:
                entries = await r.json()
            return host_ids <= {e["executor_id"] for e in entries
                                if "cpus_limit" in e["statistics"]}

        await wait_for(listed, 30, interval=0.2, message=f"{host}'s /monitor/statistics")
