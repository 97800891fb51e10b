"""The services framework under maintenance: it gets inverse offers for the
instances on a scheduled machine (left unanswered: UNKNOWN in the status), keeps
deploying, and relaunches elsewhere the instance a machine going DOWN takes."""

from __future__ import annotations

import json
import time

from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for


async def maintenance_status(url: str) -> dict:
    status, _, raw = await request("POST", url + "/api/v1",
                                   json={"type": "GET_MAINTENANCE_STATUS"})
    assert status == 200, raw
    return json.loads(raw)["get_maintenance_status"]["status"]


async def test_an_app_moves_off_a_machine_that_goes_down(cluster, services, api) -> None:
    url = cluster.master_url
    await api.ok("POST", "/v2/apps", {"id": "/spread", "cmd": "sleep 1000", "instances": 2,
                                      "cpus": 0.1, "mem": 16,
                                      "constraints": [["hostname", "UNIQUE"]]})
    tasks = await api.running("/spread", 2)
    host = tasks[0]["host"]
    start = int((time.time() + 3600) * 1e9)
    status, _, _ = await request("POST", url + "/master/maintenance/schedule", json={
        "windows": [{"machine_ids": [{"hostname": host}], "unavailability": {
            "start": {"nanoseconds": start}, "duration": {"nanoseconds": 3600 * 10**9}}}]})
    assert status == 200

    async def asked() -> list | None:
        draining = (await maintenance_status(url)).get("draining_machines", [])
        return draining and draining[0].get("statuses")

    [answer] = await wait_for(asked, 20, message="an inverse offer to the services framework")
    assert (answer["framework_id"]["value"], answer["status"]) == (
        services.framework_id, "UNKNOWN")
    # It keeps working meanwhile: a new app deploys (offers carry the unavailability).
    await api.ok("POST", "/v2/apps", {"id": "/more", "cmd": "sleep 1000", "instances": 1,
                                      "cpus": 0.1, "mem": 16})
    await api.running("/more", 1)

    status, _, _ = await request("POST", url + "/master/machine/down",
                                 json=[{"hostname": host}])
    assert status == 200

    async def moved() -> bool:
        running = [t for t in await api.tasks("/spread") if t["state"] == "TASK_RUNNING"]
        hosts = {t["host"] for t in running}
        return len(running) == 2 and host not in hosts and len(hosts) == 2

    await wait_for(moved, 30, interval=0.1, message="the instance relaunched off the DOWN host")
    index = int(host.removeprefix("agent")) - 1
    await wait_for(lambda: all(t.state.terminal
                               for t in cluster.agents[index].tasks.tasks.values()), 20,
                   message="the instance stopped on the DOWN machine")
    status, _, _ = await request("POST", url + "/master/machine/up", json=[{"hostname": host}])
    assert status == 200
    await wait_for(lambda: cluster.agents[index].registered.is_set(), 30,
                   message=f"{host} back after maintenance")
    await api.running("/spread", 2)
