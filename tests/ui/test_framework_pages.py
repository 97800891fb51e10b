"""The services and batch frameworks' dashboard pages in a real headless Chromium,
with both frameworks hosted on an in-process cluster (process tasks): every page
loads without console errors, changes show within 2 s of happening (the frameworks'
event streams, relayed by the master), hostile text is shown literally, and the
screenshots are kept (test-artifacts/ui/, and docs/dashboard-pipeline.png); and all of
it with authentication on."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from frameworks.services.model import DEPLOYMENT_TIMEOUT_LABEL
from mesoslite.agent.containerizers import make_containerizers
from mesoslite.agent.server import Agent, AgentConfig
from mesoslite.auth import Auth, Rule, basic_header
from mesoslite.master.server import MasterServer
from mesoslite.store.db import sqlite_url
from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import AGENT_RESOURCES, fast_config
from tests.ui.helpers import REPO, Dashboard, open_dashboard
from tests.ui.hosted import Hosted, host_frameworks

LIVE = 2.0  # seconds: the deadline for a change to show in the page
XSS = "<img src=x onerror=alert(1)>"
NOT_LISTENING = {"protocol": "HTTP", "portIndex": 0, "path": "/", "gracePeriodSeconds": 300,
                 "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3}


@pytest.fixture
async def hosted(ui_cluster, tmp_path) -> AsyncIterator[Hosted]:
    async with host_frameworks(ui_cluster, tmp_path / "frameworks") as frameworks:
        yield frameworks


async def no_xss(board: Dashboard) -> None:
    assert await board.page.evaluate("document.querySelectorAll('img, script:not([src])')"
                                     ".length") == 0
    board.assert_clean()


async def shows_within(board: Dashboard, expression: str, arg: object, what: str) -> None:
    """The page shows it within LIVE seconds of now (when the framework's API says so)."""
    start = time.monotonic()
    await board.wait_for(expression, arg, timeout=LIVE, what=what)
    assert time.monotonic() - start < LIVE


ROW_HAS = ("[...document.querySelectorAll(arg.rows)].some((tr) => "
           "arg.all.every((t) => tr.textContent.includes(t)))")


async def test_services_pages_follow_apps_deployments_and_rollbacks(hosted: Hosted):
    api, fid = hosted.svc, hosted.services_id
    async with open_dashboard(hosted.master_url) as board:
        # the framework's page links to its plugin tab
        await board.goto(f"frameworks/{fid}")
        await board.wait_text(".plugin-tabs", "Services", timeout=5)
        await board.page.click(".plugin-tabs a >> text=Services")
        await board.wait_text("#services-apps", "No app yet", timeout=5)
        await board.wait_text(".fw-live", "live", timeout=5)

        await api.ok("POST", "/v2/apps", {"id": "/shop/web", "cmd": f"sleep 600 # {XSS}",
                                          "instances": 1, "cpus": 0.1, "mem": 32,
                                          "labels": {"note": XSS}})
        await shows_within(board, ROW_HAS, {"rows": "table.apps tbody tr",
                                            "all": ["/shop/web"]}, "the new app")
        await wait_for(lambda: no_deployments(api), 20, interval=0.05)
        await api.ok("PUT", "/v2/apps/shop/web", {"instances": 3})
        await wait_for(lambda: running(api, "/shop/web", 3), 30, interval=0.05,
                       message="3 instances running")
        await shows_within(board, ROW_HAS, {"rows": "table.apps tbody tr",
                                            "all": ["/shop/web", "3 running", "3 desired"]},
                           "3 of 3 running in the apps table")
        await wait_for(lambda: no_deployments(api), 20, interval=0.05)
        await board.wait_text("#services-recent", "succeeded", timeout=LIVE)

        # an app no agent can hold waits, and the page says why
        await api.ok("POST", "/v2/apps", {"id": "/big", "cmd": "sleep 600", "instances": 1,
                                          "cpus": 0.1, "mem": 4096})
        await board.wait_text("#services-waiting", "/big", timeout=10)
        await board.wait_text("#services-waiting", "mem", timeout=10)

        # a version that never gets healthy: in progress, then rolled back by itself
        result = await api.ok("PUT", "/v2/apps/shop/web", {
            "cmd": "sleep 601", "healthChecks": [NOT_LISTENING],
            "labels": {"note": XSS, DEPLOYMENT_TIMEOUT_LABEL: "5"}})
        deployment = result["deploymentId"]
        await shows_within(board, "document.querySelector(`#services-deployments "
                                  "[data-deployment='${arg}']`)", deployment,
                           "the deployment in progress")
        await board.wait_text(f"[data-deployment='{deployment}']", "new tasks ready", timeout=5)
        await board.wait_text(f"[data-deployment='{deployment}']", "rolls back by itself",
                              timeout=LIVE)
        await board.screenshot("services-deploying")
        await board.wait_text("#services-recent", "timed out · rolled back", timeout=30)
        await board.wait_text("#services-recent", "rolled back", timeout=30)
        await wait_for(lambda: no_deployments(api, "/shop/web"), 30, interval=0.1)
        await board.wait_for("![...document.querySelectorAll('#services-deployments "
                             ".deployment')].some((d) => d.textContent.includes('/shop/web'))",
                             timeout=LIVE, what="no deployment of /shop/web left")
        await board.wait_text("table.apps", XSS)
        await board.screenshot("services")
        await no_xss(board)

        # the app's page: instances with host, ports, health, state; versions; why waiting
        await board.page.click('table.apps a >> text="/shop/web"')
        await board.wait_text("h1", "/shop/web", timeout=5)
        await board.wait_for("document.querySelectorAll('table.instances tbody tr')"
                             ".length === 3", timeout=5, what="3 instances")
        await board.wait_text("table.instances", "agent", timeout=LIVE)
        await board.wait_text("table.instances", "running", timeout=LIVE)
        await board.wait_text(".kv", f"note={XSS}", timeout=LIVE)
        await board.wait_for("document.querySelectorAll('table.versions tbody tr').length >= 3",
                             timeout=LIVE, what="the versions")
        await board.wait_text("#app-deployments", "timed out · rolled back", timeout=LIVE)
        await api.ok("PUT", "/v2/apps/shop/web", {"instances": 2})
        await shows_within(board, "document.querySelectorAll('table.instances tbody tr')"
                                  ".length === 2 || document.querySelector("
                                  "'#app-deployments .deployment')", None,
                           "the scale-down in the app's page")
        await board.wait_for("document.querySelectorAll('table.instances tbody tr')"
                             ".length === 2", timeout=10, what="2 instances")
        await board.page.evaluate("window.scrollTo(0, 0)")
        await board.screenshot("services-app")
        await no_xss(board)

        # a task links to the master's task page
        await board.page.click("table.instances tbody tr a >> nth=0")
        await board.wait_text(".timeline", "running", timeout=5)

        await board.goto(f"x/services/{fid}/apps/%2Fbig")
        await board.wait_text("#app-waiting", "mem", timeout=5)
        await board.wait_text("#app-instances", "No instance yet", timeout=LIVE)
        await no_xss(board)


async def running(api, app_id: str, n: int) -> bool:
    app = (await api.ok("GET", f"/v2/apps{app_id}"))["app"]
    return app["tasksRunning"] == n and len(app["tasks"]) == n


async def no_deployments(api, app_id: str | None = None) -> bool:
    """No deployment in progress (of ``app_id``, when given)."""
    return not [d for d in await api.ok("GET", "/v2/deployments")
                if app_id is None or app_id in d["affectedApps"]]


def pipeline(gates: Path) -> dict:
    wait = "while [ ! -e {} ]; do sleep 0.1; done"
    return {
        "id": "nightly-etl", "user": XSS, "description": "extract, transform, load",
        "cpus": 0.1, "mem": 32, "labels": {"team": "data"},
        "steps": [
            {"name": "extract", "command": "echo extracting; " + wait.format(gates / "extract")
             + "; echo extracted"},
            {"name": "transform", "depends_on": ["extract"], "completions": 3,
             "command": "echo transform-$BATCH_TASK_INDEX; sleep 0.3"},
            {"name": "report", "depends_on": ["extract"], "allow_failure": True,
             "command": "echo no data >&2; exit 3"},
            {"name": "load", "depends_on": ["transform", "report"],
             "command": "echo loading; " + wait.format(gates / "load")},
            {"name": "archive", "depends_on": ["load"], "command": "true"},
            {"name": "backfill", "cpus": 16, "command": "true"},  # no agent is that big
        ]}


async def step_state(api, run_id: str, step: str) -> str:
    run = await api.ok("GET", f"/v1/runs/{run_id}")
    return next(s["state"] for s in run["steps"] if s["name"] == step)


async def test_batch_pages_draw_the_pipeline_and_follow_it(hosted: Hosted, tmp_path):
    api, fid = hosted.jobs, hosted.batch_id
    gates = tmp_path / "gates"
    gates.mkdir()
    async with open_dashboard(hosted.master_url) as board:
        await board.goto(f"x/batch/{fid}")
        await board.wait_text("#batch-runs", "No run yet", timeout=5)
        await board.wait_text(".fw-live", "live", timeout=5)
        await api.ok("POST", "/v1/jobs", pipeline(gates))
        run = await api.ok("POST", "/v1/jobs/nightly-etl/runs")
        await shows_within(board, ROW_HAS, {"rows": "table.runs tbody tr",
                                            "all": [run["id"], XSS]}, "the new run")
        await board.wait_text("#batch-waiting", "needs 16 cpus", timeout=10)
        await no_xss(board)
        await board.screenshot("batch-runs")

        await board.page.click("table.runs a >> text=nightly-etl")
        await board.wait_text("h1", run["id"], timeout=5)
        nodes = "document.querySelectorAll('svg.dag g.dag-node')"
        await board.wait_for(f"{nodes}.length === 6", timeout=5, what="6 steps drawn")
        edges = await board.page.eval_on_selector_all(
            "svg.dag path.dag-edge", "(els) => els.map((e) => e.dataset.from + '>' + e.dataset.to)")
        assert sorted(edges) == sorted(["extract>transform", "extract>report", "transform>load",
                                        "report>load", "load>archive"])
        node = "document.querySelector(`svg.dag g.dag-node[data-step='${arg[0]}']`)"
        state = f"({node} || {{}}).dataset?.state === arg[1]"
        await board.wait_for(state, ["extract", "RUNNING"], timeout=5, what="extract running")
        # the layered layout: a step sits right of every step it depends on
        xs = await board.page.eval_on_selector_all(
            "svg.dag g.dag-node", "(els) => Object.fromEntries(els.map((e) => [e.dataset.step,"
            " e.getBoundingClientRect().x]))")
        assert xs["extract"] < xs["transform"] < xs["load"] < xs["archive"]
        assert xs["backfill"] == xs["extract"]
        # the running step's log, through the master's sandbox proxy
        await board.wait_text("#batch-log", "extracting", timeout=10)
        await board.wait_text("#run-waiting", "needs 16 cpus", timeout=LIVE)
        await board.wait_text(".page-head", XSS)

        (gates / "extract").touch()
        await wait_for(lambda: step_state_is(api, run["id"], "extract", "SUCCEEDED"), 10,
                       interval=0.05)
        await shows_within(board, state, ["extract", "SUCCEEDED"], "extract succeeded")
        await wait_for(lambda: step_state_is(api, run["id"], "transform", "SUCCEEDED"), 20,
                       interval=0.05)
        await shows_within(board, state, ["transform", "SUCCEEDED"], "transform succeeded")
        await board.wait_for(state, ["report", "FAILED"], timeout=10, what="report failed")
        await board.wait_for(state, ["load", "RUNNING"], timeout=10, what="load running")
        await board.wait_for(ROW_HAS, {"rows": "table.steps tbody tr",
                                       "all": ["transform", "3 done", "0 failed"]},
                             timeout=LIVE, what="transform's counts")
        # another step's tasks and logs, picked in the graph
        await board.page.click("svg.dag g.dag-node[data-step='transform']")
        await board.wait_for("document.querySelectorAll('table.attempts tbody tr').length === 3",
                             timeout=LIVE, what="transform's 3 tasks")
        await board.wait_text("#batch-log", "transform-", timeout=5)
        await board.page.click("svg.dag g.dag-node[data-step='report']")
        await board.page.click("#batch-logs button >> text=stderr")
        await board.wait_text("#batch-log", "no data", timeout=5)
        await board.page.click("svg.dag g.dag-node[data-step='load']")
        await board.page.click("#batch-logs button >> text=stdout")  # the choice stays
        await board.wait_text("#batch-log", "loading", timeout=5)
        await board.page.mouse.move(0, 0)
        # the clicks scrolled: back to the top, or the sticky top bar lands mid-picture
        await board.page.evaluate("window.scrollTo(0, 0)")
        await board.screenshot("pipeline", docs_copy=REPO / "docs" / "dashboard-pipeline.png")
        await no_xss(board)

        (gates / "load").touch()
        await wait_for(lambda: step_state_is(api, run["id"], "archive", "SUCCEEDED"), 20,
                       interval=0.05)
        await shows_within(board, state, ["archive", "SUCCEEDED"], "archive succeeded")
        await api.ok("POST", f"/v1/runs/{run['id']}/actions/stop")
        await board.wait_for("document.querySelector(\".page-head .pill[title^='CANCEL']\")",
                             timeout=5, what="the run cancelling or cancelled")

        await board.goto(f"x/batch/{fid}")
        await board.wait_text("table.jobs", "nightly-etl", timeout=5)
        await no_xss(board)


async def step_state_is(api, run_id: str, step: str, wanted: str) -> bool:
    return await step_state(api, run_id, step) == wanted



OPS = ("ops", "ops-secret")
FRAMEWORKS = ("frameworks", "frameworks-secret")


async def test_framework_pages_work_signed_in(tmp_path):
    """With authentication on everywhere (master, agent, the frameworks' APIs), the
    pages read the frameworks through the master, which forwards the operator's
    credentials only to frameworks whose principal is trusted with them."""
    trust = Rule((FRAMEWORKS[0],), ("receive_credentials",), ("dashboard",))
    auth = Auth(secrets=dict((OPS, FRAMEWORKS)),
                rules=[Rule((OPS[0],), ("*",), ("*",)), trust,
                       Rule((FRAMEWORKS[0],), ("register_framework",), ("*",))])
    master = MasterServer(fast_config(port=0, agent_secret="agent-secret"),
                          sqlite_url(tmp_path / "m.db"), auth=auth)
    await master.start()
    url = f"http://127.0.0.1:{master.port}"
    agent = Agent(AgentConfig(masters=[url], work_dir=tmp_path / "agent",
                              resources=AGENT_RESOURCES, port=0, hostname="agent1",
                              agent_secret="agent-secret", status_update_retry=0.2),
                  make_containerizers(["process"], tmp_path / "agent"), auth=auth)
    await agent.start()
    ops = {"Authorization": basic_header(*OPS)}
    try:
        await wait_for(agent.registered.is_set, message="agent registered")
        async with host_frameworks(url, tmp_path / "frameworks", auth=auth, headers=ops,
                                   driver_options={"authorization": basic_header(
                                       *FRAMEWORKS)}) as hosted:
            sid, bid = hosted.services_id, hosted.batch_id
            await hosted.svc.ok("POST", "/v2/apps", {"id": "/signed/in", "cmd": "sleep 600",
                                                     "cpus": 0.1, "mem": 32})
            async with open_dashboard(url, credentials=OPS) as board:
                await board.goto(f"x/services/{sid}")
                await board.wait_text("table.apps", "/signed/in", timeout=5)
                await board.wait_text(".fw-live", "live", timeout=5)
                await hosted.svc.ok("PUT", "/v2/apps/signed/in", {"instances": 2},
                                    force=True)
                await shows_within(board, ROW_HAS, {"rows": "table.apps tbody tr",
                                                    "all": ["/signed/in", "2 desired"]},
                                   "the scale-up, signed in")
                await board.goto(f"x/batch/{bid}")
                await board.wait_text("#batch-runs", "No run yet", timeout=5)
                await board.wait_text(".fw-live", "live", timeout=5)
                board.assert_clean()
            # a framework nobody trusted with credentials never gets them
            auth.rules.remove(trust)
            status, _, body = await request(
                "GET", f"{url}/master/frameworks/{sid}/api/v2/apps", headers=ops)
            assert status == 502 and b"does not forward" in body
            status, _, _ = await request("GET", f"{url}/master/frameworks/{sid}/api/v2/apps")
            assert status == 401  # and the master itself still wants the caller's
            auth.rules.append(trust)
    finally:
        await agent.stop(kill_tasks=True)
        await master.stop()
