"""Marathon's ``/v2/apps`` API: list, create, read, replace, patch, scale, restart,
roll back, delete, and an app's tasks and versions.

Request and response shapes are Marathon's, so Marathon clients and app JSON work
unchanged.  Every change is committed before it is acknowledged; a change to an app a
deployment holds answers 409 unless ``?force=true``; invalid definitions answer 422
with Marathon's ``details``.  Fields accepted but not acted on are named in a
``Warning`` header (RFC 7234 code 299) rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import web

from frameworks.services import operations, volume_ops
from frameworks.services.apiutil import (
    ApiContext,
    app_info,
    deployment_result,
    embeds,
    flag,
    kill_flags,
)
from frameworks.services.app_secrets import references
from frameworks.services.model import App, app_json, encode_app
from frameworks.services.state import NotFound
from frameworks.services.tasks import task_json
from frameworks.services.unknown_fields import overlay
from frameworks.services.validation import Invalid, normalize_id, parse_app
from frameworks.services.volumes import is_resident
from mesoslite.httpapi import HTTPError, json_response, read_json

T = TypeVar("T", App, tuple[App, list[str]])

ALLOWED: dict[tuple[str, ...], list[str]] = {
    (): ["GET", "PUT", "PATCH", "DELETE"], ("restart",): ["POST"], ("tasks",): ["GET", "DELETE"],
    ("task",): ["DELETE"], ("versions",): ["GET"], ("version",): ["GET"],
}


def warning_headers(warnings: list[str]) -> dict[str, str]:
    """RFC 7234 ``Warning: 299 mesoslite "text"`` entries.  The texts may quote field
    names a client chose: they are made printable ASCII and their quotes escaped, so
    no name can break the header."""
    if not warnings:
        return {}
    return {"Warning": ", ".join(f'299 mesoslite "{_quoted(w)}"' for w in warnings)}


def _quoted(text: str) -> str:
    ascii_text = text.encode("ascii", "backslashreplace").decode("ascii")
    printable = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in ascii_text)
    return printable.replace("\\", "\\\\").replace('"', '\\"')


class AppsApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/apps", self.list_apps),
            web.post("/v2/apps", self.create),
            web.put("/v2/apps", self.update_many),
            web.patch("/v2/apps", self.update_many),
            web.route("*", "/v2/apps/{path:.+}", self.dispatch),
        ]

    # ---------------------------------------------------------------- collection

    async def list_apps(self, request: web.Request) -> web.Response:
        chosen = embeds(request, {"counts", "deployments"})
        apps = sorted(self.ctx.state.apps.values(), key=lambda a: a.id)
        cmd, ident = request.query.get("cmd"), request.query.get("id")
        label = request.query.get("label")
        # ?secret=NAME / ?config=NAME: the apps a rotation of that object concerns
        refs = [(kind, request.query[kind]) for kind in ("secret", "config")
                if kind in request.query]
        apps = [a for a in apps if (not cmd or cmd in (a.cmd or ""))
                and (not ident or ident in a.id) and (not label or _label_match(a, label))
                and all(references(a, kind, name) for kind, name in refs)]
        return json_response({"apps": [app_info(self.ctx, a, chosen) for a in apps]})

    async def create(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        app, warnings = parse_app(body)
        self._check_role(app)
        state = self.ctx.state
        deployment = operations.create_app(state, app, self.ctx.now(),
                                           flag(request, "force"))
        self._api_event(request, app)
        await self.ctx.commit()
        out = app_info(self.ctx, app, {"counts", "deployments", "tasks"})
        headers = {"Location": quote(f"/v2/apps{app.id}"), "Marathon-Deployment-Id": deployment.id,
                   **warning_headers(warnings)}
        return json_response(out, 201, headers)

    async def update_many(self, request: web.Request) -> web.Response:
        """PUT/PATCH /v2/apps with a list of (partial) definitions, each with its id."""
        body = await read_json(request)
        if not isinstance(body, list):
            raise Invalid([("/", ["expected a JSON array of app definitions"])])
        force, now = flag(request, "force"), self.ctx.now()
        parsed: list[App] = []
        warnings: list[str] = []
        for i, item in enumerate(body):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise Invalid([(f"/({i})/id", ["is required"])])
            app_id = normalize_id(item["id"])
            try:
                app, said = self._merged(app_id, item, partial=True)
            except Invalid as exc:
                raise Invalid([(f"/({i}){p}", e) for p, e in exc.details]) from None
            parsed.append(app)
            warnings += [f"{app.id}: {w}" for w in said]
        last = None
        for app in parsed:
            last, _ = operations.update_app(self.ctx.state, app, now, force)
        await self.ctx.commit()
        if last is None:
            return json_response({"deploymentId": None, "version": None})
        return json_response(deployment_result(last.id, last.version), 200,
                             warning_headers(warnings))

    # ---------------------------------------------------------------- one app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        app_id, sub = split_app_path(request.match_info["path"])
        method = request.method
        handler = {
            ((), "GET"): self.get_app, ((), "PUT"): self.replace, ((), "PATCH"): self.patch,
            ((), "DELETE"): self.delete, (("restart",), "POST"): self.restart,
            (("tasks",), "GET"): self.tasks, (("tasks",), "DELETE"): self.kill_all,
            (("task",), "DELETE"): self.kill_one, (("versions",), "GET"): self.versions,
            (("version",), "GET"): self.version,
        }.get((sub[:1], method))
        if handler is None:
            raise web.HTTPMethodNotAllowed(method, ALLOWED[sub[:1]])
        return await handler(request, app_id, *sub[1:])

    async def get_app(self, request: web.Request, app_id: str) -> web.Response:
        app = self.ctx.state.app(app_id)
        chosen = embeds(request, {"counts", "deployments", "tasks", "lastTaskFailure"})
        return json_response({"app": app_info(self.ctx, app, chosen)})

    async def replace(self, request: web.Request, app_id: str, partial: bool | None = None
                      ) -> web.Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise Invalid([("/", ["expected a JSON object"])])
        force, now = flag(request, "force"), self.ctx.now()
        if "version" in body and set(body) <= {"id", "version"}:
            d = operations.rollback_to_version(self.ctx.state, normalize_id(app_id),
                                               str(body["version"]), now, force)
            await self.ctx.commit()
            return json_response(deployment_result(d.id, d.version))
        if partial is None:
            partial = flag(request, "partialUpdate", True)
        app, warnings = self._merged(normalize_id(app_id), body, partial)
        deployment, created = operations.update_app(self.ctx.state, app, now, force)
        self._api_event(request, app)
        await self.ctx.commit()
        return json_response(deployment_result(deployment.id, deployment.version),
                             201 if created else 200, warning_headers(warnings))

    async def patch(self, request: web.Request, app_id: str) -> web.Response:
        return await self.replace(request, app_id, partial=True)

    def _merged(self, app_id: str, body: dict[str, Any], partial: bool) -> tuple[App, list[str]]:
        """The definition a PUT/PATCH asks for: ``body`` over the current one (Marathon's
        partial update replaces top-level fields), or ``body`` alone."""
        current = self.ctx.state.apps.get(app_id)
        if current is None or not partial:
            return self._check_role(parse_app(body, app_id))
        base = encode_app(current)
        overlay(base, base.pop("passthrough", {}))
        for key in ("version", "versionInfo"):
            base.pop(key, None)
        if "ports" in body:
            base.pop("portDefinitions", None)
        if "uris" in body:  # the legacy spelling replaces fetch
            base.pop("fetch", None)
        if "container" in body and "networks" not in body:
            base.pop("networks", None)
        base.update(body)
        return self._check_role(parse_app(base, app_id))

    def _check_role(self, parsed: T) -> T:
        """Refuse persistent volumes while the framework runs in role '*': they could
        never be reserved, and the app would wait forever."""
        app = parsed[0] if isinstance(parsed, tuple) else parsed
        if self.ctx.role == "*" and is_resident(app):
            message = ("persistent volumes need the services framework to run in a named "
                       "role (mesoslite services --role NAME); it runs in '*'")
            raise Invalid([("/container/volumes", [message])])
        return parsed

    async def delete(self, request: web.Request, app_id: str) -> web.Response:
        d = operations.delete_app(self.ctx.state, normalize_id(app_id),
                                  self.ctx.now(), flag(request, "force"))
        if flag(request, "wipe"):  # and destroy its persistent volumes (docs/storage.md)
            volume_ops.wipe(self.ctx.state, normalize_id(app_id))
        await self.ctx.commit()
        return json_response(deployment_result(d.id, d.version))

    async def restart(self, request: web.Request, app_id: str) -> web.Response:
        d = operations.restart_app(self.ctx.state, normalize_id(app_id),
                                   self.ctx.now(), flag(request, "force"))
        await self.ctx.commit()
        return json_response(deployment_result(d.id, d.version))

    # ---------------------------------------------------------------- tasks, versions

    async def tasks(self, request: web.Request, app_id: str) -> web.Response:
        app = self.ctx.state.app(normalize_id(app_id))
        tasks = self.ctx.state.app_tasks(app.id)
        return json_response({"tasks": [task_json(t, app.has_health_checks) for t in tasks]})

    async def kill_all(self, request: web.Request, app_id: str) -> web.Response:
        app = self.ctx.state.app(normalize_id(app_id))
        host = request.query.get("host")
        ids = [t.id for t in self.ctx.state.app_tasks(app.id) if not host or t.hostname == host]
        return await self._kill(request, app, ids, single=False)

    async def kill_one(self, request: web.Request, app_id: str, task_id: str) -> web.Response:
        app = self.ctx.state.app(normalize_id(app_id))
        task = self.ctx.state.tasks.get(task_id)
        if task is None or task.app_id != app.id:
            raise NotFound(f"Task '{task_id}' does not exist")
        return await self._kill(request, app, [task_id], single=True)

    async def _kill(self, request: web.Request, app: App, ids: list[str], single: bool
                    ) -> web.Response:
        scale, force, wipe = kill_flags(request)
        tasks, deployments = operations.kill_tasks(
            self.ctx.state, ids, self.ctx.now(), scale, force, wipe)
        await self.ctx.commit()
        if scale and deployments:
            return json_response(deployment_result(deployments[0].id, deployments[0].version))
        rendered = [task_json(t, app.has_health_checks) for t in tasks]
        if single:
            return json_response({"task": rendered[0]})
        return json_response({"tasks": rendered})

    async def versions(self, request: web.Request, app_id: str) -> web.Response:
        app = self.ctx.state.app(normalize_id(app_id))
        versions = sorted(self.ctx.state.versions.get(app.id, {}), reverse=True)
        return json_response({"versions": versions})

    async def version(self, request: web.Request, app_id: str, version: str) -> web.Response:
        app = self.ctx.state.app(normalize_id(app_id))
        stored = self.ctx.state.versions.get(app.id, {}).get(version)
        if stored is None:
            raise NotFound(f"App '{app.id}' does not exist in version '{version}'")
        return json_response(app_json(stored))

    def _api_event(self, request: web.Request, app: App) -> None:
        self.ctx.state.emit("api_post_event", {
            "clientIp": request.remote or "", "uri": request.path,
            "appDefinition": app_json(app)}, self.ctx.now())


def split_app_path(path: str) -> tuple[str, tuple[str, ...]]:
    """``prod/web/tasks/t1`` -> (``/prod/web``, ("task", "t1")); app ids may nest, the
    route words (tasks, versions, restart) are reserved as app id segments."""
    segs = [s for s in path.split("/") if s]
    if not segs:
        raise HTTPError(404, "Not found: /v2/apps/")
    if len(segs) >= 3 and segs[-2] == "tasks":
        return "/" + "/".join(segs[:-2]), ("task", segs[-1])
    if len(segs) >= 3 and segs[-2] == "versions":
        return "/" + "/".join(segs[:-2]), ("version", segs[-1])
    if len(segs) >= 2 and segs[-1] in ("tasks", "versions", "restart"):
        return "/" + "/".join(segs[:-1]), (segs[-1],)
    return "/" + "/".join(segs), ()


def _label_match(app: App, selector: str) -> bool:
    for clause in selector.split(","):
        clause = clause.strip()
        if "!=" in clause:
            key, value = clause.split("!=", 1)
            if app.labels.get(key.strip()) == value.strip():
                return False
        elif "==" in clause:
            key, value = clause.split("==", 1)
            if app.labels.get(key.strip()) != value.strip():
                return False
        elif clause and clause not in app.labels:
            return False
    return True
