"""unreachableStrategy on a real in-process cluster: an agent stops (its process
tasks keep running, out of the master's sight: TASK_UNREACHABLE) and comes back.
The framework's clock is a ``ManualClock``, so the strategy's deadlines pass when the
test says; the master and agents keep real time."""

from __future__ import annotations

from typing import Any

from frameworks.services.server import ServicesServer
from mesoslite.clock import ManualClock
from mesoslite.testing.poll import wait_for
from tests.services.conftest import Api


async def started(cluster_factory, services_factory) -> tuple[Any, ServicesServer, Api,
                                                              ManualClock]:
    cluster = await cluster_factory(agents=2)
    clock = ManualClock(start=2_000_000_000.0)
    server = await services_factory(cluster.master_url, clock=clock)
    await wait_for(lambda: server.reconciled, 10, message="subscribed, reconciled")
    return cluster, server, Api(server.url), clock


async def new_plans(server: ServicesServer, count: int = 2) -> None:
    """Wait until the framework planned ``count`` times more (so with the clock as it
    is now: a plan under way may have read it before)."""
    for _ in range(count):
        old = server.workload.last_plan
        await wait_for(lambda old=old: server.workload.last_plan is not old, 10,
                       interval=0.02, message="the framework's next plan")


async def states(api: Api, app_id: str) -> dict[str, str]:
    return {t["id"]: t["state"] for t in await api.tasks(app_id)}


async def cut_off(cluster: Any, server: ServicesServer, api: Api, app_id: str
                  ) -> tuple[str, int]:
    """Stop the agent of ``app_id``'s one task; returns the task id and agent index,
    once the framework planned with the task unreachable and decided no launch."""
    [task] = await api.running(app_id, 1)
    await api.no_deployments()
    index = int(task["host"].removeprefix("agent")) - 1
    await cluster.stop_agent(index)  # the task keeps running, out of sight
    await wait_for(lambda: _states_are(api, app_id, {task["id"]: "TASK_UNREACHABLE"}), 20,
                   interval=0.05, message="the task reported unreachable and kept")

    def planned_without_it() -> Any:
        step = server.workload.last_plan.steps.get(app_id)
        return step if step is not None and step.healthy == 0 else None

    step = await wait_for(planned_without_it, 10, interval=0.02,
                          message="a plan that saw the task unreachable")
    assert step.launch == 0, "kept as the instance: no replacement yet"
    return task["id"], index


def on_agent(agent: Any, task_id: str) -> bool:
    return any(key[1] == task_id for key in agent.tasks.tasks)


async def _states_are(api: Api, app_id: str, want: dict[str, str]) -> bool:
    return await states(api, app_id) == want


async def test_replaced_after_inactive_then_killed_after_expunge(cluster_factory,
                                                                 services_factory) -> None:
    cluster, server, api, clock = await started(cluster_factory, services_factory)
    await api.ok("POST", "/v2/apps", {
        "id": "/patient", "cmd": "sleep 1000", "instances": 1, "cpus": 0.1, "mem": 16,
        "unreachableStrategy": {"inactiveAfterSeconds": 60, "expungeAfterSeconds": 300}})
    old, index = await cut_off(cluster, server, api, "/patient")

    clock.advance(59)
    await new_plans(server)
    assert await states(api, "/patient") == {old: "TASK_UNREACHABLE"}
    assert "/patient" not in server.workload.last_plan.launches
    clock.advance(1)  # inactiveAfterSeconds: replaced on the other agent

    async def replacement() -> str | None:
        now = await states(api, "/patient")
        new = [t for t, s in now.items() if t != old and s == "TASK_RUNNING"]
        return new[0] if len(new) == 1 and now.get(old) == "TASK_UNREACHABLE" else None

    new = await wait_for(replacement, 30, interval=0.05, message="the replacement running")
    # The agent comes back with the old task: two run for one instance until expunge.
    agent = await cluster.start_agent(index)
    await wait_for(lambda: _states_are(api, "/patient", {old: "TASK_RUNNING",
                                                         new: "TASK_RUNNING"}), 30,
                   interval=0.05, message="the old task back and running")
    app = (await api.ok("GET", "/v2/apps/patient"))["app"]
    assert app["instances"] == 1 and app["tasksRunning"] == 2
    await new_plans(server)
    assert on_agent(agent, old) and (await states(api, "/patient"))[old] == "TASK_RUNNING"

    clock.advance(240)  # expungeAfterSeconds after it was reported: the old one killed
    await wait_for(lambda: _states_are(api, "/patient", {new: "TASK_RUNNING"}), 30,
                   interval=0.05, message="only the replacement left")
    await wait_for(lambda: not on_agent(agent, old), 20,
                   message="the old task gone from its agent")


async def test_disabled_keeps_the_instance_until_its_agent_returns(cluster_factory,
                                                                   services_factory) -> None:
    cluster, server, api, clock = await started(cluster_factory, services_factory)
    await api.ok("POST", "/v2/apps", {"id": "/stay", "cmd": "sleep 1000", "instances": 1,
                                      "cpus": 0.1, "mem": 16,
                                      "unreachableStrategy": "disabled"})
    assert (await api.app("/stay"))["unreachableStrategy"] == "disabled"
    task, index = await cut_off(cluster, server, api, "/stay")
    clock.advance(30 * 86400)
    await new_plans(server)
    assert await states(api, "/stay") == {task: "TASK_UNREACHABLE"}
    assert "/stay" not in server.workload.last_plan.launches
    agent = await cluster.start_agent(index)
    await wait_for(lambda: _states_are(api, "/stay", {task: "TASK_RUNNING"}), 30,
                   interval=0.05, message="the same task back and running")
    await new_plans(server)
    assert on_agent(agent, task) and await states(api, "/stay") == {task: "TASK_RUNNING"}
