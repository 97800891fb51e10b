"""The operator tears a framework down (``TEARDOWN`` on ``/api/v1``, ``POST
/master/teardown``): its tasks are killed, it is removed and may not come back with
that id; bad input changes nothing."""

from __future__ import annotations

import aiohttp
import pytest

from mesoslite.messages.mesos import TaskState
from mesoslite.scheduler import task_info
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio


async def _post(url: str, **kwargs) -> tuple[int, dict | None]:
    async with aiohttp.ClientSession() as http, http.post(url, **kwargs) as response:
        text = await response.text()
        return response.status, (await response.json()) if text else None


async def _state(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/master/state") as response:
        return await response.json()


async def test_teardown_kills_the_tasks_and_removes_the_framework(cluster_factory,
                                                                  framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    offer = await fw.offer()
    await fw.launch(offer, [task_info("t1", "t1", offer.agent_id, cmd="sleep 60")])
    await fw.wait_state("t1", TaskState.TASK_RUNNING)
    status, _ = await _post(f"{cluster.master_url}/api/v1", json={
        "type": "TEARDOWN", "teardown": {"framework_id": {"value": fw.id}}})
    assert status == 200
    state = await _state(cluster.master_url)
    assert fw.id not in [f["id"] for f in state["frameworks"]]

    async def task_states() -> list[str]:
        done = [f for f in (await _state(cluster.master_url))["completed_frameworks"]
                if f["id"] == fw.id]
        return [t["state"] for f in done for t in f["tasks"] + f["completed_tasks"]]

    async def killed() -> bool:
        return await task_states() == ["TASK_KILLED"]

    await wait_for(killed, 15, message="the torn-down framework's task to be TASK_KILLED")
    # the id may not subscribe again
    status, body = await _post(f"{cluster.master_url}/api/v1/scheduler", json={
        "type": "SUBSCRIBE", "framework_id": {"value": fw.id}, "subscribe": {
            "framework_info": {"user": "root", "name": "again", "id": {"value": fw.id}}}})
    assert status == 403 and "removed" in body["message"]


async def test_v0_teardown_and_bad_input(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    url = cluster.master_url
    status, body = await _post(f"{url}/api/v1", json={"type": "TEARDOWN", "teardown": {}})
    assert status == 400 and body["details"][0]["path"] == "teardown.framework_id.value"
    status, body = await _post(f"{url}/api/v1", json={
        "type": "TEARDOWN", "teardown": {"framework_id": {"value": "nope"}}})
    assert status == 404 and "nope" in body["message"]
    status, body = await _post(f"{url}/master/teardown", data={"framework": fw.id})
    assert status == 400 and body["details"][0]["path"] == "frameworkId"
    assert fw.id in [f["id"] for f in (await _state(url))["frameworks"]]  # nothing changed
    status, _ = await _post(f"{url}/master/teardown", data={"frameworkId": fw.id})
    assert status == 200
    assert fw.id not in [f["id"] for f in (await _state(url))["frameworks"]]
