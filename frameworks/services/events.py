"""``/v2/events``: Marathon's event stream over Server-Sent Events.

Events are published once the change they describe is committed (they travel as
notes of the kit's journal, ``ServicesState.emit``), in Marathon's shapes (``eventType``, ``timestamp``, ...):
``api_post_event``, ``deployment_info``, ``deployment_success``, ``deployment_failed``,
``status_update_event``, ``health_status_changed_event``, ``app_terminated_event``.
``?event_type=`` filters (repeatable, as Marathon); ``Last-Event-ID`` resumes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from frameworks.common.sse import SseBroadcaster
from frameworks.services.tasks import TaskRecord
from mesoslite.messages.mesos import TaskStatus


def status_event(task: TaskRecord, status: TaskStatus) -> dict[str, Any]:
    return {
        "slaveId": task.agent_id, "taskId": task.id, "taskStatus": status.state.value,
        "message": status.message or "", "appId": task.app_id, "host": task.hostname,
        "ipAddresses": [{"ipAddress": task.address, "protocol": "IPv4"}] if task.address else [],
        "ports": list(task.ports), "version": task.version,
    }


def events_route(bus: SseBroadcaster) -> web.RouteDef:
    async def events(request: web.Request) -> web.StreamResponse:
        types = [t for v in request.query.getall("event_type", []) for t in v.split(",") if t]
        return await bus.handle(request, types or None)

    return web.get("/v2/events", events)
