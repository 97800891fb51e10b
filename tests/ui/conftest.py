"""Fixtures of the browser tests: an in-process cluster (the integration tests'
fixtures) with agent attributes and liveness timeouts that a busy machine running a
browser meets, and frameworks."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.poll import CLUSTER_LIMIT, within
from tests.integration.conftest import (  # noqa: F401 - fixtures
    AGENT_RESOURCES,
    fast_config,
    framework_factory,
)

ATTRIBUTES = [{"rack": "r1", "zone": "eu-1a"}, {"rack": "r2", "zone": "eu-1a"},
              {"rack": "r3", "zone": "eu-1b"}]


@pytest.fixture
async def ui_cluster(tmp_path) -> AsyncIterator[LocalCluster]:
    spec = ClusterSpec(
        work_dir=tmp_path / "cluster", agents=3, agent_resources=AGENT_RESOURCES,
        agent_attributes=ATTRIBUTES, status_update_retry=0.2,
        # pings every second, unreachable after 10 missed: a browser shares the cores
        master_config=fast_config(agent_ping_timeout=1.0, max_agent_ping_timeouts=10))
    cluster = LocalCluster(spec)
    await within(CLUSTER_LIMIT, "the cluster to start", cluster.start())
    yield cluster
    await within(CLUSTER_LIMIT, "the cluster to stop", cluster.stop())
