"""The operator API's agent calls (``POST /api/v1``), as in Mesos::

    {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "..."},
                                           "max_grace_period": {"seconds": 600},
                                           "mark_gone": false}}
    {"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": "..."}}}
    {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": "..."}}}
    {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": "..."}}}

``max_grace_period`` is a duration: ``{"seconds": s, "nanos": n}`` (protobuf's
``Duration``, as Mesos reads it), the string ``"600s"`` (protobuf's JSON mapping) or
``{"nanoseconds": n}`` (Mesos' ``DurationInfo``).

Answered ``200 OK`` with no body once the change is stored (as Mesos does); 400 with
the offending field, 403 without the ACL action (``drain_agent`` — and
``mark_agent_gone`` too when the drain marks the agent gone —, ``deactivate_agent``,
``reactivate_agent``, ``mark_agent_gone``; the object is the agent id), 404 for an
agent this master does not know (or that is gone), 409 when it cannot be done now
(reactivating an agent still DRAINING, or one not deactivated).  A refused call
changes nothing.  See ``operator_agents`` for what each call does.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mesoslite.httpapi import HTTPError
from mesoslite.master.stimuli import (
    OperatorDeactivatesAgent,
    OperatorDrainsAgent,
    OperatorMarksAgentGone,
    OperatorReactivatesAgent,
    Refusal,
)

if TYPE_CHECKING:
    from mesoslite.master.operator_api import OperatorCall
    from mesoslite.master.server import MasterServer

_SECONDS = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_MAX_NANOS = 10**9 - 1


def read_agent_id(body: object, field: str) -> str:
    """``body.agent_id.value`` (``body`` is the call's ``field`` object), or a 400."""
    if not isinstance(body, dict):
        raise HTTPError(400, f"Expecting '{field}' to be an object", [(field, ["is required"])])
    agent = body.get("agent_id")
    if not isinstance(agent, dict) or not isinstance(agent.get("value"), str) or not agent[
            "value"]:
        where = f"{field}.agent_id.value"
        raise HTTPError(400, f"Expecting '{where}' to be a string", [(where, ["is required"])])
    return agent["value"]


def read_duration(value: object, where: str) -> float:
    """A duration in seconds from any of the three JSON forms (module docstring);
    a negative, non-finite or malformed one is a 400 naming ``where``."""
    seconds: float | None = None
    if isinstance(value, str) and _SECONDS.match(value):
        seconds = float(value[:-1])
    elif isinstance(value, dict) and value and set(value) <= {"seconds", "nanos"}:
        whole, nanos = _integer(value.get("seconds", 0)), _integer(value.get("nanos", 0))
        if whole is not None and nanos is not None and abs(nanos) <= _MAX_NANOS:
            seconds = whole + nanos / 1e9
    elif isinstance(value, dict) and set(value) == {"nanoseconds"}:
        nanoseconds = _integer(value["nanoseconds"])
        seconds = None if nanoseconds is None else nanoseconds / 1e9
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        message = (f"Expecting '{where}' to be a duration that is not negative: "
                   '{"seconds": 600}, "600s" or {"nanoseconds": 600000000000}')
        raise HTTPError(400, message, [(where, ["is not a valid duration"])])
    return seconds


def _integer(value: object) -> int | None:
    """A 64-bit integer (protobuf's JSON may write one as a string), or None."""
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63:
        return value
    return None


def _read_drain(body: object) -> OperatorDrainsAgent:
    agent_id = read_agent_id(body, "drain_agent")
    assert isinstance(body, dict)  # read_agent_id refused anything else
    grace = body.get("max_grace_period")
    if grace is not None:
        grace = read_duration(grace, "drain_agent.max_grace_period")
    mark_gone = body.get("mark_gone", False)
    if not isinstance(mark_gone, bool):
        raise HTTPError(400, "Expecting 'drain_agent.mark_gone' to be a boolean",
                        [("drain_agent.mark_gone", ["must be true or false"])])
    return OperatorDrainsAgent(agent_id, grace, mark_gone)


_AgentStimulus = (OperatorDrainsAgent | OperatorDeactivatesAgent | OperatorReactivatesAgent
                  | OperatorMarksAgentGone)


def _stimulus(kind: str, body: object) -> tuple[_AgentStimulus, list[str]]:
    """The call's stimulus and the ACL actions it needs (each on the agent id)."""
    if kind == "DRAIN_AGENT":
        drain = _read_drain(body)
        return drain, ["drain_agent"] + (["mark_agent_gone"] if drain.mark_gone else [])
    field = kind.lower()
    agent_id = read_agent_id(body, field)
    if kind == "DEACTIVATE_AGENT":
        return OperatorDeactivatesAgent(agent_id), [field]
    if kind == "REACTIVATE_AGENT":
        return OperatorReactivatesAgent(agent_id), [field]
    return OperatorMarksAgentGone(agent_id), [field]


def _call(kind: str) -> OperatorCall:
    async def call(server: MasterServer, request: web.Request,
                   body: dict[str, Any]) -> web.Response:
        field = kind.lower()
        stimulus, actions = _stimulus(kind, body.get(field))
        for action in actions:
            server.auth.require(request, action, stimulus.agent_id)
        refusal = server.handle(stimulus)
        if isinstance(refusal, Refusal):
            where = f"{field}.{refusal.path}" if refusal.path else field
            raise HTTPError(refusal.status, refusal.message, [(where, [refusal.message])])
        await server.flush()  # stored before the answer
        return web.Response(status=200)
    return call


CALLS: dict[str, OperatorCall] = {
    kind: _call(kind)
    for kind in ("DRAIN_AGENT", "DEACTIVATE_AGENT", "REACTIVATE_AGENT", "MARK_AGENT_GONE")}
