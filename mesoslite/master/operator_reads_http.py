"""Read-only operator calls and Mesos' v0 endpoints over the same data.

* ``POST /api/v1`` calls ``GET_FLAGS``, ``GET_METRICS`` and ``GET_ROLES``
  (``CALLS``, dispatched by ``operator_api``).
* ``GET /metrics/snapshot`` (flat ``{"master/elected": 1.0, ...}``), ``/master/flags``
  (``{"flags": {name: value}}``), ``/master/health`` (200, empty body), and, following
  the leader, ``/master/slaves``, ``/master/frameworks`` and ``/master/roles``.

Every one needs ``view_state``: on ``metrics`` for the metrics (the principal that
scrapes ``/metrics``), on ``master`` for the rest.  Metrics, flags and health are
this master's own, so followers answer them too (``master/elected`` is 0 there), as
Mesos' masters do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mesoslite.httpapi import HTTPError, json_response
from mesoslite.master import operator_reads as reads
from mesoslite.master.views import agent_view, framework_view, resources_summary

if TYPE_CHECKING:
    from mesoslite.master.operator_api import OperatorCall
    from mesoslite.master.server import MasterServer


def _snapshot(server: MasterServer) -> dict[str, float]:
    elected = server.elected.is_set() and not server.deposed
    uptime = max(0.0, server.clock.now() - server.start_time)
    return reads.metrics_snapshot(server.state, elected, uptime,
                                  server.events.source.task_transitions)


def _get_flags(server: MasterServer, request: web.Request) -> dict[str, Any]:
    server.auth.require(request, "view_state", "master")
    return reads.flags_json(server.config)


def _get_metrics(server: MasterServer, request: web.Request) -> dict[str, Any]:
    server.auth.require(request, "view_state", "metrics")
    return reads.metrics_json(_snapshot(server))


def _get_roles(server: MasterServer, request: web.Request) -> dict[str, Any]:
    server.auth.require(request, "view_state", "master")
    return reads.roles_json(reads.roles(server.state))


def _answer(kind: str, read: Callable[[MasterServer, web.Request], dict[str, Any]]
            ) -> OperatorCall:
    async def call(server: MasterServer, request: web.Request,
                   body: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, kind.lower(): read(server, request)}
    return call


CALLS: dict[str, OperatorCall] = {
    kind: _answer(kind, read) for kind, read in
    (("GET_FLAGS", _get_flags), ("GET_METRICS", _get_metrics), ("GET_ROLES", _get_roles))}


def role_v0(role: reads.RoleView) -> dict[str, Any]:
    """A role as Mesos' ``/roles`` lists it (resources in summary form)."""
    return {"name": role.name, "weight": role.weight, "frameworks": role.frameworks,
            "resources": resources_summary(role.allocated),
            "allocated": resources_summary(role.allocated),
            "offered": resources_summary(role.offered)}


class OperatorReadsHTTP:
    """The v0 endpoints (see the module docstring)."""

    def __init__(self, server: MasterServer) -> None:
        self.server = server

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/metrics/snapshot", self.metrics_snapshot)
        app.router.add_get("/master/flags", self.flags)
        app.router.add_get("/master/health", self.health)
        app.router.add_get("/master/slaves", self.slaves)
        app.router.add_get("/master/frameworks", self.frameworks)
        app.router.add_get("/master/roles", self.roles)

    async def metrics_snapshot(self, request: web.Request) -> web.Response:
        self.server.auth.require(request, "view_state", "metrics")
        return json_response(_snapshot(self.server))

    async def flags(self, request: web.Request) -> web.Response:
        self.server.auth.require(request, "view_state", "master")
        return json_response({"flags": reads.master_flags(self.server.config)})

    async def health(self, request: web.Request) -> web.Response:
        """200 with an empty body while this master serves; 503 once it stops."""
        self.server.auth.require(request, "view_state", "master")
        if self.server.deposed or self.server.stopped:
            raise HTTPError(503, "This master is stopping")
        return web.Response(status=200)

    async def slaves(self, request: web.Request) -> web.Response:
        await self._leader_view(request)
        state = self.server.state
        return json_response({"slaves": [agent_view(state, a) for a in state.agents.values()],
                              "recovered_slaves": []})

    async def frameworks(self, request: web.Request) -> web.Response:
        await self._leader_view(request)
        state = self.server.state
        return json_response({
            "frameworks": [framework_view(state, f) for f in state.frameworks.values()],
            "completed_frameworks": [framework_view(state, f, completed=True)
                                     for f in state.completed_frameworks],
            "unregistered_frameworks": []})

    async def roles(self, request: web.Request) -> web.Response:
        await self._leader_view(request)
        return json_response({"roles": [role_v0(r) for r in reads.roles(self.server.state)]})

    async def _leader_view(self, request: web.Request) -> None:
        await self.server.check_leader(request)
        self.server.auth.require(request, "view_state", "master")
