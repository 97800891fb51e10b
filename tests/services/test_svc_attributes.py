"""Constraints compare agent attributes as the agent was started with them: real
master and agent processes (``--attributes 'rack:01'``), the services framework's
Marathon API, and apps constrained by ``rack:IS:01`` and ``rack:LIKE:0.*`` that must
land on that agent and never on its ``rack:1`` neighbour (a value read as a number
would come back as ``1`` and match neither)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for, within
from mesoslite.testing.processes import Process, agent_process, master_process
from tests.services.conftest import Api

pytestmark = [pytest.mark.e2e]

AGENTS = {"rack-01": ("rack:01;zone:a", "ports:[31900-31949]"),
          "rack-1": ("rack:1;zone:b", "ports:[31950-31999]")}


@pytest.fixture
async def master(tmp_path) -> AsyncIterator[Process]:
    """A master process and two agent processes, one on rack "01", one on rack "1"."""
    started: list[Process] = []
    try:
        master = master_process(tmp_path / "master")
        started.append(master)
        await within(60, "the master process to answer", master.start())
        for name, (attributes, ports) in AGENTS.items():
            agent = agent_process(master.url, tmp_path / name, f"cpus:2;mem:512;disk:512;{ports}",
                                  None, "--attributes", attributes, "--hostname", name)
            started.append(agent)
            await within(60, f"agent {name} to answer", agent.start())
        yield master
    finally:
        for process in reversed(started):
            await within(30, f"{process.args[0]} on port {process.port} to stop", process.stop())


async def test_constraints_match_the_attribute_text_the_agent_was_started_with(
        master, services_factory) -> None:
    async def registered() -> list[dict] | None:
        slaves = (await get_json(master.url + "/master/state"))["slaves"]
        return slaves if len(slaves) == 2 else None

    slaves = await wait_for(registered, 30, message="both agents registered")
    assert {s["hostname"]: s["attributes"] for s in slaves} == {
        "rack-01": {"rack": "01", "zone": "a"}, "rack-1": {"rack": "1", "zone": "b"}}

    server = await services_factory(master.url)
    await wait_for(lambda: server.reconciled, 30, message="subscribed, reconciled")
    api = Api(server.url)
    for app_id, constraint in (("/rack-is", ["rack", "IS", "01"]),
                               ("/rack-like", ["rack", "LIKE", "0.*"])):
        await api.ok("POST", "/v2/apps", {"id": app_id, "cmd": "sleep 600", "instances": 2,
                                          "cpus": 0.1, "mem": 16, "constraints": [constraint]})
    try:
        for app_id in ("/rack-is", "/rack-like"):
            tasks = await api.running(app_id, 2, timeout=60)
            assert {t["host"] for t in tasks} == {"rack-01"}, (app_id, tasks)
    finally:
        for app_id in ("/rack-is", "/rack-like"):
            await api.call("DELETE", f"/v2/apps{app_id}", force=True)
        await wait_for(lambda: not server.state.tasks, 30, message="the apps' tasks to end")
