"""The seed's example end to end on the real Docker engine: its Kubernetes manifests
(redis-master Deployment + Service) deploy with ``mesoslite apply``, and a client
container reaches the server by name, ``redis-master:6379``, through the host's load
balancer -- the seed's client code, unchanged (scripts/build-standin-images builds the
local k8s.gcr.io/redis:e2e; busybox nc is the client)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from mesoslite.agent.containerizers.docker_spec import LABEL_TASK_ID
from mesoslite.testing.poll import wait_for
from tests.discovery.conftest import DOCKER_RESOURCES
from tests.services.conftest import IMAGE, ROOT, Api

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]

# The seed's client: connect to the service by name, say PING, keep the answer.
# Retried until answered: the seed's server has no probe, so it may still be starting.
CLIENT = (r"until printf 'PING\r\nQUIT\r\n' | nc redis-master 6379 > /tmp/answer"
          r" && grep -q PONG /tmp/answer; do sleep 0.2; done; exec sleep 3600")


def container_of(engine, task_id: str):
    found = engine.containers.list(filters={"label": f"{LABEL_TASK_ID}={task_id}"})
    return found[0] if found else None


def run_in(engine, task_id: str, command: str) -> str:
    container = container_of(engine, task_id)
    assert container is not None, f"no container for {task_id}"
    code, out = container.exec_run(["sh", "-c", command])
    return out.decode() if code == 0 else ""


async def test_a_client_reaches_redis_master_by_name(engine, cluster_factory,
                                                     services_factory, lb_factory) -> None:
    cluster = await cluster_factory(agents=2, resources=DOCKER_RESOURCES,
                                    containerizers=["docker"])
    services = await services_factory(cluster.master_url)
    await wait_for(lambda: services.reconciled, 10, message="reconciled")
    api = Api(services.url)
    lb = await lb_factory(services.url, docker_bridge=True)
    assert lb.gateway is not None, "the Docker bridge gateway (containers' way to the proxy)"

    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mesoslite.cli.main", "apply", "-f",
                         str(ROOT / "examples" / "redis-master.yaml"), "--server", api.url],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [server] = await api.running("/redis-master", 1, timeout=90)
    await wait_for(lambda: lb.proxy.routes.get(6379) and lb.proxy.routes[6379].backends,
                   30, interval=0.05, message="the proxy routing 6379 to redis-master")
    assert {(a, p) for a, p in lb.proxy.listeners} >= {("127.0.0.1", 6379),
                                                        (lb.gateway, 6379)}

    await api.ok("POST", "/v2/apps", {
        "id": "/redis-client", "cmd": CLIENT, "instances": 1, "cpus": 0.1, "mem": 32,
        "taskKillGracePeriodSeconds": 0,
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}},
        "networks": [{"mode": "container/bridge"}]})
    [client] = await api.running("/redis-client", 1, timeout=90)

    answer = await wait_for(lambda: asyncio.to_thread(run_in, engine, client["id"],
                                                      "cat /tmp/answer"),
                            30, interval=0.2, message="the client's answer")
    assert answer.startswith("+PONG")
    hosts = await asyncio.to_thread(run_in, engine, client["id"], "cat /etc/hosts")
    assert f"{lb.gateway}\tredis-master\n" in hosts
    # The connection went through the proxy, to the server's one endpoint.
    [stats] = [s for s in lb.proxy.endpoint_stats() if s.service_port == 6379]
    assert stats.task_id == server["id"] and stats.connections >= 1
