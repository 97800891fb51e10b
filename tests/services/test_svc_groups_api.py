"""Marathon's ``/v2/groups`` request/response contracts over real HTTP (the framework
runs without a master: changes are accepted and stored, nothing launches): nested
trees, embeds, 409/404/422, structural update, scaleBy, versions and revert, delete,
the deployment plan ordered by dependencies, and groups surviving a restart."""

from __future__ import annotations

import pytest

from tests.services.conftest import Api

pytestmark = pytest.mark.asyncio

APP = {"cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}
SHOP = {
    "id": "/shop",
    "dependencies": [],
    "groups": [
        {"id": "db", "apps": [{**APP, "id": "store"}]},
        {"id": "/shop/web", "dependencies": ["../db"],
         "apps": [{**APP, "id": "front", "instances": 2},
                  {**APP, "id": "api", "dependencies": ["front"]}]},
    ],
}


def ids(group: dict) -> list[str]:
    """Every group and app id in a group tree, depth first."""
    out = [group["id"], *(a["id"] for a in group.get("apps", []))]
    for child in group.get("groups", []):
        out += ids(child)
    return out


async def test_create_a_tree_and_read_it_back(offline: Api) -> None:
    status, body, headers = await offline.call("POST", "/v2/groups", SHOP)
    assert status == 201, body
    assert set(body) == {"deploymentId", "version"} and headers["Location"] == "/v2/groups/shop"
    shop = await offline.ok("GET", "/v2/groups/shop")
    assert ids(shop) == ["/shop", "/shop/db", "/shop/db/store", "/shop/web", "/shop/web/api",
                         "/shop/web/front"]
    web = shop["groups"][1]
    assert set(web) == {"id", "apps", "groups", "pods", "dependencies", "version"}
    assert web["dependencies"] == ["/shop/db"]
    assert [a["dependencies"] for a in web["apps"]] == [["/shop/web/front"], []]
    assert shop["version"] == body["version"]
    # Apps created through a group are ordinary apps.
    apps = (await offline.ok("GET", "/v2/apps"))["apps"]
    assert sorted(a["id"] for a in apps) == ["/shop/db/store", "/shop/web/api",
                                             "/shop/web/front"]
    root = await offline.ok("GET", "/v2/groups")
    assert root["id"] == "/" and [g["id"] for g in root["groups"]] == ["/shop"]
    status, again, _ = await offline.call("POST", "/v2/groups", {"id": "shop"})
    assert status == 409 and "already created" in again["message"]


async def test_the_plan_orders_apps_by_their_dependencies(offline: Api) -> None:
    created = await offline.ok("POST", "/v2/groups", SHOP)
    deployments = await offline.ok("GET", "/v2/deployments")
    assert [d["id"] for d in deployments] == [created["deploymentId"]]
    plan = deployments[0]
    steps = [[a["app"] for a in step["actions"]] for step in plan["steps"]]
    # store first (web's group depends on db), then front (api depends on it), then api
    assert steps == [["/shop/db/store"], ["/shop/web/front"], ["/shop/web/api"]]
    assert plan["currentStep"] == 1 and plan["totalSteps"] == 3
    assert plan["affectedApps"] == ["/shop/db/store", "/shop/web/api", "/shop/web/front"]
    app = (await offline.ok("GET", "/v2/apps/shop/web/api", embed="app.deployments"))["app"]
    assert app["deployments"] == [{"id": created["deploymentId"]}]
    status, body, _ = await offline.call("PUT", "/v2/apps/shop/web/api", {"instances": 3})
    assert status == 409 and body["deployments"] == [{"id": created["deploymentId"]}]


async def test_embed_selects_parts_as_marathon(offline: Api) -> None:
    await offline.ok("POST", "/v2/groups", SHOP)
    only_groups = await offline.ok("GET", "/v2/groups/shop", embed="group.groups")
    assert only_groups["apps"] == [] and ids(only_groups) == ["/shop", "/shop/db", "/shop/web"]
    with_counts = await offline.ok("GET", "/v2/groups/shop/web",
                                   embed="group.apps,group.apps.counts,group.apps.tasks")
    assert with_counts["groups"] == []
    front = with_counts["apps"][1]
    assert front["tasksRunning"] == 0 and front["tasks"] == [] and "deployments" in front
    plain = await offline.ok("GET", "/v2/groups/shop/web")
    assert "tasks" not in plain["apps"][0] and plain["pods"] == []


async def test_unknown_groups_and_versions_are_404(offline: Api) -> None:
    for method, path in (("GET", "/v2/groups/nope"), ("DELETE", "/v2/groups/nope"),
                         ("GET", "/v2/groups/nope/versions"),
                         ("GET", "/v2/groups/nope/versions/2020-01-01T00:00:00.000Z")):
        status, body, _ = await offline.call(method, path)
        assert status == 404, (method, path, body)
        assert body["message"] and body["details"] == []


@pytest.mark.parametrize(("body", "path", "words"), [
    ({"id": "/g", "apps": [{"id": "a", "cmd": "x", "instances": -1}]},
     "/apps(0)/instances", ""),
    ({"id": "/g", "groups": [{"id": "/elsewhere/x"}]}, "/groups(0)/id", "direct child"),
    ({"id": "/g", "groups": [{"id": "s", "apps": [{"id": "/g/a", "cmd": "x"}]}]},
     "/groups(0)/apps(0)/id", "direct child"),
    ({"id": "/Bad_Id"}, "/id", "regular expression"),
    ({"id": "/g", "scaleBy": -2}, "/scaleBy", "number"),
    ({"id": "/g", "groups": [{"apps": []}]}, "/groups(0)/id", "is required"),
    ({"id": "/g", "dependencies": "x"}, "/dependencies", "array"),
    ({"id": "/g", "apps": [{**APP, "id": "a", "dependencies": ["b"]},
                           {**APP, "id": "b", "dependencies": ["a"]}]}, "/", "cyclic"),
    ({"id": "/g", "dependencies": ["/g"], "apps": [{**APP, "id": "a"}]}, "/", "cyclic"),
    ({"id": "/g", "pods": [{"id": "p"}]}, "/pods", "/v2/pods"),
])
async def test_invalid_groups_are_422_with_details(offline: Api, body, path, words) -> None:
    status, answer, _ = await offline.call("POST", "/v2/groups", body)
    assert status == 422, answer
    paths = {d["path"]: d["errors"] for d in answer["details"]}
    assert path in paths, answer
    assert words in " ".join(paths[path])
    assert (await offline.ok("GET", "/v2/apps"))["apps"] == [], "nothing was applied"


async def test_a_bad_group_id_in_the_url_is_422_not_a_dropped_connection(
        offline: Api) -> None:
    """The id may come from the URL alone; a control character in it once reached the
    Location header and aiohttp closed the connection without an answer."""
    for path in ("/v2/groups/%C3%AC%17x", "/v2/groups/Bad_Id"):
        status, answer, _ = await offline.call("POST", path, {})
        assert status == 422, (path, answer)
        assert [d["path"] for d in answer["details"]] == ["/id"], answer
    assert (await offline.ok("GET", "/v2/groups"))["groups"] == [], "nothing was created"


POD = {"id": "/team/web", "containers": [
    {"name": "main", "resources": {"cpus": 0.1, "mem": 16},
     "exec": {"command": {"shell": "sleep 1000"}}}]}


async def test_pods_are_part_of_the_group_tree(offline: Api) -> None:
    await offline.ok("POST", "/v2/pods", POD)
    team = await offline.ok("GET", "/v2/groups/team")
    assert [p["id"] for p in team["pods"]] == ["/team/web"], team
    root = await offline.ok("GET", "/v2/groups", embed="group.groups")
    assert [g["id"] for g in root["groups"]] == ["/team"]
    # neither a group nor an app may take a pod's id: 409 and nothing changes
    for body in ({"id": "/team/web"}, {"id": "/team", "apps": [{**APP, "id": "web"}]}):
        status, answer, _ = await offline.call("POST" if body["id"] == "/team/web" else "PUT",
                                               "/v2/groups", body)
        assert status == 409 and "pod" in answer["message"], answer
    assert (await offline.ok("GET", "/v2/apps"))["apps"] == []
    # deleting the group deletes its pods; while the pod's deployment runs, only forced
    status, answer, _ = await offline.call("DELETE", "/v2/groups/team")
    assert status == 409 and answer["deployments"], answer
    assert [p["id"] for p in await offline.ok("GET", "/v2/pods")] == ["/team/web"]
    await offline.ok("DELETE", "/v2/groups/team", force="true")
    assert await offline.ok("GET", "/v2/pods") == []
    status, _, _ = await offline.call("GET", "/v2/groups/team")
    assert status == 404


async def test_update_scale_revert_delete(offline: Api) -> None:
    first = await offline.ok("POST", "/v2/groups", SHOP)
    # Structural update of one subgroup: apps given replace the group's own.
    update = {"apps": [{**APP, "id": "front", "instances": 2},
                       {**APP, "id": "admin", "cmd": "sleep 5"}]}
    await offline.ok("PUT", "/v2/groups/shop/web", update, force=True)
    web = await offline.ok("GET", "/v2/groups/shop/web")
    assert [a["id"] for a in web["apps"]] == ["/shop/web/admin", "/shop/web/front"]
    assert web["dependencies"] == ["/shop/db"], "dependencies not given stay"
    plan = (await offline.ok("GET", "/v2/deployments"))[-1]
    actions = {a["app"]: a["action"] for step in plan["steps"] for a in step["actions"]}
    assert actions == {"/shop/web/api": "StopApplication",
                       "/shop/web/admin": "ScaleApplication"}, "front did not change"

    scaled = await offline.ok("PUT", "/v2/groups/shop", {"scaleBy": 1.5}, force=True)
    apps = {a["id"]: a["instances"] for a in (await offline.ok("GET", "/v2/apps"))["apps"]}
    assert apps == {"/shop/db/store": 2, "/shop/web/admin": 2, "/shop/web/front": 3}
    versions = await offline.ok("GET", "/v2/groups/shop/versions")
    assert versions[0] == scaled["version"] and first["version"] in versions
    old = await offline.ok("GET", f"/v2/groups/shop/versions/{first['version']}")
    assert "/shop/web/api" in ids(old) and "/shop/web/admin" not in ids(old)

    await offline.ok("PUT", "/v2/groups/shop", {"version": first["version"]}, force=True)
    apps = {a["id"]: a["instances"] for a in (await offline.ok("GET", "/v2/apps"))["apps"]}
    assert apps == {"/shop/db/store": 1, "/shop/web/api": 1, "/shop/web/front": 2}

    deleted = await offline.ok("DELETE", "/v2/groups/shop", force=True)
    assert set(deleted) == {"deploymentId", "version"}
    assert (await offline.ok("GET", "/v2/apps"))["apps"] == []
    assert (await offline.call("GET", "/v2/groups/shop"))[0] == 404
    assert (await offline.ok("GET", "/v2/groups"))["groups"] == []


async def test_a_change_while_a_deployment_holds_an_app_is_409(offline: Api) -> None:
    await offline.ok("POST", "/v2/groups", SHOP)
    status, body, _ = await offline.call("PUT", "/v2/groups/shop", {"scaleBy": 2})
    assert status == 409 and body["deployments"], body
    assert (await offline.call("PUT", "/v2/groups/shop", {"scaleBy": 2}, force=True))[0] == 200


async def test_an_empty_group_exists_and_deploys_nothing(offline: Api) -> None:
    created = await offline.ok("POST", "/v2/groups", {"id": "/empty/nested"})
    assert created["deploymentId"] and await offline.ok("GET", "/v2/deployments") == []
    group = await offline.ok("GET", "/v2/groups/empty")
    assert [g["id"] for g in group["groups"]] == ["/empty/nested"]


async def test_groups_and_versions_survive_a_restart(services_factory, tmp_path) -> None:
    work = tmp_path / "svc"
    server = await services_factory("http://127.0.0.1:9", work_dir=work)
    api = Api(server.url)
    kept = {"id": "/kept", "apps": [{**APP, "id": "a"}],
            "groups": [{"id": "sub", "dependencies": ["/kept/a"], "apps": [{**APP, "id": "b"}]}]}
    created = await api.ok("POST", "/v2/groups", kept)
    await api.ok("PUT", "/v2/groups/kept", {"scaleBy": 2}, force=True)
    before = await api.ok("GET", "/v2/groups/kept")
    await server.stop()
    services_factory.servers.remove(server)
    again = Api((await services_factory("http://127.0.0.1:9", work_dir=work)).url)
    assert await again.ok("GET", "/v2/groups/kept") == before
    versions = await again.ok("GET", "/v2/groups/kept/versions")
    assert created["version"] in versions and len(versions) == 2
    plans = await again.ok("GET", "/v2/deployments")
    assert len(plans) == 1 and plans[0]["totalSteps"] == 2
