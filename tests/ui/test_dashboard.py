"""The dashboard in a real headless Chromium: every page loads without console
errors, live changes show within 2 s of happening, data is escaped, and the
screenshots are kept (test-artifacts/ui/, and docs/dashboard-overview.png)."""

from __future__ import annotations

import datetime
import time

from mesoslite.messages.mesos import TaskState
from mesoslite.testing.framework import RecordingFramework
from tests.ui.helpers import REPO, Dashboard, open_dashboard, serve_json

LIVE = 2.0  # seconds: the deadline for a change to show in the page
XSS_NAME = "<img src=x onerror=alert(1)>"


async def settle(fw: RecordingFramework) -> None:
    """The framework wants nothing more: suppress and give its offers back."""
    await fw.driver.suppress()
    offers = list(fw.sched.open_offers)
    fw.sched.open_offers.clear()
    if offers:
        await fw.driver.decline(offers, refuse_seconds=600)


async def no_xss(board: Dashboard) -> None:
    assert await board.page.evaluate("document.querySelectorAll('img, script:not([src])')"
                                     ".length") == 0
    board.assert_clean()


def marathon_queue() -> dict:
    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=4)
    return {"queue": [{
        "app": {"id": "/storefront/search"}, "count": 2,
        "delay": {"timeLeftSeconds": 0, "overdue": True},
        "since": since.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "processedOffersSummary": {
            "processedOffersCount": 9, "unusedOffersCount": 9,
            "waitingReason": "no agent has 4 GB of memory free",
            "rejectSummaryLastOffers": [
                {"reason": "InsufficientMemory", "declined": 3, "processed": 3},
                {"reason": "UnfulfilledConstraint", "declined": 0, "processed": 3}]},
        "lastUnusedOffers": []}]}


def batch_queue() -> dict:
    return {"queue": [{"run": "nightly-42", "job": "nightly-report", "step": "aggregate",
                       "tasks": [0, 1, 2], "status": "held",
                       "why": "waits for step 'extract' to finish"}]}


async def test_every_page_loads_clean_and_the_overview_screenshot(ui_cluster, framework_factory):
    cluster = ui_cluster
    queues = []
    async with open_dashboard(cluster.master_url) as board:
        await board.goto("")  # open first: the events feed fills as things happen
        web = await framework_factory(cluster.master_url, name="web")
        for i in range(3):
            await web.run_task(f"web-{i}", "sleep 600", cpus=0.5, mem=256,
                               labels={"team": "storefront"})
        for i in range(3):
            await web.wait_state(f"web-{i}", TaskState.TASK_RUNNING)
        await settle(web)
        etl = await framework_factory(cluster.master_url, name="etl")
        await etl.run_task("etl-extract", "true", cpus=0.25, mem=128)
        await etl.run_task("etl-load", "exit 3", cpus=0.25, mem=128)
        await etl.run_task("etl-transform", "sleep 600", cpus=1, mem=512)
        await etl.wait_state("etl-transform", TaskState.TASK_RUNNING)
        await etl.wait_state("etl-load", TaskState.TASK_FAILED)
        await settle(etl)
        try:
            for name, routes in (("services-demo", {"/v2/queue": marathon_queue()}),
                                 ("batch-demo", {"/v1/queue": batch_queue()})):
                url, runner = await serve_json(routes)
                fw = RecordingFramework(cluster.master_url, name=name)
                fw.info.webui_url = url
                queues.append((fw, runner))
                await fw.start()
                await settle(fw)
            await board.wait_text("table.agents", "agent3")
            await board.wait_text("table.tasks", "etl-transform")
            await board.wait_text(".feed", "etl-load")
            await board.wait_text("#waiting", "InsufficientMemory: 3 of 3 offers", timeout=10)
            await board.wait_text("#waiting", "waits for step 'extract' to finish", timeout=10)
            await board.wait_text("table.frameworks", "batch-demo")
            await board.screenshot("overview",
                                   docs_copy=REPO / "docs" / "dashboard-overview.png")

            await board.page.click("table.agents a >> text=agent1")
            await board.wait_text("h1", "agent1")
            await board.wait_text(".kv", "zone=eu-1a")
            await board.screenshot("agent")

            await board.page.click("a >> text=Cluster")
            await board.wait_text("table.frameworks", "etl", timeout=5)
            await board.page.click("table.frameworks a >> text=etl")
            await board.wait_text("h1", "etl")
            await board.wait_text("table", "etl-load")
            await board.screenshot("framework")

            await board.page.click("table a >> text=etl-transform")
            await board.wait_text("h1", "etl-transform")
            await board.wait_text(".timeline", "running")
            await board.screenshot("task")
            await board.goto("no/such/page")
            await board.wait_text("h1", "Not found")
            board.assert_clean()
        finally:
            for fw, runner in queues:
                await fw.driver.teardown()
                await fw.stop()
                await runner.cleanup()
            await web.driver.teardown()
            await etl.driver.teardown()


async def test_a_launched_task_and_a_stopped_agent_show_within_two_seconds(
        ui_cluster, framework_factory):
    cluster = ui_cluster
    fw = await framework_factory(cluster.master_url, name="live")
    async with open_dashboard(cluster.master_url) as board:
        await board.goto("")
        await board.wait_text("table.agents", "agent3", timeout=5)
        stopped = next(a for a in cluster.agents if a.hostname == "agent2")
        keeps = next(a for a in cluster.agents if a.hostname == "agent1")
        # on an agent that stays: tasks outlive a stopped agent (cluster.stop skips it)
        await fw.run_task("live-1", "sleep 600", agent_id=keeps.agent_id)
        await fw.wait_state("live-1", TaskState.TASK_RUNNING)
        seen = time.monotonic()
        await board.wait_for(
            "[...document.querySelectorAll('table.tasks tbody tr')].some((tr) =>"
            " tr.textContent.includes('live-1') && tr.querySelector('.st-running'))",
            timeout=LIVE, what="live-1 running in the tasks table")
        assert time.monotonic() - seen < LIVE

        await cluster.stop_agent(cluster.agents.index(stopped))
        await board.wait_for(
            "[...document.querySelectorAll('table.agents tbody tr')].some((tr) =>"
            " tr.textContent.includes('agent2') && tr.querySelector('.st-disconnected'))",
            timeout=LIVE, what="agent2 disconnected in the agents table")
        await board.wait_text(".feed", "agent2", timeout=LIVE)
        await board.screenshot("live-changes")
        board.assert_clean()
    await fw.driver.teardown()


async def test_names_and_labels_are_shown_literally_never_as_html(
        ui_cluster, framework_factory):
    cluster = ui_cluster
    fw = await framework_factory(cluster.master_url, name="<i>evil</i> framework")
    await fw.run_task("xss-1", "sleep 600", labels={"<b>note</b>": "<script>alert(2)</script>"})
    # the task's name is set by run_task to its id: launch one with the hostile name
    offer = await fw.offer()
    from mesoslite.scheduler import task_info

    task = task_info(XSS_NAME, "xss-2", offer.agent_id, cmd="sleep 600", cpus=0.1, mem=16)
    await fw.launch(offer, [task])
    await fw.wait_state("xss-2", TaskState.TASK_RUNNING)
    async with open_dashboard(cluster.master_url) as board:
        await board.goto("")
        await board.wait_text("table.tasks", XSS_NAME, timeout=5)
        await board.wait_text("table.frameworks", "<i>evil</i> framework", timeout=5)
        await board.wait_text(".feed, table.tasks", XSS_NAME)
        await no_xss(board)
        await board.goto(f"tasks/{fw.id}/xss-2")
        await board.wait_text("h1", XSS_NAME, timeout=5)
        await no_xss(board)
        await board.goto(f"tasks/{fw.id}/xss-1")
        await board.wait_text(".kv", "<b>note</b>=<script>alert(2)</script>", timeout=5)
        await board.goto(f"frameworks/{fw.id}")
        await board.wait_text("h1", "<i>evil</i> framework", timeout=5)
        await board.screenshot("escaping")
        await no_xss(board)
    await fw.driver.teardown()


async def test_task_page_tails_the_log_live(ui_cluster, framework_factory):
    cluster = ui_cluster
    fw = await framework_factory(cluster.master_url, name="logs")
    await fw.run_task("chatty", "i=0; while true; do i=$((i+1)); echo line-$i; "
                                "echo oops-$i >&2; sleep 0.2; done")
    await fw.wait_state("chatty", TaskState.TASK_RUNNING)
    async with open_dashboard(cluster.master_url) as board:
        await board.goto(f"tasks/{fw.id}/chatty")
        await board.wait_text(".timeline", "running", timeout=5)
        await board.wait_text("table.files", "stdout", timeout=5)
        await board.wait_text("#log", "line-1\n", timeout=5)
        last = await board.page.evaluate(
            "Math.max(...[...document.getElementById('log').textContent"
            ".matchAll(/line-(\\d+)/g)].map((m) => Number(m[1])))")
        # the task writes a line every 0.2 s: a newer one shows within the deadline
        await board.wait_text("#log", f"line-{last + 3}\n", timeout=LIVE)
        await board.page.click("button >> text=stderr")
        await board.wait_text("#log", "oops-", timeout=LIVE)
        await board.screenshot("task-log")
        board.assert_clean()
    await fw.driver.teardown()
