"""The master's records in the JSON shapes of Mesos' v1 operator API
(``mesos/v1/master/master.proto``: ``Response.GetState``, ``GetAgents.Agent``,
``GetFrameworks.Framework``, ``Task``).

Pure functions of records (or of the snapshots the event source takes of them); used by
the SUBSCRIBED snapshot, the synchronous ``GET_*`` calls of ``POST /api/v1`` and the
payloads of the event stream.  Only fields Mesos defines are emitted, so a strict
protobuf JSON parser reads them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from mesoslite import __version__
from mesoslite.master.model import (
    AgentRecord,
    AgentState,
    DrainRecord,
    FrameworkRecord,
    TaskRecord,
)
from mesoslite.master.state import MasterState
from mesoslite.messages.attributes import mesos_attributes
from mesoslite.messages.mesos import ID, TaskState, TaskStatus
from mesoslite.resources import Resources


def time_info(seconds: float | None) -> dict[str, int] | None:
    """Mesos' ``TimeInfo`` (``{"nanoseconds": n}``) or None."""
    return None if seconds is None else {"nanoseconds": int(seconds * 1e9)}


def _set(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def status_json(status: TaskStatus) -> dict[str, Any]:
    """A ``TaskStatus`` as Mesos encodes it (bytes as base64)."""
    return msgspec.to_builtins(status)


def task_json(framework_id: str, agent_id: str, info_doc: dict[str, Any], role: str,
              status: TaskStatus, latest: TaskState,
              history: tuple[tuple[str, float], ...] | list[tuple[str, float]]
              ) -> dict[str, Any]:
    """A Mesos ``Task``.  ``statuses`` is the state history (state and timestamp of
    each transition), its last entry the full latest status when it matches."""
    task_id = info_doc["task_id"]
    statuses: list[dict[str, Any]] = [
        {"task_id": task_id, "state": state, "timestamp": ts} for state, ts in history
    ]
    if statuses and statuses[-1]["state"] == status.state.value:
        statuses[-1] = status_json(status)
    out: dict[str, Any] = {
        "name": info_doc.get("name", ""),
        "task_id": task_id,
        "framework_id": {"value": framework_id},
        "agent_id": {"value": agent_id},
        "state": latest.value,
        "resources": info_doc.get("resources", []),
        "statuses": statuses,
        "status_update_state": status.state.value,
        "role": role,
    }
    if status.uuid is not None:
        out["status_update_uuid"] = status_json(status)["uuid"]
    for key in ("labels", "discovery", "container", "health_check", "kill_policy"):
        _set(out, key, info_doc.get(key))
    return out


def task_record_json(task: TaskRecord) -> dict[str, Any]:
    return task_json(task.framework_id, task.agent_id, task._info_builtins(), task.role,
                     task.status, task.latest_state, task.statuses)


def _attributes(attributes: dict[str, str]) -> list[dict[str, Any]]:
    # typed as in offers, so a client sees one agent's attributes alike everywhere
    return msgspec.to_builtins(mesos_attributes(attributes))


def agent_info_json(agent: AgentRecord) -> dict[str, Any]:
    """A Mesos ``AgentInfo``."""
    return {
        "hostname": agent.hostname,
        "id": {"value": agent.id},
        "port": agent.port,
        "resources": agent.total.to_json(),
        "attributes": _attributes(agent.attributes),
    }


def drain_info_json(drain: DrainRecord) -> dict[str, Any]:
    """A Mesos ``DrainInfo``: ``{"state": "DRAINING", "config": {...}}``."""
    config: dict[str, Any] = {"mark_gone": drain.mark_gone}
    _set(config, "max_grace_period", time_info(drain.max_grace_period))
    return {"state": drain.state.value, "config": config}


def agent_json(agent: AgentRecord, allocated: Resources | None = None,
               offered: Resources | None = None) -> dict[str, Any]:
    """A Mesos ``GetAgents.Agent``: ``active`` is false while disconnected or
    deactivated, ``deactivated`` is the operator's (DEACTIVATE_AGENT, DRAIN_AGENT)."""
    out: dict[str, Any] = {
        "agent_info": agent_info_json(agent),
        "active": agent.offerable,
        "deactivated": agent.deactivated,
        "version": agent.version,
        "pid": f"slave(1)@{agent.address}:{agent.port}",
        "total_resources": agent.total.to_json(),
    }
    _set(out, "registered_time", time_info(agent.registered_time))
    _set(out, "reregistered_time", time_info(agent.reregistered_time))
    if allocated is not None:
        out["allocated_resources"] = allocated.to_json()
    if offered is not None:
        out["offered_resources"] = offered.to_json()
    if agent.drain is not None:
        out["drain_info"] = drain_info_json(agent.drain)
    return out


def framework_json(fw: FrameworkRecord, allocated: Resources | None = None,
                   offered: Resources | None = None) -> dict[str, Any]:
    """A Mesos ``GetFrameworks.Framework``."""
    out: dict[str, Any] = {
        "framework_info": msgspec.to_builtins(fw.info),
        "active": fw.connected,
        "connected": fw.connected,
        "recovered": fw.state.value == "recovered",
    }
    _set(out, "registered_time", time_info(fw.registered_time))
    _set(out, "reregistered_time", time_info(fw.reregistered_time))
    _set(out, "unregistered_time", time_info(fw.unregistered_time))
    if allocated is not None:
        out["allocated_resources"] = allocated.to_json()
    if offered is not None:
        out["offered_resources"] = offered.to_json()
    return out


# ---------------------------------------------------------------- GetState


def get_agents(state: MasterState) -> dict[str, Any]:
    """Registered agents (active or disconnected); recovered ones not yet back apart;
    unreachable agents are left out, as Mesos does."""
    agents, recovered = [], []
    for agent in state.agents.values():
        if agent.state == AgentState.RECOVERED:
            recovered.append(agent_info_json(agent))
        elif agent.state != AgentState.UNREACHABLE:
            agents.append(agent_json(agent, state.used_resources(agent_id=agent.id),
                                     state.offered_resources(agent_id=agent.id)))
    return {"agents": agents, "recovered_agents": recovered}


def get_frameworks(state: MasterState) -> dict[str, Any]:
    return {
        "frameworks": [
            framework_json(fw, allocated=state.used_resources(framework_id=fw.id),
                           offered=state.offered_resources(framework_id=fw.id))
            for fw in state.frameworks.values()
        ],
        "completed_frameworks": [framework_json(fw) for fw in state.completed_frameworks],
    }


def get_executors(state: MasterState) -> dict[str, Any]:
    """Mesos' ``Response.GetExecutors``: every executor with its agent."""
    return {"executors": [
        {"agent_id": {"value": r.agent_id},
         "executor_info": msgspec.to_builtins(msgspec.structs.replace(
             r.info, framework_id=r.info.framework_id or ID(r.framework_id)))}
        for r in sorted(state.executors.values(), key=lambda r: r.key)]}


def get_tasks(state: MasterState) -> dict[str, Any]:
    tasks, unreachable = [], []
    for task in state.tasks.values():
        target = unreachable if task.latest_state == TaskState.TASK_UNREACHABLE else tasks
        target.append(task_record_json(task))
    return {"tasks": tasks, "unreachable_tasks": unreachable,
            "completed_tasks": [task_record_json(t) for t in state.completed_tasks]}


def get_state(state: MasterState, start_time: float) -> dict[str, Any]:
    """Mesos' ``Response.GetState``: tasks, executors, frameworks, agents, and the
    master's own details."""
    return {
        "get_tasks": get_tasks(state),
        "get_executors": get_executors(state),
        "get_frameworks": get_frameworks(state),
        "get_agents": get_agents(state),
        "version": __version__,
        "start_time": time_info(start_time),
        "leader": msgspec.to_builtins(state.master_info()),
        "elected_time": time_info(start_time),
    }
