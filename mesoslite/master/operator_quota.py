"""Role weights and quota set by an operator (Mesos' ``UPDATE_WEIGHTS`` and
``UPDATE_QUOTA``), kept durable and handed to the allocator at once.

The master holds ``role_weights`` (the ``--weights`` flag's, overridden by the ones
set at run time) and ``quotas`` (role -> ``Quota``).  Both are stored in the master's
meta table (keys ``weights`` and ``quota``) with the flush that follows the change,
and loaded back on recovery.  Each update is all or nothing: it changes the state and
returns None, or returns a ``Refusal`` and changes nothing.  No I/O.

``force`` (``UPDATE_QUOTA``): without it an update is refused (409) when the sum of
all roles' guarantees would exceed the cluster's capacity (every agent's total but
the unreachable ones'), or when a new limit is below what the role's tasks already
hold.  Quota on a role that shrinks its limits rescinds the role's outstanding offers
that go beyond them; a new or raised guarantee rescinds every outstanding offer, so
the next round hands the resources out with the guarantees first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mesoslite.master.allocator import Quota, check_quota, check_role
from mesoslite.master.allocator.quota import top_role
from mesoslite.master.allocator.records import check_weight
from mesoslite.master.model import AgentState
from mesoslite.master.stimuli import Refusal
from mesoslite.resources import Resources

if TYPE_CHECKING:
    from mesoslite.master.state import MasterState

WEIGHTS_KEY = "weights"
QUOTA_KEY = "quota"


@dataclass(frozen=True)
class OperatorUpdatesWeights:
    """``UPDATE_WEIGHTS``: role -> new weight."""

    weights: dict[str, float]


@dataclass(frozen=True)
class QuotaConfig:
    """One role's requested quota (Mesos' ``QuotaConfig``); both empty: remove it."""

    role: str
    guarantees: dict[str, float]
    limits: dict[str, float]


@dataclass(frozen=True)
class OperatorUpdatesQuota:
    """``UPDATE_QUOTA``: the new quota of each named role, all or nothing."""

    configs: list[QuotaConfig]
    force: bool = False


# ---------------------------------------------------------------- weights


def update_weights(state: MasterState, stimulus: OperatorUpdatesWeights, now: float,
                   mono: float) -> Refusal | None:
    """Set each role's weight (the allocator uses it from the next round on)."""
    try:
        weights = {check_role(role): check_weight(weight, f"role {role!r}")
                   for role, weight in stimulus.weights.items()}
    except (TypeError, ValueError) as exc:
        return Refusal(400, f"UPDATE_WEIGHTS: {exc}", "weight_infos")
    for role, weight in weights.items():
        state.role_weights[role] = weight
        state.allocator.set_role_weight(role, weight)
    state.meta_writes[WEIGHTS_KEY] = json.dumps(state.stored_weights | weights)
    state.stored_weights.update(weights)
    return None


# ---------------------------------------------------------------- quota


def update_quota(state: MasterState, stimulus: OperatorUpdatesQuota, now: float,
                 mono: float) -> Refusal | None:
    """Set each named role's quota (see the module docstring for ``force``)."""
    new: dict[str, Quota] = {}
    for config in stimulus.configs:
        if config.role in new:
            return Refusal(400, f"UPDATE_QUOTA: role '{config.role}' is named twice",
                           "quota_configs")
        try:
            new[config.role] = check_quota(config.role, config.guarantees, config.limits)
        except (TypeError, ValueError) as exc:
            return Refusal(400, f"UPDATE_QUOTA: {exc}", "quota_configs")
    if not stimulus.force:
        refusal = _overcommitted(state, new) or _below_consumption(state, new)
        if refusal is not None:
            return refusal
    _apply(state, new, mono)
    return None


def _apply(state: MasterState, new: Mapping[str, Quota], mono: float) -> None:
    raised = any(quota.guarantees for quota in new.values())
    for role, quota in new.items():
        state.allocator.set_quota(role, quota.guarantees, quota.limits)
        if quota:
            state.quotas[role] = quota
        else:
            state.quotas.pop(role, None)
    state.meta_writes[QUOTA_KEY] = json.dumps(quota_doc(state.quotas))
    if raised:
        for offer_id in sorted(state.offers):
            state.release_offer(offer_id, mono, rescind=True)
        return
    for role, quota in new.items():
        if quota.limits and not _fits(quota.limits, _held(state, role, offered=True)):
            for offer_id in sorted(o.id for o in state.offers.values()
                                   if top_role(o.role) == role):
                state.release_offer(offer_id, mono, rescind=True)


def _overcommitted(state: MasterState, new: Mapping[str, Quota]) -> Refusal | None:
    quotas = {**state.quotas, **new}
    wanted: dict[str, float] = {}
    for quota in quotas.values():
        for name, value in quota.guarantees.items():
            wanted[name] = wanted.get(name, 0.0) + value
    capacity = Resources()
    for agent in state.agents.values():
        if agent.state != AgentState.UNREACHABLE:
            capacity = capacity + agent.total
    short = {k: v for k, v in wanted.items() if v > capacity.scalar(k) + 1e-9}
    if not short:
        return None
    name = min(short)
    return Refusal(409, f"UPDATE_QUOTA: the roles' guarantees of '{name}' add up to "
                        f"{short[name]:g}, more than the cluster's {capacity.scalar(name):g}"
                        " (use 'force' to set them anyway)", "quota_configs")


def _below_consumption(state: MasterState, new: Mapping[str, Quota]) -> Refusal | None:
    for role, quota in sorted(new.items()):
        held = _held(state, role, offered=False)
        for name, cap in sorted(quota.limits.items()):
            if held.scalar(name) > cap + 1e-9:
                return Refusal(409, f"UPDATE_QUOTA: role '{role}' already holds "
                                    f"{held.scalar(name):g} {name}, more than the limit "
                                    f"{cap:g} (use 'force' to set it anyway)",
                               "quota_configs")
    return None


def _held(state: MasterState, role: str, offered: bool) -> Resources:
    """What the role and its sub-roles' tasks and executors hold (and offers, if
    ``offered``)."""
    total = Resources()
    for task in state.tasks.values():
        if not task.released and top_role(task.role) == role:
            total = total + task.resources
    for executor in state.executors.values():
        if top_role(executor.role) == role:
            total = total + executor.resources
    if offered:
        for offer in state.offers.values():
            if top_role(offer.role) == role:
                total = total + offer.resources + offer.reserved
    return total


def _fits(limits: Mapping[str, float], held: Resources) -> bool:
    return all(held.scalar(k) <= cap + 1e-9 for k, cap in limits.items())


# ---------------------------------------------------------------- storage


def quota_doc(quotas: Mapping[str, Quota]) -> dict[str, Any]:
    """The stored form: role -> {"guarantees": {...}, "limits": {...}}."""
    return {role: {"guarantees": dict(q.guarantees), "limits": dict(q.limits)}
            for role, q in sorted(quotas.items())}


def recover(state: MasterState, meta: Iterable[Mapping[str, str]]) -> None:
    """Load the stored weights and quota into the state and the allocator."""
    stored = {row["key"]: row["value"] for row in meta}
    if WEIGHTS_KEY in stored:
        for role, weight in json.loads(stored[WEIGHTS_KEY]).items():
            state.stored_weights[role] = state.role_weights[role] = weight
            state.allocator.set_role_weight(role, weight)
    if QUOTA_KEY in stored:
        for role, doc in json.loads(stored[QUOTA_KEY]).items():
            quota = check_quota(role, doc.get("guarantees", {}), doc.get("limits", {}))
            state.quotas[role] = quota
            state.allocator.set_quota(role, quota.guarantees, quota.limits)
