"""API contract of /v2/apps: status codes, shapes, 409 and 422 as Marathon answers."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio

APP = {"id": "/web", "cmd": "sleep 1000", "instances": 2, "cpus": 0.1, "mem": 16}


async def test_create_answers_201_with_marathon_defaults(offline) -> None:
    status, body, headers = await offline.call("POST", "/v2/apps", APP)
    assert status == 201
    assert headers["Location"] == "/v2/apps/web"
    assert headers["Marathon-Deployment-Id"] == body["deployments"][0]["id"]
    assert body["id"] == "/web" and body["instances"] == 2 and body["cmd"] == "sleep 1000"
    assert body["backoffSeconds"] == 1 and body["backoffFactor"] == 1.15
    assert body["maxLaunchDelaySeconds"] == 300
    assert body["upgradeStrategy"] == {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0}
    assert body["killSelection"] == "YOUNGEST_FIRST"
    assert body["portDefinitions"] == [{"port": 10000, "protocol": "tcp", "labels": {}}]
    assert body["networks"] == [{"mode": "host"}]
    assert body["version"] == body["versionInfo"]["lastConfigChangeAt"]
    assert body["tasks"] == [] and body["tasksRunning"] == 0


async def test_relative_and_nested_ids(offline) -> None:
    await offline.ok("POST", "/v2/apps", {**APP, "id": "prod/api"})
    app = await offline.app("/prod/api")
    assert app["id"] == "/prod/api"
    assert (await offline.ok("GET", "/v2/apps/prod/api/tasks")) == {"tasks": []}
    versions = await offline.ok("GET", "/v2/apps/prod/api/versions")
    assert versions["versions"] == [app["version"]]
    assert (await offline.ok("GET", f"/v2/apps/prod/api/versions/{app['version']}"))["id"] == \
        "/prod/api"


async def test_duplicate_create_is_409(offline) -> None:
    await offline.ok("POST", "/v2/apps", APP)
    status, body, _ = await offline.call("POST", "/v2/apps", APP)
    assert status == 409
    assert body["message"] == "An app with id [/web] already exists."


@pytest.mark.parametrize(("app", "path"), [
    ({"id": "/x", "cmd": "a", "instances": -1}, "/instances"),
    ({"id": "/x", "cmd": "a", "instances": "3"}, "/instances"),
    ({"id": "/x", "cmd": "a", "cpus": 0}, "/cpus"),
    ({"id": "/x", "container": {"type": "DOCKER", "docker": {"image": ""}}},
     "/container/docker/image"),
    ({"id": "/x", "container": {"type": "DOCKER", "docker": {"image": 7}}},
     "/container/docker/image"),
    ({"id": "/x", "cmd": "a", "healthChecks": [{"protocol": "HTTP", "portIndex": 3}]},
     "/healthChecks(0)"),
    ({"id": "/x", "cmd": "a", "healthChecks": [{"protocol": "SMOKE"}]},
     "/healthChecks(0)/protocol"),
    ({"id": "/x", "cmd": "a", "constraints": [["hostname", "MAX_PER"]]}, "/constraints(0)"),
    ({"id": "/x", "cmd": "a", "upgradeStrategy": {"minimumHealthCapacity": 2}},
     "/upgradeStrategy/minimumHealthCapacity"),
    ({"id": "/Bad_Id", "cmd": "a"}, "/id"),
    ({"id": "/a/tasks", "cmd": "a"}, "/id"),
    ({"cmd": "a"}, "/id"),
    ({"id": "/x", "cmd": "a", "args": ["b"]}, "/"),
    ({"id": "/x"}, "/"),
    ({"id": "/x", "cmd": "a", "killSelection": "RANDOM"}, "/killSelection"),
    ({"id": "/x", "cmd": "a", "env": {"K": {"secret": "s"}}}, "/env/K"),
    ({"id": "/x", "cmd": "a", "labels": {"MESOSLITE_DEPLOYMENT_TIMEOUT_SECONDS": "soon"}},
     "/labels/MESOSLITE_DEPLOYMENT_TIMEOUT_SECONDS"),
])
async def test_invalid_definitions_are_422_with_marathon_paths(offline, app, path) -> None:
    status, body, _ = await offline.call("POST", "/v2/apps", app)
    assert status == 422, body
    assert body["message"] == "Object is not valid"
    assert path in [d["path"] for d in body["details"]], body
    assert all(d["errors"] for d in body["details"])


async def test_persistent_volumes_in_role_star_are_refused_not_left_waiting(offline) -> None:
    app = {"id": "/db", "cmd": "sleep 100", "cpus": 0.1, "mem": 32, "container": {
        "type": "MESOS", "volumes": [{"containerPath": "data", "mode": "RW",
                                      "persistent": {"size": 10}}]}}
    status, body, _ = await offline.call("POST", "/v2/apps", app)
    assert status == 422, body
    [detail] = body["details"]
    assert detail["path"] == "/container/volumes" and "named role" in detail["errors"][0]
    status, _, _ = await offline.call("GET", "/v2/apps/db")
    assert status == 404  # nothing half-created
    status, body, _ = await offline.call("PUT", "/v2/apps/db", app)
    assert status == 422, body


async def test_malformed_json_is_400(offline) -> None:
    status, body, _ = await offline.call("POST", "/v2/apps", None)
    assert status == 400 and "JSON" in body["message"]


async def test_unknown_and_unhonoured_fields_are_accepted_and_named(offline) -> None:
    app = {**APP, "storeUrls": ["http://example.com/x"], "user": "nobody",
           "someFutureField": {"x": 1}}
    status, body, headers = await offline.call("POST", "/v2/apps", app)
    assert status == 201
    assert body["storeUrls"] == ["http://example.com/x"] and body["user"] == "nobody"
    assert body["someFutureField"] == {"x": 1}  # kept, echoed back
    assert "storeUrls" in headers["Warning"] and "/someFutureField" in headers["Warning"]
    assert "user" not in headers["Warning"]  # honoured: the tasks run as that user


async def test_fetch_is_honoured_and_rendered_as_marathon_does(offline) -> None:
    app = {**APP, "fetch": [{"uri": "http://example.com/x.tgz"},
                            {"uri": "/opt/run.sh", "executable": True, "cache": True,
                             "destPath": "bin/run"}]}
    status, body, headers = await offline.call("POST", "/v2/apps", app)
    assert status == 201 and "Warning" not in headers
    assert body["fetch"] == [
        {"uri": "http://example.com/x.tgz", "extract": True, "executable": False,
         "cache": False},
        {"uri": "/opt/run.sh", "extract": True, "executable": True, "cache": True,
         "destPath": "bin/run"}]


async def test_legacy_uris_become_fetch(offline) -> None:
    status, body, _ = await offline.call(
        "POST", "/v2/apps", {**APP, "uris": ["http://example.com/app.zip"]})
    assert status == 201
    assert body["fetch"] == [{"uri": "http://example.com/app.zip", "extract": True,
                              "executable": False, "cache": False}]
    assert "uris" not in body


@pytest.mark.parametrize(("extra", "path"), [
    ({"fetch": [{"uri": "http://e/a"}, {"uri": "ftp://e/b.tgz"}]}, "/fetch(1)/uri"),
    ({"fetch": [{"uri": "http://e/a", "destPath": "../a"}]}, "/fetch(0)/destPath"),
    ({"uris": ["hdfs://nn/app.jar"]}, "/uris(0)"),
    ({"uris": ["http://e/a"], "fetch": [{"uri": "http://e/b"}]}, "/uris"),
])
async def test_what_the_fetcher_cannot_take_is_422_with_the_field(offline, extra, path) -> None:
    status, body, _ = await offline.call("POST", "/v2/apps", {**APP, **extra})
    assert status == 422, body
    assert [d["path"] for d in body["details"]] == [path]


async def test_legacy_docker_networking_is_read(offline) -> None:
    app = {"id": "/redis", "instances": 1, "cpus": 0.1, "mem": 32,
           "container": {"type": "DOCKER", "docker": {
               "image": "mesoslite/busybox:latest", "network": "BRIDGE",
               "portMappings": [{"containerPort": 6379, "hostPort": 0}]}}}
    body = (await offline.call("POST", "/v2/apps", app))[1]
    assert body["networks"] == [{"mode": "container/bridge"}]
    [mapping] = body["container"]["portMappings"]
    assert mapping["containerPort"] == 6379 and mapping["hostPort"] == 0
    assert mapping["servicePort"] >= 10000


async def test_get_list_embed_and_filters(offline) -> None:
    await offline.ok("POST", "/v2/apps", {**APP, "labels": {"tier": "front"}})
    await offline.ok("POST", "/v2/apps", {**APP, "id": "/db", "cmd": "sleep 5"})
    listed = await offline.ok("GET", "/v2/apps")
    assert [a["id"] for a in listed["apps"]] == ["/db", "/web"]
    assert "tasks" not in listed["apps"][0] and "tasksRunning" in listed["apps"][0]
    with_tasks = await offline.ok("GET", "/v2/apps", embed="apps.tasks")
    assert all(a["tasks"] == [] for a in with_tasks["apps"])
    assert [a["id"] for a in (await offline.ok("GET", "/v2/apps", id="we"))["apps"]] == ["/web"]
    assert [a["id"] for a in (await offline.ok("GET", "/v2/apps", cmd="sleep 5"))["apps"]] == [
        "/db"]
    labelled = await offline.ok("GET", "/v2/apps", label="tier==front")
    assert [a["id"] for a in labelled["apps"]] == ["/web"]
    status, body, _ = await offline.call("GET", "/v2/apps/nope")
    assert status == 404 and body["message"] == "App '/nope' does not exist"


async def test_changes_while_deploying_are_409_unless_forced(offline) -> None:
    created = (await offline.call("POST", "/v2/apps", APP))[1]
    held_by = created["deployments"][0]["id"]
    for method, path, body in [("PUT", "/v2/apps/web", {"instances": 3}),
                               ("PATCH", "/v2/apps/web", {"instances": 3}),
                               ("DELETE", "/v2/apps/web", None),
                               ("POST", "/v2/apps/web/restart", None)]:
        status, answer, _ = await offline.call(method, path, body)
        assert status == 409, (method, path)
        assert answer["deployments"] == [{"id": held_by}]
        assert "force=true" in answer["message"]
    result = await offline.ok("PUT", "/v2/apps/web", {"instances": 3}, force=True)
    assert set(result) == {"deploymentId", "version"}
    deployments = await offline.ok("GET", "/v2/deployments")
    assert [d["id"] for d in deployments] == [result["deploymentId"]]


async def test_scale_versus_config_change_versions(offline) -> None:
    await offline.ok("POST", "/v2/apps", APP)
    before = await offline.app("/web")
    await offline.ok("PUT", "/v2/apps/web", {"instances": 5}, force=True)
    scaled = await offline.app("/web")
    assert scaled["instances"] == 5 and scaled["version"] > before["version"]
    assert scaled["versionInfo"]["lastConfigChangeAt"] == before["versionInfo"][
        "lastConfigChangeAt"]
    assert scaled["versionInfo"]["lastScalingAt"] == scaled["version"]
    await offline.ok("PATCH", "/v2/apps/web", {"cmd": "sleep 2000"}, force=True)
    changed = await offline.app("/web")
    assert changed["versionInfo"]["lastConfigChangeAt"] == changed["version"]
    assert changed["instances"] == 5, "a partial update keeps other fields"
    # re-sending the same definition (service port 0 again) is not a change
    await offline.ok("PUT", "/v2/apps/web", {**APP, "instances": 5, "cmd": "sleep 2000",
                                             "portDefinitions": [{"port": 0}]}, force=True)
    same = await offline.app("/web")
    assert same["versionInfo"]["lastConfigChangeAt"] == changed["versionInfo"][
        "lastConfigChangeAt"]
    assert same["portDefinitions"][0]["port"] == changed["portDefinitions"][0]["port"]


async def test_put_replace_and_create(offline) -> None:
    status, body, _ = await offline.call("PUT", "/v2/apps/fresh", {"cmd": "sleep 1"})
    assert status == 201 and set(body) == {"deploymentId", "version"}
    await offline.ok("POST", "/v2/apps", {**APP, "mem": 64})
    await offline.ok("PUT", "/v2/apps/web", {"cmd": "sleep 3"}, partialUpdate=False,
                     force=True)
    app = await offline.app("/web")
    assert app["mem"] == 128 and app["instances"] == 1, "a full replace resets to defaults"


async def test_rollback_to_a_version(offline) -> None:
    await offline.ok("POST", "/v2/apps", APP)
    first = (await offline.app("/web"))["version"]
    await offline.ok("PUT", "/v2/apps/web", {"cmd": "sleep 2"}, force=True)
    result = await offline.ok("PUT", "/v2/apps/web", {"version": first}, force=True)
    app = await offline.app("/web")
    assert app["cmd"] == "sleep 1000" and app["version"] == result["version"] != first
    status, _, _ = await offline.call("PUT", "/v2/apps/web",
                                      {"version": "2001-01-01T00:00:00.000Z"}, force=True)
    assert status == 404
    versions = (await offline.ok("GET", "/v2/apps/web/versions"))["versions"]
    assert versions == sorted(versions, reverse=True) and len(versions) == 3
    status, _, _ = await offline.call("GET", "/v2/apps/web/versions/2001-01-01T00:00:00.000Z")
    assert status == 404


async def test_delete_and_restart(offline) -> None:
    await offline.ok("POST", "/v2/apps", APP)
    restarted = await offline.ok("POST", "/v2/apps/web/restart", force=True)
    assert set(restarted) == {"deploymentId", "version"}
    deleted = await offline.ok("DELETE", "/v2/apps/web", force=True)
    assert set(deleted) == {"deploymentId", "version"}
    assert (await offline.call("GET", "/v2/apps/web"))[0] == 404
    assert (await offline.call("DELETE", "/v2/apps/web"))[0] == 404
    assert (await offline.call("POST", "/v2/apps/web/restart"))[0] == 404
    [d] = await offline.ok("GET", "/v2/deployments")
    assert d["currentActions"][0]["action"] == "StopApplication"


async def test_method_not_allowed_is_json(offline) -> None:
    await offline.ok("POST", "/v2/apps", APP)
    status, body, headers = await offline.call("POST", "/v2/apps/web")
    assert status == 405 and "not allowed" in body["message"]
    assert "GET" in headers.get("Allow", "")


async def test_batch_update(offline) -> None:
    status, body, _ = await offline.call("PUT", "/v2/apps", [
        {**APP, "id": "/a"}, {**APP, "id": "/b", "instances": 0}])
    assert status == 200 and body["deploymentId"]
    assert [a["id"] for a in (await offline.ok("GET", "/v2/apps"))["apps"]] == ["/a", "/b"]
    status, body, _ = await offline.call("PUT", "/v2/apps", [{"id": "/c", "instances": -2,
                                                              "cmd": "x"}])
    assert status == 422 and body["details"][0]["path"] == "/(0)/instances"


async def test_deployment_events_reach_sse(offline) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(offline.url + "/v2/events",
                     params={"event_type": "deployment_info"}) as stream:
        await offline.ok("POST", "/v2/apps", APP)
        seen = b""
        while b"deployment_info" not in seen or b"\n\n" not in seen:
            seen += await stream.content.readany()
    assert b"event: deployment_info" in seen
    assert b'"eventType":"deployment_info"' in seen
    assert b"api_post_event" not in seen, "the event_type filter applies"


@pytest.mark.parametrize("name", ["web.json", "httpd-docker.json"])
async def test_example_apps_are_valid(offline, name) -> None:
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "apps" / name
    status, body, headers = await offline.call("POST", "/v2/apps", json.loads(path.read_text()))
    assert status == 201, body
    assert "Warning" not in headers
