"""An existing Marathon client (thefactory's ``marathon`` package from PyPI) and
Marathon-shaped app JSON against the services framework, unchanged."""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import json
from pathlib import Path

import pytest

from mesoslite.testing.poll import wait_for

marathon = pytest.importorskip("marathon")
from marathon.models import MarathonApp
from marathon.models.constraint import MarathonConstraint

pytestmark = pytest.mark.asyncio
APPS = Path(__file__).parent / "marathon_apps"


@pytest.fixture(autouse=True)
def _client_py310_shim(monkeypatch) -> None:
    # marathon 0.13's JSON encoder uses collections.Iterable (gone since Python 3.10)
    # when an app has nested objects; that is the client's bug, not the server's.
    monkeypatch.setattr(collections, "Iterable", collections.abc.Iterable, raising=False)


async def call(fn, *args, **kwargs):
    """The client blocks (requests): run it off the loop the servers share."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def test_marathon_client_create_scale_list_kill_delete(services) -> None:
    client = marathon.MarathonClient(services.url, timeout=10)
    app = MarathonApp(cmd="sleep 1000", instances=2, cpus=0.1, mem=16,
                      constraints=[MarathonConstraint("hostname", "UNIQUE")])
    created = await call(client.create_app, "client-app", app)
    assert created.id == "/client-app" and created.instances == 2
    assert [c.operator for c in created.constraints] == ["UNIQUE"]

    async def running(n: int) -> bool:
        tasks = await call(client.list_tasks, "/client-app")
        return len([t for t in tasks if t.state == "TASK_RUNNING"]) == n

    await wait_for(lambda: running(2), 30, interval=0.2, message="2 tasks via the client")
    assert [a.id for a in await call(client.list_apps)] == ["/client-app"]
    fetched = await call(client.get_app, "/client-app", embed_tasks=True)
    assert fetched.tasks_running == 2 and len({t.host for t in fetched.tasks}) == 2
    await wait_for(lambda: asyncio.to_thread(lambda: not client.list_deployments()), 30)

    result = await call(client.scale_app, "/client-app", instances=3)
    assert result["deploymentId"]
    await wait_for(lambda: running(3), 30, interval=0.2, message="3 tasks after scaling")
    await wait_for(lambda: asyncio.to_thread(lambda: not client.list_deployments()), 30)

    victim = (await call(client.list_tasks, "/client-app"))[0].id
    assert await call(client.kill_given_tasks, [victim], scale=True)
    await wait_for(lambda: running(2), 30, interval=0.2, message="2 tasks after kill+scale")
    assert (await call(client.get_app, "/client-app")).instances == 2

    info = await call(client.get_info)
    assert info.framework_id and await call(client.ping) == b"pong"
    assert (await call(client.get_leader))["leader"]
    await wait_for(lambda: asyncio.to_thread(lambda: not client.list_deployments()), 30)
    await call(client.delete_app, "/client-app")
    assert await call(client.list_apps) == []


async def test_marathon_app_json_is_accepted_unchanged(offline) -> None:
    for name in ("webapp.json", "bridged.json"):
        body = json.loads((APPS / name).read_text())
        status, app, _headers = await offline.call("POST", "/v2/apps", body)
        assert status == 201, (name, app)
        assert app["instances"] == body["instances"] and app["cpus"] == body["cpus"]
    web = await offline.app("/products/web")
    assert web["labels"]["HAPROXY_GROUP"] == "external"
    assert web["portDefinitions"][0]["name"] == "http"
    assert web["healthChecks"][0]["protocol"] == "MESOS_HTTP"
    assert web["taskKillGracePeriodSeconds"] == 2
    bridged = await offline.app("/bridged-webapp")
    assert bridged["container"]["portMappings"][0]["servicePort"] == 9000
    assert bridged["networks"] == [{"mode": "container/bridge"}]


async def test_client_reads_every_app_shape(offline) -> None:
    """The client builds its objects from every key it receives (an unknown key is a
    TypeError there), so everything we render must be Marathon's."""
    for name in ("webapp.json", "bridged.json"):
        await offline.ok("POST", "/v2/apps", json.loads((APPS / name).read_text()))
    client = marathon.MarathonClient(offline.url)
    apps = await call(client.list_apps, embed_tasks=True, embed_counts=True,
                      embed_deployments=True, embed_last_task_failure=True,
                      embed_task_stats=True, embed_readiness=True)
    assert sorted(a.id for a in apps) == ["/bridged-webapp", "/products/web"]
    assert all(a.deployments for a in apps)
    queue = await call(client.list_queue)
    assert {q.app.id for q in queue} <= {"/bridged-webapp", "/products/web"}
    deployments = await call(client.list_deployments)
    assert {d.affected_apps[0] for d in deployments} == {"/bridged-webapp", "/products/web"}
    versions = await call(client.list_versions, "/products/web")
    assert (await call(client.get_version, "/products/web", versions[0])).id == "/products/web"
