"""``POST /v2/tasks/delete`` answers as Marathon does: the tasks it killed, or with
``scale=true`` the scale deployment; ``scale`` with ``wipe`` is a 400."""

from __future__ import annotations

import asyncio

from mesoslite.testing.poll import wait_for

APP = {"id": "/td", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16,
       "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
                         "gracePeriodSeconds": 5, "intervalSeconds": 1}]}


async def test_kill_answers_the_killed_tasks_and_they_are_replaced(api) -> None:
    await api.ok("POST", "/v2/apps", APP)
    tasks = await api.running("/td", 2, healthy=True)
    await api.no_deployments()
    victim = tasks[0]
    answer = await api.ok("POST", "/v2/tasks/delete", {"ids": [victim["id"], "no.such.task"]})
    [killed] = answer["tasks"]  # the unknown id is left out
    assert killed["id"] == victim["id"] and killed["appId"] == "/td"
    assert killed["host"] == victim["host"] and killed["ports"] == victim["ports"]
    assert killed["healthCheckResults"][0]["alive"] is True  # as it stood when killed

    async def replaced() -> bool:
        ids = {t["id"] for t in await api.tasks("/td") if t["state"] == "TASK_RUNNING"}
        return len(ids) == 2 and victim["id"] not in ids

    await wait_for(replaced, 30, interval=0.1, message="the killed task replaced")
    assert (await api.app("/td"))["instances"] == 2


async def test_kill_with_scale_answers_the_deployment(api) -> None:
    await api.ok("POST", "/v2/apps", {**APP, "id": "/tds", "healthChecks": []})
    tasks = await api.running("/tds", 2)
    await api.no_deployments()
    answer = await api.ok("POST", "/v2/tasks/delete", {"ids": [tasks[0]["id"]]}, scale=True)
    assert set(answer) == {"deploymentId", "version"}
    assert (await api.app("/tds"))["version"] == answer["version"]
    assert (await api.app("/tds"))["instances"] == 1
    await api.running("/tds", 1)


async def test_scale_with_wipe_is_refused(offline) -> None:
    await offline.ok("POST", "/v2/apps", {**APP, "instances": 0})
    for path in ("/v2/tasks/delete", "/v2/apps/td/tasks"):
        method = "POST" if path.endswith("delete") else "DELETE"
        status, body, _ = await offline.call(method, path, {"ids": []}, scale=True, wipe=True)
        assert status == 400 and "scale and wipe" in body["message"], (path, body)


async def test_marathon_client_kill_given_tasks(api, services) -> None:
    import pytest

    marathon = pytest.importorskip("marathon")
    await api.ok("POST", "/v2/apps", {**APP, "id": "/tdc", "healthChecks": []})
    tasks = await api.running("/tdc", 2)
    await api.no_deployments()
    client = marathon.MarathonClient(services.url, timeout=10)
    assert await asyncio.to_thread(client.kill_given_tasks, [tasks[0]["id"]])

    async def replaced() -> bool:
        ids = {t["id"] for t in await api.tasks("/tdc") if t["state"] == "TASK_RUNNING"}
        return len(ids) == 2 and tasks[0]["id"] not in ids

    await wait_for(replaced, 30, interval=0.1, message="the killed task replaced")
