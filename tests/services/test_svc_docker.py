"""The services framework with Docker containers on a real engine: UNIQUE hostname
over three agents, a container killed by hand, an agent stopped, a rolling upgrade
that keeps the healthy floor, a broken version rolled back by itself, and the seed's
Kubernetes manifest deployed with ``mesoslite apply``.

Needs a Docker engine and the busybox test image (scripts/build-test-image): skipped
without one on a developer machine, a failure with CI=true.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from frameworks.services.model import DEPLOYMENT_TIMEOUT_LABEL
from mesoslite.testing.poll import wait_for
from tests.services.conftest import IMAGE, Api

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
HTTPD = "echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"
CHECK = {"protocol": "HTTP", "portIndex": 0, "path": "/", "gracePeriodSeconds": 5,
         "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2,
         "delaySeconds": 0}


@pytest.fixture
async def dapi(dcluster, services_factory) -> Api:
    server = await services_factory(dcluster.master_url)
    await wait_for(lambda: server.reconciled, 10, message="reconciled")
    return Api(server.url)


def httpd_app(app_id: str, instances: int, **extra: object) -> dict:
    return {"id": app_id, "cmd": HTTPD, "instances": instances, "cpus": 0.1, "mem": 32,
            "taskKillGracePeriodSeconds": 0,
            "container": {"type": "DOCKER", "docker": {"image": IMAGE},
                          "portMappings": [{"containerPort": 8080, "hostPort": 0}]},
            "networks": [{"mode": "container/bridge"}],
            "healthChecks": [CHECK], **extra}


def container_of(engine, task_id: str):
    from mesoslite.agent.containerizers.docker_spec import LABEL_TASK_ID

    found = engine.containers.list(filters={"label": f"{LABEL_TASK_ID}={task_id}"})
    return found[0] if found else None


async def test_unique_hostname_and_a_killed_container_is_replaced(engine, dapi) -> None:
    await dapi.ok("POST", "/v2/apps", httpd_app("/web", 3,
                                                constraints=[["hostname", "UNIQUE"]]))
    tasks = await dapi.running("/web", 3, healthy=True, timeout=60)
    assert sorted(t["host"] for t in tasks) == ["agent1", "agent2", "agent3"]
    victim = tasks[0]
    container = container_of(engine, victim["id"])
    assert container is not None
    await asyncio.to_thread(container.kill)  # by hand, behind the framework's back

    async def replaced() -> list[dict] | None:
        running = await dapi.running("/web", 3, healthy=True, timeout=60)
        return running if victim["id"] not in {t["id"] for t in running} else None

    running = await wait_for(replaced, 60, interval=0.2, message="a replacement container")
    assert sorted(t["host"] for t in running) == ["agent1", "agent2", "agent3"]
    assert (await dapi.app("/web"))["lastTaskFailure"]["taskId"] == victim["id"]


async def test_instances_of_a_stopped_agent_move(engine, dcluster, dapi) -> None:
    await dapi.ok("POST", "/v2/apps", httpd_app("/mv", 2,
                                                constraints=[["hostname", "UNIQUE"]]))
    tasks = await dapi.running("/mv", 2, healthy=True, timeout=60)
    lost = tasks[0]["host"]
    index = int(lost.removeprefix("agent")) - 1
    await dcluster.stop_agent(index)

    async def moved() -> bool:
        now = await dapi.tasks("/mv")
        hosts = {t["host"] for t in now if t["state"] == "TASK_RUNNING"}
        return len(now) == 2 and len(hosts) == 2 and lost not in hosts

    await wait_for(moved, 60, interval=0.2, message="the lost instance on another agent")
    await dcluster.start_agent(index)  # it comes back and is told to kill the old one
    await dapi.running("/mv", 2, healthy=True, timeout=60)


async def test_rolling_upgrade_keeps_the_floor_and_a_broken_version_rolls_back(dapi) -> None:
    strategy = {"minimumHealthCapacity": 0.67, "maximumOverCapacity": 0.0}
    labels = {DEPLOYMENT_TIMEOUT_LABEL: "8"}
    await dapi.ok("POST", "/v2/apps", httpd_app("/roll", 3, upgradeStrategy=strategy,
                                                labels=labels))
    await dapi.no_deployments(timeout=60)
    old = {t["id"] for t in await dapi.running("/roll", 3, healthy=True)}

    samples: list[tuple[int, bool]] = []

    async def sample_until_done() -> None:
        while True:
            app = await dapi.app("/roll")
            samples.append((app["tasksHealthy"], bool(app["deployments"])))
            if not app["deployments"] and len(samples) > 1:
                return
            await asyncio.sleep(0.05)

    await dapi.ok("PUT", "/v2/apps/roll", {"env": {"RELEASE": "2"}})
    await asyncio.wait_for(sample_until_done(), 90)
    upgraded = {t["id"] for t in await dapi.running("/roll", 3, healthy=True)}
    assert not old & upgraded
    assert min(h for h, deploying in samples if deploying) >= 2, samples

    good = await dapi.app("/roll")
    await dapi.ok("PUT", "/v2/apps/roll", {"cmd": "exec sleep 1000"})  # never healthy

    async def rolled_back() -> bool:
        app = await dapi.app("/roll")
        return app["cmd"] == HTTPD and not app["deployments"]

    await wait_for(rolled_back, 90, interval=0.2, message="the automatic rollback")
    assert (await dapi.app("/roll"))["versionInfo"]["lastConfigChangeAt"] == \
        good["versionInfo"]["lastConfigChangeAt"]
    tasks = await dapi.running("/roll", 3, healthy=True, timeout=60)
    # the floor (2 of 3) was kept: at most one healthy task was given up for the bad one
    assert len({t["id"] for t in tasks} & upgraded) >= 2


async def test_seed_manifest_deploys_with_mesoslite_apply(engine, dapi) -> None:
    manifest = ROOT / "examples" / "redis-master.yaml"
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "mesoslite.cli.main", "apply", "-f",
                         str(manifest), "--server", dapi.url],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "app /redis-master configured" in done.stdout
    [task] = await dapi.running("/redis-master", 1, timeout=60)
    app = await dapi.app("/redis-master")
    assert app["container"]["portMappings"][0]["servicePort"] == 6379
    assert app["cpus"] == 0.1 and app["mem"] == 100

    async def answer() -> bytes | None:
        """What PING, QUIT get; None while nothing listens yet (the seed has no probe:
        the task runs before its server does, and Docker's proxy then closes at once)."""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", task["ports"][0])
            writer.write(b"PING\r\nQUIT\r\n")
            await writer.drain()
            got = await asyncio.wait_for(reader.read(), 10)
            writer.close()
        except OSError:
            return None
        return got or None

    assert await wait_for(answer, 30, interval=0.2, message="redis-master to answer") \
        == b"+PONG\r\n+OK\r\n"
