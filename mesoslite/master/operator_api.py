"""``POST /api/v1`` on the master: Mesos' operator API, one call per request.

Each family of calls lives in its own module and exports ``CALLS``, a mapping from
the call's ``type`` to an ``OperatorCall``; this module only reads the request,
dispatches and writes the answer.  A handler returns the ``Response`` body (a dict
such as ``{"type": "GET_ROLES", "get_roles": {...}}``), answered 200, ``None``
for calls Mesos answers ``202 Accepted`` with no body, or a ``web.Response`` sent as
it is (Mesos' bodiless ``200 OK`` of the agent calls).  It raises ``HTTPError`` for
anything it refuses, before it changes anything.  ``SUBSCRIBE`` streams
(``events_http``).

Both encodings (``messages.wire``): the call is read by its ``Content-Type`` (a
protobuf ``master::Call`` is handed to the handler as its JSON form, the same dict a
JSON body gives) and the answer is written by ``Accept`` (a handler's dict becomes a
protobuf ``master::Response``); 415 and 406 come before anything is read.

Every call follows the leader (followers redirect).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mesoslite.httpapi import (
    HTTPError,
    answer_media_type,
    body_media_type,
    message_response,
    read_call,
)
from mesoslite.messages import wire

if TYPE_CHECKING:
    from mesoslite.master.server import MasterServer

OperatorCall = Callable[["MasterServer", web.Request, dict[str, Any]],
                        Awaitable[dict[str, Any] | web.Response | None]]


def _families() -> list[Mapping[str, OperatorCall]]:
    # Imported here: each family imports the server's modules, which import this one.
    from mesoslite.master import (
        maintenance_http,
        operator_agents_http,
        operator_files,
        operator_reads_http,
        operator_state_calls,
        operator_teardown,
        quota_http,
        reservations_http,
    )
    return [operator_state_calls.CALLS, operator_reads_http.CALLS, reservations_http.CALLS,
            quota_http.CALLS, maintenance_http.CALLS, operator_agents_http.CALLS,
            operator_teardown.CALLS, operator_files.CALLS]


def calls() -> dict[str, OperatorCall]:
    """Every call type this master answers synchronously, with its handler."""
    out: dict[str, OperatorCall] = {}
    for family in _families():
        for kind, handler in family.items():
            if kind in out:
                raise RuntimeError(f"operator call {kind} is defined twice")
            out[kind] = handler
    return out


class OperatorAPI:
    def __init__(self, server: MasterServer,
                 subscribe: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> None:
        self.server = server
        self.subscribe = subscribe
        self.calls = calls()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await self.server.check_leader(request)
        media_type = body_media_type(request)
        answer_type = answer_media_type(request)
        call = await read_call(request, wire.MASTER_CALL, media_type)
        kind = call.get("type") if isinstance(call, dict) else None
        if not isinstance(kind, str):
            raise HTTPError(400, "Expecting 'type' to be present", [("type", ["is required"])])
        if kind == "SUBSCRIBE":
            return await self.subscribe(request)
        handler = self.calls.get(kind)
        if handler is None:
            raise HTTPError(400, f"Call type {kind} is not supported by mesoslite",
                            [("type", ["unsupported"])])
        answer = await handler(self.server, request, call)
        if answer is None:
            return web.Response(status=202)
        if isinstance(answer, web.Response):
            return answer
        return message_response(wire.MASTER_RESPONSE, answer, answer_type)
