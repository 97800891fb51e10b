"""Maintenance over HTTP: the operator API's calls and Mesos' v0 endpoints.

``POST /api/v1`` (``CALLS``)::

    {"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {"schedule":
        {"windows": [{"machine_ids": [{"hostname": "h1", "ip": "10.0.0.1"}],
                      "unavailability": {"start": {"nanoseconds": ...},
                                         "duration": {"nanoseconds": ...}}}]}}}
    {"type": "GET_MAINTENANCE_SCHEDULE"}  -> {"get_maintenance_schedule": {"schedule": ...}}
    {"type": "GET_MAINTENANCE_STATUS"}    -> {"get_maintenance_status": {"status": ...}}
    {"type": "START_MAINTENANCE", "start_maintenance": {"machines": [MachineID, ...]}}
    {"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": [MachineID, ...]}}

The changes answer 200 with no body once stored (as Mesos does); 400 names the
offending field and changes nothing.  v0: ``GET``/``POST /master/maintenance/schedule``
(a ``Schedule``), ``GET /master/maintenance/status`` (a ``ClusterStatus``),
``POST /master/machine/down`` and ``/master/machine/up`` (a JSON list of MachineIDs).

ACL actions (objects: each machine's hostname, or its IP when it has none):
``update_maintenance_schedule``, ``start_maintenance``, ``stop_maintenance``;
``get_maintenance_schedule`` and ``get_maintenance_status`` show only the machines
the principal may see (as Mesos filters them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from aiohttp import web

from mesoslite.auth import PRINCIPAL
from mesoslite.httpapi import HTTPError, json_response, read_json
from mesoslite.master import maintenance_ops
from mesoslite.master.stimuli import (
    OperatorSchedulesMaintenance,
    OperatorStartsMaintenance,
    OperatorStopsMaintenance,
    Refusal,
)
from mesoslite.messages.maintenance import ClusterStatus, Schedule, Window
from mesoslite.messages.mesos import MachineID

if TYPE_CHECKING:
    from mesoslite.master.operator_api import OperatorCall
    from mesoslite.master.server import MasterServer


def _object(machine: MachineID) -> str:
    return machine.hostname or machine.ip or ""


def _convert(value: object, kind: type, where: str) -> Any:
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        path = text.rsplit(" - at `$", 1)[1].rstrip("`") if " - at `$" in text else ""
        raise HTTPError(400, f"Invalid '{where}': {text}", [(where + path, [text])]) from None


def _body(call: dict[str, Any], field: str) -> dict[str, Any]:
    body = call.get(field)
    if not isinstance(body, dict):
        raise HTTPError(400, f"Expecting '{field}' to be present", [(field, ["is required"])])
    return body


def _refused(refusal: Refusal | None, prefix: str) -> None:
    """Raise the refusal as an HTTP error, its field path under ``prefix`` (where
    the call's body sat in the request)."""
    if isinstance(refusal, Refusal):
        raise HTTPError(refusal.status, refusal.message,
                        [(prefix + (refusal.path or ""), [refusal.message])])


# ---------------------------------------------------------------- the actions


async def update_schedule(server: MasterServer, request: web.Request,
                          schedule: Schedule, prefix: str = "") -> None:
    for window in schedule.windows:
        for machine in window.machine_ids:
            server.auth.require(request, "update_maintenance_schedule", _object(machine))
    _refused(server.handle(OperatorSchedulesMaintenance(schedule)), prefix)
    await server.flush()  # stored before the answer


async def change_machines(server: MasterServer, request: web.Request, machines: list[MachineID],
                          down: bool, prefix: str = "") -> None:
    action = "start_maintenance" if down else "stop_maintenance"
    for machine in machines:
        server.auth.require(request, action, _object(machine))
    stimulus = (OperatorStartsMaintenance(machines) if down
                else OperatorStopsMaintenance(machines))
    _refused(server.handle(stimulus), prefix)
    await server.flush()


def visible_schedule(server: MasterServer, request: web.Request) -> Schedule:
    principal = request.get(PRINCIPAL)
    windows = []
    for window in server.state.maintenance.schedule.windows:
        machines = [m for m in window.machine_ids if server.auth.allowed(
            principal, "get_maintenance_schedule", _object(m))]
        if machines:
            windows.append(Window(unavailability=window.unavailability, machine_ids=machines))
    return Schedule(windows=windows)


def visible_status(server: MasterServer, request: web.Request) -> ClusterStatus:
    principal = request.get(PRINCIPAL)
    status = maintenance_ops.cluster_status(server.state)

    def seen(machine: MachineID) -> bool:
        return server.auth.allowed(principal, "get_maintenance_status", _object(machine))
    return ClusterStatus(
        draining_machines=[d for d in status.draining_machines if seen(d.id)],
        down_machines=[m for m in status.down_machines if seen(m)])


# ---------------------------------------------------------------- operator calls


async def _update(server: MasterServer, request: web.Request, call: dict[str, Any]) -> None:
    body = _body(call, "update_maintenance_schedule")
    if "schedule" not in body:
        raise HTTPError(400, "Expecting 'update_maintenance_schedule.schedule' to be present",
                        [("update_maintenance_schedule.schedule", ["is required"])])
    schedule = _convert(body["schedule"], Schedule, "update_maintenance_schedule.schedule")
    await update_schedule(server, request, schedule, "update_maintenance_schedule.")


def _machines_call(down: bool) -> OperatorCall:
    field = "start_maintenance" if down else "stop_maintenance"

    async def call(server: MasterServer, request: web.Request, body: dict[str, Any]) -> None:
        machines = _convert(_body(body, field).get("machines", []), list[MachineID],
                            f"{field}.machines")
        await change_machines(server, request, machines, down, f"{field}.")
    return call


async def _get_schedule(server: MasterServer, request: web.Request,
                        call: dict[str, Any]) -> dict[str, Any]:
    return {"type": "GET_MAINTENANCE_SCHEDULE", "get_maintenance_schedule": {
        "schedule": msgspec.to_builtins(visible_schedule(server, request))}}


async def _get_status(server: MasterServer, request: web.Request,
                      call: dict[str, Any]) -> dict[str, Any]:
    return {"type": "GET_MAINTENANCE_STATUS", "get_maintenance_status": {
        "status": msgspec.to_builtins(visible_status(server, request))}}


def _ok(handler: OperatorCall) -> OperatorCall:
    """Mesos answers these calls 200 OK with an empty body."""
    async def call(server: MasterServer, request: web.Request,
                   body: dict[str, Any]) -> dict[str, Any] | None:
        await handler(server, request, body)
        return {}
    return call


CALLS: dict[str, OperatorCall] = {
    "UPDATE_MAINTENANCE_SCHEDULE": _ok(_update),
    "GET_MAINTENANCE_SCHEDULE": _get_schedule,
    "GET_MAINTENANCE_STATUS": _get_status,
    "START_MAINTENANCE": _ok(_machines_call(down=True)),
    "STOP_MAINTENANCE": _ok(_machines_call(down=False)),
}


# ---------------------------------------------------------------- v0 endpoints


class MaintenanceHTTP:
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/master/maintenance/schedule", self.get_schedule)
        app.router.add_post("/master/maintenance/schedule", self.post_schedule)
        app.router.add_get("/master/maintenance/status", self.get_status)
        app.router.add_post("/master/machine/down", self.machines_down)
        app.router.add_post("/master/machine/up", self.machines_up)

    async def get_schedule(self, request: web.Request) -> web.Response:
        await self.server.check_leader(request)
        return json_response(msgspec.to_builtins(visible_schedule(self.server, request)))

    async def post_schedule(self, request: web.Request) -> web.Response:
        await self.server.check_leader(request)
        schedule = _convert(await read_json(request), Schedule, "schedule")
        await update_schedule(self.server, request, schedule)
        return web.Response(status=200)

    async def get_status(self, request: web.Request) -> web.Response:
        await self.server.check_leader(request)
        return json_response(msgspec.to_builtins(visible_status(self.server, request)))

    async def machines_down(self, request: web.Request) -> web.Response:
        return await self._machines(request, down=True)

    async def machines_up(self, request: web.Request) -> web.Response:
        return await self._machines(request, down=False)

    async def _machines(self, request: web.Request, down: bool) -> web.Response:
        await self.server.check_leader(request)
        machines = _convert(await read_json(request), list[MachineID], "machines")
        await change_machines(self.server, request, machines, down)
        return web.Response(status=200)
