"""The operator's framework teardown: ``TEARDOWN`` on ``POST /api/v1`` and Mesos' v0
``POST /master/teardown`` (form body ``frameworkId=<id>``)::

    {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "..."}}}

The framework's tasks are killed, its offers rescinded, its stream ended, and it may
not subscribe again with that id: what a scheduler's own TEARDOWN call does
(``FrameworkOps.teardown``).  200 with no body once stored (as Mesos answers both);
400 naming a missing field, 403 without ``teardown_framework`` on the framework's
principal (the action the scheduler's call needs too), 404 for a framework this
master does not run (never subscribed, or already removed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mesoslite.httpapi import HTTPError
from mesoslite.master.stimuli import Refusal

if TYPE_CHECKING:
    from mesoslite.master.operator_api import OperatorCall
    from mesoslite.master.server import MasterServer
    from mesoslite.master.state import MasterState


@dataclass(frozen=True)
class OperatorTearsDown:
    """``TEARDOWN`` (operator API) or ``/master/teardown``."""

    framework_id: str


def teardown(state: MasterState, stimulus: OperatorTearsDown, now: float, mono: float
             ) -> Refusal | None:
    """Remove the framework as its own TEARDOWN call would; 404 when it is not here."""
    if stimulus.framework_id not in state.frameworks:
        return Refusal(404, f"Framework '{stimulus.framework_id}' is not known to this "
                            "master (or was already removed)", "framework_id")
    state.teardown(stimulus.framework_id, now, mono)
    return None


async def _teardown(server: MasterServer, request: web.Request, framework_id: str,
                    where: str) -> web.Response:
    fw = server.state.frameworks.get(framework_id)
    if fw is not None:
        server.auth.require(request, "teardown_framework", fw.info.principal or "")
    refusal = server.handle(OperatorTearsDown(framework_id))
    if isinstance(refusal, Refusal):
        raise HTTPError(refusal.status, refusal.message, [(where, [refusal.message])])
    await server.flush()  # stored before the answer
    return web.Response(status=200)


async def _call(server: MasterServer, request: web.Request, body: dict[str, Any]
                ) -> web.Response:
    where = "teardown.framework_id.value"
    inner = body.get("teardown")
    fid = inner.get("framework_id") if isinstance(inner, dict) else None
    value = fid.get("value") if isinstance(fid, dict) else None
    if not isinstance(value, str) or not value:
        raise HTTPError(400, f"Expecting '{where}' to be a string", [(where, ["is required"])])
    return await _teardown(server, request, value, where)


CALLS: dict[str, OperatorCall] = {"TEARDOWN": _call}


class TeardownHTTP:
    """``POST /master/teardown`` (v0)."""

    def __init__(self, server: MasterServer) -> None:
        self.server = server

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/master/teardown", self.v0)

    async def v0(self, request: web.Request) -> web.Response:
        await self.server.check_leader(request)
        try:
            form = await request.post()
        except (ValueError, LookupError, web.HTTPException) as exc:
            # not a form body: no multipart boundary, bytes not in the charset (a
            # ValueError), an unknown charset (LookupError), a broken part header
            raise HTTPError(400, f"Expecting a form body with 'frameworkId': {exc}",
                            [("frameworkId", ["is required"])]) from None
        value = form.get("frameworkId")
        if not isinstance(value, str) or not value:
            raise HTTPError(400, "Expecting 'frameworkId' in the form body",
                            [("frameworkId", ["is required"])])
        return await _teardown(self.server, request, value, "frameworkId")
