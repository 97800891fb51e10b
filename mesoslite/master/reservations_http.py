"""The operator API's reservation calls (``POST /api/v1``), as in Mesos::

    {"type": "RESERVE_RESOURCES", "reserve_resources": {
        "agent_id": {"value": "..."},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 2},
                       "reservations": [{"type": "DYNAMIC", "role": "db"}]}]}}

and ``UNRESERVE_RESOURCES`` / ``unreserve_resources`` alike.  202 (no body) once the
new books are stored; 400 with the offending field, 403 without the ACL action
``reserve_resources`` / ``unreserve_resources`` on each role, 404 for an unknown
agent, 409 when the agent cannot satisfy it now (not enough free resources, or not
connected).  See ``operator_reservations`` for what each call does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from mesoslite.auth import PRINCIPAL
from mesoslite.httpapi import HTTPError
from mesoslite.master import operator_reservations as ops
from mesoslite.master.stimuli import OperatorReserves, OperatorUnreserves, Refusal
from mesoslite.messages.mesos import Resource

if TYPE_CHECKING:
    from mesoslite.master.operator_api import OperatorCall
    from mesoslite.master.server import MasterServer


async def reservation_call(server: MasterServer, request: web.Request, kind: str,
                           call: dict[str, Any]) -> None:
    field = kind.lower()
    agent_id, items = _read(call.get(field), field)
    parts = ops.read(items, kind)
    if isinstance(parts, Refusal):
        raise _error(parts, field)
    for role in sorted(parts.reserved):
        server.auth.require(request, field, role)
    if kind == "RESERVE_RESOURCES":
        refusal = server.handle(OperatorReserves(agent_id, items, request.get(PRINCIPAL)))
    else:
        refusal = server.handle(OperatorUnreserves(agent_id, items))
    if isinstance(refusal, Refusal):
        raise _error(refusal, field)
    await server.flush()  # stored before the answer (202)


def _read(body: object, field: str) -> tuple[str, list[Resource]]:
    if not isinstance(body, dict):
        raise HTTPError(400, f"Expecting '{field}' to be an object", [(field, ["is required"])])
    agent = body.get("agent_id")
    if not isinstance(agent, dict) or not isinstance(agent.get("value"), str) or not agent[
            "value"]:
        raise HTTPError(400, f"Expecting '{field}.agent_id.value' to be a string",
                        [(f"{field}.agent_id.value", ["is required"])])
    try:
        items = msgspec.convert(body.get("resources"), list[Resource])
    except msgspec.ValidationError as exc:
        where = f"{field}.resources"
        raise HTTPError(400, f"Invalid '{where}': {exc}", [(where, [str(exc)])]) from None
    return agent["value"], items


def _error(refusal: Refusal, field: str) -> HTTPError:
    where = f"{field}.{refusal.path}" if refusal.path else field
    return HTTPError(refusal.status, refusal.message, [(where, [refusal.message])])


def _call(kind: str) -> OperatorCall:
    async def call(server: MasterServer, request: web.Request,
                   body: dict[str, Any]) -> None:
        await reservation_call(server, request, kind, body)
    return call


CALLS: dict[str, OperatorCall] = {
    kind: _call(kind) for kind in ("RESERVE_RESOURCES", "UNRESERVE_RESOURCES")}
