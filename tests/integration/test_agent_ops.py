"""The operator's agent calls (DRAIN_AGENT, DEACTIVATE_AGENT, REACTIVATE_AGENT,
MARK_AGENT_GONE) on a real master and real agents over loopback HTTP: offers stop
and resume, tasks are killed with their grace capped, the drain state shows in
GET_AGENTS and the v0 endpoints and survives a master failover, a gone agent's tasks
are reported GONE_BY_OPERATOR and the agent may not come back, bad calls change
nothing."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from mesoslite.auth import basic_header, load_auth
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import DurationInfo, KillPolicy, Reason, TaskState
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.store.db import sqlite_url
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import fast_config

# A task that ignores SIGTERM and asks for an hour's grace: only a capped grace (or
# SIGKILL at the end of its own) stops it.
STUBBORN = "trap '' TERM; while true; do sleep 0.1; done"
HOUR = DurationInfo(nanoseconds=3600 * 10**9)


async def operator(master: str, kind: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST one operator call; (status, decoded body or None)."""
    call: dict[str, Any] = {"type": kind}
    if body is not None:
        call[kind.lower()] = body
    status, _, data = await request("POST", master + "/api/v1", json=call,
                                    headers=headers or {})
    return status, json.loads(data) if data else None


def on(agent_id: str, **extra: Any) -> dict[str, Any]:
    return {"agent_id": {"value": agent_id}, **extra}


async def agents(master: str) -> dict[str, dict[str, Any]]:
    """GET_AGENTS' agents by id."""
    status, body = await operator(master, "GET_AGENTS")
    assert status == 200, body
    return {a["agent_info"]["id"]["value"]: a for a in body["get_agents"]["agents"]}


async def agent_ids(master: str) -> list[str]:
    return sorted(await agents(master))


async def launch(fw: RecordingFramework, agent_id: str, task_id: str, cmd: str,
                 grace: DurationInfo | None = None) -> None:
    """One task on ``agent_id`` (out of its next offer), with a kill policy's grace."""
    offer = await fw.offer(agent_id)
    assert offer_resources(offer).scalar("cpus") >= 0.1
    task = task_info(task_id, task_id, agent_id, cmd=cmd, cpus=0.1, mem=16)
    if grace is not None:
        task = msgspec.structs.replace(task, kill_policy=KillPolicy(grace_period=grace))
    await fw.launch(offer, [task])
    await fw.wait_state(task_id, TaskState.TASK_RUNNING)


async def drain_state(master: str, agent_id: str, state: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        agent = (await agents(master)).get(agent_id)
        info = (agent or {}).get("drain_info", {})
        return agent if info.get("state") == state else None

    return await wait_for(reached, 20, message=f"agent {agent_id} to be {state}")


async def offered_after_rounds(master: MasterServer, fw: RecordingFramework, agent_id: str,
                               rounds: int = 10) -> bool:
    """Whether ``fw`` holds an offer for the agent once ``rounds`` more allocation
    rounds have run (the allocation interval is 50 ms)."""
    target = master.state.counters["allocation_rounds"] + rounds
    await wait_for(lambda: master.state.counters["allocation_rounds"] >= target, 10,
                   message=f"{rounds} allocation rounds")
    return any(o.agent_id.value == agent_id for o in fw.sched.open_offers.values())


async def test_deactivate_stops_offers_keeps_tasks_and_reactivate_resumes(
        cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    url = cluster.master_url
    (agent_id,) = await agent_ids(url)
    fw = await framework_factory(url)
    await launch(fw, agent_id, "keeps-running", "sleep 1000")
    offer = await fw.offer(agent_id)

    assert await operator(url, "DEACTIVATE_AGENT", on(agent_id)) == (200, None)
    await wait_for(lambda: offer.id.value in fw.sched.rescinds, 10,
                   message="the outstanding offer to be rescinded")
    agent = (await agents(url))[agent_id]
    assert agent["deactivated"] is True and agent["active"] is False
    assert "drain_info" not in agent and agent.get("offered_resources", []) == []
    assert not await offered_after_rounds(cluster.master, fw, agent_id)
    assert fw.sched.states("keeps-running")[-1] == TaskState.TASK_RUNNING
    slave = (await get_json(url + "/master/slaves"))["slaves"][0]
    assert (slave["active"], slave["deactivated"]) == (False, True)
    state = await get_json(url + "/master/state")
    assert (state["activated_slaves"], state["deactivated_slaves"]) == (0, 1)
    # Deactivating again changes nothing and is fine.
    assert await operator(url, "DEACTIVATE_AGENT", on(agent_id)) == (200, None)

    assert await operator(url, "REACTIVATE_AGENT", on(agent_id)) == (200, None)
    await fw.offer(agent_id)
    agent = (await agents(url))[agent_id]
    assert agent["deactivated"] is False and agent["active"] is True
    # An agent that is not deactivated cannot be reactivated.
    status, body = await operator(url, "REACTIVATE_AGENT", on(agent_id))
    assert status == 409 and "not deactivated" in body["message"], body


async def test_drain_caps_grace_reports_draining_and_ends_drained(
        cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=2)
    url = cluster.master_url
    target, other = await agent_ids(url)
    fw = await framework_factory(url)
    await launch(fw, target, "stubborn", STUBBORN, grace=HOUR)
    await launch(fw, other, "elsewhere", "sleep 1000")

    drain = on(target, max_grace_period={"seconds": 1}, mark_gone=False)
    assert await operator(url, "DRAIN_AGENT", drain) == (200, None)
    killed = await fw.wait_state("stubborn", TaskState.TASK_KILLED, timeout=20)
    assert killed.reason == Reason.REASON_AGENT_DRAINING, killed
    agent = await drain_state(url, target, "DRAINED")
    assert agent["deactivated"] is True and agent["active"] is False
    assert agent["drain_info"]["config"] == {"max_grace_period": {"nanoseconds": 10**9},
                                             "mark_gone": False}
    # The other agent's task runs on, and only that agent is offered.
    assert fw.sched.states("elsewhere")[-1] == TaskState.TASK_RUNNING
    assert not await offered_after_rounds(cluster.master, fw, target)
    for path, key in (("/master/slaves", "slaves"), ("/master/state", "slaves")):
        (slave,) = [s for s in (await get_json(url + path))[key] if s["id"] == target]
        assert slave["drain_info"]["state"] == "DRAINED" and slave["deactivated"], path

    # A drained agent is reactivated: offers again, the drain forgotten.
    assert await operator(url, "REACTIVATE_AGENT", on(target)) == (200, None)
    await fw.offer(target)
    assert "drain_info" not in (await agents(url))[target]


async def test_drain_state_survives_master_failover(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=2)
    url = cluster.master_url
    draining, drained = await agent_ids(url)
    fw = await framework_factory(url)
    # No cap: the task keeps its hour of grace, so its agent stays DRAINING.
    await launch(fw, draining, "stubborn", STUBBORN, grace=HOUR)
    assert await operator(url, "DRAIN_AGENT", on(draining)) == (200, None)
    assert await operator(url, "DRAIN_AGENT", on(drained, max_grace_period="2.5s")) == (
        200, None)
    await drain_state(url, drained, "DRAINED")
    assert (await agents(url))[draining]["drain_info"]["state"] == "DRAINING"

    await cluster.stop_master()
    await cluster.start_master()
    url = cluster.master_url
    await wait_for(lambda: _both_back(url), 20, message="both agents re-registered")
    after = await agents(url)
    assert after[draining]["drain_info"] == {"state": "DRAINING",
                                             "config": {"mark_gone": False}}
    assert after[drained]["drain_info"] == {
        "state": "DRAINED", "config": {"max_grace_period": {"nanoseconds": 2_500_000_000},
                                       "mark_gone": False}}
    assert all(a["deactivated"] and not a["active"] for a in after.values())
    status, body = await operator(url, "REACTIVATE_AGENT", on(draining))
    assert status == 409 and "DRAINING" in body["message"], body
    assert fw.sched.states("stubborn")[-1] == TaskState.TASK_RUNNING


async def _both_back(url: str) -> bool:
    found = await agents(url)
    return len(found) == 2 and all(a["version"] for a in found.values())


async def test_mark_agent_gone_reports_tasks_and_refuses_the_agent(
        cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=2)
    url = cluster.master_url
    gone, kept = await agent_ids(url)
    aware = await framework_factory(url, name="aware")
    legacy = await framework_factory(url, name="legacy", partition_aware=False)
    await launch(aware, gone, "aware-task", "sleep 1000")
    await launch(legacy, gone, "legacy-task", "sleep 1000")

    assert await operator(url, "MARK_AGENT_GONE", on(gone)) == (200, None)
    status = await aware.wait_state("aware-task", TaskState.TASK_GONE_BY_OPERATOR)
    assert status.reason == Reason.REASON_AGENT_REMOVED_BY_OPERATOR
    await legacy.wait_state("legacy-task", TaskState.TASK_LOST)
    assert sorted(await agents(url)) == [kept]
    agent = next(a for a in cluster.agents if a.agent_id == gone)
    await wait_for(lambda: "marked gone" in (agent.last_refusal or ""), 10,
                   message="the gone agent to be refused")
    # Idempotent; the other calls no longer know it.
    assert await operator(url, "MARK_AGENT_GONE", on(gone)) == (200, None)
    status_code, body = await operator(url, "DRAIN_AGENT", on(gone))
    assert status_code == 404 and "gone" in body["message"], body

    # Still gone for the next master: the agent is refused again.
    await cluster.stop_master()
    agent.last_refusal = None
    await cluster.start_master()
    await wait_for(lambda: "marked gone" in (agent.last_refusal or ""), 20,
                   message="the gone agent refused by the new master")

    async def only_kept_back() -> bool:
        return sorted(await agents(cluster.master_url)) == [kept]

    await wait_for(only_kept_back, 20, message="the other agent back, the gone one not")


async def test_drain_with_mark_gone_removes_the_agent_once_drained(
        cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=2)
    url = cluster.master_url
    target, _ = await agent_ids(url)
    fw = await framework_factory(url)
    await launch(fw, target, "stubborn", STUBBORN, grace=HOUR)
    assert await operator(url, "DRAIN_AGENT", on(target, max_grace_period={"seconds": 0},
                                                  mark_gone=True)) == (200, None)
    # A PARTITION_AWARE framework is told the task is gone by the operator.
    status = await fw.wait_state("stubborn", TaskState.TASK_GONE_BY_OPERATOR, timeout=20)
    assert status.reason == Reason.REASON_AGENT_DRAINING
    await wait_for(lambda: _absent(url, target), 20, message="the drained agent to be gone")


async def _absent(url: str, agent_id: str) -> bool:
    return agent_id not in await agents(url)


async def test_bad_calls_are_refused_and_change_nothing(cluster_factory):
    cluster = await cluster_factory(agents=1)
    url = cluster.master_url
    (agent_id,) = await agent_ids(url)
    before = await agents(url)
    cases = [
        ("DRAIN_AGENT", on("no-such-agent"), 404, "not known", "drain_agent.agent_id"),
        ("DEACTIVATE_AGENT", on("no-such-agent"), 404, "not known",
         "deactivate_agent.agent_id"),
        ("REACTIVATE_AGENT", on("no-such-agent"), 404, "not known",
         "reactivate_agent.agent_id"),
        ("MARK_AGENT_GONE", on("no-such-agent"), 404, "not known", "mark_agent_gone.agent_id"),
        ("DRAIN_AGENT", None, 400, "drain_agent", "drain_agent"),
        ("DRAIN_AGENT", {"agent_id": {"value": 7}}, 400, "agent_id.value",
         "drain_agent.agent_id.value"),
        ("DRAIN_AGENT", on(agent_id, max_grace_period={"seconds": -1}), 400, "duration",
         "drain_agent.max_grace_period"),
        ("DRAIN_AGENT", on(agent_id, max_grace_period="soon"), 400, "duration",
         "drain_agent.max_grace_period"),
        ("DRAIN_AGENT", on(agent_id, max_grace_period={"minutes": 5}), 400, "duration",
         "drain_agent.max_grace_period"),
        ("DRAIN_AGENT", on(agent_id, mark_gone="yes"), 400, "boolean",
         "drain_agent.mark_gone"),
        ("MARK_AGENT_GONE", {"agent_id": "x"}, 400, "agent_id.value",
         "mark_agent_gone.agent_id.value"),
        ("REACTIVATE_AGENT", on(agent_id), 409, "not deactivated",
         "reactivate_agent.agent_id"),
    ]
    for kind, body, status, words, path in cases:
        got, answer = await operator(url, kind, body)
        assert got == status, (kind, body, answer)
        assert words in answer["message"], (kind, answer)
        assert [d["path"] for d in answer["details"]] == [path], (kind, answer)
    assert await agents(url) == before


async def test_each_call_needs_its_acl_action(tmp_path, cluster_factory):
    cluster = await cluster_factory(agents=1)
    (agent_id,) = await agent_ids(cluster.master_url)
    await cluster.stop_master()
    (tmp_path / "creds.json").write_text(json.dumps({"credentials": [
        {"principal": "ops", "secret": "s1"}, {"principal": "drainer", "secret": "s2"}]}))
    (tmp_path / "acls.json").write_text(json.dumps({"rules": [
        {"principals": ["ops"], "actions": ["*"], "objects": ["*"]},
        {"principals": ["drainer"], "actions": ["drain_agent", "view_state"],
         "objects": ["*"]}]}))
    auth = load_auth(tmp_path / "creds.json", tmp_path / "acls.json")
    master = MasterServer(fast_config(), sqlite_url(cluster.spec.work_dir / "master.db"),
                          auth=auth)
    await master.start("127.0.0.1", wait_elected=True)
    try:
        url = f"http://127.0.0.1:{master.port}"
        drainer = {"Authorization": basic_header("drainer", "s2")}
        ops = {"Authorization": basic_header("ops", "s1")}
        for kind in ("DEACTIVATE_AGENT", "REACTIVATE_AGENT", "MARK_AGENT_GONE"):
            status, body = await operator(url, kind, on(agent_id), drainer)
            assert status == 403 and "not authorized" in body["message"], (kind, body)
        # Draining that marks the agent gone needs mark_agent_gone as well.
        status, _ = await operator(url, "DRAIN_AGENT", on(agent_id, mark_gone=True), drainer)
        assert status == 403
        status, _ = await operator(url, "DRAIN_AGENT", on(agent_id), headers=drainer)
        assert status == 200
        status, _ = await operator(url, "MARK_AGENT_GONE", on(agent_id), ops)
        assert status == 200
    finally:
        await master.stop()
