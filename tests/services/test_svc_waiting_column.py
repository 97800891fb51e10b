"""``mesoslite apps list`` says why an app's instances wait: the seed's Docker example on
agents without Docker shows the master's reason, not just "0 running"."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from mesoslite.cli.main import cli
from mesoslite.testing.poll import wait_for
from tests.services.conftest import ROOT

pytestmark = pytest.mark.asyncio


async def apps_list(server_url: str) -> dict[str, str]:
    """App id -> its WAITING / LAST FAILURE cell, as ``apps list`` prints it."""
    result = await asyncio.to_thread(CliRunner().invoke, cli,
                                     ["apps", "list", "--server", server_url],
                                     catch_exceptions=False)
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    start = header.index("WAITING / LAST FAILURE")
    return {row.split()[0]: row[start:].strip() for row in rows}


async def test_a_docker_app_on_agents_without_docker_says_why(cluster_factory,
                                                              services_factory):
    cluster = await cluster_factory(agents=1, containerizers=["process"])
    services = await services_factory(cluster.master_url)
    await wait_for(lambda: services.reconciled, 10, message="subscribed, reconciled")
    applied = await asyncio.to_thread(
        CliRunner().invoke, cli, ["apply", "-f", str(ROOT / "examples" / "redis-master.yaml"),
                                  "--server", services.url], catch_exceptions=False)
    assert applied.exit_code == 0, applied.output

    async def says_no_docker() -> str | None:
        cell = (await apps_list(services.url)).get("/redis-master", "")
        return cell if "no docker containerizer" in cell else None

    cell = await wait_for(says_no_docker, 30, interval=0.2,
                          message="apps list to say the agent has no docker containerizer")
    assert cell.startswith(("retrying: The agent has no docker containerizer",
                            "last failure: The agent has no docker containerizer"))


async def test_a_healthy_app_shows_nothing(cluster, services):
    from tests.services.conftest import Api

    api = Api(services.url)
    await api.ok("POST", "/v2/apps", {"id": "/fine", "cmd": "sleep 100", "cpus": 0.1,
                                      "mem": 16})
    await api.running("/fine", 1)
    assert (await apps_list(services.url))["/fine"] == "-"
