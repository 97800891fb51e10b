"""The allocation round when some role has quota: Mesos' two stages, agent by agent.

For each agent (in the allocator's order, blocks of agents filtered at once as in the
plain round):

1. *Guarantees*: clients of roles below their guarantees, in DRF order, are offered
   what the agent has towards what their role misses (``QuotaRound.guarantee_offer``),
   until the agent is empty or no such client may take it.
2. *Fair share*: what is left goes, in DRF order, to the first client that may take
   it, cut to its role's limits and to the surplus over the headroom unmet guarantees
   need (``QuotaRound.fair_offer``); a cut leaves the rest to the next client.

Mesos runs stage 1 over every agent before stage 2; running both per agent gives the
same guarantee to roles below their guarantees, because stage 2 never hands out the
headroom they still need, and it filters each block of agents once.  Within a stage
a client is offered an agent at most once; across the stages it may get two pieces
of one agent (the master makes them one offer).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mesoslite.master.allocator.filters import OfferFilters
from mesoslite.master.allocator.quota import Quota, QuotaRound
from mesoslite.master.allocator.records import AgentRecord, Allocation, ClientKey
from mesoslite.master.allocator.sorter import DRFSorter
from mesoslite.resources import Resources

_CHUNK = 256  # as the plain round: agents filtered per vectorised block
_NEVER = np.iinfo(np.int64).max


class StagedRounds:
    """Allocator mixin: ``_allocate_staged``, the round used while any quota is set."""

    _filters: OfferFilters
    _sorter: DRFSorter
    _client_key: list[ClientKey | None]
    _agents: dict[str, AgentRecord]
    _quotas: dict[str, Quota]
    _biggest: dict[str, int]

    def _hand(self, agent: AgentRecord, slot: int, resources: Resources | None = None
              ) -> tuple[Allocation, dict[str, int]]:
        raise NotImplementedError

    def _unallocated(self) -> dict[str, int]:
        raise NotImplementedError

    def _allocate_staged(self, agents: list[AgentRecord], now: float, n: int,
                         ok: np.ndarray, rank: np.ndarray) -> list[Allocation]:
        ok = ok.copy()  # the round's: roles drop out of it as they reach their limits
        plan = QuotaRound(self._quotas, self._sorter.live_allocation, self._client_key[:n],
                          self._unallocated, self._biggest, ok)
        out: list[Allocation] = []
        for start in range(0, len(agents), _CHUNK):
            chunk = agents[start : start + _CHUNK]
            rows = np.fromiter((a.slot for a in chunk), np.intp, len(chunk))
            eligible = self._filters.unfiltered(rows, n, now)
            eligible &= ok
            for i in np.flatnonzero(eligible.any(axis=1)).tolist():
                if plan.closed:
                    eligible &= ok
                    plan.closed = False
                agent, row = chunk[i], eligible[i]
                if plan.hungry is not None and self._guarantees(agent, row, plan, rank,
                                                                now, out):
                    if not agent.available:
                        continue
                    row = self._eligible_now(agent, now, ok, ())
                if plan.fair_open:
                    self._fair_share(agent, row, plan, rank, now, out)
        return out

    def _guarantees(self, agent: AgentRecord, row: np.ndarray, plan: QuotaRound,
                    rank: np.ndarray, now: float, out: list[Allocation]) -> bool:
        """Stage 1 on one agent; True if it gave anything."""
        served: list[int] = []
        while plan.hungry is not None:
            row = row & plan.hungry & plan.ok
            masked = np.where(row, rank, _NEVER)
            best = int(masked.argmin())
            if masked.item(best) == _NEVER:
                break
            offer = plan.guarantee_offer(best, agent.available)
            if offer is None:
                row[best] = False
                continue
            allocation, milli = self._hand(agent, best, offer)
            out.append(allocation)
            plan.given(best, milli)
            served.append(best)
            if not agent.available:
                break
            row = self._eligible_now(agent, now, plan.ok, served)
        return bool(served)

    def _fair_share(self, agent: AgentRecord, row: np.ndarray, plan: QuotaRound,
                    rank: np.ndarray, now: float, out: list[Allocation]) -> None:
        """Stage 2 on one agent."""
        served: list[int] = []
        while True:
            masked = np.where(row, rank, _NEVER)
            best = int(masked.argmin())
            if masked.item(best) == _NEVER:
                return
            available = agent.available
            offer = plan.fair_offer(best, available)
            if offer is None:  # cut to nothing for this client: the next one may take it
                row = row.copy()
                row[best] = False
                continue
            allocation, milli = self._hand(agent, best, offer)
            out.append(allocation)
            plan.given(best, milli)
            if offer is available or not plan.fair_open:
                return  # the agent is empty, or stage 2 is over for this round
            served.append(best)
            row = self._eligible_now(agent, now, plan.ok, served)

    def _eligible_now(self, agent: AgentRecord, now: float, ok: np.ndarray,
                      served: Iterable[int]) -> np.ndarray:
        """The clients that may take the agent as it is now (its filters depend on
        what it has left), less those already served on it in this stage."""
        row = self._filters.unfiltered(np.array([agent.slot], np.intp), len(ok), now)[0]
        row &= ok
        row[list(served)] = False
        return row
