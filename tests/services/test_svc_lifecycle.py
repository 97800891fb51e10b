"""Apps on a real in-process cluster with process tasks: deploy, scale, self-heal,
delete."""

from __future__ import annotations

import pytest

from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio


async def test_deploy_scale_and_delete(api) -> None:
    status, body, _headers = await api.call("POST", "/v2/apps", {
        "id": "/sleepy", "cmd": "sleep 1000", "instances": 3, "cpus": 0.1, "mem": 16})
    assert status == 201, body
    assert body["id"] == "/sleepy" and body["deployments"]
    tasks = await api.running("/sleepy", 3)
    assert all(t["ports"] and t["host"].startswith("agent") for t in tasks)
    await api.no_deployments()

    result = await api.ok("PUT", "/v2/apps/sleepy", {"instances": 1})
    assert result["deploymentId"]
    await api.running("/sleepy", 1)
    await api.no_deployments()

    await api.ok("DELETE", "/v2/apps/sleepy")
    status, _, _ = await api.call("GET", "/v2/apps/sleepy")
    assert status == 404
    await wait_for(lambda: api.ok("GET", "/v2/tasks"), 1)
    async def no_tasks() -> bool:
        return (await api.ok("GET", "/v2/tasks"))["tasks"] == []
    await wait_for(no_tasks, 20, message="tasks of the deleted app to go")


async def test_a_task_killed_by_hand_is_replaced(api) -> None:
    from tests.services.helpers import kill_task_processes

    await api.ok("POST", "/v2/apps", {"id": "/heal", "cmd": "sleep 1000", "instances": 2,
                                      "cpus": 0.1, "mem": 16})
    tasks = await api.running("/heal", 2)
    victim = tasks[0]["id"]
    assert kill_task_processes(victim) >= 1

    async def replaced() -> bool:
        ids = [t["id"] for t in await api.tasks("/heal")
               if t["state"] == "TASK_RUNNING"]
        return len(ids) == 2 and victim not in ids

    await wait_for(replaced, 30, interval=0.1, message="a replacement task")
    app = await api.app("/heal")
    assert app["lastTaskFailure"]["taskId"] == victim
    assert app["lastTaskFailure"]["state"] == "TASK_FAILED"


async def test_instances_of_a_stopped_agent_are_replaced_elsewhere(cluster, api) -> None:
    await api.ok("POST", "/v2/apps", {"id": "/spread", "cmd": "sleep 1000", "instances": 2,
                                      "cpus": 0.1, "mem": 16,
                                      "constraints": [["hostname", "UNIQUE"]]})
    tasks = await api.running("/spread", 2)
    lost_host = tasks[0]["host"]
    index = int(lost_host.removeprefix("agent")) - 1
    await cluster.stop_agent(index)  # its tasks keep running, unreachable

    async def moved() -> bool:
        running = [t for t in await api.tasks("/spread") if t["state"] == "TASK_RUNNING"]
        hosts = {t["host"] for t in running}
        return len(running) == 2 and lost_host not in hosts and len(hosts) == 2

    await wait_for(moved, 30, interval=0.1, message="the lost instance replaced elsewhere")
    agent = await cluster.start_agent(index)
    # The master tells the returning agent to kill what it had (it was reported lost).
    await wait_for(lambda: not agent.tasks.tasks, 20, message="the returning agent to kill it")
    await api.running("/spread", 2)


async def test_offers_are_suppressed_when_nothing_waits_and_revived_for_work(cluster, api):
    from mesoslite.testing.http import get_json

    async def suppressed() -> bool:
        state = await get_json(cluster.master_url + "/master/state")
        [fw] = [f for f in state["frameworks"] if f["name"] == "mesoslite-services"]
        return fw["suppressed_roles"] == ["*"] and not fw["offers"]

    await wait_for(suppressed, 10, interval=0.1, message="suppressed while idle")
    await api.ok("POST", "/v2/apps", {"id": "/later", "cmd": "sleep 1000", "instances": 2,
                                      "cpus": 0.1, "mem": 16})
    await api.running("/later", 2)  # revived: offers came and were used
    await api.no_deployments()
    await wait_for(suppressed, 10, interval=0.1, message="suppressed again")


async def test_launch_backoff_grows_by_the_factor(cluster, services_factory) -> None:
    from mesoslite.clock import ManualClock
    from tests.services.conftest import Api

    clock = ManualClock(start=2_000_000_000.0)
    server = await services_factory(cluster.master_url, clock=clock)
    await wait_for(lambda: server.reconciled, 10)
    api = Api(server.url)
    await api.ok("POST", "/v2/apps", {"id": "/crash", "cmd": "exit 3", "instances": 1,
                                      "cpus": 0.1, "mem": 16, "backoffSeconds": 4,
                                      "backoffFactor": 2, "maxLaunchDelaySeconds": 10})

    async def delayed(seconds: float) -> bool:
        queue = (await api.ok("GET", "/v2/queue"))["queue"]
        return bool(queue) and queue[0]["delay"]["timeLeftSeconds"] == seconds

    async def failure_id() -> str | None:
        failure = (await api.app("/crash")).get("lastTaskFailure")
        return failure["taskId"] if failure else None

    for expected in (4.0, 8.0, 10.0, 10.0):  # 4 x 2^n, capped at 10
        await wait_for(lambda e=expected: delayed(e), 20, interval=0.05,
                       message=f"a launch delay of {expected}s")
        assert await api.tasks("/crash") == [], "nothing launches while the delay runs"
        before = await failure_id()
        clock.advance(expected)

        async def failed_again(before: str | None = before) -> bool:
            return await failure_id() != before

        await wait_for(failed_again, 20, interval=0.05, message="the next launch failing")
    last = await failure_id()
    await wait_for(lambda: delayed(10.0), 20, interval=0.05, message="capped at 10s")
    await api.ok("DELETE", "/v2/queue/crash/delay")  # no clock advance: launches at once

    async def relaunched() -> bool:
        return await failure_id() != last

    await wait_for(relaunched, 20, interval=0.05, message="a launch after the reset")
