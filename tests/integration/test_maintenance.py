"""Maintenance on a real cluster over loopback HTTP: the schedule, inverse offers
and their answers, machines going DOWN and coming back UP, bad input, ACLs, and a
master restart in between."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from mesoslite.auth import basic_header, load_auth
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import Reason, TaskState
from mesoslite.store.db import sqlite_url
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import fast_config

HOUR_NS = 3600 * 10**9


def window(*hosts: str, in_hours: float = 1.0, hours: float = 1.0) -> dict:
    start = int(time.time() * 1e9 + in_hours * HOUR_NS)
    return {"machine_ids": [{"hostname": h} for h in hosts],
            "unavailability": {"start": {"nanoseconds": start},
                               "duration": {"nanoseconds": int(hours * HOUR_NS)}}}


async def call(url: str, body: dict, headers: dict[str, str] | None = None
               ) -> tuple[int, dict]:
    status, _, raw = await request("POST", url + "/api/v1", json=body, headers=headers or {})
    return status, (json.loads(raw) if raw else {})


async def schedule_of(url: str) -> dict:
    status, answer = await call(url, {"type": "GET_MAINTENANCE_SCHEDULE"})
    assert status == 200, answer
    return answer["get_maintenance_schedule"]["schedule"]


async def status_of(url: str) -> dict:
    status, answer = await call(url, {"type": "GET_MAINTENANCE_STATUS"})
    assert status == 200, answer
    return answer["get_maintenance_status"]["status"]


async def agent_ids(url: str) -> set[str]:
    _, answer = await call(url, {"type": "GET_AGENTS"})
    return {a["agent_info"]["id"]["value"] for a in answer["get_agents"]["agents"]}


async def test_schedule_inverse_offers_down_and_up(cluster, framework):
    url = cluster.master_url
    first = cluster.agents[0]
    await framework.run_task("t1", "sleep 60", agent_id=first.agent_id)
    await framework.wait_state("t1", TaskState.TASK_RUNNING)
    schedule = {"windows": [window("agent1")]}
    status, _ = await call(url, {"type": "UPDATE_MAINTENANCE_SCHEDULE",
                                 "update_maintenance_schedule": {"schedule": schedule}})
    assert status == 200
    assert await schedule_of(url) == schedule
    assert await get_json(url + "/master/maintenance/schedule") == schedule

    inverse = await wait_for(lambda: next(iter(framework.sched.inverse_offers_got), None),
                             message="an inverse offer for agent1")
    assert inverse.agent_id.value == first.agent_id
    assert inverse.unavailability.start.nanoseconds == (
        schedule["windows"][0]["unavailability"]["start"]["nanoseconds"])
    assert inverse.url.address["hostname"] == "agent1"
    offer = await wait_for(lambda: next((o for o in framework.sched.all_offers
                                         if o.unavailability is not None), None),
                           message="an offer carrying the unavailability")
    assert offer.agent_id.value == first.agent_id
    [draining] = (await status_of(url))["draining_machines"]
    assert draining["id"] == {"hostname": "agent1"}
    assert [(s["framework_id"]["value"], s["status"]) for s in draining["statuses"]] == [
        (framework.id, "UNKNOWN")]

    await framework.driver.accept_inverse_offers([inverse.id.value])
    status = await wait_for_status(url, "ACCEPT")
    assert status == await get_json(url + "/master/maintenance/status")

    status, _, _ = await request("POST", url + "/master/machine/down",
                                 json=[{"hostname": "agent1"}])
    assert status == 200
    lost = await framework.wait_state("t1", TaskState.TASK_LOST)
    assert lost.reason == Reason.REASON_AGENT_REMOVED
    assert first.agent_id not in await agent_ids(url)
    assert (first.agent_id, None, None) in framework.sched.failures
    assert (await status_of(url)) == {"down_machines": [{"hostname": "agent1"}]}
    # Its agent is refused while the machine is DOWN, and its task was stopped.
    await wait_for(lambda: "DOWN" in (first.last_refusal or ""),
                   message="agent1 refused while its machine is DOWN")
    await wait_for(lambda: all(t.state.terminal for t in first.tasks.tasks.values()),
                   message="t1 stopped on agent1")
    status, answer = await call(url, {"type": "START_MAINTENANCE", "start_maintenance": {
        "machines": [{"hostname": "agent1"}]}})
    assert status == 400 and answer["details"][0]["path"] == "start_maintenance.machines[0]"

    status, _ = await call(url, {"type": "STOP_MAINTENANCE", "stop_maintenance": {
        "machines": [{"hostname": "agent1"}]}})
    assert status == 200
    assert await schedule_of(url) == {}
    await wait_for(lambda: first.registered.is_set(), 30,
                   message="agent1 back after STOP_MAINTENANCE")
    assert first.agent_id in await agent_ids(url)


async def wait_for_status(url: str, answer: str) -> dict:
    async def seen() -> dict | None:
        status = await get_json(url + "/master/maintenance/status")
        draining = status.get("draining_machines", [])
        if draining and [s["status"] for s in draining[0].get("statuses", [])] == [answer]:
            return status
        return None
    return await wait_for(seen, message=f"the framework's {answer} in the status")


async def test_bad_input_is_refused_naming_the_field_and_changes_nothing(cluster):
    url = cluster.master_url
    good = {"windows": [window("agent2")]}
    status, _ = await call(url, {"type": "UPDATE_MAINTENANCE_SCHEDULE",
                                 "update_maintenance_schedule": {"schedule": good}})
    assert status == 200
    field = "update_maintenance_schedule.schedule"
    cases = [
        ({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {
            "schedule": {"windows": [window("a"), window("a")]}}},
         f"{field}.windows[1].machine_ids[0]"),
        ({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {
            "schedule": {"windows": [window("a", in_hours=-3)]}}},
         f"{field}.windows[0].unavailability"),
        ({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {
            "schedule": {"windows": [{"machine_ids": [{"hostname": "a"}]}]}}},
         f"{field}.windows[0]"),
        ({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {}}, field),
        ({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [
            {"hostname": "not-scheduled"}]}}, "start_maintenance.machines[0]"),
        ({"type": "START_MAINTENANCE", "start_maintenance": {"machines": []}},
         "start_maintenance.machines"),
        ({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [
            {"hostname": "agent2"}]}}, "stop_maintenance.machines[0]"),  # not DOWN
        ({"type": "START_MAINTENANCE", "start_maintenance": {"machines": [
            {"ip": "not-an-ip"}]}}, "start_maintenance.machines[0].ip"),
    ]
    for body, path in cases:
        status, answer = await call(url, body)
        assert status == 400, body
        assert answer["details"][0]["path"] == path, (body, answer)
    status, _, raw = await request("POST", url + "/master/machine/down", json={"no": "list"})
    assert status == 400 and b"machines" in raw
    assert await schedule_of(url) == good
    assert (await status_of(url))["draining_machines"] == [
        {"id": {"hostname": "agent2"}}]
    assert len(await agent_ids(url)) == 3


async def test_the_schedule_and_down_machines_survive_a_master_restart(cluster):
    url = cluster.master_url
    schedule = {"windows": [window("agent1"), window("agent2", in_hours=2)]}
    status, _, _ = await request("POST", url + "/master/maintenance/schedule", json=schedule)
    assert status == 200
    status, _, _ = await request("POST", url + "/master/machine/down",
                                 json=[{"hostname": "agent1"}])
    assert status == 200
    await cluster.stop_master()
    await cluster.start_master()
    url = cluster.master_url
    assert await schedule_of(url) == schedule
    assert (await status_of(url)) == {"draining_machines": [{"id": {"hostname": "agent2"}}],
                                      "down_machines": [{"hostname": "agent1"}]}
    await wait_for(lambda: cluster.agents[1].registered.is_set()
                   and cluster.agents[2].registered.is_set(), 30,
                   message="the other agents back with the new master")
    await wait_for(lambda: "DOWN" in (cluster.agents[0].last_refusal or ""), 30,
                   message="agent1 refused by the new master")
    assert cluster.agents[0].agent_id not in await agent_ids(url)


async def test_maintenance_actions_are_authorized_per_machine(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"credentials": [
        {"principal": "ops", "secret": "ops-pw"}, {"principal": "web", "secret": "web-pw"}]}))
    (tmp_path / "a.json").write_text(json.dumps({"rules": [
        {"principals": ["ops"], "actions": ["*"], "objects": ["*"]},
        {"principals": ["web"], "actions": ["*_maintenance*"], "objects": ["web-*"]}]}))
    master = MasterServer(fast_config(port=0), sqlite_url(tmp_path / "m.db"),
                          auth=load_auth(tmp_path / "c.json", tmp_path / "a.json"))
    await master.start()
    url = f"http://127.0.0.1:{master.port}"
    ops = {"Authorization": basic_header("ops", "ops-pw")}
    web = {"Authorization": basic_header("web", "web-pw")}
    try:
        update = {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {
            "schedule": {"windows": [window("db-1"), window("web-1")]}}}
        assert (await call(url, update, web))[0] == 403
        assert (await call(url, update, ops))[0] == 200
        _, seen = await call(url, {"type": "GET_MAINTENANCE_SCHEDULE"}, web)
        assert [w["machine_ids"] for w in seen["get_maintenance_schedule"]["schedule"][
            "windows"]] == [[{"hostname": "web-1"}]]
        down = {"type": "START_MAINTENANCE", "start_maintenance": {"machines": [
            {"hostname": "db-1"}]}}
        assert (await call(url, down, web))[0] == 403
        down["start_maintenance"]["machines"] = [{"hostname": "web-1"}]
        assert (await call(url, down, web))[0] == 200
    finally:
        await master.stop()


async def test_pymesos_schedulers_get_inverse_offers_and_answer_them(cluster):
    """pymesos (a third-party Python client, its own thread) has ``inverseOffers``
    called, and its ``acceptInverseOffers`` is honoured."""
    from pymesos import MesosSchedulerDriver, Scheduler

    url = cluster.master_url
    got: list[dict] = []
    launched = threading.Event()

    class Sched(Scheduler):
        def resourceOffers(self, driver, offers):
            for offer in offers:
                if offer["hostname"] != "agent1" or launched.is_set():
                    driver.declineOffer(offer["id"])
                    continue
                launched.set()
                driver.launchTasks(offer["id"], [{
                    "name": "py", "task_id": {"value": "py-1"}, "agent_id": offer["agent_id"],
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
                    "command": {"value": "sleep 60"}}])

        def inverseOffers(self, driver, offers):
            got.extend(offers)
            driver.acceptInverseOffers([o["id"] for o in offers])

    driver = MesosSchedulerDriver(Sched(), {"user": "", "name": "pymesos"},
                                  url.replace("http://", ""), use_addict=False)
    # Its calls are blocking HTTP on the master this event loop serves: off the loop.
    await asyncio.to_thread(driver.start)
    try:
        await wait_for(launched.is_set, 30, message="pymesos to launch a task on agent1")
        await wait_for(lambda: cluster.master.state.tasks, 30,
                       message="the pymesos task at the master")
        status, _, _ = await request("POST", url + "/master/maintenance/schedule",
                                     json={"windows": [window("agent1")]})
        assert status == 200
        await wait_for(lambda: got, 30, message="pymesos' inverseOffers callback")
        assert got[0]["agent_id"]["value"] == cluster.agents[0].agent_id
        await wait_for_status(url, "ACCEPT")
    finally:
        await asyncio.to_thread(driver.stop)
        await asyncio.to_thread(driver.join)
