"""Deployments on a real cluster (process tasks with HTTP health checks): rolling
upgrades keep the healthy floor, a broken version rolls back by itself after its
timeout, manual rollback and forced abort, restart, scale through task kills."""

from __future__ import annotations

import asyncio
import sys

import pytest

from frameworks.services.model import DEPLOYMENT_TIMEOUT_LABEL
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio

SERVER = f"{sys.executable} -m http.server $PORT0 --bind 127.0.0.1"
CHECK = {"protocol": "HTTP", "portIndex": 0, "path": "/", "gracePeriodSeconds": 3,
         "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2,
         "delaySeconds": 0}


def web_app(app_id: str, instances: int = 3, **extra: object) -> dict:
    return {"id": app_id, "cmd": SERVER, "instances": instances, "cpus": 0.1, "mem": 32,
            "healthChecks": [CHECK], **extra}


async def deployed(api, app_id: str, n: int) -> list[dict]:
    """The app's tasks once no deployment is left and ``n`` run healthy."""
    await api.no_deployments(timeout=40)
    return await api.running(app_id, n, healthy=True, timeout=40)


async def sample_healthy(api, app_id: str, samples: list[tuple[int, bool]],
                         stop: asyncio.Event) -> None:
    """Record (tasksHealthy, deployment in progress) from the framework's own API."""
    while not stop.is_set():
        app = await api.app(app_id)
        samples.append((app["tasksHealthy"], bool(app["deployments"])))
        await asyncio.sleep(0.05)


async def test_rolling_upgrade_keeps_the_healthy_floor(api) -> None:
    strategy = {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.0}
    await api.ok("POST", "/v2/apps", web_app("/web", 4, upgradeStrategy=strategy))
    old = {t["id"] for t in await deployed(api, "/web", 4)}
    samples: list[tuple[int, bool]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_healthy(api, "/web", samples, stop))
    await api.ok("PUT", "/v2/apps/web", {"env": {"RELEASE": "2"}})
    new = await deployed(api, "/web", 4)
    stop.set()
    await sampler
    assert not old & {t["id"] for t in new}, "every task replaced"
    during = [healthy for healthy, deploying in samples if deploying]
    assert during, "the sampler saw the deployment"
    assert min(during) >= 2, f"healthy fell below the floor of 2: {samples}"
    versions = {t["version"] for t in new}
    assert versions == {(await api.app("/web"))["version"]}


async def test_a_broken_version_rolls_back_by_itself(api) -> None:
    labels = {DEPLOYMENT_TIMEOUT_LABEL: "6"}
    strategy = {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 0.5}
    await api.ok("POST", "/v2/apps", web_app("/svc", 2, labels=labels,
                                            upgradeStrategy=strategy))
    old = {t["id"] for t in await deployed(api, "/svc", 2)}
    good = await api.app("/svc")
    # The new version never listens on its port: it fails its health checks.
    result = await api.ok("PUT", "/v2/apps/svc", {"cmd": "sleep 1000"})

    async def rolled_back() -> bool:
        app = await api.app("/svc")
        return app["cmd"] == SERVER and not app["deployments"]

    await wait_for(rolled_back, 60, interval=0.2, message="the automatic rollback")
    app = await api.app("/svc")
    assert app["versionInfo"]["lastConfigChangeAt"] == good["versionInfo"]["lastConfigChangeAt"]
    tasks = await api.running("/svc", 2, healthy=True)
    assert {t["id"] for t in tasks} == old, "the healthy old tasks were never killed"
    assert result["deploymentId"] not in {d["id"] for d in await api.ok("GET", "/v2/deployments")}


async def test_manual_rollback_and_forced_abort(api) -> None:
    await api.ok("POST", "/v2/apps", web_app("/mr", 2))
    old = {t["id"] for t in await deployed(api, "/mr", 2)}
    result = await api.ok("PUT", "/v2/apps/mr", {"cmd": "sleep 1000"})
    status, body, _ = await api.call("PUT", "/v2/apps/mr", {"instances": 5})
    assert status == 409 and body["deployments"] == [{"id": result["deploymentId"]}]
    rollback = await api.ok("DELETE", f"/v2/deployments/{result['deploymentId']}")
    assert rollback["deploymentId"] != result["deploymentId"]
    await api.no_deployments(timeout=40)
    assert (await api.app("/mr"))["cmd"] == SERVER
    assert {t["id"] for t in await api.running("/mr", 2, healthy=True)} == old

    result = await api.ok("PUT", "/v2/apps/mr", {"cmd": "sleep 1000"})
    status, _, _ = await api.call("DELETE", f"/v2/deployments/{result['deploymentId']}",
                                  force=True)
    assert status == 202
    assert await api.ok("GET", "/v2/deployments") == []
    assert (await api.app("/mr"))["cmd"] == "sleep 1000"  # left as it stood


async def test_restart_replaces_every_task(api) -> None:
    await api.ok("POST", "/v2/apps", web_app("/rs", 2))
    old = {t["id"] for t in await deployed(api, "/rs", 2)}
    await api.ok("POST", "/v2/apps/rs/restart")
    new = {t["id"] for t in await deployed(api, "/rs", 2)}
    assert not old & new


async def test_kill_with_scale_lowers_instances(api) -> None:
    await api.ok("POST", "/v2/apps", {"id": "/ks", "cmd": "sleep 1000", "instances": 3,
                                      "cpus": 0.1, "mem": 16})
    tasks = await api.running("/ks", 3)
    await api.no_deployments()
    await api.ok("POST", "/v2/tasks/delete", {"ids": [tasks[0]["id"]]}, scale=True)
    assert (await api.app("/ks"))["instances"] == 2
    remaining = await api.running("/ks", 2)
    assert tasks[0]["id"] not in {t["id"] for t in remaining}
    # without scale: replaced
    await api.no_deployments()
    killed = await api.ok("DELETE", f"/v2/apps/ks/tasks/{remaining[0]['id']}")
    assert killed["task"]["id"] == remaining[0]["id"]

    async def replaced() -> bool:
        ids = {t["id"] for t in await api.tasks("/ks") if t["state"] == "TASK_RUNNING"}
        return len(ids) == 2 and remaining[0]["id"] not in ids

    await wait_for(replaced, 20, interval=0.1)


async def test_readiness_holds_the_deployment_until_ready(api, tmp_path) -> None:
    # Ready once a file exists in the sandbox, a while after the server starts.
    ready_after = tmp_path / "go"
    cmd = (f"(while [ ! -e {ready_after} ]; do sleep 0.1; done; touch ready) & "
           f"exec {SERVER}")
    app = {"id": "/rd", "cmd": cmd, "instances": 1, "cpus": 0.1, "mem": 32,
           "portDefinitions": [{"port": 0, "name": "http"}],
           "readinessChecks": [{"name": "ready", "protocol": "HTTP", "path": "/ready",
                                "portName": "http", "intervalSeconds": 0,
                                "timeoutSeconds": 1, "httpStatusCodesForReady": [200]}]}
    await api.ok("POST", "/v2/apps", app)
    await api.running("/rd", 1)

    async def not_ready_result() -> bool:
        apps = (await api.ok("GET", "/v2/apps", embed="apps.readiness"))["apps"]
        results = apps[0].get("readinessCheckResults", [])
        return bool(results) and not results[0]["ready"]

    await wait_for(not_ready_result, 20, interval=0.1, message="a failed readiness probe")
    assert await api.ok("GET", "/v2/deployments"), "held while the task is not ready"
    ready_after.touch()
    await api.no_deployments(timeout=20)


async def test_dependencies_wait_and_queue_says_why(api) -> None:
    await api.ok("POST", "/v2/apps", {"id": "/front", "cmd": "sleep 1000", "instances": 1,
                                      "cpus": 0.1, "mem": 16, "dependencies": ["/db"]})

    async def waiting() -> dict | None:
        queue = (await api.ok("GET", "/v2/queue"))["queue"]
        return queue[0] if queue else None

    item = await wait_for(waiting, 10, interval=0.1, message="/front in the queue")
    assert item["app"]["id"] == "/front" and item["count"] == 1
    assert "dependency /db" in item["processedOffersSummary"]["waitingReason"]
    assert await api.tasks("/front") == []
    await api.ok("POST", "/v2/apps", {"id": "/db", "cmd": "sleep 1000", "instances": 1,
                                      "cpus": 0.1, "mem": 16})
    await api.running("/db", 1)
    await api.running("/front", 1)


async def test_queue_explains_unplaceable_instances(api) -> None:
    await api.ok("POST", "/v2/apps", {"id": "/big", "cmd": "sleep 1000", "instances": 1,
                                      "cpus": 0.1, "mem": 999999})

    async def explained() -> dict | None:
        queue = (await api.ok("GET", "/v2/queue"))["queue"]
        summary = queue[0]["processedOffersSummary"] if queue else {}
        return summary if summary.get("unplacedReason") else None

    summary = await wait_for(explained, 20, interval=0.1, message="a reason in the queue")
    assert "insufficient mem on 3 agents" in summary["unplacedReason"]
    memory = [r for r in summary["rejectSummaryLastOffers"] if r["reason"] == "InsufficientMemory"]
    assert memory[0]["declined"] == 3 and memory[0]["processed"] == 3


async def test_several_health_checks_all_count(api) -> None:
    """The agent runs one check per task; the framework runs the others (as Marathon
    runs its HTTP/TCP checks): a task is healthy only when all pass, and is killed
    when one keeps failing."""
    tcp = {"protocol": "TCP", "portIndex": 0, "gracePeriodSeconds": 2, "intervalSeconds": 1,
           "timeoutSeconds": 1, "maxConsecutiveFailures": 2, "delaySeconds": 0}
    good = web_app("/two", 1, healthChecks=[tcp, CHECK])
    await api.ok("POST", "/v2/apps", good)
    [task] = await api.running("/two", 1, healthy=True)
    assert task["healthCheckResults"][0]["alive"]
    missing = {**CHECK, "path": "/missing", "gracePeriodSeconds": 2}
    bad = web_app("/bad", 1, healthChecks=[tcp, missing], backoffSeconds=1)
    await api.ok("POST", "/v2/apps", bad)

    async def killed_for_health() -> dict | None:
        return (await api.app("/bad")).get("lastTaskFailure")

    failure = await wait_for(killed_for_health, 30, interval=0.2,
                             message="the task killed by the framework's check")
    assert failure["state"] in ("TASK_KILLED", "TASK_FAILED")
    queue = (await api.ok("GET", "/v2/queue"))["queue"]
    assert not queue or queue[0]["app"]["id"] == "/bad"
