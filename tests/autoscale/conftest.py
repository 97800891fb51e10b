"""A Docker cluster whose agents report usage often, with the services framework
autoscaling on a short interval; shared by tests/autoscale and tests/storage.

Agents report usage every 0.3 s and the autoscaler reads it every 0.3 s, so a
decision follows a change in load within a second or two; nothing is timed, tests
poll with deadlines.  Afterwards only the containers of these agents' runtime ids
are removed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from frameworks.services.autoscaler import AutoscaleSettings
from frameworks.services.server import ServicesServer
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.poll import CLUSTER_LIMIT, wait_for, within
from tests.services.conftest import (
    Api,
    _remove_apps,
    engine,
    fast_master,
    offline,
    services_factory,
)

__all__ = ["engine", "offline", "services_factory"]  # fixtures used here and by the tests

# Ports of their own, away from the other suites' ranges.
RESOURCES = Resources.parse("cpus:4;mem:4096;disk:4096;ports:[26000-26899]")
USAGE_INTERVAL = 0.3


class Cluster:
    """A started cluster and the services framework on it."""

    def __init__(self, cluster: LocalCluster, server: ServicesServer) -> None:
        self.cluster = cluster
        self.server = server
        self.api = Api(server.url)

    @property
    def master_url(self) -> str:
        return self.cluster.master_url

    async def master_get(self, path: str) -> Any:
        async with aiohttp.ClientSession() as s, s.get(self.master_url + path) as r:
            assert r.status == 200, f"GET {path} -> {r.status}"
            return await r.json() if "json" in r.content_type else await r.text()

    def agent(self, hostname: str) -> Any:
        return next(a for a in self.cluster.agents if a.hostname == hostname)


@pytest.fixture
async def usage_cluster(engine, services_factory, tmp_path
                        ) -> AsyncIterator[Callable[..., Awaitable[Cluster]]]:
    """``await usage_cluster(agents=2, allowed=[prefix])``: a Docker (and process)
    cluster with fast usage reports, and the services framework on it."""
    from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID

    clusters: list[LocalCluster] = []

    async def make(agents: int = 2, allowed: Sequence[str] = (),
                   **autoscale: Any) -> Cluster:
        spec = ClusterSpec(work_dir=tmp_path / f"ucluster{len(clusters)}", agents=agents,
                           agent_resources=RESOURCES, master_config=fast_master(),
                           status_update_retry=0.2, containerizers=["docker", "process"],
                           usage_interval=USAGE_INTERVAL, allowed_host_paths=list(allowed))
        cluster = LocalCluster(spec)
        clusters.append(cluster)
        await within(CLUSTER_LIMIT, "the cluster to start", cluster.start())
        settings = AutoscaleSettings(**{"interval_s": 0.3, "stale_s": 10.0, **autoscale})
        # a named role: persistent volumes are reserved for it (docs/storage.md)
        server = await services_factory(cluster.master_url, autoscale=settings, role="services")
        await wait_for(lambda: server.reconciled, 10, message="reconciled")
        return Cluster(cluster, server)

    yield make
    for server in services_factory.servers:
        await _remove_apps(server)
    for cluster in clusters:
        await within(CLUSTER_LIMIT, "the cluster to stop", cluster.stop())
    for rid_file in Path(tmp_path).glob("ucluster*/agent*/runtime_id"):
        rid = rid_file.read_text().strip()
        for c in engine.containers.list(all=True,
                                        filters={"label": f"{LABEL_RUNTIME_ID}={rid}"}):
            c.remove(force=True, v=True)
