"""The operator API's state reads: ``GET_STATE``, ``GET_AGENTS``, ``GET_FRAMEWORKS``,
``GET_TASKS``, ``GET_EXECUTORS``, ``GET_OPERATIONS``, ``GET_HEALTH``, ``GET_VERSION``,
``GET_MASTER``.

All but ``GET_HEALTH`` and ``GET_VERSION`` need ``view_state`` on ``master``, as
``/master/state`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from mesoslite import __version__
from mesoslite.master import operations
from mesoslite.master import operator_views as views

if TYPE_CHECKING:
    from mesoslite.master.operator_api import OperatorCall
    from mesoslite.master.server import MasterServer

_Read = Callable[["MasterServer"], Any]


def _guarded(kind: str, read: _Read, guard: bool = True) -> OperatorCall:
    async def call(server: MasterServer, request: web.Request,
                   body: dict[str, Any]) -> dict[str, Any]:
        if guard:
            server.auth.require(request, "view_state", "master")
        return {"type": kind, kind.lower(): read(server)}
    return call


CALLS: dict[str, OperatorCall] = {
    "GET_STATE": _guarded("GET_STATE",
                          lambda s: views.get_state(s.state, s.start_time)),
    "GET_AGENTS": _guarded("GET_AGENTS", lambda s: views.get_agents(s.state)),
    "GET_FRAMEWORKS": _guarded("GET_FRAMEWORKS", lambda s: views.get_frameworks(s.state)),
    "GET_TASKS": _guarded("GET_TASKS", lambda s: views.get_tasks(s.state)),
    "GET_EXECUTORS": _guarded("GET_EXECUTORS", lambda s: views.get_executors(s.state)),
    "GET_MASTER": _guarded("GET_MASTER", lambda s: {
        "master_info": msgspec.to_builtins(s.state.master_info())}),
    "GET_OPERATIONS": _guarded("GET_OPERATIONS",
                               lambda s: operations.operations_view(s.state)),
    "GET_HEALTH": _guarded("GET_HEALTH", lambda s: {"healthy": True}, guard=False),
    "GET_VERSION": _guarded("GET_VERSION",
                            lambda s: {"version_info": {"version": __version__}}, guard=False),
}
