"""The order waiting tasks get resources in: priority, then the user's dominant share.

Pure.  Within one priority level this is Dominant Resource Fairness (Ghodsi et al.,
the allocator Mesos itself uses between frameworks) applied between *users* inside
the batch framework: the next unit goes to the user whose dominant share (the largest
fraction of any cluster resource their running tasks hold) is smallest, and taking it
raises that user's share by its demand before the next choice.  So a user with a
10,000-task job and a user with a 3-task job alternate by share: the small job is
never starved behind the big one.  Higher priorities go first regardless of share.
Ties go to the unit waiting longest (its ``seq``), so order is deterministic.

A *unit* is what is placed at once: one task, or a whole gang (its demand summed).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Waiting:
    """A unit waiting for resources.  ``seq`` orders a user's own units (FIFO)."""

    key: str
    user: str
    priority: int
    demand: Mapping[str, float]
    seq: tuple[Any, ...] = ()
    payload: Any = field(default=None, compare=False)


def dominant_share(usage: Mapping[str, float], total: Mapping[str, float]) -> float:
    """max over resources of usage / total (resources the cluster lacks are ignored)."""
    share = 0.0
    for name, amount in usage.items():
        capacity = total.get(name, 0.0)
        if capacity > 0 and amount > 0:
            share = max(share, amount / capacity)
    return share


def fair_order(waiting: Sequence[Waiting], usage: Mapping[str, Mapping[str, float]],
               total: Mapping[str, float]) -> list[Waiting]:
    """``waiting`` in the order it should get resources (see the module docstring).

    ``usage``: per user, the resources their running tasks hold now.  ``total``: the
    cluster's capacity (the denominator of shares).  Every unit appears once.
    """
    levels: dict[int, dict[str, list[Waiting]]] = defaultdict(lambda: defaultdict(list))
    for unit in waiting:
        levels[unit.priority][unit.user].append(unit)
    held: dict[str, dict[str, float]] = {u: dict(r) for u, r in usage.items()}
    out: list[Waiting] = []
    for priority in sorted(levels, reverse=True):
        queues = {user: sorted(units, key=lambda w: w.seq) for user, units in
                  levels[priority].items()}
        heads = dict.fromkeys(queues, 0)
        heap = [(_share(held, user, total), queues[user][0].seq, user) for user in queues]
        heapq.heapify(heap)
        while heap:
            _, _, user = heapq.heappop(heap)
            unit = queues[user][heads[user]]
            heads[user] += 1
            out.append(unit)
            mine = held.setdefault(user, {})
            for name, amount in unit.demand.items():
                mine[name] = mine.get(name, 0.0) + amount
            if heads[user] < len(queues[user]):
                nxt = queues[user][heads[user]]
                heapq.heappush(heap, (_share(held, user, total), nxt.seq, user))
    return out


def _share(held: Mapping[str, Mapping[str, float]], user: str, total: Mapping[str, float]
           ) -> float:
    return dominant_share(held.get(user, {}), total)


def shares(usage: Mapping[str, Mapping[str, float]], total: Mapping[str, float]
           ) -> dict[str, float]:
    """Each user's current dominant share (for the queue API)."""
    return {user: round(dominant_share(r, total), 4) for user, r in usage.items()}
