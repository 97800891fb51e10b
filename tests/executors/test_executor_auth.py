"""With authentication on (``--credentials``), the agent's executor API takes only
the token it gave each executor in its environment: the executor works, anyone
else (operator credentials included) is refused."""

from __future__ import annotations

import json

import pytest

from mesoslite.agent.containerizers import make_containerizers
from mesoslite.agent.server import Agent, AgentConfig
from mesoslite.auth import basic_header, load_auth
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import TaskState
from mesoslite.store.db import sqlite_url
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from tests.executors.test_custom_executor import executor_task, raw_executor
from tests.integration.conftest import AGENT_RESOURCES, fast_config

pytestmark = pytest.mark.asyncio


async def test_only_the_executors_own_token_is_accepted(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps(
        {"credentials": [{"principal": "ops", "secret": "ops-secret"}]}))
    auth = load_auth(tmp_path / "c.json", None)
    master = MasterServer(fast_config(port=0), sqlite_url(tmp_path / "m.db"))
    await master.start()
    url = f"http://127.0.0.1:{master.port}"
    agent = Agent(AgentConfig(masters=[url], work_dir=tmp_path / "agent", port=0,
                              resources=AGENT_RESOURCES),
                  make_containerizers(["process"], tmp_path / "agent"), auth=auth)
    framework = RecordingFramework(url)
    try:
        await agent.start()
        await framework.start()
        offer = await framework.offer()
        await framework.launch(offer, [executor_task("secure", offer.agent_id,
                                                     raw_executor("guarded"), "finish")])
        await framework.wait_state("secure", TaskState.TASK_FINISHED)
        endpoint = f"http://127.0.0.1:{agent.config.port}/api/v1/executor"
        call = {"type": "MESSAGE", "framework_id": {"value": framework.id},
                "executor_id": {"value": "guarded"}, "message": {"data": "aGk="}}
        for headers in ({}, {"Authorization": basic_header("ops", "ops-secret")},
                        {"Authorization": "Bearer not-the-token"}):
            status, _, body = await request("POST", endpoint, json=call, headers=headers)
            assert status == 401, (headers, body)
        assert not framework.sched.messages  # nothing got through
    finally:
        await framework.stop()
        await agent.stop(kill_tasks=True)
        await master.stop()
    await wait_for(lambda: not agent.executors.runs, message="the executor to be stopped")
