"""Marathon pods (/v2/pods) on task groups, with the real Docker engine: two containers
sharing localhost and a volume, ::status, scaling, a rolling update, a failing
per-container health check, delete; the API's contracts (422 shapes, warnings, PUT
creating, versions, events).  Docker tests need the busybox test image."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from mesoslite.testing.poll import wait_for
from tests.services.conftest import IMAGE, Api

pytestmark = [pytest.mark.asyncio]

# "web" serves the shared volume on 8080; "probe" fetches it over 127.0.0.1 (the
# group's one network namespace) and writes what it got into the shared volume.
WEB = ("echo hello-$MARATHON_APP_VERSION > /data/index.html; "
       "exec httpd -f -p 8080 -h /data")
PROBE = ("while ! wget -q -O /data/fetched http://127.0.0.1:8080/index.html; "
         "do sleep 0.2; done; exec sleep 3600")


def web_pod(pod_id: str, instances: int = 1, **extra: Any) -> dict[str, Any]:
    """A two-container bridged pod in Marathon's shape."""
    check = {"http": {"endpoint": "web", "path": "/index.html"}, "gracePeriodSeconds": 10,
             "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 2,
             "delaySeconds": 0}
    return {
        "id": pod_id, "scaling": {"kind": "fixed", "instances": instances},
        "networks": [{"mode": "container/bridge"}],
        "volumes": [{"name": "shared"}],
        "containers": [
            {"name": "web", "resources": {"cpus": 0.1, "mem": 32},
             "image": {"kind": "DOCKER", "id": IMAGE},
             "exec": {"command": {"shell": WEB}},
             "endpoints": [{"name": "web", "containerPort": 8080, "hostPort": 0}],
             "volumeMounts": [{"name": "shared", "mountPath": "/data"}],
             "healthCheck": check, "lifecycle": {"killGracePeriodSeconds": 0}},
            {"name": "probe", "resources": {"cpus": 0.1, "mem": 32},
             "image": {"kind": "DOCKER", "id": IMAGE},
             "exec": {"command": {"shell": PROBE}},
             "volumeMounts": [{"name": "shared", "mountPath": "/data"}],
             "lifecycle": {"killGracePeriodSeconds": 0}},
        ],
        "scheduling": {"upgrade": {"minimumHealthCapacity": 1, "maximumOverCapacity": 1}},
        **extra,
    }


async def stable(api: Api, pod_id: str, n: int, timeout: float = 90) -> dict[str, Any]:
    """Wait until ::status shows exactly ``n`` instances, all STABLE."""
    async def check() -> dict[str, Any] | None:
        status = await api.ok("GET", f"/v2/pods{pod_id}::status")
        ok = [i for i in status["instances"] if i["status"] == "STABLE"]
        return status if len(ok) == n == len(status["instances"]) else None

    return await wait_for(check, timeout, interval=0.2,
                          message=f"{n} stable instances of {pod_id}")


@pytest.fixture
async def dapi(dcluster, services_factory) -> Api:
    server = await services_factory(dcluster.master_url)
    await wait_for(lambda: server.reconciled, 10, message="reconciled")
    return Api(server.url)


@pytest.mark.docker
async def test_pod_shares_localhost_and_a_volume_scales_updates_and_goes(
        engine, dcluster, dapi) -> None:
    created = await dapi.call("POST", "/v2/pods", web_pod("/shop"))
    assert created[0] == 201, created
    assert created[2]["Marathon-Deployment-Id"]
    status = await stable(dapi, "/shop", 1)
    instance = status["instances"][0]
    assert {c["name"]: c["status"] for c in instance["containers"]} == {
        "web": "TASK_RUNNING", "probe": "TASK_RUNNING"}
    web = next(c for c in instance["containers"] if c["name"] == "web")
    port = web["endpoints"][0]["allocatedHostPort"]
    assert web["endpoints"][0]["healthy"] is True
    assert web["conditions"][0] == {**web["conditions"][0], "name": "healthy", "value": "true"}
    assert instance["agentHostname"].startswith("agent")
    # The mapped host port reaches "web"; "probe" reached it over 127.0.0.1 and wrote
    # what it got into the volume both mount, which "web" serves.
    version = status["spec"]["version"]

    async def fetched() -> str | None:
        async with aiohttp.ClientSession() as s, s.get(
                f"http://127.0.0.1:{port}/fetched") as r:
            return await r.text() if r.status == 200 else None

    assert (await wait_for(fetched, 30, interval=0.2, message="probe's copy")).strip() == (
        f"hello-{version}")

    # Scale through PUT (a scale: the running instance stays).
    await dapi.ok("PUT", "/v2/pods/shop", web_pod("/shop", instances=2))
    status = await stable(dapi, "/shop", 2)
    assert instance["id"] in {i["id"] for i in status["instances"]}
    await dapi.no_deployments(60)

    # A rolling update replaces both, never dropping below 2 healthy.
    updated = web_pod("/shop", instances=2, labels={"release": "2"})
    await dapi.ok("PUT", "/v2/pods/shop", updated)
    status = await wait_for(
        lambda: _all_new(dapi, "/shop", {i["id"] for i in status["instances"]}), 120,
        interval=0.3, message="every instance replaced")
    await dapi.no_deployments(60)
    versions = await dapi.ok("GET", "/v2/pods/shop::versions")
    assert len(versions) == 3 and versions == sorted(versions, reverse=True)

    # Delete: the instances go, and so does the pod.
    deleted = await dapi.call("DELETE", "/v2/pods/shop")
    assert deleted[0] == 202
    assert (await dapi.call("GET", "/v2/pods/shop"))[0] == 404
    await dapi.no_deployments(60)
    assert await dapi.ok("GET", "/v2/pods") == []


async def _all_new(api: Api, pod_id: str, old: set[str]) -> dict[str, Any] | None:
    status = await api.ok("GET", f"/v2/pods{pod_id}::status")
    ids = {i["id"] for i in status["instances"]}
    stable_count = sum(1 for i in status["instances"] if i["status"] == "STABLE")
    return status if len(ids) == 2 and not ids & old and stable_count == 2 else None


@pytest.mark.docker
async def test_a_failing_container_health_check_restarts_the_instance(
        engine, dcluster, dapi) -> None:
    pod = web_pod("/sick")
    # "web" serves until the file "sick" appears in the shared volume.
    pod["containers"][0]["exec"]["command"]["shell"] = (
        "echo ok > /data/index.html; httpd -p 8080 -h /data; "
        "while [ ! -f /data/sick ]; do sleep 0.2; done; rm /data/index.html; exec sleep 3600")
    pod["containers"][1]["exec"]["command"]["shell"] = "sleep 5; touch /data/sick; sleep 3600"
    await dapi.ok("POST", "/v2/pods", pod)
    first = (await stable(dapi, "/sick", 1))["instances"][0]["id"]

    async def replaced() -> bool:
        status = await dapi.ok("GET", "/v2/pods/sick::status")
        return bool(status["instances"]) and status["instances"][0]["id"] != first

    await wait_for(replaced, 90, interval=0.3, message="the sick instance replaced")


async def test_pod_contract_offline(offline: Api) -> None:
    # 422 with Marathon's details for what a pod may not hold
    bad = web_pod("/bad")
    bad["containers"][0]["resources"]["cpus"] = -1
    bad["containers"][1]["volumeMounts"][0]["name"] = "nope"
    bad["networks"] = [{"mode": "container", "name": "dcos"}]
    status, body, _ = await offline.call("POST", "/v2/pods", bad)
    assert status == 422
    paths = {d["path"] for d in body["details"]}
    assert {"/containers(0)/resources/cpus", "/containers(1)/volumeMounts(0)/name",
            "/networks(0)/mode"} <= paths, body
    assert body["message"]
    unknown = web_pod("/odd")
    unknown["containers"][0]["gizmo"] = 1
    status, body, _ = await offline.call("POST", "/v2/pods", unknown)
    assert status == 422 and body["details"][0]["path"] == "/containers(0)/gizmo"
    # secrets: each reference must name an entry of secrets, each source a stored name
    secret = web_pod("/sec", secrets={"s": {"source": "Not A Name"}},
                     environment={"A": {"secret": "s"}, "B": {"secret": "missing"}})
    secret["volumes"].append({"name": "creds", "secret": "gone"})
    status, body, _ = await offline.call("POST", "/v2/pods", secret)
    assert status == 422, body
    assert {d["path"] for d in body["details"]} == {
        "/secrets/s/source", "/environment/B", f"/volumes({len(secret['volumes']) - 1})/secret"}
    secret = web_pod("/sec", secrets={"s": {"source": "db", "key": "password"}},
                     environment={"A": {"secret": "s"}, "PLAIN": "x"})
    await offline.ok("POST", "/v2/pods", secret)
    got = await offline.ok("GET", "/v2/pods/sec")
    assert got["secrets"] == {"s": {"source": "db", "key": "password"}}
    assert got["environment"] == {"A": {"secret": "s"}, "PLAIN": "x"}
    await offline.ok("DELETE", "/v2/pods/sec", force=True)

    # PUT creates; fields not acted on are named in a Warning and echoed back
    status, body, headers = await offline.call(
        "PUT", "/v2/pods/team/web", web_pod("/team/web", user="nobody"))
    assert status == 201 and headers["Location"] == "/v2/pods/team/web"
    assert "user is ignored" in headers["Warning"]
    got = await offline.ok("GET", "/v2/pods/team/web")
    assert got["user"] == "nobody" and got["containers"][1]["name"] == "probe"
    assert got["scaling"] == {"kind": "fixed", "instances": 1}
    assert [p["id"] for p in await offline.ok("GET", "/v2/pods")] == ["/team/web"]
    # a second change while the first deployment holds it: 409, force overrides
    status, body, _ = await offline.call("PUT", "/v2/pods/team/web",
                                         web_pod("/team/web", instances=2))
    assert status == 409 and body["deployments"]
    await offline.ok("PUT", "/v2/pods/team/web", web_pod("/team/web", instances=2),
                     force=True)
    versions = await offline.ok("GET", "/v2/pods/team/web::versions")
    assert len(versions) == 2
    old = await offline.ok("GET", f"/v2/pods/team/web::versions/{versions[-1]}")
    assert old["scaling"]["instances"] == 1
    status = await offline.ok("GET", "/v2/pods/team/web::status")
    assert status["status"] == "DEGRADED" and status["instances"] == []
    assert len(await offline.ok("GET", "/v2/pods/::status")) == 1
    # an app may not take a pod's id
    status, _, _ = await offline.call("POST", "/v2/apps", {"id": "/team/web", "cmd": "x"})
    assert status == 409
    assert (await offline.call("DELETE", "/v2/pods/team/web", force=True))[0] == 202
    assert (await offline.call("GET", "/v2/pods/team/web::status"))[0] == 404
    # cancelling the deployment of a new pod rolls it back: the pod is removed again
    _, _, headers = await offline.call("POST", "/v2/pods", web_pod("/undo"))
    deployments = await offline.ok("GET", "/v2/deployments")
    mine = next(d for d in deployments if d["id"] == headers["Marathon-Deployment-Id"])
    assert mine["affectedPods"] == ["/undo"] and mine["affectedApps"] == []
    await offline.ok("DELETE", f"/v2/deployments/{mine['id']}")
    assert (await offline.call("GET", "/v2/pods/undo"))[0] == 404


async def test_pod_events(offline: Api) -> None:
    await offline.ok("POST", "/v2/pods", web_pod("/ev"))
    await offline.ok("PUT", "/v2/pods/ev", web_pod("/ev", instances=2), force=True)
    await offline.call("DELETE", "/v2/pods/ev", force=True)
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        # an id of another run: the whole buffer is replayed
        async with aiohttp.ClientSession() as s, s.get(
                offline.url + "/v2/events", headers={"Last-Event-ID": "earlier-0"},
                params={"event_type": "pod_created_event,pod_updated_event,"
                                      "pod_deleted_event"}) as r:
            async for raw in r.content:
                line = raw.decode().strip()
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event["eventType"].startswith("pod_"):
                        seen.append(event)
                    if len(seen) == 3:
                        return

    await asyncio.wait_for(read(), 10)
    assert [e["eventType"] for e in seen] == ["pod_created_event", "pod_updated_event",
                                             "pod_deleted_event"]
    assert seen[0]["uri"] == "/v2/pods" and seen[2]["uri"] == "/v2/pods/ev"
    assert set(seen[0]) == {"eventType", "timestamp", "clientIp", "uri"}
