"""Marathon's ``/v2/pods`` API: create, list, read, replace (PUT creates a missing pod),
delete, ``::status``, ``::versions`` and killing ``::instances``.

Shapes are Marathon's (``pod_model.pod_json``, ``pod_instances.pod_status``); every
change is committed before it is acknowledged and announced on ``/v2/events``
(``pod_created_event``, ``pod_updated_event``, ``pod_deleted_event``); a change to a
pod a deployment holds answers 409 unless ``?force=true``; invalid pods answer 422
with ``details``, and fields accepted but not acted on are named in a ``Warning``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from frameworks.services import pod_ops
from frameworks.services.api import warning_headers
from frameworks.services.apiutil import ApiContext, deployment_result, flag
from frameworks.services.pod_instances import instance_status, pod_status
from frameworks.services.pod_model import Pod, pod_json
from frameworks.services.pod_validation import parse_pod
from frameworks.services.state import NotFound
from frameworks.services.validation import Invalid, normalize_id
from mesoslite.httpapi import HTTPError, json_response, read_json

DEPLOYMENT_HEADER = "Marathon-Deployment-Id"


class PodsApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/pods", self.list_pods),
            web.post("/v2/pods", self.create),
            web.get("/v2/pods/::status", self.all_status),
            web.route("*", "/v2/pods/{path:.+}", self.dispatch),
        ]

    # ---------------------------------------------------------------- collection

    async def list_pods(self, request: web.Request) -> web.Response:
        pods = sorted(self.ctx.state.pods.values(), key=lambda p: p.id)
        return json_response([pod_json(p) for p in pods])

    async def all_status(self, request: web.Request) -> web.Response:
        pods = sorted(self.ctx.state.pods.values(), key=lambda p: p.id)
        return json_response([self._status(p) for p in pods])

    async def create(self, request: web.Request) -> web.Response:
        pod, warnings = parse_pod(await read_json(request))
        now = self.ctx.now()
        deployment = pod_ops.create_pod(self.ctx.state, pod, now, flag(request, "force"))
        self._event(request, "pod_created_event", now)
        await self.ctx.commit()
        return json_response(pod_json(pod), 201, {
            "Location": quote(f"/v2/pods{pod.id}"), DEPLOYMENT_HEADER: deployment.id,
            **warning_headers(warnings)})

    # ---------------------------------------------------------------- one pod

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        raw, _, sub = request.match_info["path"].partition("::")
        pod_id = normalize_id(raw)
        word, _, rest = sub.partition("/")
        method = request.method
        if word == "" and not sub:
            handlers = {"GET": self.get_pod, "PUT": self.replace, "DELETE": self.delete}
            if method not in handlers:
                raise HTTPError(405, f"{method} is not allowed on /v2/pods/{{id}}")
            return await handlers[method](request, pod_id)
        if word == "status" and not rest and method == "GET":
            return json_response(self._status(pod_ops.pod_of(self.ctx.state, pod_id)))
        if word == "versions" and method == "GET":
            return self._versions(pod_id, rest or None)
        if word == "instances" and method == "DELETE":
            return await self.kill(request, pod_id, rest or None)
        raise HTTPError(404, f"no route {method} /v2/pods/{{id}}::{sub}")

    async def get_pod(self, request: web.Request, pod_id: str) -> web.Response:
        return json_response(pod_json(pod_ops.pod_of(self.ctx.state, pod_id)))

    async def replace(self, request: web.Request, pod_id: str) -> web.Response:
        pod, warnings = parse_pod(await read_json(request), path_id=pod_id)
        now = self.ctx.now()
        deployment, created = pod_ops.update_pod(self.ctx.state, pod, now,
                                                 flag(request, "force"))
        self._event(request, "pod_created_event" if created else "pod_updated_event", now)
        await self.ctx.commit()
        headers = {DEPLOYMENT_HEADER: deployment.id, **warning_headers(warnings)}
        if created:
            headers["Location"] = quote(f"/v2/pods{pod.id}")
        return json_response(pod_json(pod), 201 if created else 200, headers)

    async def delete(self, request: web.Request, pod_id: str) -> web.Response:
        now = self.ctx.now()
        deployment = pod_ops.delete_pod(self.ctx.state, pod_id, now, flag(request, "force"))
        self._event(request, "pod_deleted_event", now)
        await self.ctx.commit()
        return json_response(deployment_result(deployment.id, deployment.version), 202,
                             {DEPLOYMENT_HEADER: deployment.id})

    def _versions(self, pod_id: str, version: str | None) -> web.Response:
        state = self.ctx.state
        pod_ops.pod_of(state, pod_id)
        versions = state.pod_versions.get(pod_id, {})
        if version is None:
            return json_response(sorted(versions, reverse=True))
        if version not in versions:
            raise NotFound(f"Pod '{pod_id}' does not exist in version '{version}'")
        return json_response(pod_json(versions[version]))

    async def kill(self, request: web.Request, pod_id: str, instance_id: str | None
                   ) -> web.Response:
        if instance_id is None:
            body = await read_json(request) if request.can_read_body else None
            if not isinstance(body, list) or not all(isinstance(i, str) for i in body):
                raise Invalid([("/", ["expected a JSON array of instance ids"])])
            wanted: list[str] | None = body
        else:
            wanted = [instance_id]
        state = self.ctx.state
        killed = pod_ops.kill_instances(state, pod_id, wanted, self.ctx.now())
        if instance_id is not None and not killed:
            raise NotFound(f"Instance '{instance_id}' does not exist")
        await self.ctx.commit()
        pod = state.pods.get(pod_id)
        out = [instance_status(pod, t, self.ctx.role) for t in killed]
        return json_response(out[0] if instance_id is not None else out)

    # ---------------------------------------------------------------- helpers

    def _status(self, pod: Pod) -> dict[str, Any]:
        state = self.ctx.state
        return pod_status(pod, pod_ops.instances_of(state, pod.id), self.ctx.now(),
                          self.ctx.role)

    def _event(self, request: web.Request, event_type: str, now: float) -> None:
        """Marathon's PodEvent: who asked (``clientIp``) and the request's ``uri``."""
        self.ctx.state.emit(event_type, {"clientIp": request.remote or "",
                                         "uri": request.path}, now)
