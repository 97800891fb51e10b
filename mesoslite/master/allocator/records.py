"""The allocator's books: what it knows of each agent and framework, and small helpers.

Plain records with no behaviour beyond validation; ``allocator.py`` keeps them
consistent.  A *client* is one framework in one role, named by a small integer slot
shared by the DRF sorter and the filter matrices.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from mesoslite.master.allocator.offer_constraints import RoleRule
from mesoslite.resources import Resources

ClientKey = tuple[str, str]  # (framework_id, role)

EMPTY = Resources()


class Allocation(NamedTuple):
    """All available resources of one agent, given to one framework in one role."""

    framework_id: str
    role: str
    agent_id: str
    resources: Resources

    @property
    def reservation(self) -> str | None:
        """The role the resources are reserved for; None: unreserved."""
        return None


class ReservedAllocation(Allocation):
    """An allocation of an agent's resources reserved for ``role``."""

    __slots__ = ()

    @property
    def reservation(self) -> str | None:
        return self.role


@dataclass(eq=False, slots=True)
class AgentRecord:
    id: str
    slot: int
    total: Resources
    allocations: dict[ClientKey, Resources] = field(default_factory=dict)
    available: Resources = EMPTY
    active: bool = True
    # allocations fit in total: then available can be kept incrementally (no re-summing)
    fits: bool = True
    # a reserved pool of the agent ``id``: offered to clients of this role only
    role: str | None = None


@dataclass(eq=False, slots=True)
class FrameworkRecord:
    roles: set[str] = field(default_factory=set)
    suppressed: set[str] = field(default_factory=set)
    active: bool = False
    registered: bool = False  # False: only known from recorded usage so far
    weight: float = 1.0
    clients: dict[str, int] = field(default_factory=dict)  # role -> client slot
    # role -> its offer constraints (offer_constraints.py); absent: none
    constraints: dict[str, RoleRule] = field(default_factory=dict)

    def offerable(self, role: str) -> bool:
        """May (this framework, ``role``) receive offers at all (filters aside)?"""
        return (self.registered and self.active and role in self.roles
                and role not in self.suppressed)


def check_role(role: str) -> str:
    """Mesos role syntax: ``*``, or ``/``-separated non-empty names (not ``.``/``..``)."""
    if not isinstance(role, str) or not role:
        raise ValueError("role must be a non-empty string")
    if role == "*":
        return role
    for part in role.split("/"):
        if part in ("", ".", "..", "*") or any(ch.isspace() or ord(ch) < 32 for ch in part):
            raise ValueError(f"invalid role {role!r}")
    return role


def check_roles(roles: Iterable[str]) -> set[str]:
    """A framework's roles: at least one, each valid."""
    if isinstance(roles, str):
        raise TypeError("roles must be an iterable of role names, not a string")
    checked = {check_role(role) for role in roles}
    if not checked:
        raise ValueError("a framework needs at least one role")
    return checked


def check_weight(weight: float, what: str) -> float:
    weight = float(weight)
    if not math.isfinite(weight) or weight <= 0:
        raise ValueError(f"{what} weight must be a finite number > 0, got {weight}")
    return weight


class Slots:
    """Small dense integers, lowest free first (keeps the filter matrices compact)."""

    def __init__(self) -> None:
        self.high = 0
        self._free: list[int] = []

    def take(self) -> int:
        if self._free:
            return heapq.heappop(self._free)
        self.high += 1
        return self.high - 1

    def give(self, slot: int) -> None:
        heapq.heappush(self._free, slot)
