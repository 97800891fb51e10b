"""``/v2/events``: Marathon's event stream over Server-Sent Events.

Events are published once the change they describe is committed (they travel as
notes of the kit's journal, ``ServicesState.emit``), in Marathon's shapes (``eventType``,
``timestamp``, ...): ``api_post_event``, ``group_change_success``, ``deployment_info``,
``deployment_step_success``, ``deployment_step_failure``, ``deployment_success``,
``deployment_failed``, ``status_update_event``, ``instance_changed_event``,
``health_status_changed_event``, ``failed_health_check_event``, ``app_terminated_event``;
and, not being state changes, published at once: ``event_stream_attached`` /
``event_stream_detached`` when a stream opens (the opening stream receives its own) or
closes.  mesoslite's own types (``endpoints_changed_event``, ``autoscale_decision``) are
sent only to streams that name them in ``event_type``.  Each SSE message carries the type on its ``event:`` line and in ``eventType``.
``?event_type=`` filters (repeatable, as Marathon); ``Last-Event-ID`` resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from frameworks.common.sse import SseBroadcaster
from frameworks.services.model import App, app_json, timestamp
from frameworks.services.tasks import TaskRecord
from mesoslite.messages.mesos import TaskState, TaskStatus

# Mesos task states as Marathon's instance conditions (core.condition.Condition).
CONDITIONS = {
    TaskState.TASK_STAGING: "Staging", TaskState.TASK_STARTING: "Starting",
    TaskState.TASK_RUNNING: "Running", TaskState.TASK_KILLING: "Killing",
    TaskState.TASK_FINISHED: "Finished", TaskState.TASK_FAILED: "Failed",
    TaskState.TASK_KILLED: "Killed", TaskState.TASK_ERROR: "Error",
    TaskState.TASK_LOST: "Gone", TaskState.TASK_DROPPED: "Dropped",
    TaskState.TASK_UNREACHABLE: "Unreachable", TaskState.TASK_GONE: "Gone",
    TaskState.TASK_GONE_BY_OPERATOR: "Gone", TaskState.TASK_UNKNOWN: "Unknown",
}
# mesoslite's own event types: sent only to streams asking for them by ``event_type``,
# so a Marathon client reading the whole stream meets only types it knows (some,
# like marathon-python's, refuse unknown ones).
EXTENSION_EVENTS = frozenset({"endpoints_changed_event", "autoscale_decision"})
# TASK_LOST for these reasons may come back (Marathon's TaskConditionMapping).
UNREACHABLE_REASONS = frozenset({"REASON_RECONCILIATION", "REASON_SLAVE_DISCONNECTED",
                                 "REASON_AGENT_DISCONNECTED", "REASON_SLAVE_REMOVED",
                                 "REASON_AGENT_REMOVED"})


def status_event(task: TaskRecord, status: TaskStatus) -> dict[str, Any]:
    return {
        "slaveId": task.agent_id, "taskId": task.id, "taskStatus": status.state.value,
        "message": status.message or "", "appId": task.app_id, "host": task.hostname,
        "ipAddresses": [{"ipAddress": task.address, "protocol": "IPv4"}] if task.address else [],
        "ports": list(task.ports), "version": task.version,
    }


def condition(status: TaskStatus) -> str:
    """Marathon's condition for a Mesos task state."""
    if status.state == TaskState.TASK_LOST:
        reason = getattr(status.reason, "value", status.reason)
        return "Unreachable" if reason in UNREACHABLE_REASONS else "Gone"
    return CONDITIONS.get(status.state, "Unknown")


def instance_changed_event(task: TaskRecord, status: TaskStatus) -> dict[str, Any]:
    """``instance_changed_event`` (instance ids are task ids: one task per instance)."""
    return {
        "instanceId": task.id, "condition": condition(status), "runSpecId": task.app_id,
        "agentId": task.agent_id, "host": task.hostname, "runSpecVersion": task.version,
    }


def failed_health_check_event(app: App, task_id: str, index: int) -> dict[str, Any]:
    """``failed_health_check_event`` for ``app``'s check number ``index``; Marathon
    names the instance in ``taskId`` (``instanceId`` added for newer clients)."""
    return {"appId": app.id, "taskId": task_id, "instanceId": task_id,
            "healthCheck": app_json(app)["healthChecks"][index]}


def events_route(bus: SseBroadcaster, now: Callable[[], float] | None = None) -> web.RouteDef:
    """``now``: the clock stamping stream attach/detach events (None: none sent)."""

    async def events(request: web.Request) -> web.StreamResponse:
        types = [t for v in request.query.getall("event_type", []) for t in v.split(",") if t]
        if now is None:
            return await bus.handle(request, types or None, only_if_asked=EXTENSION_EVENTS)
        remote = request.remote or ""

        def announce(event_type: str) -> Callable[[], None]:
            return lambda: bus.publish(event_type, {
                "remoteAddress": remote, "eventType": event_type, "timestamp": timestamp(now())})

        return await bus.handle(request, types or None, announce("event_stream_attached"),
                                announce("event_stream_detached"), EXTENSION_EVENTS)

    return web.get("/v2/events", events)
