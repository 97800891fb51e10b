"""Several masters on one PostgreSQL store: one leads, the others redirect to it, and
when the leader goes a follower takes over with nothing lost."""

from __future__ import annotations

import pytest

from mesoslite.agent.containerizers import make_containerizers
from mesoslite.agent.server import Agent, AgentConfig
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import Reason, TaskState
from mesoslite.store.master_store import Deposed, MasterStore, Writes
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import AGENT_RESOURCES, fast_config


@pytest.fixture
async def masters(pg_url):
    started: list[MasterServer] = []

    async def make() -> MasterServer:
        server = MasterServer(fast_config(port=0), pg_url)
        await server.start("127.0.0.1", wait_elected=False)
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


def url(server: MasterServer) -> str:
    return f"http://127.0.0.1:{server.port}"


async def test_followers_redirect_and_a_follower_takes_over(masters, tmp_path):
    first = await masters()
    await first.wait_elected()
    second = await masters()
    # the follower sends scheduler calls, state reads and agents to the leader
    status, headers, _ = await request("POST", url(second) + "/api/v1/scheduler",
                                       data=b"{}", headers={"Content-Type": "application/json"},
                                       allow_redirects=False)
    assert status == 307 and headers["Location"] == url(first) + "/api/v1/scheduler"
    status, headers, _ = await request("GET", url(second) + "/master/redirect",
                                       allow_redirects=False)
    assert status == 307 and headers["Location"] == url(first)

    agent = Agent(AgentConfig(masters=[url(second), url(first)], work_dir=tmp_path / "agent",
                              resources=AGENT_RESOURCES, port=0, hostname="agent1",
                              status_update_retry=0.2),
                  make_containerizers(["process"], tmp_path / "agent"))
    await agent.start()
    fw = RecordingFramework(f"{url(second)},{url(first)}", failover_timeout=60)
    try:
        await wait_for(agent.registered.is_set, message="agent registered via the follower")
        await fw.start()
        await fw.run_task("ha", "sleep 60")
        await fw.wait_state("ha", TaskState.TASK_RUNNING)
        old_epoch = first.state.epoch

        await first.stop()  # the leader dies; its lock goes with its session
        await second.wait_elected()
        assert second.state.epoch == old_epoch + 1
        await wait_for(lambda: len(fw.sched.framework_ids) >= 2, timeout=20,
                       message="the framework to re-subscribe to the new leader")
        await wait_for(lambda: second.state.agents[agent.agent_id].state.value == "active",
                       timeout=20, message="the agent to re-register with the new leader")
        before = len(fw.sched.updates)
        await fw.driver.reconcile()
        answer = await wait_for(lambda: next(
            (u for u in fw.sched.updates[before:] if u.task_id.value == "ha"
             and u.reason == Reason.REASON_RECONCILIATION), None))
        assert answer.state == TaskState.TASK_RUNNING
        state = await get_json(url(second) + "/master/state")
        assert state["epoch"] == old_epoch + 1
    finally:
        await fw.stop()
        await agent.stop(kill_tasks=True)


def test_a_deposed_leader_cannot_write(pg_url):
    store = MasterStore(pg_url)
    mine = store.next_epoch()
    store.apply(Writes(agents={"a": {"id": "a"}}), epoch=mine)
    store.next_epoch()  # another master was elected meanwhile
    with pytest.raises(Deposed):
        store.apply(Writes(agents={"b": {"id": "b"}}), epoch=mine)
    assert [a["id"] for a in store.load()["agents"]] == ["a"]
    store.close()
