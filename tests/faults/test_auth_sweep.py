"""The auth sweep: every route of every server (master, agent, services, batch),
called without credentials and with wrong ones, must refuse (401): 0 unprotected."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp import web

from frameworks.batch.server import BatchConfig, BatchServer
from frameworks.services.server import ServicesConfig, ServicesServer
from mesoslite.agent.containerizers import make_containerizers
from mesoslite.agent.server import Agent, AgentConfig
from mesoslite.auth import basic_header, load_auth
from mesoslite.master.server import MasterServer
from mesoslite.store.db import sqlite_url
from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import AGENT_RESOURCES, fast_config

pytestmark = pytest.mark.faults
# Routes that must answer anyone: liveness, and the agent link (agents authenticate
# with the shared agent secret inside the link instead).
PUBLIC = {"/health", "/ping", "/agent/v1/link"}
OPS = basic_header("ops", "ops-secret")


def routes(app: web.Application) -> list[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if not path or route.method == "*":
            continue
        # fill path parameters ({id}, {name:.*}) with a plausible value
        out.add((route.method, re.sub(r"\{[^}]+\}", "x", path)))
    return sorted(out)


async def test_every_route_refuses_without_valid_credentials(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(
        {"credentials": [{"principal": "ops", "secret": "ops-secret"}]}))
    auth = load_auth(tmp_path / "c.json", None)
    master = MasterServer(fast_config(port=0, agent_secret="s"), sqlite_url(tmp_path / "m.db"),
                          auth=auth)
    await master.start()
    url = f"http://127.0.0.1:{master.port}"
    agent = Agent(AgentConfig(masters=[url], work_dir=tmp_path / "agent", port=0,
                              resources=AGENT_RESOURCES, agent_secret="s"),
                  make_containerizers(["process"], tmp_path / "agent"), auth=auth)
    await agent.start()
    driver = {"authorization": OPS}
    services = ServicesServer(ServicesConfig(masters=[url], work_dir=tmp_path / "svc", port=0,
                                             auth=auth, driver_options=driver))
    batch = BatchServer(BatchConfig(masters=[url], work_dir=tmp_path / "batch", port=0,
                                    auth=auth, driver_options=driver))
    servers = {"master": master._runner, "agent": agent._runner}
    try:
        await services.start()
        await batch.start()
        servers.update(services=services._runner, batch=batch._runner)
        await wait_for(agent.registered.is_set)
        checked, unprotected = 0, []
        for name, runner in servers.items():
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            for method, path in routes(runner.app):
                if path in PUBLIC:
                    continue
                for headers in ({}, {"Authorization": basic_header("ops", "nope")},
                                {"Authorization": "Bearer nope"}):
                    status, _, body = await request(method, base + path, headers=headers,
                                                    data=b"{}", allow_redirects=False)
                    checked += 1
                    if status != 401:
                        unprotected.append((name, method, path, headers, status))
                    assert b"ops-secret" not in body
        print(f"\nauth sweep: {checked} calls over {len(servers)} servers, "
              f"{len(unprotected)} unprotected")
        assert unprotected == []
        # and the right credentials get through
        status, _, _ = await request("GET", services.url + "/v2/apps",
                                     headers={"Authorization": OPS})
        assert status == 200
        status, _, _ = await request("GET", batch.url + "/v1/jobs",
                                     headers={"Authorization": OPS})
        assert status == 200
    finally:
        await batch.stop()
        await services.stop()
        await agent.stop()
        await master.stop()
