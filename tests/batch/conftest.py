"""Fixtures for the batch framework on a real in-process cluster.

``batch_env`` gives a master and agents on loopback (real task processes) and a
factory for ``BatchServer``s subscribed to it, with short intervals so retries,
reconciliation and offer hand-backs happen in well under a second.  Helpers talk to
the batch API over real HTTP with an async client (the servers share the test's loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from frameworks.batch.server import BatchConfig, BatchServer
from frameworks.batch.workload import BatchSettings
from mesoslite.clock import Clock
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.http import request
from mesoslite.testing.poll import CLUSTER_LIMIT, SERVER_LIMIT, wait_for, within
from tests.integration.conftest import fast_config

# 2 cpus each: with the default 0.5-cpu tasks below, 4 slots per agent.
AGENT_RESOURCES = Resources.parse("cpus:2;mem:1024;disk:1024;ports:[27000-27899]")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")


def fast_scheduler(**overrides: Any) -> BatchSettings:
    config = BatchSettings(placement_time_limit=0.2, offer_hold_s=0.3, decline_refuse_s=0.2,
                           idle_refuse_s=1.0, reconcile_interval=2.0, launching_grace=1.0,
                           tick=0.1)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@dataclass
class BatchEnv:
    tmp: Path
    clusters: list[LocalCluster] = field(default_factory=list)
    servers: list[BatchServer] = field(default_factory=list)

    async def cluster(self, agents: int = 2, resources: Resources = AGENT_RESOURCES,
                      containerizers: Iterable[str] = ("process",),
                      attributes: list[dict[str, str]] | None = None,
                      allowed_host_paths: Iterable[str] = ()) -> LocalCluster:
        spec = ClusterSpec(work_dir=self.tmp / f"cluster{len(self.clusters)}", agents=agents,
                           agent_resources=resources, master_config=fast_config(),
                           containerizers=list(containerizers), status_update_retry=0.2,
                           agent_attributes=attributes or [],
                           allowed_host_paths=list(allowed_host_paths))
        cluster = LocalCluster(spec)
        self.clusters.append(cluster)
        await within(CLUSTER_LIMIT, "the cluster to start", cluster.start())
        return cluster

    async def server(self, cluster: LocalCluster, clock: Clock | None = None,
                     work_dir: Path | None = None, **sched: Any) -> BatchServer:
        config = BatchConfig(masters=[cluster.master_url],
                             work_dir=work_dir or self.tmp / f"batch{len(self.servers)}",
                             port=0, settings=fast_scheduler(**sched), driver_backoff_max=0.5)
        server = BatchServer(config, clock=clock)
        self.servers.append(server)
        await within(SERVER_LIMIT, "the batch framework to start", server.start())
        await wait_for(lambda: server.subscribed, 10, message="batch framework subscribed")
        return server


@pytest.fixture
async def batch_env(tmp_path: Path) -> AsyncIterator[BatchEnv]:
    env = BatchEnv(tmp_path)
    yield env
    for cluster in env.clusters:  # kill tasks first: the last updates still get acked
        await within(CLUSTER_LIMIT, "the cluster to stop", cluster.stop(kill_tasks=True))
    for server in env.servers:
        await within(SERVER_LIMIT, "the batch framework to stop", server.stop())


async def api(server: BatchServer, method: str, path: str, body: Any = None
              ) -> tuple[int, Any]:
    import json

    status, _, data = await request(method, server.url + path,
                                    json=body if body is not None else None)
    return status, (json.loads(data) if data else None)


async def submit(server: BatchServer, job: dict[str, Any]) -> dict[str, Any]:
    """PUT the job and start a run; returns the run."""
    status, body = await api(server, "PUT", f"/mesoslite/v1/jobs/{job['id']}", job)
    assert status in (200, 201), body
    status, run = await api(server, "POST", f"/mesoslite/v1/jobs/{job['id']}/runs")
    assert status == 201, run
    return run


async def get_run(server: BatchServer, run_id: str) -> dict[str, Any]:
    status, run = await api(server, "GET", f"/mesoslite/v1/runs/{run_id}")
    assert status == 200, run
    return run


async def wait_run(server: BatchServer, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Until the run has ended; returns it."""
    async def ended() -> dict[str, Any] | None:
        run = await get_run(server, run_id)
        return run if run["state"] in TERMINAL else None

    return await wait_for(ended, timeout, interval=0.05, message=f"run {run_id} to end")


def attempts_of(run: dict[str, Any], step: str | None = None) -> list[dict[str, Any]]:
    return [a for a in run["attempts"] if step is None or a["step"] == step]


def step_of(run: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in run["steps"] if s["name"] == name)
