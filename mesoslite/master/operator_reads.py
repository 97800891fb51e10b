"""The master's flags, metrics and roles, as Mesos' operator API and v0 endpoints
report them (``GET_FLAGS``, ``GET_METRICS``, ``GET_ROLES``; ``/master/flags``,
``/metrics/snapshot``, ``/master/roles``).

Pure functions of the configuration and the state; the HTTP edges are in
``operator_api`` (v1) and ``operator_reads_http`` (v0).  Names are Mesos' where Mesos
has the figure; mesoslite-only settings keep their own names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from mesoslite.master.core import MasterConfig
from mesoslite.master.model import AgentState
from mesoslite.master.state import MasterState
from mesoslite.messages.mesos import TaskState
from mesoslite.resources import Resources

# Settings that must never leave the master: the shared agent secret proves agents.
SECRET_FLAGS = frozenset({"agent_secret"})
# Durations are written as Mesos writes them ("15secs"); others are plain strings.
_DURATIONS = frozenset({"agent_ping_timeout", "agent_reregister_timeout", "offer_timeout",
                        "heartbeat_interval", "allocation_interval", "recovery_hold"})
# MasterConfig field -> the Mesos flag that holds the same setting
_MESOS_NAMES = {"role_weights": "weights"}


def _flag_value(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _DURATIONS:
        return f"{value}secs"
    if isinstance(value, Mapping):  # Mesos' --weights form: role=weight,...
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def master_flags(config: MasterConfig) -> dict[str, str]:
    """The master's effective configuration, flag name -> value as a string, without
    any secret."""
    return {_MESOS_NAMES.get(f.name, f.name): _flag_value(f.name, getattr(config, f.name))
            for f in dataclasses.fields(config) if f.name not in SECRET_FLAGS}


def flags_json(config: MasterConfig) -> dict[str, Any]:
    """Mesos' ``Response.GetFlags``: ``{"flags": [{"name", "value"}]}``."""
    return {"flags": [{"name": k, "value": v} for k, v in master_flags(config).items()]}


# ---------------------------------------------------------------- metrics

# task states counted as gauges (tasks in that state now) and as counters (tasks that
# reached the terminal state since this master started), as Mesos' master does
_TASK_GAUGES = (TaskState.TASK_STAGING, TaskState.TASK_STARTING, TaskState.TASK_RUNNING,
                TaskState.TASK_KILLING, TaskState.TASK_UNREACHABLE)
_TASK_COUNTERS = (TaskState.TASK_FINISHED, TaskState.TASK_FAILED, TaskState.TASK_KILLED,
                  TaskState.TASK_LOST, TaskState.TASK_GONE, TaskState.TASK_GONE_BY_OPERATOR)


def _task_name(state: TaskState) -> str:
    return "master/tasks_" + state.value.removeprefix("TASK_").lower()


def _task_metrics(state: MasterState, transitions: Mapping[TaskState, int]
                  ) -> dict[str, float]:
    now = state.tasks_by_state()
    out = {_task_name(s): float(now.get(s.value, 0)) for s in _TASK_GAUGES}
    out.update({_task_name(s): float(transitions.get(s, 0)) for s in _TASK_COUNTERS})
    out["master/tasks_error"] = float(state.counters.get("tasks_error", 0))
    out["master/tasks_dropped"] = float(state.counters.get("tasks_dropped", 0))
    return out


def _record_metrics(state: MasterState) -> dict[str, float]:
    agents = list(state.agents.values())
    frameworks = list(state.frameworks.values())

    def agents_in(*states: AgentState) -> float:
        return float(sum(a.state in states for a in agents))

    connected = float(sum(f.connected for f in frameworks))
    return {
        # active: offered (connected, not deactivated by the operator)
        "master/slaves_active": float(sum(a.offerable for a in agents)),
        "master/slaves_inactive": float(sum(not a.offerable and a.state != AgentState.UNREACHABLE
                                            for a in agents)),
        "master/slaves_connected": agents_in(AgentState.ACTIVE),
        "master/slaves_disconnected": agents_in(AgentState.DISCONNECTED,
                                                AgentState.RECOVERED),
        "master/slaves_unreachable": agents_in(AgentState.UNREACHABLE),
        "master/frameworks_active": connected,
        "master/frameworks_inactive": float(len(frameworks)) - connected,
        "master/frameworks_connected": connected,
        "master/frameworks_disconnected": float(len(frameworks)) - connected,
        "master/outstanding_offers": float(len(state.offers)),
    }


def _resource_metrics(state: MasterState) -> dict[str, float]:
    """``master/<cpus|mem|disk|gpus>_{total,used,percent}`` over active agents (Mesos
    reports MB for mem and disk, and so does this)."""
    active = [a for a in state.agents.values() if a.state == AgentState.ACTIVE]
    total = sum((a.total for a in active), Resources())
    used = sum((state.used_resources(agent_id=a.id) for a in active), Resources())
    out: dict[str, float] = {}
    for name in ("cpus", "mem", "disk", "gpus"):
        t, u = total.scalar(name), used.scalar(name)
        out.update({f"master/{name}_total": t, f"master/{name}_used": u,
                    f"master/{name}_percent": u / t if t else 0.0})
    return out


def _allocator_metrics(state: MasterState) -> dict[str, float]:
    out = {"allocator/mesos/allocation_runs":
           float(state.counters.get("allocation_rounds", 0))}
    for role, entry in sorted(state.allocator.shares()["roles"].items()):
        out[f"allocator/mesos/roles/{role}/shares/dominant"] = float(entry["share"])
    return out


def metrics_snapshot(state: MasterState, elected: bool, uptime_secs: float,
                     transitions: Mapping[TaskState, int]) -> dict[str, float]:
    """Mesos' metric name -> value for every figure mesoslite has (``transitions``:
    how many tasks entered each state, from the event source)."""
    out = {"master/elected": 1.0 if elected else 0.0, "master/uptime_secs": uptime_secs}
    out.update(_record_metrics(state))
    out.update(_task_metrics(state, transitions))
    out.update(_resource_metrics(state))
    for key in ("offers_declined", "offers_rescinded", "status_updates", "calls_invalid"):
        out[f"master/{_MESOS_COUNTERS.get(key, key)}"] = float(state.counters.get(key, 0))
    out.update(_allocator_metrics(state))
    return out


_MESOS_COUNTERS = {"offers_declined": "messages_decline_offers",
                   "offers_rescinded": "offers_rescinded",
                   "status_updates": "valid_status_updates",
                   "calls_invalid": "invalid_scheduler_calls"}


def metrics_json(snapshot: Mapping[str, float]) -> dict[str, Any]:
    """Mesos' ``Response.GetMetrics``: ``{"metrics": [{"name", "value"}]}``."""
    return {"metrics": [{"name": k, "value": v} for k, v in sorted(snapshot.items())]}


# ---------------------------------------------------------------- roles


@dataclasses.dataclass
class RoleView:
    """One role: its weight, the frameworks subscribed to it, what it holds."""

    name: str
    weight: float
    frameworks: list[str]
    allocated: Resources
    offered: Resources


def _role_names(state: MasterState, weights: Mapping[str, float]) -> set[str]:
    names = set(weights) | set(state.role_weights)
    for fw in state.frameworks.values():
        names.update(fw.roles)
    names.update(t.role for t in state.tasks.values() if not t.released)
    names.update(o.role for o in state.offers.values())
    return names


def roles(state: MasterState) -> list[RoleView]:
    """Every role that has a weight, a subscribed framework, tasks or offers, by name."""
    weights = {r: e["weight"] for r, e in state.allocator.shares()["roles"].items()}
    views = {name: RoleView(name, weights.get(name, state.role_weights.get(name, 1.0)),
                            [], Resources(), Resources())
             for name in _role_names(state, weights)}
    for fw in state.frameworks.values():
        for role in fw.roles:
            views[role].frameworks.append(fw.id)
    for task in state.tasks.values():
        if not task.released:
            views[task.role].allocated = views[task.role].allocated + task.resources
    for executor in state.executors.values():
        if executor.role in views:
            views[executor.role].allocated = views[executor.role].allocated + executor.resources
    for offer in state.offers.values():
        views[offer.role].offered = views[offer.role].offered + offer.resources
    return [views[name] for name in sorted(views)]


def role_json(role: RoleView) -> dict[str, Any]:
    """Mesos' ``Role`` (``resources``: what the role's frameworks were allocated)."""
    return {"name": role.name, "weight": role.weight,
            "frameworks": [{"value": f} for f in role.frameworks],
            "resources": role.allocated.to_json()}


def roles_json(views: Iterable[RoleView]) -> dict[str, Any]:
    """Mesos' ``Response.GetRoles``."""
    return {"roles": [role_json(r) for r in views]}
