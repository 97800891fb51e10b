"""Reserved pools: an agent's resources reserved for a role, offered to that role only.

An allocator mixin.  Each pool is an ``AgentRecord`` with ``role`` set and a filter
row of its own; the unreserved round never looks at pools.  ``reserve`` /
``unreserve`` move resources a client holds between an agent's unreserved record and
a pool, so shares and the cluster total do not change.  Pools are offered after the
unreserved agents of a round, whole, to the first eligible client of their role in
DRF order, whatever the role's quota (a reservation already counts as the role's).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mesoslite.master.allocator.filters import OfferFilters
from mesoslite.master.allocator.offer_constraints import AgentFacts
from mesoslite.master.allocator.records import (
    EMPTY,
    AgentRecord,
    Allocation,
    ClientKey,
    FrameworkRecord,
    Slots,
    check_role,
)
from mesoslite.master.allocator.sorter import DRFSorter
from mesoslite.resources import Resources

_NEVER = np.iinfo(np.int64).max


class ReservedPools:
    """Allocator mixin: the reserved pools (see the module docstring)."""

    _agents: dict[str, AgentRecord]
    _pools: dict[str, dict[str, AgentRecord]]
    _facts: dict[str, AgentFacts]
    _filters: OfferFilters
    _agent_slots: Slots
    _client_key: list[ClientKey | None]
    _frameworks: dict[str, FrameworkRecord]
    _hold: list[int]
    _sorter: DRFSorter

    def _give(self, agent: AgentRecord, slot: int,
              resources: Resources | None = None) -> Allocation:
        raise NotImplementedError

    def _maybe_drop_client(self, slot: int) -> None:
        raise NotImplementedError

    def _recompute_available(self, agent: AgentRecord) -> None:
        raise NotImplementedError

    def reserve(self, framework_id: str, role: str, agent_id: str, resources: Resources
                ) -> None:
        """``resources`` that (framework, role) holds unreserved on the agent become
        reserved for ``role`` (still held by it: e.g. an accepted offer)."""
        agent = self._agents[agent_id]
        pool = self._pool(agent_id, check_role(role))
        self._move(agent, pool, (framework_id, role), resources)

    def unreserve(self, framework_id: str, role: str, agent_id: str, resources: Resources
                  ) -> None:
        """The inverse of ``reserve``; an emptied pool goes."""
        pool = self._pools.get(agent_id, {}).get(role)
        if pool is None:
            return
        self._move(pool, self._agents[agent_id], (framework_id, role), resources)
        if not pool.total and not pool.allocations:
            self._drop_pool(pool)

    def reserved(self, agent_id: str) -> dict[str, Resources]:
        """Role -> the agent's resources reserved for it."""
        return {r: p.total for r, p in self._pools.get(agent_id, {}).items()}

    def _pool(self, agent_id: str, role: str) -> AgentRecord:
        pools = self._pools.setdefault(agent_id, {})
        pool = pools.get(role)
        if pool is None:
            slot = self._agent_slots.take()
            self._filters.ensure(self._agent_slots.high, len(self._client_key))
            pool = pools[role] = AgentRecord(agent_id, slot, EMPTY, role=role)
            self._filters.clear_agent(slot)
            self._filters.set_facts(slot, self._facts.get(agent_id, AgentFacts()))
        return pool

    def _drop_pool(self, pool: AgentRecord) -> None:
        assert pool.role is not None
        pools = self._pools.get(pool.id, {})
        if pools.get(pool.role) is not pool:
            return
        del pools[pool.role]
        if not pools:
            del self._pools[pool.id]
        self._sorter.remove_total(pool.total.scalars)
        for key, resources in pool.allocations.items():
            slot = self._frameworks[key[0]].clients[key[1]]
            self._sorter.unallocated(slot, resources.scalars)
            self._hold[slot] -= 1
            self._maybe_drop_client(slot)
        self._filters.clear_agent(pool.slot)
        self._agent_slots.give(pool.slot)

    def _move(self, src: AgentRecord, dst: AgentRecord, key: ClientKey,
              resources: Resources) -> None:
        """Move ``resources`` (the part present) from ``src``'s total to ``dst``'s,
        with what ``key`` holds of them: shares and the cluster total do not change."""
        moved = src.total - (src.total - resources)
        if not moved:
            return
        src.total = src.total - moved
        dst.total = dst.total + moved
        held = src.allocations.get(key)
        if held is not None:
            part = held - (held - moved)
            left = held - part
            slot = self._frameworks[key[0]].clients[key[1]]
            if left:
                src.allocations[key] = left
            else:
                del src.allocations[key]
                self._hold[slot] -= 1
            if part:
                have = dst.allocations.get(key)
                if have is None:
                    self._hold[slot] += 1
                    dst.allocations[key] = part
                else:
                    dst.allocations[key] = have + part
        self._recompute_available(src)
        self._recompute_available(dst)

    def _allocate_pools(self, now: float, agent_ids: Iterable[str] | None, n: int,
                        ok: np.ndarray, rank: np.ndarray) -> list[Allocation]:
        """The round over reserved pools: each to the first eligible client of its role."""
        ids = self._pools.keys() if agent_ids is None else dict.fromkeys(agent_ids)
        pools = []
        for agent_id in ids:
            agent = self._agents.get(agent_id)
            if agent is not None and agent.active:
                pools += [p for p in self._pools.get(agent_id, {}).values() if p.available]
        if not pools:
            return []
        keys = self._client_key[:n]
        masks: dict[str, np.ndarray] = {}
        rows = np.fromiter((p.slot for p in pools), np.intp, len(pools))
        eligible = self._filters.unfiltered(rows, n, now)
        eligible &= ok
        out = []
        for i, pool in enumerate(pools):
            assert pool.role is not None
            mask = masks.get(pool.role)
            if mask is None:
                mask = masks[pool.role] = np.fromiter(
                    (k is not None and k[1] == pool.role for k in keys), bool, n)
            row = eligible[i] & mask
            if row.any():
                best = int(np.where(row, rank, _NEVER).argmin())
                out.append(self._give(pool, best))
        return out

