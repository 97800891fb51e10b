"""Read-only JSON views of the master (``/master/state`` and friends), shaped like
Mesos' so tooling written for Mesos reads them.  Pure functions of ``MasterState``."""

from __future__ import annotations

from typing import Any

import msgspec

from mesoslite import __version__
from mesoslite.master.model import (
    AgentRecord,
    AgentState,
    ExecutorRecord,
    FrameworkRecord,
    TaskRecord,
)
from mesoslite.master.operator_reads import master_flags
from mesoslite.master.operator_views import drain_info_json
from mesoslite.master.reservations import state_json as reservations_state_json
from mesoslite.master.state import MasterState
from mesoslite.master.usage import attach_statistics, usage_view
from mesoslite.messages.agent import Usage
from mesoslite.resources import Resources

_STANDARD = ("cpus", "mem", "disk", "gpus")


def resources_summary(resources: Resources) -> dict[str, Any]:
    """Mesos' summary form: scalars as numbers (standard ones always present),
    ranges as ``"[31000-31009, 31020-31020]"``, sets as ``"{a,b}"``."""
    out: dict[str, Any] = {name: 0.0 for name in _STANDARD}
    out.update(resources.scalars)
    for name, ranges in resources.ranges.items():
        out[name] = "[" + ", ".join(f"{b}-{e}" for b, e in ranges) + "]"
    for name, items in resources.sets.items():
        out[name] = "{" + ",".join(sorted(items)) + "}"
    return out


def executor_view(record: ExecutorRecord) -> dict[str, Any]:
    """An executor as Mesos' /state lists it under its framework."""
    return {"executor_id": record.id, "framework_id": record.framework_id,
            "slave_id": record.agent_id, "agent_id": record.agent_id,
            "name": record.info.name or "", "type": (record.info.type or "CUSTOM"),
            "role": record.role, "resources": resources_summary(record.resources)}


def task_view(task: TaskRecord) -> dict[str, Any]:
    info = msgspec.to_builtins(task.info)
    view = {
        "id": task.id,
        "name": task.info.name,
        "framework_id": task.framework_id,
        "executor_id": (task.info.executor.executor_id.value
                        if task.info.executor and task.info.executor.executor_id
                        else task.group_id or ""),
        "slave_id": task.agent_id,
        "agent_id": task.agent_id,
        "state": task.latest_state.value,
        "resources": resources_summary(task.resources),
        "role": task.role,
        "statuses": [{"state": s, "timestamp": t} for s, t in task.statuses],
    }
    if task.status.healthy is not None:
        view["healthy"] = task.status.healthy
    for key in ("labels", "discovery", "container", "health_check"):
        if key in info:
            view[key] = info[key]
    if task.status.message:
        view["message"] = task.status.message
    return view


def reservation_fields(agent: AgentRecord) -> dict[str, Any]:
    """Mesos' ``unreserved_resources``, ``reserved_resources`` (role -> summary) and
    ``reserved_resources_full`` (role -> resources with reservations and volumes)."""
    book = agent.reservations
    unreserved = agent.total
    for res in book.reserved.values():
        unreserved = unreserved - res
    summary, full = reservations_state_json(book)
    return {"unreserved_resources": resources_summary(unreserved),
            "reserved_resources": summary, "reserved_resources_full": full}


def agent_view(state: MasterState, agent: AgentRecord) -> dict[str, Any]:
    used = state.used_resources(agent_id=agent.id)
    offered = state.offered_resources(agent_id=agent.id)
    return {
        "id": agent.id,
        "pid": f"slave(1)@{agent.address}:{agent.port}",
        "hostname": agent.hostname,
        "address": agent.address,
        "port": agent.port,
        "registered_time": agent.registered_time,
        "reregistered_time": agent.reregistered_time,
        "resources": resources_summary(agent.total),
        "used_resources": resources_summary(used),
        "offered_resources": resources_summary(offered),
        **reservation_fields(agent),
        "attributes": dict(agent.attributes),
        "active": agent.offerable,
        "deactivated": agent.deactivated,
        **({"drain_info": drain_info_json(agent.drain)} if agent.drain else {}),
        "state": agent.state.value,
        "version": agent.version,
        "containerizers": list(agent.containerizers),
        "unreachable_time": agent.unreachable_time,
    }


def framework_view(state: MasterState, fw: FrameworkRecord, completed: bool = False
                   ) -> dict[str, Any]:
    info = fw.info
    tasks = [] if completed else state.framework_tasks(fw.id)
    return {
        "id": fw.id,
        "name": info.name,
        "user": info.user,
        "hostname": info.hostname or "",
        "principal": info.principal,
        "webui_url": info.webui_url or "",
        "role": fw.roles[0],
        "roles": fw.roles,
        "capabilities": [c.type.value for c in info.capabilities],
        "failover_timeout": info.failover_timeout,
        "checkpoint": info.checkpoint,
        "active": fw.connected,
        "connected": fw.connected,
        "recovered": fw.state.value == "recovered",
        "state": "completed" if completed else fw.state.value,
        "suppressed_roles": sorted(fw.suppressed_roles),
        "registered_time": fw.registered_time,
        "reregistered_time": fw.reregistered_time,
        "unregistered_time": fw.unregistered_time,
        "resources": resources_summary(state.used_resources(framework_id=fw.id)
                                       + state.offered_resources(framework_id=fw.id)),
        "used_resources": resources_summary(state.used_resources(framework_id=fw.id)),
        "offered_resources": resources_summary(state.offered_resources(framework_id=fw.id)),
        "tasks": [task_view(t) for t in tasks if t.latest_state.value != "TASK_UNREACHABLE"],
        "unreachable_tasks": [task_view(t) for t in tasks
                              if t.latest_state.value == "TASK_UNREACHABLE"],
        "completed_tasks": [task_view(t) for t in state.completed_tasks
                            if t.framework_id == fw.id],
        "executors": [executor_view(r) for r in state.framework_executors(fw.id)],
        "offers": [
            {"id": o.id, "agent_id": o.agent_id, "framework_id": o.framework_id,
             "resources": resources_summary(o.resources), "role": o.role}
            for o in (state.offers[i] for i in sorted(state.offers_by_framework.get(fw.id, ())))
        ],
    }


def state_view(state: MasterState, start_time: float, usage: dict[str, Usage]) -> dict[str, Any]:
    agents = list(state.agents.values())
    cfg = state.config
    view = {
        "version": __version__,
        "id": state.master_id,
        "pid": f"master@{cfg.hostname}:{cfg.port}",
        "hostname": cfg.hostname,
        "leader": f"master@{cfg.hostname}:{cfg.port}",
        "leader_info": msgspec.to_builtins(state.master_info()),
        "start_time": start_time,
        "elected_time": start_time,
        "epoch": state.epoch,
        "activated_slaves": sum(a.offerable for a in agents),
        "deactivated_slaves": sum(not a.offerable and a.state != AgentState.UNREACHABLE
                                  for a in agents),
        "unreachable_slaves": sum(a.state == AgentState.UNREACHABLE for a in agents),
        "slaves": [agent_view(state, a) for a in agents],
        "frameworks": [framework_view(state, f) for f in state.frameworks.values()],
        "completed_frameworks": [framework_view(state, f, completed=True)
                                 for f in state.completed_frameworks],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
        "flags": master_flags(cfg),
        "allocator": state.allocator.shares(),
        "usage": usage_view(state, usage),
    }
    attach_statistics(view, usage)
    return view


def tasks_view(state: MasterState, limit: int, offset: int) -> dict[str, Any]:
    tasks = sorted(state.tasks.values(), key=lambda t: t.key)
    return {"tasks": [task_view(t) for t in tasks[offset:offset + limit]]}
