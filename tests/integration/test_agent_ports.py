"""An agent offering ports inside the kernel's ephemeral range says so at start-up."""

from __future__ import annotations

import logging

from mesoslite.agent.host import local_port_range
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from tests.integration.conftest import AGENT_RESOURCES, fast_config

WARNING = "lie in the kernel's ephemeral port range"


async def start_agent(tmp_path, caplog, resources: Resources) -> list[str]:
    spec = ClusterSpec(work_dir=tmp_path, agents=1, agent_resources=resources,
                       master_config=fast_config())
    cluster = LocalCluster(spec)
    with caplog.at_level(logging.WARNING, logger="mesoslite.agent.server"):
        await cluster.start()
    try:
        return [r.getMessage() for r in caplog.records if WARNING in r.getMessage()]
    finally:
        await cluster.stop()


async def test_ports_inside_the_ephemeral_range_are_named(tmp_path, caplog) -> None:
    kernel = local_port_range()
    assert kernel is not None, "mesoslite agents run on Linux, which has the range"
    low, _ = kernel
    given = Resources.parse(f"cpus:1;mem:256;ports:[{low - 10}-{low + 9}]")
    [message] = await start_agent(tmp_path, caplog, given)
    assert f"{low}-{low + 9}" in message


async def test_ports_below_it_draw_no_warning(tmp_path, caplog) -> None:
    assert await start_agent(tmp_path, caplog, AGENT_RESOURCES) == []
