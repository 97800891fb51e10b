"""Concrete port numbers for placed tasks.

Each agent hands out its lowest free ports, to its tasks in problem order, so ports
are distinct per agent, inside the agent's ranges, and the same for the same
answer.  Capacity was checked as a count, so there are always enough.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

Range = tuple[int, int]


def _walk(ranges: Sequence[Range]) -> Iterator[int]:
    for begin, end in ranges:
        yield from range(begin, end + 1)


def assign_ports(agent_ranges: Sequence[Sequence[Range]], task_ports: Sequence[int],
                 assign: np.ndarray) -> dict[int, list[int]]:
    """Task index -> its ports, for placed tasks asking for any."""
    out: dict[int, list[int]] = {}
    pools: dict[int, Iterator[int]] = {}
    for t, count in enumerate(task_ports):
        a = int(assign[t])
        if a < 0 or count == 0:
            continue
        pool = pools.setdefault(a, _walk(agent_ranges[a]))
        out[t] = [next(pool) for _ in range(count)]
    return out
