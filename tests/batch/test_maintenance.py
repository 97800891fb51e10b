"""The batch framework under maintenance: inverse offers for a running step, and a
step on a machine that goes DOWN retried elsewhere without using a retry."""

from __future__ import annotations

import json
import time

from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from tests.batch.conftest import get_run, submit, wait_run


async def test_a_step_on_a_machine_going_down_runs_again_elsewhere(batch_env, tmp_path):
    cluster = await batch_env.cluster(agents=2)
    server = await batch_env.server(cluster)
    url = cluster.master_url
    go = tmp_path / "go"
    run = await submit(server, {"id": "maint", "retries": 0, "kill_grace": 0.2,
                                "command": f"while [ ! -f {go} ]; do sleep 0.05; done"})

    async def running_on() -> str | None:
        current = await get_run(server, run["id"])
        return next((a["agent_id"] for a in current["attempts"] if a["state"] == "RUNNING"),
                    None)

    agent_id = await wait_for(running_on, 20, message="the step running")
    host = next(a.hostname for a in cluster.agents if a.agent_id == agent_id)
    start = int((time.time() + 600) * 1e9)
    status, _, _ = await request("POST", url + "/master/maintenance/schedule", json={
        "windows": [{"machine_ids": [{"hostname": host}],
                     "unavailability": {"start": {"nanoseconds": start}}}]})
    assert status == 200

    async def asked() -> list | None:
        _, _, raw = await request("POST", url + "/api/v1",
                                  json={"type": "GET_MAINTENANCE_STATUS"})
        draining = json.loads(raw)["get_maintenance_status"]["status"].get(
            "draining_machines", [])
        return draining and draining[0].get("statuses")

    [answer] = await wait_for(asked, 20, message="an inverse offer to the batch framework")
    assert answer["framework_id"]["value"] == server.framework_id

    status, _, _ = await request("POST", url + "/api/v1", json={
        "type": "START_MAINTENANCE", "start_maintenance": {"machines": [{"hostname": host}]}})
    assert status == 200

    async def replaced() -> bool:
        current = await get_run(server, run["id"])
        return any(a["state"] == "RUNNING" and a["agent_id"] != agent_id
                   for a in current["attempts"])

    await wait_for(replaced, 30, message="the step running again on the other machine")
    go.touch()
    done = await wait_run(server, run["id"])
    assert done["state"] == "SUCCEEDED"
    first, second = done["attempts"]
    assert first["state"] == "LOST" and not first["counts_as_failure"]
    assert second["state"] == "FINISHED"
