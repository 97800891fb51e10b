"""Offer filters (Mesos' ``RefusedOfferFilter``) held as dense numpy arrays.

A client (framework, role) that declines resources on an agent with ``refuse_seconds``
is not offered that agent again until the filter expires, *unless* the agent's available
resources are no longer contained in what was refused (more became free: the framework
may want the bigger offer).  Mesos keeps one filter object per (framework, role, agent)
and tests them one by one; here they are two agent x client matrices so a whole block
of agents is filtered with a few vectorised operations:

* ``expiry[a, c]``: time the filter ends (``-inf``: none).  Active while ``now < expiry``.
* ``refused[a, c]``: id of the refused ``Resources``.  Ids are interned per agent (the
  declines on one agent nearly always refuse the same resources), and ``covers[id]`` says
  whether that refusal still contains the agent's current available resources; it is
  recomputed only for agents whose available resources changed.

Contract: a newer filter on the same (agent, client) replaces the older one (Mesos would
keep both; the latest decision is the framework's current wish).  Times are whatever the
caller passes as ``now``; nothing here reads a clock.

Offer constraints (``offer_constraints.py``) bar agents from clients for as long as the
framework keeps them, unlike filters, which revive clears: ``barred[a, c]`` is True when
client ``c``'s rule does not allow agent ``a``'s facts.  Entries are recomputed only for
agents whose facts and clients whose rules changed, so rounds without constraints pay
nothing and rounds with them one vectorised ``or``.
"""

from __future__ import annotations

import math

import numpy as np

from mesoslite.master.allocator.offer_constraints import AgentFacts, RoleRule
from mesoslite.resources import Resources

DEFAULT_REFUSE_SECONDS = 5.0  # Mesos' Filters.refuse_seconds default
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0  # Mesos caps filters at one year
_COMPACT_AT = 16  # distinct refusals per agent before dead ones are collected
_EMPTY = Resources()


def _covers(refused: Resources, available: Resources) -> bool:
    """``available <= refused``; declined offers are usually the very same object."""
    return refused is available or refused == available or refused.contains(available)


def refuse_duration(refuse_seconds: float | None) -> float:
    """Seconds a filter lasts; 0 means install none.

    ``None`` and 0 install no filter; negative or NaN mean Mesos' 5 s default; anything
    longer than a year (including infinity) is capped at a year.
    """
    if refuse_seconds is None:
        return 0.0
    seconds = float(refuse_seconds)
    if math.isnan(seconds) or seconds < 0:
        return DEFAULT_REFUSE_SECONDS
    return min(seconds, MAX_REFUSE_SECONDS)


def _grow(n: int, need: int) -> int:
    return n if n >= need else max(need, n + n // 4, 16)


class OfferFilters:
    """Filters for agent slots x client slots (both small dense integers)."""

    def __init__(self) -> None:
        self._expiry = np.full((0, 0), -np.inf)
        self._refused = np.zeros((0, 0), np.int32)
        self._values: list[Resources | None] = [None]  # id 0: no refusal, covers all
        self._covers = np.ones(1, bool)
        self._free_ids: list[int] = []
        self._agent_ids: dict[int, list[int]] = {}
        self._compact_at: dict[int, int] = {}
        self._available: dict[int, Resources] = {}
        self._refreshed: dict[int, Resources] = {}  # available when covers[] were computed
        self._dirty: set[int] = set()  # agents whose covers[] are stale
        self._uncovered = np.zeros(0, bool)  # agent has a refusal not covering available
        self._next: float | None = None  # earliest expiry > _next_floor, if valid
        self._next_floor = math.inf
        self._next_valid = False
        self._facts: dict[int, AgentFacts] = {}  # agent slot -> what constraints see
        self._rules: dict[int, RoleRule] = {}  # client slot -> its offer constraints
        self._barred = np.zeros((0, 0), bool)
        self._stale_rows: set[int] = set()
        self._stale_cols: set[int] = set()

    # -- shape ---------------------------------------------------------------

    def ensure(self, agents: int, clients: int) -> None:
        """Make room for agent slots < ``agents`` and client slots < ``clients``."""
        rows, cols = self._expiry.shape
        new_rows, new_cols = _grow(rows, agents), _grow(cols, clients)
        if (new_rows, new_cols) == (rows, cols):
            return
        expiry = np.full((new_rows, new_cols), -np.inf)
        expiry[:rows, :cols] = self._expiry
        refused = np.zeros((new_rows, new_cols), np.int32)
        refused[:rows, :cols] = self._refused
        uncovered = np.zeros(new_rows, bool)
        uncovered[:rows] = self._uncovered
        barred = np.zeros((new_rows, new_cols), bool)
        barred[:rows, :cols] = self._barred
        self._expiry, self._refused, self._uncovered = expiry, refused, uncovered
        self._barred = barred

    # -- changes -------------------------------------------------------------

    def note_available(self, agent: int, available: Resources) -> None:
        """The agent's available resources are now ``available``; O(1)."""
        self._available[agent] = available
        if agent not in self._agent_ids:
            return
        # Offered and declined, an agent's available goes empty and back to the very
        # same object: then its covers[] are still right and nothing is recomputed.
        if available is self._refreshed.get(agent):
            self._dirty.discard(agent)
        else:
            self._dirty.add(agent)

    def install(
        self, agent: int, client: int, refused: Resources, expiry: float, now: float
    ) -> None:
        """Filter ``refused`` on ``agent`` from ``client`` until ``expiry``."""
        rid = self._intern(agent, refused, now)
        replaced = float(self._expiry[agent, client])
        self._expiry[agent, client] = expiry
        self._refused[agent, client] = rid
        if not self._next_valid:
            return
        if replaced == self._next:
            self._next_valid = False  # the earliest filter was just replaced
        elif expiry > self._next_floor:
            self._next = expiry if self._next is None else min(self._next, expiry)

    def clear_client(self, client: int) -> None:
        """Drop every filter of ``client`` (revive, deactivation, removal)."""
        if client < self._expiry.shape[1]:
            self._expiry[:, client] = -np.inf
            self._refused[:, client] = 0
            self._next_valid = False

    def set_facts(self, agent: int, facts: AgentFacts) -> None:
        """What offer constraints see of ``agent`` (its slot's until ``clear_agent``)."""
        self._facts[agent] = facts
        if self._rules:
            self._stale_rows.add(agent)

    def set_rule(self, client: int, rule: RoleRule | None) -> None:
        """``client``'s offer constraints (None: none); kept through ``clear_client``."""
        if rule is None:
            if self._rules.pop(client, None) is not None and client < self._barred.shape[1]:
                self._barred[:, client] = False
            self._stale_cols.discard(client)
        elif self._rules.get(client) is not rule:
            self._rules[client] = rule
            self._stale_cols.add(client)

    def clear_agent(self, agent: int) -> None:
        """Drop every filter on ``agent`` and forget it (agent removed)."""
        self._facts.pop(agent, None)
        self._stale_rows.discard(agent)
        if agent < self._expiry.shape[0]:
            self._expiry[agent] = -np.inf
            self._refused[agent] = 0
            self._uncovered[agent] = False
            self._barred[agent] = False
            self._next_valid = False
        for rid in self._agent_ids.pop(agent, ()):
            self._release_id(rid)
        self._compact_at.pop(agent, None)
        self._available.pop(agent, None)
        self._refreshed.pop(agent, None)
        self._dirty.discard(agent)

    # -- queries -------------------------------------------------------------

    def unfiltered(self, agents: np.ndarray, clients: int, now: float) -> np.ndarray:
        """Boolean block ``[len(agents), clients]``: True where no filter applies."""
        self._refresh(agents.tolist())
        first, count = int(agents[0]), len(agents)
        if count == 1 or bool((np.diff(agents) == 1).all()):
            # consecutive slots (the usual full round): compare a view, copy nothing
            filtered = self._expiry[first : first + count, :clients] > now
        else:
            filtered = self._expiry[agents, :clients] > now
        partial = self._uncovered[agents]
        if partial.any():
            rows = agents[partial]
            filtered[partial] &= self._covers[self._refused[rows, :clients]]
        if self._rules:
            self._refresh_bars()
            filtered |= self._barred[agents, :clients]
        return np.logical_not(filtered, out=filtered)

    def is_barred(self, agent: int, client: int) -> bool:
        """Whether ``client``'s offer constraints exclude ``agent``."""
        if client not in self._rules:
            return False
        self._refresh_bars()
        return bool(self._barred[agent, client])

    def _refresh_bars(self) -> None:
        _none = AgentFacts()
        for client in self._stale_cols:
            rule = self._rules[client]
            column = self._barred[:, client]
            column[:] = False
            for agent, facts in self._facts.items():
                column[agent] = not rule.allows(facts)
        for agent in self._stale_rows:
            facts = self._facts.get(agent, _none)
            for client, rule in self._rules.items():
                self._barred[agent, client] = not rule.allows(facts)
        self._stale_cols.clear()
        self._stale_rows.clear()

    def is_filtered(self, agent: int, client: int, now: float) -> bool:
        self._refresh([agent])
        if self._expiry[agent, client] <= now:
            return False
        return bool(self._covers[self._refused[agent, client]])

    def next_expiry(self, now: float | None = None) -> float | None:
        """Earliest expiry later than ``now`` (of any filter when ``now`` is None)."""
        floor = -math.inf if now is None else now
        cached = self._next_valid and floor >= self._next_floor
        if cached and (self._next is None or self._next > floor):
            return self._next
        live = self._expiry[self._expiry > floor]
        self._next = float(live.min()) if live.size else None
        self._next_floor = floor
        self._next_valid = True
        return self._next

    # -- refused-resources table ----------------------------------------------

    def _intern(self, agent: int, refused: Resources, now: float) -> int:
        ids = self._agent_ids.setdefault(agent, [])
        for rid in ids:
            value = self._values[rid]
            if value is refused or value == refused:
                return rid
        if len(ids) >= self._compact_at.get(agent, _COMPACT_AT):
            self._compact(agent, now)
            ids = self._agent_ids[agent]
        rid = self._free_ids.pop() if self._free_ids else self._new_id()
        self._values[rid] = refused
        ids.append(rid)
        # covers[rid] is computed on the next query, whatever the agent has by then
        self._dirty.add(agent)
        self._refreshed.pop(agent, None)
        return rid

    def _new_id(self) -> int:
        rid = len(self._values)
        self._values.append(None)
        if rid >= len(self._covers):
            covers = np.ones(max(16, 2 * rid), bool)
            covers[: len(self._covers)] = self._covers
            self._covers = covers
        return rid

    def _release_id(self, rid: int) -> None:
        self._values[rid] = None
        self._covers[rid] = True
        self._free_ids.append(rid)

    def _compact(self, agent: int, now: float) -> None:
        """Clear the agent's expired entries and free the refusals no live entry uses."""
        row_expiry, row_refused = self._expiry[agent], self._refused[agent]
        dead = row_expiry <= now
        row_expiry[dead] = -np.inf
        row_refused[dead] = 0
        live = set(np.unique(row_refused).tolist())
        keep = []
        for rid in self._agent_ids[agent]:
            if rid in live:
                keep.append(rid)
            else:
                self._release_id(rid)
        self._agent_ids[agent] = keep
        # Grow the threshold with the live set so compaction stays amortised O(1).
        self._compact_at[agent] = max(_COMPACT_AT, 2 * len(keep))
        self._dirty.add(agent)
        self._refreshed.pop(agent, None)

    def _refresh(self, agents: list[int]) -> None:
        """Recompute covers[] of these agents if their available resources changed.

        Only the agents asked about: the others may be mid-round with nothing available,
        and refreshing them against that would only force another refresh later.
        """
        dirty = self._dirty
        if not dirty:
            return
        for agent in agents:
            if agent not in dirty:
                continue
            dirty.discard(agent)
            available = self._available.get(agent, _EMPTY)
            uncovered = False
            for rid in self._agent_ids.get(agent, ()):
                value = self._values[rid]
                covers = value is not None and _covers(value, available)
                self._covers[rid] = covers
                uncovered = uncovered or not covers
            self._uncovered[agent] = uncovered
            self._refreshed[agent] = available
