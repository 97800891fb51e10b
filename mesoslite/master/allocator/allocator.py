"""The master's allocator: hierarchical weighted DRF over (framework, role) clients.

Pure: no I/O, no clock (``now`` is a parameter), deterministic (agents are visited in
the order they were added; Mesos shuffles them, which only matters for ties).

A round (``allocate``) visits each active agent that has available resources and gives
*all* of them to the first client in DRF order (see ``sorter.py``) that is active, not
suppressed for that role and not filtering the agent (see ``filters.py``).  The
allocation counts at once, so the next agent may go to someone else.  Resources stay
allocated until the caller hands them back with ``recover()`` (declined offer, unused
part of an accepted offer, finished task).

Contracts:

* Everything ``allocate`` returns was available: per agent, what is handed out never
  exceeds ``total - allocated``, and nothing is handed out twice.  Usage the caller
  *records* (``add_agent(allocated=...)``, ``allocate_used``) is trusted even when it
  over-commits the agent; then nothing more is offered there until it fits again.
* ``recover`` is tolerant: unknown agents, frameworks or resources never held are
  ignored (returns race with removals), and only what was held is freed.
* Other calls naming an unknown agent or framework raise ``KeyError``; ``remove_*``
  of an unknown id is a no-op.

Reservations: an agent's resources reserved for a role form a *pool* of their own,
offered after the unreserved agents of the round to clients of that role only (see
``pools.py``); callers say which pool they return resources to (``reservation=``).

Quota: while any role has quota (``set_quota``), the round runs in Mesos' two stages
(``staged.py``): roles below their guarantees first, then the fair share, with an
agent's resources cut to a role's limits and to the headroom unmet guarantees need,
so one agent may go to several clients in a round (see ``quota.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from mesoslite.master.allocator import reports
from mesoslite.master.allocator.filters import OfferFilters, refuse_duration
from mesoslite.master.allocator.offer_constraints import AgentFacts, RoleRule
from mesoslite.master.allocator.pools import ReservedPools
from mesoslite.master.allocator.quota import Quota, check_quota
from mesoslite.master.allocator.records import (
    EMPTY,
    AgentRecord,
    Allocation,
    ClientKey,
    FrameworkRecord,
    ReservedAllocation,
    Slots,
    check_role,
    check_roles,
    check_weight,
)
from mesoslite.master.allocator.scalars import sub_milli, to_milli
from mesoslite.master.allocator.sorter import DRFSorter
from mesoslite.master.allocator.staged import StagedRounds
from mesoslite.resources import Resources

_CHUNK = 256  # agents filtered per vectorised block: big enough to amortise, cache-sized
_NEVER = np.iinfo(np.int64).max


class Allocator(ReservedPools, StagedRounds):
    """Hierarchical weighted DRF allocator (see module docstring for the contract)."""

    def __init__(self, role_weights: Mapping[str, float] | None = None) -> None:
        weights = {check_role(r): check_weight(w, r) for r, w in (role_weights or {}).items()}
        self._sorter = DRFSorter(weights)
        self._filters = OfferFilters()
        self._agents: dict[str, AgentRecord] = {}
        self._agent_slots = Slots()
        self._frameworks: dict[str, FrameworkRecord] = {}
        self._client_slots = Slots()
        self._client_key: list[ClientKey | None] = []
        self._hold: list[int] = []  # per client: agents holding resources for it
        self._ok = np.zeros(0, bool)  # per client: may be offered (active, not suppressed)
        # reserved pools: agent id -> role -> pool record (see module docstring)
        self._pools: dict[str, dict[str, AgentRecord]] = {}
        self._quotas: dict[str, Quota] = {}  # top-level role -> its non-empty quota
        # per scalar kind, the most any agent ever had: what one offer can hold at most
        self._biggest: dict[str, int] = {}
        self._facts: dict[str, AgentFacts] = {}  # agent id -> what offer constraints see

    # -- agents ----------------------------------------------------------------

    def add_agent(
        self,
        agent_id: str,
        total: Resources,
        allocated: Mapping[ClientKey, Resources] | None = None,
        reserved: Mapping[str, Resources] | None = None,
        reserved_allocated: Mapping[ClientKey, Resources] | None = None,
        facts: AgentFacts | None = None,
    ) -> None:
        """A new (or re-registered) agent; ``allocated``: its running tasks' resources;
        ``facts``: its hostname and attributes, for offer constraints.

        ``reserved``: role -> the part of ``total`` reserved for it;
        ``reserved_allocated``: what running tasks use of their role's reservation
        (``allocated`` then holds only their unreserved part)."""
        if agent_id in self._agents:
            raise ValueError(f"agent {agent_id!r} is already added")
        reserved = {check_role(r): res for r, res in (reserved or {}).items() if res}
        unreserved = total
        for res in reserved.values():
            unreserved = unreserved - res
        slot = self._agent_slots.take()
        self._filters.ensure(self._agent_slots.high, len(self._client_key))
        agent = AgentRecord(agent_id, slot, unreserved)
        self._agents[agent_id] = agent
        self._note_size(total)
        self._facts[agent_id] = facts or AgentFacts()
        self._filters.set_facts(slot, self._facts[agent_id])
        self._sorter.add_total(unreserved.scalars)
        for (framework_id, role), resources in (allocated or {}).items():
            self._record(agent, framework_id, check_role(role), resources)
        self._recompute_available(agent)
        for role, res in reserved.items():
            pool = self._pool(agent_id, role)
            pool.total = res
            self._sorter.add_total(res.scalars)
        for (framework_id, role), resources in (reserved_allocated or {}).items():
            pool = self._pool(agent_id, check_role(role))
            self._record(pool, framework_id, role, resources)
        for pool in self._pools.get(agent_id, {}).values():
            self._recompute_available(pool)

    def update_agent_total(self, agent_id: str, total: Resources) -> None:
        agent = self._agents[agent_id]
        self._note_size(total)
        for pool in self._pools.get(agent_id, {}).values():
            total = total - pool.total
        self._sorter.remove_total(agent.total.scalars)
        self._sorter.add_total(total.scalars)
        agent.total = total
        self._recompute_available(agent)

    def remove_agent(self, agent_id: str) -> None:
        """Forget the agent, its allocations and the filters on it."""
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return
        self._facts.pop(agent_id, None)
        for pool in list(self._pools.get(agent_id, {}).values()):
            self._drop_pool(pool)
        self._sorter.remove_total(agent.total.scalars)
        for key, resources in agent.allocations.items():
            slot = self._frameworks[key[0]].clients[key[1]]
            self._sorter.unallocated(slot, resources.scalars)
            self._hold[slot] -= 1
            self._maybe_drop_client(slot)
        self._filters.clear_agent(agent.slot)
        self._agent_slots.give(agent.slot)

    def activate_agent(self, agent_id: str) -> None:
        self._agents[agent_id].active = True

    def deactivate_agent(self, agent_id: str) -> None:
        """No offers for a disconnected agent; its allocations stay."""
        self._agents[agent_id].active = False

    # -- frameworks --------------------------------------------------------------

    def add_framework(
        self,
        framework_id: str,
        roles: Iterable[str],
        suppressed_roles: Iterable[str] = (),
        active: bool = True,
        weight: float = 1.0,
    ) -> None:
        """Subscribe a framework to ``roles`` (MULTI_ROLE); ``weight`` orders it in a role."""
        fw = self._frameworks.get(framework_id)
        if fw is not None and fw.registered:
            raise ValueError(f"framework {framework_id!r} is already added")
        roles = check_roles(roles)
        weight = check_weight(weight, f"framework {framework_id!r}")
        if fw is None:
            fw = self._frameworks[framework_id] = FrameworkRecord()
        fw.registered, fw.active, fw.weight = True, active, weight
        fw.roles, fw.suppressed = roles, set(suppressed_roles)
        self._refresh_framework(framework_id)

    def update_framework(
        self,
        framework_id: str,
        roles: Iterable[str],
        suppressed_roles: Iterable[str] | None = None,
        weight: float | None = None,
    ) -> None:
        """New roles (filters of dropped roles go) and, if given, suppressed roles/weight."""
        fw = self._registered(framework_id)
        roles = check_roles(roles)
        if weight is not None:
            fw.weight = check_weight(weight, f"framework {framework_id!r}")
        for role in fw.roles - roles:
            if role in fw.clients:
                self._filters.clear_client(fw.clients[role])
        fw.roles = roles
        if suppressed_roles is not None:
            fw.suppressed = set(suppressed_roles)
        self._refresh_framework(framework_id)

    def set_offer_constraints(self, framework_id: str, rules: Mapping[str, RoleRule]) -> None:
        """The framework's offer constraints by role (replacing earlier ones; empty:
        none): agents a role's rule does not allow are never offered to it."""
        self._registered(framework_id).constraints = dict(rules)
        self._refresh_framework(framework_id)

    def remove_framework(self, framework_id: str) -> None:
        """Forget the framework: what it held on agents becomes available again."""
        fw = self._frameworks.get(framework_id)
        if fw is None:
            return
        fw.registered = False
        fw.roles = set()
        held = [(role, slot) for role, slot in fw.clients.items() if self._hold[slot]]
        if held:
            pools = [p for ps in self._pools.values() for p in ps.values()]
            for agent in [*self._agents.values(), *pools]:
                for role, _ in held:
                    key = (framework_id, role)
                    if key in agent.allocations:
                        self._free(agent, key, agent.allocations[key])
        self._refresh_framework(framework_id)

    def activate_framework(self, framework_id: str) -> None:
        self._registered(framework_id).active = True
        self._refresh_framework(framework_id)

    def deactivate_framework(self, framework_id: str) -> None:
        """No offers while disconnected; its filters are cleared (as in Mesos)."""
        fw = self._registered(framework_id)
        fw.active = False
        for slot in fw.clients.values():
            self._filters.clear_client(slot)
        self._refresh_framework(framework_id)

    def suppress(self, framework_id: str, roles: Iterable[str] | None = None) -> None:
        """Stop offers to the framework in ``roles`` (default: all its roles)."""
        fw = self._registered(framework_id)
        fw.suppressed |= fw.roles if roles is None else set(roles)
        self._refresh_framework(framework_id)

    def revive(self, framework_id: str, roles: Iterable[str] | None = None) -> None:
        """Resume offers in ``roles`` (default: all) and clear their filters."""
        fw = self._registered(framework_id)
        chosen = set(fw.roles) if roles is None else set(roles)
        fw.suppressed -= chosen
        for role in chosen:
            if role in fw.clients:
                self._filters.clear_client(fw.clients[role])
        self._refresh_framework(framework_id)

    def set_role_weight(self, role: str, weight: float) -> None:
        """``role``'s weight in DRF from the next round on (1.0 is the default)."""
        self._sorter.set_role_weight(check_role(role), check_weight(weight, role))

    def role_weight(self, role: str) -> float:
        return self._sorter.role_weight(role)

    def set_quota(self, role: str, guarantees: Mapping[str, float],
                  limits: Mapping[str, float]) -> None:
        """``role``'s quota from the next round on (see ``quota.py``); none of either
        removes it.  ``ValueError`` (naming the role and resource) for a nested role,
        a bad quantity or a guarantee above its limit."""
        quota = check_quota(role, guarantees, limits)
        if quota:
            self._quotas[role] = quota
        else:
            self._quotas.pop(role, None)

    def quotas(self) -> dict[str, Quota]:
        """Every role's non-empty quota."""
        return dict(self._quotas)

    # -- resources ---------------------------------------------------------------

    def allocate_used(
        self, framework_id: str, role: str, agent_id: str, resources: Resources,
        reservation: str | None = None,
    ) -> None:
        """Record usage ``allocate`` did not produce (e.g. recovered tasks); with
        ``reservation``, of the agent's resources reserved for that role."""
        agent = self._agents[agent_id]
        if reservation is not None:
            agent = self._pool(agent_id, check_role(reservation))
        self._record(agent, framework_id, check_role(role), resources)
        self._recompute_available(agent)

    def recover(
        self,
        framework_id: str,
        role: str,
        agent_id: str,
        resources: Resources,
        now: float,
        refuse_seconds: float | None = None,
        reservation: str | None = None,
    ) -> None:
        """``resources`` come back; with ``refuse_seconds`` the client filters them.
        ``reservation``: they are of the agent's resources reserved for that role.

        The filter keeps the agent from this (framework, role) until ``now +
        refuse_seconds`` while the agent's available resources stay within
        ``resources``.  0/None: no filter; negative/NaN: 5 s; capped at a year.
        """
        agent = self._agents.get(agent_id)
        if agent is None:
            return
        if reservation is not None:
            agent = self._pools.get(agent_id, {}).get(reservation)
            if agent is None:
                return
        key = (framework_id, role)
        if key in agent.allocations:
            self._free(agent, key, resources)
        fw = self._frameworks.get(framework_id)
        slot = fw.clients.get(role) if fw is not None else None
        if slot is None:
            return
        seconds = refuse_duration(refuse_seconds)
        if seconds > 0 and fw is not None and fw.registered:
            self._filters.install(agent.slot, slot, resources, now + seconds, now)
        self._maybe_drop_client(slot)

    # -- the round ---------------------------------------------------------------

    def allocate(self, now: float, agent_ids: Iterable[str] | None = None) -> list[Allocation]:
        """One allocation round over all agents, or only ``agent_ids`` (partial round)."""
        agents = self._round_agents(agent_ids)
        n = len(self._client_key)
        if not (agents or self._pools) or n == 0:
            return []
        ok = self._ok[:n]
        if not ok.any():
            return []
        rank = self._sorter.ranks()[:n]  # live: updated in place as clients receive
        if self._quotas:
            out = self._allocate_staged(agents, now, n, ok, rank)
            if self._pools:
                out += self._allocate_pools(now, agent_ids, n, ok, rank)
            return out
        out: list[Allocation] = []
        where, give = np.where, self._give
        for start in range(0, len(agents), _CHUNK):
            chunk = agents[start : start + _CHUNK]
            rows = np.fromiter((a.slot for a in chunk), np.intp, len(chunk))
            eligible = self._filters.unfiltered(rows, n, now)
            eligible &= ok
            # Agents nobody may take are skipped without a look at the order.
            for i in np.flatnonzero(eligible.any(axis=1)).tolist():
                # the first eligible client in DRF order: the lowest rank among them
                best = int(where(eligible[i], rank, _NEVER).argmin())
                out.append(give(chunk[i], best))
        if self._pools:
            out += self._allocate_pools(now, agent_ids, n, ok, rank)
        return out

    def _round_agents(self, agent_ids: Iterable[str] | None) -> list[AgentRecord]:
        if agent_ids is None:
            candidates: Iterable[AgentRecord | None] = self._agents.values()
        else:
            candidates = (self._agents.get(a) for a in dict.fromkeys(agent_ids))
        return [a for a in candidates if a is not None and a.active and a.available]

    def _give(self, agent: AgentRecord, slot: int,
              resources: Resources | None = None) -> Allocation:
        """Hand ``resources`` (default: all) of the agent's available to ``slot``."""
        return self._hand(agent, slot, resources)[0]

    def _hand(self, agent: AgentRecord, slot: int, resources: Resources | None = None
              ) -> tuple[Allocation, dict[str, int]]:
        """``_give``, also returning the scalars handed out in thousandths."""
        available = agent.available
        if resources is None or resources is available:
            resources, agent.available = available, EMPTY
        else:
            agent.available = available - resources
        key = self._client_key[slot]
        assert key is not None
        held = agent.allocations.get(key)
        if held is None:
            agent.allocations[key] = resources
            self._hold[slot] += 1
        else:
            agent.allocations[key] = held + resources
        self._filters.note_available(agent.slot, agent.available)
        milli = self._sorter.allocated(slot, resources.scalars)
        if agent.role is not None:
            return ReservedAllocation(key[0], key[1], agent.id, resources), milli
        return Allocation(key[0], key[1], agent.id, resources), milli

    def _unallocated(self) -> dict[str, int]:
        """Unreserved resources no one holds, cluster-wide, in thousandths (Mesos'
        "available headroom": the total less allocations and unallocated reservations)."""
        free = self._sorter.total_milli()
        sub_milli(free, self._sorter.allocation_milli())
        for pools in self._pools.values():
            for pool in pools.values():
                sub_milli(free, to_milli(pool.available.scalars))
        return free

    # -- queries -----------------------------------------------------------------

    def available(self, agent_id: str, reservation: str | None = None) -> Resources:
        """Unreserved available resources, or with ``reservation`` that pool's."""
        if reservation is not None:
            pool = self._pools.get(agent_id, {}).get(reservation)
            return pool.available if pool is not None else EMPTY
        return self._agents[agent_id].available

    def total(self, agent_id: str) -> Resources:
        return self._agents[agent_id].total

    def allocations(self, agent_id: str) -> dict[ClientKey, Resources]:
        """What each (framework, role) holds on the agent."""
        return dict(self._agents[agent_id].allocations)

    def agent_ids(self) -> list[str]:
        return list(self._agents)

    def framework_ids(self) -> list[str]:
        return [fid for fid, fw in self._frameworks.items() if fw.registered]

    def is_filtered(self, framework_id: str, role: str, agent_id: str, now: float) -> bool:
        slot = self._frameworks[framework_id].clients.get(role)
        agent = self._agents[agent_id]
        return slot is not None and self._filters.is_filtered(agent.slot, slot, now)

    def next_filter_expiry(self, now: float | None = None) -> float | None:
        """When the earliest filter (later than ``now``) ends: worth a new round then."""
        return self._filters.next_expiry(now)

    def why_not(self, framework_id: str, role: str, agent_id: str, now: float) -> str | None:
        """Why the agent would not be offered to (framework, role) now, as one of the
        reason constants; None: it would be, if (framework, role) came first in DRF order."""
        agent, fw = self._agents.get(agent_id), self._frameworks.get(framework_id)
        return reports.why_not(
            agent, fw, role, lambda: self.is_filtered(framework_id, role, agent_id, now)
        )

    def shares(self) -> dict[str, Any]:
        """Per role and per framework: dominant share, allocated scalars, weight (see
        ``reports.shares``); for /master/state and metrics."""
        return reports.shares(self._sorter, self._frameworks)

    # -- internals ---------------------------------------------------------------

    def _registered(self, framework_id: str) -> FrameworkRecord:
        fw = self._frameworks.get(framework_id)
        if fw is None or not fw.registered:
            raise KeyError(framework_id)
        return fw

    def _client(self, framework_id: str, role: str) -> int:
        """The client slot of (framework, role), created if new."""
        fw = self._frameworks.get(framework_id)
        if fw is None:
            fw = self._frameworks[framework_id] = FrameworkRecord()
        slot = fw.clients.get(role)
        if slot is not None:
            return slot
        slot = self._client_slots.take()
        if slot == len(self._client_key):
            self._client_key.append(None)
            self._hold.append(0)
        if slot >= len(self._ok):
            ok = np.zeros(max(16, 2 * slot), bool)
            ok[: len(self._ok)] = self._ok
            self._ok = ok
        self._client_key[slot] = (framework_id, role)
        self._hold[slot] = 0
        self._ok[slot] = False
        fw.clients[role] = slot
        self._filters.ensure(self._agent_slots.high, len(self._client_key))
        self._filters.clear_client(slot)
        self._sorter.add_client(slot, role, framework_id, fw.weight)
        return slot

    def _refresh_framework(self, framework_id: str) -> None:
        """Recompute offerability of the framework's clients; drop the idle ones."""
        fw = self._frameworks[framework_id]
        for role in fw.roles:
            self._client(framework_id, role)
        for role, slot in list(fw.clients.items()):
            self._filters.set_rule(slot, fw.constraints.get(role))
            self._ok[slot] = fw.offerable(role)
            self._sorter.set_client_weight(slot, fw.weight)
            self._maybe_drop_client(slot)

    def _maybe_drop_client(self, slot: int) -> None:
        key = self._client_key[slot]
        assert key is not None
        framework_id, role = key
        fw = self._frameworks[framework_id]
        if self._hold[slot] or (fw.registered and role in fw.roles):
            return
        self._sorter.remove_client(slot)
        self._filters.clear_client(slot)
        self._filters.set_rule(slot, None)
        self._ok[slot] = False
        self._client_key[slot] = None
        self._client_slots.give(slot)
        del fw.clients[role]
        if not fw.registered and not fw.clients:
            del self._frameworks[framework_id]

    def _record(self, agent: AgentRecord, framework_id: str, role: str, resources: Resources) -> None:
        """Count ``resources`` as held by (framework, role) on ``agent`` (not re-summed)."""
        if not resources:
            return
        slot = self._client(framework_id, role)
        key = (framework_id, role)
        held = agent.allocations.get(key)
        if held is None:
            self._hold[slot] += 1
            agent.allocations[key] = resources
        else:
            agent.allocations[key] = held + resources
        self._sorter.allocated(slot, resources.scalars)

    def _free(self, agent: AgentRecord, key: ClientKey, resources: Resources) -> None:
        """Give back what of ``resources`` the client holds on the agent."""
        held = agent.allocations[key]
        if held is resources or held == resources:
            freed, remaining = held, EMPTY
        else:
            remaining = held - resources
            freed = held - remaining
        slot = self._frameworks[key[0]].clients[key[1]]
        if remaining:
            agent.allocations[key] = remaining
        else:
            del agent.allocations[key]
            self._hold[slot] -= 1
        if not freed:
            return
        self._sorter.unallocated(slot, freed.scalars)
        if agent.fits:
            # total - (used - freed) == available + freed while used fits in total
            agent.available = agent.available + freed if agent.available else freed
            self._filters.note_available(agent.slot, agent.available)
        else:
            self._recompute_available(agent)

    def _note_size(self, total: Resources) -> None:
        """Keep ``_biggest`` an upper bound of what one agent can offer (it never
        shrinks: a bound that is too high only costs the quota round a closer look)."""
        biggest = self._biggest
        for name, value in to_milli(total.scalars).items():
            if value > biggest.get(name, 0):
                biggest[name] = value

    def _recompute_available(self, agent: AgentRecord) -> None:
        used = EMPTY
        for resources in agent.allocations.values():
            used = used + resources
        agent.fits = agent.total.contains(used)
        agent.available = agent.total - used
        self._filters.note_available(agent.slot, agent.available)
