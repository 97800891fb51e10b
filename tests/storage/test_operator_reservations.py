"""Reservations made by an operator through the v1 operator API (Mesos'
RESERVE_RESOURCES / UNRESERVE_RESOURCES), through a real master and agent: the
reserved resources are offered to their role only, kept across a master restart,
given back on unreserve, and bad or impossible calls are refused with the field
and the reason, changing nothing; the ACL action is checked per role."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from mesoslite.auth import basic_header, load_auth
from mesoslite.master.server import MasterServer
from mesoslite.store.db import sqlite_url
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import cluster_factory, fast_config, framework_factory
from tests.storage.test_reservations import offer_with, offered, reserved

__all__ = ["cluster_factory", "framework_factory"]

pytestmark = pytest.mark.asyncio


async def call(master: str, kind: str, agent_id: Any, resources: Any) -> tuple[int, Any]:
    body = {"type": kind, kind.lower(): {"agent_id": {"value": agent_id},
                                         "resources": resources}}
    status, _, data = await request("POST", master + "/api/v1", data=json.dumps(body),
                                    headers={"Content-Type": "application/json"})
    return status, json.loads(data) if data else None


def as_json(text: str, role: str) -> list[Any]:
    return msgspec.to_builtins(reserved(text, role))


def nonzero(amounts: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in amounts.items() if v}


async def agent_state(master: str) -> dict[str, Any]:
    (agent,) = (await get_json(master + "/master/state"))["slaves"]
    return agent


async def test_operator_reserve_offer_restart_unreserve(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    master = cluster.master_url
    agent_id = (await agent_state(master))["id"]
    web = await framework_factory(master, name="web", roles=["web"])
    await web.offer(agent_id)  # the whole agent is offered to web first

    status, _ = await call(master, "RESERVE_RESOURCES", agent_id, as_json("cpus:1;mem:256", "db"))
    assert status == 202
    agent = await agent_state(master)
    assert nonzero(agent["reserved_resources"]["db"]) == {"cpus": 1, "mem": 256}
    assert agent["unreserved_resources"]["cpus"] == 1
    # web's offer of the whole agent was rescinded; it is offered the rest only.
    again = await offer_with(web, lambda o: offered(o, False).scalar("cpus") == 1,
                             "web offered the unreserved rest")
    assert offered(again, True).scalar("cpus") == 0
    # A framework in role db gets the reservation.
    db = await framework_factory(master, name="db", roles=["db"])
    got = await offer_with(db, lambda o: offered(o, True).scalar("cpus") == 1,
                           "db offered its reservation")
    assert offered(got, True).scalar("mem") == 256

    # Kept across a master restart (the books are stored with the agent).
    await cluster.stop_master()
    await cluster.start_master()
    agent = await wait_for(lambda: _active(master), 15, message="the agent back")
    assert nonzero(agent["reserved_resources"]["db"]) == {"cpus": 1, "mem": 256}

    status, _ = await call(master, "UNRESERVE_RESOURCES", agent_id,
                           as_json("cpus:1;mem:256", "db"))
    assert status == 202
    agent = await agent_state(master)
    assert agent["reserved_resources"] == {}
    assert agent["unreserved_resources"]["cpus"] == 2


async def _active(master: str) -> dict[str, Any] | None:
    agent = await agent_state(master)
    return agent if agent["active"] else None


async def test_bad_and_impossible_calls_change_nothing(cluster_factory):
    cluster = await cluster_factory(agents=1)
    master = cluster.master_url
    agent_id = (await agent_state(master))["id"]
    before = await agent_state(master)

    cases = [
        (("RESERVE_RESOURCES", agent_id, as_json("cpus:3", "db")), 409,
         "more than agent", "reserve_resources.resources"),
        (("RESERVE_RESOURCES", "no-such-agent", as_json("cpus:1", "db")), 404,
         "not known", "reserve_resources.agent_id"),
        (("RESERVE_RESOURCES", agent_id, [{"name": "cpus", "type": "SCALAR",
                                          "scalar": {"value": 1}}]), 400,
         "carry no reservation", "reserve_resources.resources"),
        (("RESERVE_RESOURCES", agent_id, [{"name": "cpus", "scalar": "one"}]), 400,
         "Invalid", "reserve_resources.resources"),
        (("RESERVE_RESOURCES", None, as_json("cpus:1", "db")), 400,
         "agent_id.value", "reserve_resources.agent_id.value"),
        (("UNRESERVE_RESOURCES", agent_id, as_json("cpus:1", "db")), 409,
         "free reserved", "unreserve_resources.resources"),
    ]
    for args, status, words, path in cases:
        got, body = await call(master, *args)
        assert got == status, (args, body)
        assert words in body["message"], body
        assert [d["path"] for d in body["details"]] == [path], body
    # A role of '*' is refused with the entry it names.
    bad = as_json("cpus:1", "db")
    bad[0]["reservations"] = [{"type": "DYNAMIC", "role": "*"}]
    got, body = await call(master, "RESERVE_RESOURCES", agent_id, bad)
    assert got == 400 and "role '*'" in body["message"], body

    after = await agent_state(master)
    assert after["reserved_resources"] == before["reserved_resources"] == {}
    assert after["unreserved_resources"] == before["unreserved_resources"]


async def test_reserving_needs_the_acl_action_on_the_role(tmp_path):
    (tmp_path / "credentials.json").write_text(json.dumps({"credentials": [
        {"principal": "dev", "secret": "dev-secret"}]}))
    (tmp_path / "acls.json").write_text(json.dumps({"rules": [
        {"principals": ["dev"], "actions": ["reserve_resources"], "objects": ["dev"]}]}))
    auth = load_auth(tmp_path / "credentials.json", tmp_path / "acls.json")
    master = MasterServer(fast_config(port=0), sqlite_url(tmp_path / "m.db"), auth=auth)
    await master.start()
    try:
        url = f"http://127.0.0.1:{master.port}/api/v1"
        for role, who, status in (("db", basic_header("dev", "dev-secret"), 403),
                                  ("db", None, 401),
                                  ("dev", basic_header("dev", "dev-secret"), 404)):
            body = {"type": "RESERVE_RESOURCES", "reserve_resources": {
                "agent_id": {"value": "no-such-agent"}, "resources": as_json("cpus:1", role)}}
            headers = {"Content-Type": "application/json",
                       **({"Authorization": who} if who else {})}
            got, _, data = await request("POST", url, data=json.dumps(body), headers=headers)
            # 404: allowed for its own role, refused only for the unknown agent
            assert got == status, (role, data)
    finally:
        await master.stop()
