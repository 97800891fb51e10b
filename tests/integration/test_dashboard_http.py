"""The master's HTTP side of the dashboard: static files with a strict CSP, the
sandbox and browse proxies to agents, the queues of frameworks and their API proxy."""

from __future__ import annotations

import json

from mesoslite.messages.mesos import TaskState
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from tests.ui.helpers import serve_json


async def test_dashboard_is_served_with_a_strict_content_security_policy(cluster):
    for path in ("/", "/ui/", "/ui/js/app.js", "/ui/css/app.css", "/ui/plugins/index.js"):
        status, headers, body = await request("GET", cluster.master_url + path)
        assert status == 200, path
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    status, headers, body = await request("GET", cluster.master_url + "/")
    assert headers["Content-Type"].startswith("text/html") and b"/ui/js/app.js" in body
    _, headers, _ = await request("GET", cluster.master_url + "/ui/js/app.js")
    assert "javascript" in headers["Content-Type"]
    for bad in ("/ui/../server.py", "/ui/%2e%2e/server.py", "/ui/nope.js"):
        status, _, _ = await request("GET", cluster.master_url + bad)
        assert status in (400, 404), bad


async def test_sandbox_and_browse_proxies_read_a_tasks_files(cluster, framework):
    offer = await framework.run_task("files-1", "printf 'hello <b>sandbox</b>\\n'; sleep 30")
    await framework.wait_state("files-1", TaskState.TASK_RUNNING)
    aid, fid = offer.agent_id.value, framework.id
    base = f"{cluster.master_url}/master"

    async def listing() -> dict | None:
        status, _, body = await request("GET", f"{base}/browse/{aid}/{fid}/files-1")
        data = json.loads(body)
        names = {e["path"] for e in data["entries"]}
        return data if status == 200 and {"stdout", "stderr"} <= names else None

    data = await wait_for(listing, message="stdout and stderr in the listing")
    assert data["exists"] is True
    assert all(not e["path"].startswith("/") for e in data["entries"])

    async def stdout() -> tuple | None:
        got = await request("GET", f"{base}/sandbox/{aid}/{fid}/files-1/stdout")
        return got if got[2] else None

    status, headers, body = await wait_for(stdout, message="the task's stdout")
    assert status == 200 and body == b"hello <b>sandbox</b>\n"
    assert headers["Content-Type"].startswith("text/plain")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-File-Size"] == str(len(body))
    status, headers, body = await request(
        "GET", f"{base}/sandbox/{aid}/{fid}/files-1/stdout?offset=6&length=3")
    assert body == b"<b>" and headers["X-File-Size"] == "21"

    status, _, body = await request("GET", f"{base}/browse/{aid}/{fid}/not-yet")
    assert status == 200 and json.loads(body) == {"path": "", "exists": False, "entries": []}
    for bad in (f"{base}/sandbox/{aid}/{fid}/files-1/..%2F..%2Fagent.json",
                f"{base}/browse/{aid}/{fid}/files-1?path=../../",
                f"{base}/sandbox/{aid}/{fid}/%2E%2E/stdout"):
        status, _, _ = await request("GET", bad)
        assert status in (400, 404), bad
    status, _, _ = await request("GET", f"{base}/sandbox/no-such-agent/{fid}/files-1/stdout")
    assert status == 404
    status, _, _ = await request("GET", f"{base}/sandbox/{aid}/{fid}/files-1/missing")
    assert status == 404
    await framework.driver.teardown()


async def test_queues_ask_frameworks_that_announce_a_webui_url(cluster):
    url, runner = await serve_json({"/v1/queue": {"queue": [{"id": "x", "why": "because"}]},
                                    "/v1/thing": {"ok": True}})
    fw = RecordingFramework(cluster.master_url, name="queued")
    fw.info.webui_url = url
    plain = RecordingFramework(cluster.master_url, name="plain")
    try:
        await fw.start()
        await plain.start()
        status, _, body = await request("GET", cluster.master_url + "/master/queues")
        assert status == 200
        [entry] = json.loads(body)["frameworks"]
        assert entry["name"] == "queued" and entry["path"] == "v1/queue"
        assert entry["queue"] == {"queue": [{"id": "x", "why": "because"}]}
        status, _, body = await request(
            "GET", f"{cluster.master_url}/master/frameworks/{fw.id}/api/v1/thing")
        assert status == 200 and json.loads(body) == {"ok": True}
        status, _, _ = await request(
            "GET", f"{cluster.master_url}/master/frameworks/{plain.id}/api/v1/thing")
        assert status == 404
    finally:
        await fw.stop()
        await plain.stop()
        await runner.cleanup()
