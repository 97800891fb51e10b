"""Fair sharing between users on a real cluster: a big job cannot starve a small one."""

from __future__ import annotations

from mesoslite.resources import Resources
from mesoslite.testing.poll import wait_for
from tests.batch.conftest import api, get_run, step_of, submit, wait_run

ONE_AGENT = Resources.parse("cpus:2;mem:1024;disk:1024;ports:[27000-27099]")  # 4 x 0.5 cpu


async def test_small_job_of_another_user_is_not_starved(batch_env):
    server = await batch_env.server(await batch_env.cluster(agents=1, resources=ONE_AGENT))
    big = await submit(server, {"id": "big", "user": "alice", "completions": 30, "cpus": 0.5,
                                "command": "sleep 0.3"})

    async def saturated() -> bool:
        counts = step_of(await get_run(server, big["id"]), "main")["counts"]
        return counts["running"] == 4

    await wait_for(saturated, 20)
    small = await submit(server, {"id": "small", "user": "bob", "completions": 3, "cpus": 0.5,
                                  "command": "true"})
    done = await wait_run(server, small["id"], 60)
    assert done["state"] == "SUCCEEDED"
    counts = step_of(await get_run(server, big["id"]), "main")["counts"]
    # First come, first served would have run all 30 of alice's tasks first.
    assert counts["pending"] >= 10, counts
    _, queue = await api(server, "GET", "/mesoslite/v1/queue")
    assert queue["shares"].get("alice", 0) > 0
    assert (await wait_run(server, big["id"], 60))["state"] == "SUCCEEDED"


async def test_higher_priority_goes_first(batch_env):
    server = await batch_env.server(await batch_env.cluster(agents=1, resources=ONE_AGENT))
    low = await submit(server, {"id": "low", "user": "alice", "completions": 20, "cpus": 0.5,
                                "command": "sleep 0.2"})

    async def saturated() -> bool:
        return step_of(await get_run(server, low["id"]), "main")["counts"]["running"] == 4

    await wait_for(saturated, 20)
    # Same user, so share does not help it: only its priority can.
    urgent = await submit(server, {"id": "urgent", "user": "alice", "priority": 10,
                                   "completions": 4, "cpus": 0.5, "command": "true"})
    assert (await wait_run(server, urgent["id"], 60))["state"] == "SUCCEEDED"
    counts = step_of(await get_run(server, low["id"]), "main")["counts"]
    assert counts["pending"] >= 8, counts
