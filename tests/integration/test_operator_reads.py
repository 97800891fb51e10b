"""The operator's read calls (GET_FLAGS, GET_METRICS, GET_ROLES) and Mesos' v0
endpoints over the same data, on a real cluster over loopback HTTP."""

from __future__ import annotations

import json

from mesoslite.auth import basic_header, load_auth
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import TaskState
from mesoslite.store.db import sqlite_url
from mesoslite.testing.http import get_json, request
from tests.integration.conftest import fast_config

AGENT_SECRET = "agent-secret-never-shown"


async def operator_call(master_url: str, kind: str, headers: dict[str, str] | None = None
                        ) -> dict:
    status, _, body = await request("POST", master_url + "/api/v1", json={"type": kind},
                                    headers=headers or {})
    assert status == 200, (kind, status, body)
    answer = json.loads(body)
    assert answer["type"] == kind
    return answer[kind.lower()]


def named(pairs: list[dict]) -> dict:
    return {p["name"]: p.get("value") for p in pairs}


async def test_running_task_counts_in_metrics_snapshot_and_get_metrics(cluster, framework):
    url = cluster.master_url
    before = await get_json(url + "/metrics/snapshot")
    assert before["master/elected"] == 1
    assert before["master/slaves_active"] == 3 and before["master/slaves_connected"] == 3
    assert before["master/slaves_disconnected"] == 0
    assert before["master/frameworks_active"] == 1
    assert before["master/tasks_running"] == 0
    assert before["master/cpus_total"] == 6  # three agents of 2 cpus

    await framework.run_task("busy", "sleep 30", cpus=0.5)
    await framework.wait_state("busy", TaskState.TASK_RUNNING)
    await framework.run_task("quick", "true")
    await framework.wait_state("quick", TaskState.TASK_FINISHED)

    snapshot = await get_json(url + "/metrics/snapshot")
    assert snapshot["master/tasks_running"] == 1
    assert snapshot["master/tasks_finished"] == 1
    assert snapshot["master/tasks_staging"] == 0
    assert snapshot["master/cpus_used"] == 0.5
    assert snapshot["master/uptime_secs"] > 0
    metrics = named((await operator_call(url, "GET_METRICS"))["metrics"])
    for name in ("master/elected", "master/tasks_running", "master/tasks_finished",
                 "master/slaves_active", "master/frameworks_active"):
        assert metrics[name] == snapshot[name], name


async def test_slaves_frameworks_and_health_endpoints(cluster, framework):
    url = cluster.master_url
    await framework.run_task("held", "sleep 30", cpus=1.0, mem=64)
    await framework.wait_state("held", TaskState.TASK_RUNNING)

    slaves = (await get_json(url + "/master/slaves"))["slaves"]
    assert sorted(s["id"] for s in slaves) == sorted(a.agent_id for a in cluster.agents)
    assert all(s["resources"]["cpus"] == 2 and s["resources"]["mem"] == 1024 for s in slaves)
    assert sorted(s["used_resources"]["cpus"] for s in slaves) == [0, 0, 1.0]

    frameworks = await get_json(url + "/master/frameworks")
    assert [f["id"] for f in frameworks["frameworks"]] == [framework.id]
    assert [t["id"] for t in frameworks["frameworks"][0]["tasks"]] == ["held"]
    assert frameworks["completed_frameworks"] == []
    assert frameworks["unregistered_frameworks"] == []

    status, _, body = await request("GET", url + "/master/health")
    assert (status, body) == (200, b"")


async def test_get_roles_shows_the_framework_role_weight_and_allocation(
        cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1, role_weights={"analytics": 2.5})
    fw = await framework_factory(cluster.master_url, roles=["analytics"])
    await fw.run_task("report", "sleep 30", cpus=0.5, mem=48)
    await fw.wait_state("report", TaskState.TASK_RUNNING)

    roles = {r["name"]: r for r in
             (await operator_call(cluster.master_url, "GET_ROLES"))["roles"]}
    analytics = roles["analytics"]
    assert analytics["weight"] == 2.5
    assert analytics["frameworks"] == [{"value": fw.id}]
    allocated = {r["name"]: r["scalar"]["value"] for r in analytics["resources"]}
    assert allocated == {"cpus": 0.5, "mem": 48}

    v0 = {r["name"]: r for r in (await get_json(cluster.master_url + "/master/roles"))["roles"]}
    assert v0["analytics"]["frameworks"] == [fw.id]
    assert v0["analytics"]["weight"] == 2.5
    assert (v0["analytics"]["allocated"]["cpus"], v0["analytics"]["allocated"]["mem"]) \
        == (0.5, 48)


async def test_flags_show_the_configuration_and_never_the_agent_secret(tmp_path):
    master = MasterServer(fast_config(port=0, agent_secret=AGENT_SECRET,
                                      role_weights={"a": 2.0}),
                          sqlite_url(tmp_path / "m.db"))
    await master.start()
    url = f"http://127.0.0.1:{master.port}"
    try:
        flags = named((await operator_call(url, "GET_FLAGS"))["flags"])
        assert flags["allocation_interval"] == "0.05secs"
        assert flags["max_agent_ping_timeouts"] == "3"
        assert flags["weights"] == "a=2.0"
        v0 = (await get_json(url + "/master/flags"))["flags"]
        assert v0 == flags
        assert (await get_json(url + "/master/state"))["flags"] == flags
        for path in ("/master/flags", "/metrics/snapshot", "/master/state"):
            _, _, body = await request("GET", url + path)
            assert AGENT_SECRET.encode() not in body, path
        _, _, body = await request("POST", url + "/api/v1", json={"type": "GET_FLAGS"})
        assert AGENT_SECRET.encode() not in body
        assert not any("secret" in name for name in flags)
    finally:
        await master.stop()


async def test_reads_need_view_state_under_acls(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"credentials": [
        {"principal": "ops", "secret": "ops-pw"}, {"principal": "web", "secret": "web-pw"}]}))
    (tmp_path / "a.json").write_text(json.dumps({"rules": [
        {"principals": ["ops"], "actions": ["*"], "objects": ["*"]}]}))
    master = MasterServer(fast_config(port=0), sqlite_url(tmp_path / "m.db"),
                          auth=load_auth(tmp_path / "c.json", tmp_path / "a.json"))
    await master.start()
    url = f"http://127.0.0.1:{master.port}"
    ops = {"Authorization": basic_header("ops", "ops-pw")}
    web = {"Authorization": basic_header("web", "web-pw")}
    try:
        for kind in ("GET_FLAGS", "GET_METRICS", "GET_ROLES"):
            status, _, _ = await request("POST", url + "/api/v1", json={"type": kind},
                                         headers=web)
            assert status == 403, kind
            await operator_call(url, kind, headers=ops)
        for path in ("/metrics/snapshot", "/master/flags", "/master/health", "/master/slaves",
                     "/master/frameworks", "/master/roles"):
            assert (await request("GET", url + path, headers=web))[0] == 403, path
            assert (await request("GET", url + path, headers=ops))[0] == 200, path
    finally:
        await master.stop()


async def test_scheduler_api_answers_under_master_prefix_too(cluster, framework_factory):
    fw = await framework_factory(cluster.master_url.rstrip("/") + "/master")
    await fw.run_task("via-alias", "true")
    await fw.wait_state("via-alias", TaskState.TASK_FINISHED)
    assert fw.id in cluster.master.state.frameworks
