"""Fixtures for the services framework: a real in-process cluster (master + agents on
loopback, real task processes) and the framework running against it on the same
event loop, with short timers so behaviour shows up in well under a second."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from frameworks.services.server import ServicesConfig, ServicesServer
from frameworks.services.workload import ServicesSettings
from mesoslite.master.core import MasterConfig
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.poll import CLUSTER_LIMIT, SERVER_LIMIT, wait_for, within

AGENT_RESOURCES = Resources.parse("cpus:4;mem:4096;disk:4096;ports:[31000-31899]")
# Docker suites get ports of their own, away from the other suites' ranges.
DOCKER_AGENT_RESOURCES = Resources.parse("cpus:4;mem:4096;disk:4096;ports:[22000-22899]")
IMAGE = "mesoslite/busybox:latest"
ROOT = Path(__file__).resolve().parents[2]


def fast_master(**overrides: object) -> MasterConfig:
    config = MasterConfig(
        allocation_interval=0.05, agent_ping_timeout=0.2, max_agent_ping_timeouts=3,
        heartbeat_interval=0.5, offer_timeout=30.0, agent_reregister_timeout=2.0,
    )
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


def fast_services(work_dir: Path, master: str, **overrides: Any) -> ServicesConfig:
    settings = ServicesSettings(tick_s=0.1, reconcile_interval_s=2.0, reconcile_wait_s=3.0,
                                kill_retry_s=3.0, staging_timeout_s=60.0, time_limit_s=0.1,
                                refuse_waiting_s=0.5, refuse_idle_s=5.0)
    config = ServicesConfig(masters=[master], work_dir=work_dir, port=0, settings=settings,
                            sse_keepalive=1.0)
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


class Api:
    """A tiny async client for the framework's HTTP API (same event loop as servers)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def call(self, method: str, path: str, body: Any = None,
                   **params: Any) -> tuple[int, Any, dict[str, str]]:
        query = {k: str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in params.items()}
        async with aiohttp.ClientSession() as s, s.request(
                method, self.url + path, json=body, params=query) as r:
            raw = await r.read()
            try:
                data = await r.json(content_type=None) if raw else None
            except ValueError:
                data = raw.decode()
            return r.status, data, dict(r.headers)

    async def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        status, data, _ = await self.call(method, path, body, **params)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {data}"
        return data

    async def app(self, app_id: str) -> dict[str, Any]:
        return (await self.ok("GET", f"/v2/apps{app_id}"))["app"]

    async def tasks(self, app_id: str) -> list[dict[str, Any]]:
        return (await self.ok("GET", f"/v2/apps{app_id}/tasks"))["tasks"]

    async def running(self, app_id: str, n: int, timeout: float = 30.0,
                      healthy: bool = False) -> list[dict[str, Any]]:
        """Wait until exactly ``n`` tasks run (all healthy if asked); returns them."""
        async def check() -> list[dict[str, Any]] | None:
            tasks = await self.tasks(app_id)
            ok = [t for t in tasks if t["state"] == "TASK_RUNNING" and (
                not healthy or all(r["alive"] for r in t.get("healthCheckResults", [{}])
                                   if r) and t.get("healthCheckResults"))]
            return ok if len(ok) == n and len(tasks) == n else None

        return await wait_for(check, timeout, interval=0.1,
                              message=f"{n} running tasks of {app_id}")

    async def no_deployments(self, timeout: float = 30.0) -> None:
        async def check() -> bool:
            return await self.ok("GET", "/v2/deployments") == []

        await wait_for(check, timeout, interval=0.1, message="deployments to finish")


@pytest.fixture
async def services_factory(tmp_path) -> AsyncIterator[Callable[..., Awaitable[ServicesServer]]]:
    servers: list[ServicesServer] = []

    async def make(master: str, work_dir: Path | None = None, clock: Any = None,
                   **overrides: Any) -> ServicesServer:
        config = fast_services(work_dir or tmp_path / f"services{len(servers)}", master,
                               **overrides)
        server = ServicesServer(config, clock=clock)
        servers.append(server)
        await within(SERVER_LIMIT, "the services framework to start", server.start())
        return server

    make.servers = servers  # type: ignore[attr-defined]
    yield make
    for server in reversed(servers):
        await within(SERVER_LIMIT, "the services framework to stop", server.stop())


@pytest.fixture
async def cluster_factory(tmp_path, services_factory
                          ) -> AsyncIterator[Callable[..., Awaitable[LocalCluster]]]:
    clusters: list[LocalCluster] = []

    async def make(agents: int = 3, resources: Resources = AGENT_RESOURCES,
                   containerizers: list[str] | None = None, **config: object) -> LocalCluster:
        spec = ClusterSpec(work_dir=tmp_path / f"cluster{len(clusters)}", agents=agents,
                           agent_resources=resources, master_config=fast_master(**config),
                           status_update_retry=0.2, containerizers=containerizers)
        cluster = LocalCluster(spec)
        clusters.append(cluster)
        await within(CLUSTER_LIMIT, "the cluster to start", cluster.start())
        return cluster

    yield make
    # Remove every app first (nothing is relaunched into agents that are stopping),
    # then stop the clusters while the frameworks still run (services_factory tears
    # down last), so they acknowledge the final updates and agents need not wait.
    for server in services_factory.servers:
        await _remove_apps(server)
    for c in clusters:
        await within(CLUSTER_LIMIT, "the cluster to stop", c.stop())


async def _remove_apps(server: ServicesServer, timeout: float = 15.0) -> None:
    if not server.reconciled:
        return
    api = Api(server.url)
    for app in list(server.state.apps):
        await api.call("DELETE", f"/v2/apps{app}", force=True)
    try:
        await wait_for(lambda: not server.state.tasks, timeout, interval=0.05)
    except AssertionError:
        pass  # the cluster's own shutdown kills what is left


@pytest.fixture
async def cluster(cluster_factory) -> LocalCluster:
    return await cluster_factory()


@pytest.fixture
async def services(cluster, services_factory) -> ServicesServer:
    server = await services_factory(cluster.master_url)
    await wait_for(lambda: server.reconciled, 10, message="subscribed, reconciled")
    return server


@pytest.fixture
def api(services) -> Api:
    return Api(services.url)


@pytest.fixture
async def offline(services_factory) -> Api:
    """The framework's API with no master reachable (the driver keeps retrying): enough
    for request/response contracts, which never wait on the cluster."""
    server = await services_factory("http://127.0.0.1:9")
    return Api(server.url)


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """A Docker client with the busybox test image and the examples' stand-in images
    (k8s.gcr.io/redis:e2e, ...) built; skipped (or, with CI=true, failed) without an
    engine."""
    import subprocess

    from mesoslite.agent.containerizers import docker_available
    from tests.conftest import require

    require(docker_available(), "A Docker engine")
    for script in ("build-test-image", "build-standin-images"):
        built = subprocess.run([str(ROOT / "scripts" / script)], check=False,
                               capture_output=True, text=True)
        if built.returncode != 0:
            pytest.fail(f"scripts/{script} failed:\n{built.stdout}{built.stderr}")
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
async def dcluster(engine, cluster_factory, services_factory, tmp_path
                   ) -> AsyncIterator[LocalCluster]:
    """Three agents with the docker (and process) containerizer; afterwards only the
    containers of these agents' runtime ids are removed."""
    from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID

    cluster = await cluster_factory(agents=3, resources=DOCKER_AGENT_RESOURCES,
                                    containerizers=["docker", "process"])
    yield cluster
    for server in services_factory.servers:
        await _remove_apps(server)
    await within(CLUSTER_LIMIT, "the cluster to stop", cluster.stop())
    for rid_file in tmp_path.glob("cluster*/agent*/runtime_id"):
        rid = rid_file.read_text().strip()
        for c in engine.containers.list(all=True,
                                        filters={"label": f"{LABEL_RUNTIME_ID}={rid}"}):
            c.remove(force=True, v=True)
