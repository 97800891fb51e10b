"""Read-only views of the allocator's state: shares for operators, reasons for authors.

``why_not`` answers "why is my framework not offered this agent?" with a stable reason
constant (DESIGN principle 4); ``shares`` is what /master/state and /metrics show.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mesoslite.master.allocator.records import AgentRecord, FrameworkRecord
from mesoslite.master.allocator.sorter import DRFSorter, dominant_share
from mesoslite.resources import Resources

# Reasons ``why_not`` gives (stable strings, for the API and CLI), in the order checked.
AGENT_UNKNOWN = "agent_unknown"
FRAMEWORK_UNKNOWN = "framework_unknown"
AGENT_INACTIVE = "agent_inactive"
AGENT_FULL = "agent_has_no_available_resources"
FRAMEWORK_INACTIVE = "framework_inactive"
ROLE_NOT_SUBSCRIBED = "role_not_subscribed"
ROLE_SUPPRESSED = "role_suppressed"
FILTERED = "filtered_by_decline"


def why_not(
    agent: AgentRecord | None,
    fw: FrameworkRecord | None,
    role: str,
    filtered: Callable[[], bool],
) -> str | None:
    """The first reason the agent cannot go to (framework, role); None if it can."""
    if agent is None:
        return AGENT_UNKNOWN
    if fw is None or not fw.registered:
        return FRAMEWORK_UNKNOWN
    checks = [
        (not agent.active, AGENT_INACTIVE),
        (not agent.available, AGENT_FULL),
        (not fw.active, FRAMEWORK_INACTIVE),
        (role not in fw.roles, ROLE_NOT_SUBSCRIBED),
        (role in fw.suppressed, ROLE_SUPPRESSED),
    ]
    for failed, reason in checks:
        if failed:
            return reason
    return FILTERED if filtered() else None


def _entry(alloc: Mapping[str, float], total: Mapping[str, float], weight: float
           ) -> dict[str, Any]:
    share = dominant_share(alloc, total)
    return {"share": share, "weighted_share": share / weight, "weight": weight,
            "allocated": Resources(scalars=alloc)}


def shares(sorter: DRFSorter, frameworks: Mapping[str, FrameworkRecord]) -> dict[str, Any]:
    """``{"total", "roles": {role: entry}, "frameworks": {id: entry + active, roles}}``.

    An entry is ``share`` (allocation / cluster total, max over scalar kinds),
    ``weighted_share`` (share / weight: what DRF compares), ``weight`` and ``allocated``
    (scalars only).  A role's entry counts its sub-roles; a framework's ``roles`` hold
    one entry per role it is subscribed to or still holds resources in.
    """
    total = sorter.total
    roles = {
        role: _entry(sorter.role_allocation(role), total, sorter.role_weight(role))
        for role in sorter.roles()
    }
    out: dict[str, Any] = {}
    for fid, fw in frameworks.items():
        per_role: dict[str, Any] = {}
        overall = Resources()
        for role, slot in sorted(fw.clients.items()):
            per_role[role] = _entry(sorter.client_allocation(slot), total, fw.weight)
            overall = overall + per_role[role]["allocated"]
        out[fid] = _entry(overall.scalars, total, fw.weight)
        out[fid].update(active=fw.active and fw.registered, roles=per_role)
    return {"total": Resources(scalars=total), "roles": roles, "frameworks": out}
