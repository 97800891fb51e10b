"""A field of Mesos' schema that mesoslite does not honour is refused over the real
scheduler API, naming the field and why, and nothing happens: the offer stays the
framework's, no task is launched (tests/unit/test_field_policy.py walks every field)."""

from __future__ import annotations

import aiohttp
import msgspec
import pytest

from mesoslite.messages.mesos import TaskState
from mesoslite.scheduler import task_info

pytestmark = pytest.mark.asyncio


async def test_an_unhonoured_field_is_refused_naming_it_and_nothing_launches(
        cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    offer = await fw.offer()
    task = task_info("t1", "t1", offer.agent_id, cmd="sleep 30")
    raw = msgspec.to_builtins(task)
    raw["container"] = {"type": "MESOS", "rlimit_info": {"rlimits": [{"type": "RLMT_NOFILE"}]}}
    accept = {"type": "ACCEPT", "framework_id": {"value": fw.id},
              "accept": {"offer_ids": [{"value": offer.id.value}],
                         "operations": [{"type": "LAUNCH", "launch": {"task_infos": [raw]}}]}}
    async with aiohttp.ClientSession() as http, \
            http.post(f"{cluster.master_url}/api/v1/scheduler", json=accept,
                      headers={"Mesos-Stream-Id": fw.driver.stream_id}) as response:
        assert response.status == 400
        body = await response.json()
    where = "accept.operations[0].launch.task_infos[0].container.rlimit_info"
    assert where in body["message"] and "rlimits" in body["message"]
    assert body["details"][0]["path"] == f"$.{where}"
    async with aiohttp.ClientSession() as http, \
            http.get(f"{cluster.master_url}/master/state") as response:
        state = await response.json()
    assert [t for f in state["frameworks"] for t in f["tasks"]] == []
    # the offer is still the framework's to use: the same task without the field runs
    await fw.launch(offer, [task])
    await fw.wait_state("t1", TaskState.TASK_RUNNING)


async def test_subscribe_with_an_unhonoured_field_is_refused(cluster_factory):
    cluster = await cluster_factory(agents=1)
    call = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {
        "user": "root", "name": "f", "offer_filters": {"*": {}}}}}
    async with aiohttp.ClientSession() as http, \
            http.post(f"{cluster.master_url}/api/v1/scheduler", json=call) as response:
        assert response.status == 400
        body = await response.json()
    assert body["details"][0]["path"] == "$.subscribe.framework_info.offer_filters"
    assert "min_allocatable_resources" in body["message"]
