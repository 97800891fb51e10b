"""Weights and quota over real HTTP: the operator calls, the v0 endpoints, their ACL
actions, bad input, persistence across a master restart, the allocator obeying them,
and the CLI."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from mesoslite.auth import basic_header, load_auth
from mesoslite.cli.main import cli
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import TaskState
from mesoslite.store.db import sqlite_url
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import fast_config


async def call(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict | None]:
    status, _, raw = await request("POST", url + "/api/v1", json=body, headers=headers or {})
    return status, (json.loads(raw) if raw else None)


def update_quota(configs: list[dict], force: bool = False) -> dict:
    return {"type": "UPDATE_QUOTA", "update_quota": {"force": force, "quota_configs": configs}}


def update_weights(**weights: float) -> dict:
    return {"type": "UPDATE_WEIGHTS", "update_weights": {
        "weight_infos": [{"role": r, "weight": w} for r, w in weights.items()]}}


async def quota_status(url: str) -> dict:
    status, body = await call(url, {"type": "GET_QUOTA"})
    assert status == 200, body
    return body["get_quota"]["status"]


async def weights(url: str) -> dict[str, float]:
    status, body = await call(url, {"type": "GET_WEIGHTS"})
    assert status == 200, body
    return {w["role"]: w["weight"] for w in body["get_weights"]["weight_infos"]}


async def test_quota_calls_answer_in_mesos_shape_and_v0_agrees(cluster):
    url = cluster.master_url  # three agents of 2 cpus and 1024 MB
    dev = {"role": "dev", "guarantees": {"cpus": {"value": 2}, "mem": {"value": 512}},
           "limits": {"cpus": {"value": 4}}}
    assert await call(url, update_quota([dev])) == (202, None)
    status = await quota_status(url)
    assert status["configs"] == [{"role": "dev",
                                  "guarantees": {"cpus": {"value": 2}, "mem": {"value": 512}},
                                  "limits": {"cpus": {"value": 4}}}]
    assert status["infos"] == [{"role": "dev", "guarantee": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 512}}]}]
    assert await get_json(url + "/quota") == status

    # v0: the legacy POST sets guarantees that are limits too; DELETE removes
    legacy = {"role": "ops", "guarantee": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}]}
    assert (await request("POST", url + "/quota", json=legacy))[0] == 200
    configs = {c["role"]: c for c in (await quota_status(url))["configs"]}
    assert configs["ops"] == {"role": "ops", "guarantees": {"cpus": {"value": 1}},
                              "limits": {"cpus": {"value": 1}}}
    assert (await request("POST", url + "/quota", json=legacy))[0] == 409  # has quota
    assert (await request("DELETE", url + "/quota/ops"))[0] == 200
    assert (await request("DELETE", url + "/quota/ops"))[0] == 400  # none to remove
    # removing through UPDATE_QUOTA: a config with neither guarantees nor limits
    assert (await call(url, update_quota([{"role": "dev"}])))[0] == 202
    assert await quota_status(url) == {"infos": [], "configs": []}


async def test_bad_or_unsatisfiable_quota_is_refused_and_changes_nothing(cluster):
    url = cluster.master_url
    dev = {"role": "dev", "guarantees": {"cpus": {"value": 1}}}
    assert (await call(url, update_quota([dev])))[0] == 202
    before = await quota_status(url)
    too_big = {"role": "big", "guarantees": {"cpus": {"value": 5.5}}}  # 1 + 5.5 > 6 cpus
    bad = [
        (update_quota([too_big]), 409, "'cpus' add up to 6.5, more than the cluster's 6"),
        (update_quota([{"role": "dev", "guarantees": {"cpus": {"value": 3}},
                        "limits": {"cpus": {"value": 2}}}]), 400,
         "role 'dev': the guarantee of 'cpus' (3) is more than its limit (2)"),
        (update_quota([{"role": "eng/web", "limits": {"cpus": {"value": 1}}}]), 400,
         "nested role"),
        (update_quota([dev, dev]), 400, "named twice"),
        (update_quota([{"role": "dev", "limits": {"cpus": {"value": "lots"}}}]), 400,
         "update_quota.quota_configs[0].limits.cpus.value"),
        ({"type": "UPDATE_QUOTA"}, 400, "update_quota"),
        # all or nothing: a good config next to a bad one is not applied either
        (update_quota([{"role": "ok", "limits": {"cpus": {"value": 1}}}, too_big]), 409,
         "use 'force'"),
    ]
    for body, want_status, text in bad:
        status, answer = await call(url, body)
        assert status == want_status, (body, answer)
        assert text in json.dumps(answer), (text, answer)
        assert await quota_status(url) == before
    # with force the overcommitting guarantee is stored
    assert (await call(url, update_quota([too_big], force=True)))[0] == 202
    assert {c["role"] for c in (await quota_status(url))["configs"]} == {"dev", "big"}


async def test_weights_calls_v0_and_the_weight_in_roles(cluster):
    url = cluster.master_url
    assert await call(url, update_weights(dev=2.0, prod=3.5)) == (202, None)
    assert await weights(url) == {"dev": 2.0, "prod": 3.5}
    assert await get_json(url + "/weights") == [{"role": "dev", "weight": 2.0},
                                               {"role": "prod", "weight": 3.5}]
    assert (await request("PUT", url + "/weights",
                          json=[{"role": "dev", "weight": 1.5}]))[0] == 200
    assert await weights(url) == {"dev": 1.5, "prod": 3.5}
    roles = {r["name"]: r["weight"] for r in (await get_json(url + "/master/roles"))["roles"]}
    assert roles["prod"] == 3.5
    for bad in ([{"role": "dev", "weight": 0}], [{"role": "dev", "weight": -1}],
                [{"role": "", "weight": 1}], [{"weight": 2}], {"role": "dev"},
                [{"role": "dev", "weight": 1}, {"role": "dev", "weight": 2}]):
        assert (await request("PUT", url + "/weights", json=bad))[0] == 400, bad
    assert await weights(url) == {"dev": 1.5, "prod": 3.5}


async def test_weights_and_quota_survive_a_master_restart(cluster_factory):
    cluster = await cluster_factory(agents=1, role_weights={"dev": 2.0, "web": 4.0})
    url = cluster.master_url
    assert (await call(url, update_weights(dev=5.0)))[0] == 202
    big = {"role": "dev", "guarantees": {"cpus": {"value": 100}},
           "limits": {"cpus": {"value": 200}, "mem": {"value": 10}}}
    assert (await call(url, update_quota([big], force=True)))[0] == 202
    await cluster.stop_master()
    await cluster.start_master()
    url = cluster.master_url
    # the stored weight overrides the flag's; the flag's other weight stays
    assert await weights(url) == {"dev": 5.0, "web": 4.0}
    assert (await quota_status(url))["configs"] == [
        {"role": "dev", "guarantees": {"cpus": {"value": 100}},
         "limits": {"cpus": {"value": 200}, "mem": {"value": 10}}}]
    allocator = cluster.master.state.allocator
    assert allocator.quotas()["dev"].limits == {"cpus": 200, "mem": 10}
    assert (allocator.role_weight("dev"), allocator.role_weight("web")) == (5.0, 4.0)


async def test_a_limit_caps_what_the_role_is_offered(cluster, framework_factory):
    url = cluster.master_url  # three agents of 2 cpus
    assert (await call(url, update_quota([{"role": "dev",
                                           "limits": {"cpus": {"value": 3}}}])))[0] == 202
    fw = await framework_factory(url, roles=["dev"])
    await fw.run_task("first", "sleep 30", cpus=1.5)
    await fw.wait_state("first", TaskState.TASK_RUNNING)

    def offered() -> float:
        return sum(r.scalar.value for o in fw.sched.open_offers.values()
                   for r in o.resources if r.name == "cpus")

    # the task's 1.5 and what is offered never pass the limit of 3 cpus
    await wait_for(lambda: offered() == 1.5, message="1.5 cpus offered beside the task")
    assert cluster.master.state.allocator.quotas()["dev"].limits == {"cpus": 3}
    # lifting the limit lets the rest of the cluster be offered (the master rescinds
    # nothing: the next rounds offer the agents that were held back)
    assert (await call(url, update_quota([{"role": "dev"}])))[0] == 202
    await wait_for(lambda: offered() == 6 - 1.5, message="the whole rest offered")


async def test_a_lowered_limit_below_what_tasks_hold_needs_force(cluster, framework_factory):
    url = cluster.master_url
    fw = await framework_factory(url, roles=["dev"])
    await fw.run_task("holder", "sleep 30", cpus=1.0)
    await fw.wait_state("holder", TaskState.TASK_RUNNING)
    low = [{"role": "dev", "limits": {"cpus": {"value": 0.5}}}]
    status, answer = await call(url, update_quota(low))
    assert status == 409 and "already holds 1 cpus" in answer["message"]
    assert await quota_status(url) == {"infos": [], "configs": []}
    assert (await call(url, update_quota(low, force=True)))[0] == 202
    # outstanding offers beyond the new limit are rescinded: none are left
    await wait_for(lambda: not fw.sched.open_offers, message="dev's offers rescinded")


async def test_each_call_needs_its_named_action(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"credentials": [
        {"principal": p, "secret": f"{p}-pw"} for p in ("ops", "dev-lead", "viewer")]}))
    (tmp_path / "a.json").write_text(json.dumps({"rules": [
        {"principals": ["ops"], "actions": ["*"], "objects": ["*"]},
        {"principals": ["dev-lead"], "actions": ["update_quota", "update_weights"],
         "objects": ["dev"]},
        {"principals": ["viewer"], "actions": ["view_state"], "objects": ["master"]}]}))
    master = MasterServer(fast_config(port=0), sqlite_url(tmp_path / "m.db"),
                          auth=load_auth(tmp_path / "c.json", tmp_path / "a.json"))
    await master.start()
    url = f"http://127.0.0.1:{master.port}"
    who = {p: {"Authorization": basic_header(p, f"{p}-pw")}
           for p in ("ops", "dev-lead", "viewer")}
    dev_limit = update_quota([{"role": "dev", "limits": {"cpus": {"value": 1}}}])
    prod_limit = update_quota([{"role": "prod", "limits": {"cpus": {"value": 1}}}])
    try:
        # update_quota / update_weights, per role
        assert (await call(url, dev_limit, who["viewer"]))[0] == 403
        assert (await call(url, prod_limit, who["dev-lead"]))[0] == 403
        assert (await call(url, dev_limit, who["dev-lead"]))[0] == 202
        assert (await call(url, update_weights(prod=2), who["dev-lead"]))[0] == 403
        assert (await call(url, update_weights(dev=2), who["dev-lead"]))[0] == 202
        for method, path, body in (("PUT", "/weights", [{"role": "prod", "weight": 2}]),
                                   ("POST", "/quota", {"role": "prod", "guarantee": []}),
                                   ("DELETE", "/quota/dev", None)):
            status, _, _ = await request(method, url + path, json=body,
                                         headers=who["viewer"])
            assert status == 403, path
        # reads: view_state on master
        for kind in ("GET_QUOTA", "GET_WEIGHTS"):
            assert (await call(url, {"type": kind}, who["dev-lead"]))[0] == 403
            assert (await call(url, {"type": kind}, who["viewer"]))[0] == 200
        for path in ("/quota", "/weights"):
            assert (await request("GET", url + path, headers=who["dev-lead"]))[0] == 403
            assert (await request("GET", url + path, headers=who["viewer"]))[0] == 200
        assert (await call(url, {"type": "GET_QUOTA"}, who["ops"]))[1]["get_quota"][
            "status"]["configs"] == [{"role": "dev", "limits": {"cpus": {"value": 1}}}]
    finally:
        await master.stop()


async def cli_run(*args: str):
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_cli_sets_shows_and_removes_quota_and_weights(cluster):
    url = cluster.master_url
    result = await cli_run("quota", "set", "dev", "--guarantee", "cpus=2,mem=256",
                           "--limit", "cpus=4", "--master", url)
    assert result.exit_code == 0, result.output
    result = await cli_run("quota", "get", "--master", url)
    assert result.exit_code == 0
    assert result.output.splitlines()[1].split() == ["dev", "cpus=2,mem=256", "cpus=4"]
    result = await cli_run("quota", "set", "big", "--guarantee", "cpus=100", "--master", url)
    assert result.exit_code == 1
    assert result.output.startswith("Error: 409: UPDATE_QUOTA: the roles' guarantees")
    assert len(result.output.strip().splitlines()) == 1
    result = await cli_run("quota", "set", "big", "--guarantee", "cpus=100", "--force",
                           "--master", url)
    assert result.exit_code == 0
    result = await cli_run("quota", "remove", "big", "--master", url)
    assert result.exit_code == 0
    assert [c["role"] for c in (await quota_status(url))["configs"]] == ["dev"]

    result = await cli_run("weights", "set", "dev=2", "prod=3", "--master", url)
    assert result.exit_code == 0, result.output
    assert await weights(url) == {"dev": 2.0, "prod": 3.0}
    result = await cli_run("weights", "get", "--master", url)
    assert result.output.splitlines()[1:] == ["dev                      2",
                                              "prod                     3"]
    result = await cli_run("weights", "set", "dev=0", "--master", url)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "weight must be a finite number > 0" in result.output
    result = await cli_run("weights", "set", "dev", "--master", url)
    assert result.exit_code != 0 and "expected name=number" in result.output
