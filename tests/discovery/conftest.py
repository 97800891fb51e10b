"""Fixtures for discovery and load-balancing tests: in-process clusters (agents on
distinct loopback addresses, so A records differ per agent), the services framework,
a load balancer following it, and the load generator.

Ports of their own, away from the other suites': agents 23000-23899 (process) and
24000-24899 (docker); service ports 18100-18999 are given explicitly by each test.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mesoslite.agent.server import AgentConfig
from mesoslite.lb import LbConfig, LoadBalancer
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.poll import CLUSTER_LIMIT, SERVER_LIMIT, wait_for, within
from tests.services import conftest as services_conftest
from tests.services.conftest import Api, _remove_apps, fast_master

# The services suite's fixtures, shared (a fixture is found through this module).
services_factory = services_conftest.services_factory
engine = services_conftest.engine

PROCESS_RESOURCES = Resources.parse("cpus:4;mem:4096;disk:4096;ports:[23000-23899]")
DOCKER_RESOURCES = Resources.parse("cpus:4;mem:4096;disk:4096;ports:[24000-24899]")
BACKEND = Path(__file__).with_name("backend.py")
BACKEND_CMD = f"exec {sys.executable} {BACKEND} $PORT0 $MESOS_TASK_ID"
# Healthy once the backend listens; unhealthy after one failed check (the agent
# reports the first counted failure at once), killed after three; one check a second.
# The grace period only covers start-up (Marathon: failures are ignored until the
# first success or the grace period's end): long, for a loaded CI machine.  So is the
# timeout: a check that times out counts as failed, and on a loaded machine spawning
# the command once took past 2 s, flapping a healthy task (the sick file is seen at
# the next check whatever the timeout).
SICK_CHECK = {"protocol": "COMMAND", "command": {"value": "test -e ready -a ! -e sick"},
              "gracePeriodSeconds": 60, "intervalSeconds": 1, "timeoutSeconds": 20,
              "maxConsecutiveFailures": 3, "delaySeconds": 0}


class SpreadCluster(LocalCluster):
    """Agent ``i`` on 127.0.0.(11 + i): one address per agent, as on real machines."""

    def agent_config(self, index: int) -> AgentConfig:
        config = super().agent_config(index)
        config.host = f"127.0.0.{11 + index}"
        return config


@pytest.fixture
async def cluster_factory(tmp_path, services_factory
                          ) -> AsyncIterator[Callable[..., Awaitable[LocalCluster]]]:
    clusters: list[LocalCluster] = []

    async def make(agents: int = 3, resources: Resources = PROCESS_RESOURCES,
                   containerizers: list[str] | None = None) -> LocalCluster:
        spec = ClusterSpec(work_dir=tmp_path / f"cluster{len(clusters)}", agents=agents,
                           agent_resources=resources, master_config=fast_master(),
                           status_update_retry=0.2, containerizers=containerizers)
        cluster = SpreadCluster(spec)
        clusters.append(cluster)
        await within(CLUSTER_LIMIT, "the cluster to start", cluster.start())
        return cluster

    yield make
    for server in services_factory.servers:
        await _remove_apps(server)
    for c in clusters:
        await within(CLUSTER_LIMIT, "the cluster to stop", c.stop())


@pytest.fixture
async def cluster(cluster_factory) -> LocalCluster:
    return await cluster_factory()


@pytest.fixture
async def services(cluster, services_factory):
    server = await services_factory(cluster.master_url, dns_port=0)
    await wait_for(lambda: server.reconciled, 10, message="subscribed, reconciled")
    return server


@pytest.fixture
def api(services) -> Api:
    return Api(services.url)


@pytest.fixture
async def lb_factory() -> AsyncIterator[Callable[..., Awaitable[LoadBalancer]]]:
    balancers: list[LoadBalancer] = []

    async def make(services_url: str, **overrides: Any) -> LoadBalancer:
        config = LbConfig(services=services_url, status_port=0, poll_interval=0.5, **overrides)
        balancer = LoadBalancer(config)
        balancers.append(balancer)
        await within(SERVER_LIMIT, "the load balancer to start", balancer.start())
        await within(10, "the load balancer to sync with the services framework",
                     balancer.watcher.synced.wait())
        return balancer

    yield make
    for balancer in reversed(balancers):
        await within(SERVER_LIMIT, "the load balancer to stop", balancer.stop())


@pytest.fixture
async def lb(services, lb_factory) -> LoadBalancer:
    return await lb_factory(services.url)


def backend_app(app_id: str, service_port: int, instances: int, **extra: Any) -> dict:
    """An app of ``backend.py`` tasks with one service port and the SICK check."""
    return {"id": app_id, "cmd": BACKEND_CMD, "instances": instances, "cpus": 0.1,
            "mem": 32, "portDefinitions": [{"port": service_port, "name": "echo"}],
            "healthChecks": [SICK_CHECK], "taskKillGracePeriodSeconds": 0,
            "backoffSeconds": 0.2, **extra}


async def greet(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> str | None:
    """Connect, read the greeting's name (None when the connection gave none), close."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except OSError:
        return None
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
        return line.decode().split()[0] if line.strip() else None
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()


@dataclass
class Load:
    """Connections through a port, ``concurrency`` at a time, until stopped or
    ``total`` are done; ``results`` in start order (None: no answer)."""

    port: int
    concurrency: int = 4
    total: int | None = None
    results: list[str | None] = field(default_factory=list)
    started: int = 0
    _stop: bool = False

    async def run(self) -> list[str | None]:
        slots: dict[int, str | None] = {}

        async def worker() -> None:
            while not self._stop and (self.total is None or self.started < self.total):
                index = self.started
                self.started += 1
                slots[index] = await greet(self.port)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        self.results = [slots[i] for i in range(self.started)]
        return self.results

    def stop(self) -> None:
        self._stop = True


async def endpoint_ids(api: Api, app_id: str) -> list[str]:
    data = await api.ok("GET", f"/v2/endpoints{app_id}")
    app = data["app"]
    return sorted({e["taskId"] for p in (app["servicePorts"] if app else [])
                   for e in p["endpoints"]})
