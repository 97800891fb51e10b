"""``GET /v2/apps/{id}/autoscale`` and ``GET /v2/apps/{id}/volumes`` (mesoslite's own;
Marathon has neither).  Registered before the ``/v2/apps/{path}`` routes, which
reserve ``autoscale`` and ``volumes`` as app id segments.

* ``/autoscale``: ``{"appId", "policy", "observation", "decisions"}``: the app's
  policy (null without one; ``source`` says whether it came from the field or the
  labels), what the autoscaler saw last, and its recorded decisions, newest first;
* ``/volumes``: ``{"appId", "volumes": [...]}``: one row per persistent volume of each
  reservation (``persistenceId``, ``containerPath``, ``reservationId``, ``agentId``,
  ``host``, ``state`` attached/free/destroying, ``taskId``, ``sizeMb``,
  ``diskUsedMb`` and ``measuredAt`` from the agent's latest usage report).  Works for
  a deleted app whose volumes were kept (deleted without ``wipe``).
"""

from __future__ import annotations

from aiohttp import web

from frameworks.services.apiutil import ApiContext
from frameworks.services.autoscale import policy_of
from frameworks.services.autoscaler import Autoscaler
from frameworks.services.state import NotFound
from frameworks.services.validation import normalize_id
from frameworks.services.volumes import app_reservations, reservation_json
from mesoslite.httpapi import json_response


class UsageApi:
    def __init__(self, ctx: ApiContext, autoscaler: Autoscaler) -> None:
        self.ctx = ctx
        self.autoscaler = autoscaler

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v2/apps/{path:.+}/autoscale", self.autoscale),
                web.get("/v2/apps/{path:.+}/volumes", self.volumes)]

    async def autoscale(self, request: web.Request) -> web.Response:
        app = self.ctx.state.app(normalize_id(request.match_info["path"]))
        policy = policy_of(app)
        history = self.autoscaler.history.get(app.id, ())
        return json_response({
            "appId": app.id,
            "policy": policy.to_json() if policy is not None else None,
            "observation": self.autoscaler.observations.get(app.id),
            "decisions": list(reversed(history)),
        })

    async def volumes(self, request: web.Request) -> web.Response:
        app_id = normalize_id(request.match_info["path"])
        state = self.ctx.state
        app = state.apps.get(app_id) or state.removing.get(app_id)
        reservations = app_reservations(state.reservations, app_id)
        if app is None and not reservations:
            raise NotFound(f"App '{app_id}' does not exist")
        live, disk = set(state.tasks), self.autoscaler.volume_disk
        rows = []
        for r in reservations:
            shown = reservation_json(app, r, live, disk)
            listed = {row["persistenceId"] for row in shown}
            # volumes of earlier definitions (or of a deleted app) are still there
            for vid in r.volumes:
                if vid not in listed:
                    report = disk.get(vid, {})
                    shown.append({
                        "persistenceId": vid, "containerPath": None, "reservationId": r.id,
                        "agentId": r.agent_id, "host": r.hostname,
                        "state": "destroying" if r.destroying else "free", "taskId": None,
                        "sizeMb": report.get("size_mb"),
                        "diskUsedMb": report.get("disk_used_mb"),
                        "measuredAt": report.get("timestamp")})
            rows += shown
        return json_response({"appId": app_id, "volumes": rows})

