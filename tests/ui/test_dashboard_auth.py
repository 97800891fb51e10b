"""The dashboard with authentication on: the browser signs in once (HTTP Basic) and
everything, the event stream and the sandbox proxy to the agent included, works."""

from __future__ import annotations

from mesoslite.agent.containerizers import make_containerizers
from mesoslite.agent.server import Agent, AgentConfig
from mesoslite.auth import Auth, Rule, basic_header
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import TaskState
from mesoslite.store.db import sqlite_url
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import AGENT_RESOURCES, fast_config
from tests.ui.helpers import open_dashboard

OPS = ("ops", "ops-secret")


async def test_dashboard_works_signed_in_and_refuses_anonymous(tmp_path):
    auth = Auth(secrets={OPS[0]: OPS[1], "viewer": "viewer-secret"},
                rules=[Rule(("ops",), ("*",), ("*",)),
                       Rule(("viewer",), ("view_state",), ("master",))])
    master = MasterServer(fast_config(port=0, agent_secret="agent-secret"),
                          sqlite_url(tmp_path / "m.db"), auth=auth)
    await master.start()
    url = f"http://127.0.0.1:{master.port}"
    agent = Agent(AgentConfig(masters=[url], work_dir=tmp_path / "agent",
                              resources=AGENT_RESOURCES, port=0, hostname="agent1",
                              agent_secret="agent-secret", status_update_retry=0.2),
                  make_containerizers(["process"], tmp_path / "agent"), auth=auth)
    await agent.start()
    fw = RecordingFramework(url, name="signed-in")
    fw.driver = type(fw.driver)(fw.sched, fw.info, url, authorization=basic_header(*OPS))
    try:
        await wait_for(agent.registered.is_set, message="agent registered")
        for path in ("/", "/ui/js/app.js", "/master/events", "/master/queues"):
            status, headers, _ = await request("GET", url + path)
            assert status == 401 and "WWW-Authenticate" in headers, path
        viewer = {"Authorization": basic_header("viewer", "viewer-secret")}
        status, _, _ = await request(
            "GET", f"{url}/master/browse/{agent.agent_id}/x/y", headers=viewer)
        assert status == 403  # may view the master, not sandboxes

        await fw.start()
        await fw.run_task("secured", "echo secured-output; sleep 600")
        await fw.wait_state("secured", TaskState.TASK_RUNNING)
        async with open_dashboard(url, credentials=OPS) as board:
            await board.goto("")
            await board.wait_text("table.tasks", "secured", timeout=5)
            await board.wait_text(".live-text", "live", timeout=5)
            await board.goto(f"tasks/{fw.id}/secured")
            await board.wait_text("#log", "secured-output", timeout=5)
            board.assert_clean()
        await fw.driver.teardown()
    finally:
        await fw.stop()
        await agent.stop(kill_tasks=True)
        await master.stop()
