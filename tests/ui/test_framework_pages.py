"""The services and batch frameworks' dashboard pages in a real headless Chromium,
with both frameworks hosted on an in-process cluster (process tasks): every page
loads without console errors, changes show within 2 s of happening (the frameworks'
event streams, relayed by the master), hostile text is shown literally, and the
screenshots are kept (test-artifacts/ui/, and docs/dashboard-pipeline.png)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from frameworks.services.model import DEPLOYMENT_TIMEOUT_LABEL
from mesoslite.testing.poll import wait_for
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
    async with open_dashboard(hosted.cluster.master_url) as board:
        # the framework's page links to its plugin tab
        await board.goto(f"frameworks/{fid}")
        await board.wait_text(".plugin-tabs", "Services", timeout=5)
        await board.page.click(".plugin-tabs a >> text=Services")
        await board.wait_text("#services-apps", "No app yet", timeout=5)
        await board.wait_text(".fw-live", "live", timeout=5)

        await api.ok("POST", "/v2/apps", {"id": "/shop/web", "cmd": "sleep 600",
                                          "instances": 1, "cpus": 0.1, "mem": 32,
                                          "labels": {"note": XSS}})
        await shows_within(board, ROW_HAS, {"rows": "table.apps tbody tr",
                                            "all": ["/shop/web"]}, "the new app")
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
        await wait_for(lambda: no_deployments(api), 30, interval=0.1)
        await board.wait_for("!document.querySelector('#services-deployments .deployment')",
                             timeout=LIVE, what="no deployment left in progress")
        await board.wait_text("table.apps", XSS)
        await board.screenshot("services")
        await no_xss(board)

        # the app's page: instances with host, ports, health, state; versions; why waiting
        await board.page.click("table.apps a >> text=/shop/web")
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


async def no_deployments(api) -> bool:
    return await api.ok("GET", "/v2/deployments") == []


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
    async with open_dashboard(hosted.cluster.master_url) as board:
        await board.goto(f"x/batch/{fid}")
        await board.wait_text("#batch-runs", "No run yet", timeout=5)
        await board.wait_text(".fw-live", "live", timeout=5)
        await api.ok("POST", "/v1/jobs", pipeline(gates))
        run = await api.ok("POST", "/v1/jobs/nightly-etl/runs")
        await shows_within(board, ROW_HAS, {"rows": "table.runs tbody tr",
                                            "all": [run["id"], XSS]}, "the new run")
        print("WAITING", await board.page.evaluate("document.querySelector('#batch-waiting').textContent"))
        await board.wait_text("#batch-waiting", "insufficient cpus", timeout=10)
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
        await board.wait_text("#run-waiting", "insufficient cpus", timeout=LIVE)
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
        await board.wait_text("#batch-log", "loading", timeout=5)
        await board.page.mouse.move(0, 0)
        await board.screenshot("pipeline", docs_copy=REPO / "docs" / "dashboard-pipeline.png")
        await no_xss(board)

        (gates / "load").touch()
        await wait_for(lambda: step_state_is(api, run["id"], "archive", "SUCCEEDED"), 20,
                       interval=0.05)
        await shows_within(board, state, ["archive", "SUCCEEDED"], "archive succeeded")
        await api.ok("POST", f"/v1/runs/{run['id']}/actions/stop")
        await board.wait_text(".page-head", "CANCEL", timeout=5)

        await board.goto(f"x/batch/{fid}")
        await board.wait_text("table.jobs", "nightly-etl", timeout=5)
        await no_xss(board)


async def step_state_is(api, run_id: str, step: str, wanted: str) -> bool:
    return await step_state(api, run_id, step) == wanted

