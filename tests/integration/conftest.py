"""Fixtures for in-process clusters: a real master and real agents on loopback, real
processes for tasks, short timeouts so failures show up in well under a second."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mesoslite.clock import ManualClock
from mesoslite.master.core import MasterConfig
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.poll import CLUSTER_LIMIT, SERVER_LIMIT, within

# ``cluster_factory`` keywords that set the cluster (the others set the master)
SPEC_FIELDS = {"executor_registration_timeout", "agent_attributes"}
AGENT_RESOURCES = Resources.parse("cpus:2;mem:1024;disk:1024;ports:[31000-31899]")


def fast_config(**overrides: object) -> MasterConfig:
    config = MasterConfig(
        allocation_interval=0.05, agent_ping_timeout=0.2, max_agent_ping_timeouts=3,
        heartbeat_interval=0.5, offer_timeout=30.0, agent_reregister_timeout=2.0,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@pytest.fixture
async def cluster_factory(tmp_path) -> AsyncIterator[Callable[..., Awaitable[LocalCluster]]]:
    clusters: list[LocalCluster] = []

    async def make(agents: int = 3, clock: ManualClock | None = None,
                   **config: object) -> LocalCluster:
        spec_fields = {k: config.pop(k) for k in list(config) if k in SPEC_FIELDS}
        spec = ClusterSpec(work_dir=tmp_path / f"cluster{len(clusters)}", agents=agents,
                           agent_resources=AGENT_RESOURCES, master_config=fast_config(**config),
                           status_update_retry=0.2, **spec_fields)  # type: ignore[arg-type]
        cluster = LocalCluster(spec, clock=clock)
        clusters.append(cluster)
        await within(CLUSTER_LIMIT, "the cluster to start", cluster.start())
        return cluster

    yield make
    for c in clusters:
        await within(CLUSTER_LIMIT, "the cluster to stop", c.stop())


@pytest.fixture
async def cluster(cluster_factory) -> LocalCluster:
    return await cluster_factory()


@pytest.fixture
async def framework_factory() -> AsyncIterator[Callable[..., Awaitable[RecordingFramework]]]:
    frameworks: list[RecordingFramework] = []

    async def make(master: str, **kwargs: object) -> RecordingFramework:
        fw = RecordingFramework(master, **kwargs)  # type: ignore[arg-type]
        frameworks.append(fw)
        return await within(SERVER_LIMIT, "the test framework to subscribe", fw.start())

    yield make
    for fw in frameworks:
        await within(SERVER_LIMIT, "the test framework to stop", fw.stop())


@pytest.fixture
async def framework(cluster, framework_factory) -> RecordingFramework:
    return await framework_factory(cluster.master_url)
