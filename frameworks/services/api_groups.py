"""Marathon's ``/v2/groups`` API: read a group tree (with ``embed``), create, update
(structural, ``scaleBy``, ``version``), delete, and a group's stored versions.

Shapes are Marathon's: a group is ``{"id", "apps", "groups", "pods", "dependencies",
"version"}`` (``enforceRole`` only when it was set); changes answer
``{"deploymentId", "version"}`` (``group_ops.py`` holds the semantics).  With no
``embed``, apps, groups and pods are embedded; otherwise only the ``group.groups`` /
``group.apps`` / ``group.pods`` asked for, and ``group.apps.<x>`` adds ``x`` (tasks,
counts, deployments, readiness, lastTaskFailure, taskStats) to every app, as Marathon
resolves them.  Apps created through a group are ordinary apps (``/v2/apps``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from frameworks.services import group_ops, pod_ops
from frameworks.services.api import warning_headers
from frameworks.services.apiutil import ApiContext, app_info, deployment_result, flag
from frameworks.services.group_parse import parse_group
from frameworks.services.groups import (
    ROOT,
    GroupPlan,
    children,
    group_ids,
    group_version,
    parent_of,
)
from frameworks.services.model import app_json, decode_app, timestamp
from frameworks.services.pod_instances import pod_status
from frameworks.services.state import NotFound
from frameworks.services.validation import normalize_id
from mesoslite.httpapi import json_response, read_json

GROUP_EMBEDS = {"group.groups": "groups", "group.apps": "apps", "group.pods": "pods"}
APP_EMBEDS: dict[str, set[str]] = {
    "tasks": {"tasks", "deployments"}, "failures": {"tasks", "lastTaskFailure", "deployments"},
    "deployments": {"deployments"}, "readiness": {"readiness"},
    "lastTaskFailure": {"lastTaskFailure"}, "counts": {"counts"}, "taskStats": {"taskStats"},
}
ALLOWED = {(): ["GET", "POST", "PUT", "DELETE"], ("versions",): ["GET"],
           ("version",): ["GET", "PUT"]}


def pods_under(ctx: ApiContext, group_id: str) -> list[dict[str, Any]]:
    """The pods directly in ``group_id``, as Marathon's pod status."""
    state = ctx.state
    return [pod_status(state.pods[p], pod_ops.instances_of(state, p), ctx.now(), ctx.role)
            for p in sorted(state.pods) if parent_of(p) == group_id]


def chosen_embeds(request: web.Request) -> tuple[set[str], set[str]]:
    """(group parts, app parts) that ``embed`` asks for (Marathon's InfoEmbedResolver)."""
    raw = [item.strip() for value in request.query.getall("embed", [])
           for item in value.split(",") if item.strip()]
    if not raw:
        return {"groups", "apps", "pods"}, set()
    group = {GROUP_EMBEDS[e] for e in raw if e in GROUP_EMBEDS}
    app: set[str] = set()
    for e in raw:
        if e.startswith("group.apps."):
            app |= APP_EMBEDS.get(e.removeprefix("group.apps."), set())
    return group, app


class GroupsApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/groups", self.root),
            web.post("/v2/groups", self.create_root),
            web.put("/v2/groups", self.update_root),
            web.delete("/v2/groups", self.delete_root),
            web.route("*", "/v2/groups/{path:.+}", self.dispatch),
        ]

    async def root(self, request: web.Request) -> web.Response:
        return await self.get_group(request, ROOT)

    async def create_root(self, request: web.Request) -> web.Response:
        return await self.create(request, ROOT)

    async def update_root(self, request: web.Request) -> web.Response:
        return await self.update(request, ROOT)

    async def delete_root(self, request: web.Request) -> web.Response:
        return await self.delete(request, ROOT)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        group_id, sub = split_group_path(request.match_info["path"])
        handler = {
            ((), "GET"): self.get_group, ((), "POST"): self.create, ((), "PUT"): self.update,
            ((), "DELETE"): self.delete, (("versions",), "GET"): self.versions,
            (("version",), "GET"): self.version, (("version",), "PUT"): self.revert,
        }.get((sub[:1], request.method))
        if handler is None:
            raise web.HTTPMethodNotAllowed(request.method, ALLOWED[sub[:1]])
        return await handler(request, group_id, *sub[1:])

    # ---------------------------------------------------------------- reading

    async def get_group(self, request: web.Request, group_id: str) -> web.Response:
        state = self.ctx.state
        groups = group_ids([*state.apps, *state.pods], state.groups)
        if group_id not in groups:
            raise NotFound(f"Group '{group_id}' does not exist")
        group_embed, app_embed = chosen_embeds(request)
        return json_response(self._info(group_id, groups, group_embed, app_embed))

    def _info(self, group_id: str, groups: set[str], group_embed: set[str],
              app_embed: set[str]) -> dict[str, Any]:
        state = self.ctx.state
        record = state.groups.get(group_id)
        apps = [state.apps[a] for a in sorted(state.apps) if parent_of(a) == group_id]
        out: dict[str, Any] = {
            "id": group_id,
            "apps": [app_info(self.ctx, a, app_embed) for a in apps]
            if "apps" in group_embed else [],
            "groups": [self._info(g, groups, group_embed, app_embed)
                       for g in children(group_id, groups)] if "groups" in group_embed else [],
            "pods": pods_under(self.ctx, group_id) if "pods" in group_embed else [],
            "dependencies": list(record.dependencies) if record else [],
            "version": group_version(group_id, state.apps, state.groups) or timestamp(0),
        }
        if record is not None and record.enforce_role is not None:
            out["enforceRole"] = record.enforce_role
        return out

    async def versions(self, request: web.Request, group_id: str) -> web.Response:
        if not group_ops.exists(self.ctx.state, group_id):
            raise NotFound(f"Group '{group_id}' does not exist")
        stored = self.ctx.state.group_versions.get(group_id, {})
        return json_response(sorted(stored, reverse=True))

    async def version(self, request: web.Request, group_id: str, version: str
                      ) -> web.Response:
        stored = self.ctx.state.group_versions.get(group_id, {}).get(version)
        if stored is None:
            raise NotFound(f"Group '{group_id}' does not exist in version '{version}'")
        group_embed, _ = chosen_embeds(request)
        return json_response(_tree_info(stored.tree, group_embed))

    # ---------------------------------------------------------------- changing

    async def create(self, request: web.Request, base: str) -> web.Response:
        spec = parse_group(await read_json(request), base)
        plan = group_ops.create_group(self.ctx.state, spec, self.ctx.now(),
                                      flag(request, "force"))
        await self.ctx.commit()
        headers = {"Location": quote(f"/v2/groups{spec.id}"), **warning_headers(spec.warnings)}
        return _result(plan, 201, headers)

    async def update(self, request: web.Request, base: str) -> web.Response:
        spec = parse_group(await read_json(request), base)
        plan = group_ops.update_group(self.ctx.state, spec, self.ctx.now(),
                                      flag(request, "force"))
        await self.ctx.commit()
        return _result(plan, 200, warning_headers(spec.warnings))

    async def revert(self, request: web.Request, group_id: str, version: str
                     ) -> web.Response:
        """PUT /v2/groups/{id}/versions/{version}: what marathon-python's
        ``rollback_group`` sends; the same as PUT {"version": ...}."""
        spec = parse_group({"version": version}, group_id)
        plan = group_ops.update_group(self.ctx.state, spec, self.ctx.now(),
                                      flag(request, "force"))
        await self.ctx.commit()
        return _result(plan, 200, {})

    async def delete(self, request: web.Request, group_id: str) -> web.Response:
        plan = group_ops.delete_group(self.ctx.state, group_id, self.ctx.now(),
                                      flag(request, "force"))
        await self.ctx.commit()
        return _result(plan, 200, {})


def _result(plan: GroupPlan, status: int, headers: dict[str, str]) -> web.Response:
    return json_response(deployment_result(plan.id, plan.version), status, headers)


def _tree_info(tree: dict[str, Any], group_embed: set[str]) -> dict[str, Any]:
    """A stored version (``groups.tree_json``) in the shape of a group."""
    out: dict[str, Any] = {
        "id": tree["id"],
        "apps": [app_json(decode_app(a)) for a in tree["apps"]] if "apps" in group_embed
        else [],
        "groups": [_tree_info(g, group_embed) for g in tree["groups"]]
        if "groups" in group_embed else [],
        "pods": [],
        "dependencies": list(tree["dependencies"]),
        "version": tree["version"],
    }
    if "enforceRole" in tree:
        out["enforceRole"] = tree["enforceRole"]
    return out


def split_group_path(path: str) -> tuple[str, tuple[str, ...]]:
    """``prod/versions/V`` -> (``/prod``, ("version", V)); ``versions`` -> (``/``,
    ("versions",)).  ``versions`` is reserved as a group id segment."""
    segs = [s for s in path.split("/") if s]
    if segs and segs[-1] == "versions":
        return normalize_id("/".join(segs[:-1])), ("versions",)
    if len(segs) >= 2 and segs[-2] == "versions":
        return normalize_id("/".join(segs[:-2])), ("version", segs[-1])
    return normalize_id("/".join(segs)), ()
