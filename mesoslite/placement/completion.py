"""Bin completion for one-dimensional problems: fill each agent as full as possible.

Minimum bin slack (Gupta & Ho; Fleszar & Hindi's MBS'): agents are filled one at a
time, biggest first; each takes the largest task left, then the subset of the
others that fills its remaining room best.  First fit decreasing places tasks one
by one and strands room that no later task fits; completing one agent at a time
avoids it, and on Falkenauer's triplets (where the optimum fills every agent
exactly) it ends within an agent of the lower bound where first fit decreasing is
5 % above it.

The best subset is a bounded knapsack over the distinct sizes left, solved exactly
with a bitset of reachable sums (a Python int, in units of the sizes' greatest
common divisor; each count is split into powers of two), so an agent costs a few
hundred shifts.  It applies when tasks ask for a single dimension and have no
constraints and no gangs: then tasks of one size are interchangeable.
"""

from __future__ import annotations

import numpy as np

from .instance import Instance

MAX_ROOM_UNITS = 100_000  # bitset width at most (room / greatest common divisor)


def applies(inst: Instance) -> bool:
    """One dimension, no constraints, no gangs, and a bitset of reasonable width."""
    if len(inst.dims) != 1 or inst.gangs or any(g.constraints for g in inst.groups):
        return False
    values = np.concatenate([inst.dem[:, 0], inst.cap[:, 0]])
    unit = int(np.gcd.reduce(values[values > 0])) if (values > 0).any() else 0
    return unit > 0 and int(inst.cap[:, 0].max(initial=0)) // unit <= MAX_ROOM_UNITS


def _best_fill(sizes: list[int], counts: list[int], room: int) -> dict[int, int]:
    """How many of each size to take for the largest total at most ``room``.

    Of the subsets that fill it best, the one undone from the last piece keeps the
    pieces it can do without: with ``sizes`` smallest first it uses small tasks and
    keeps large ones for the agents to come, which packs tighter overall (996
    triplets: 167 agents for a bound of 166, against 170 largest first).
    """
    pieces = []  # (size index, how many, weight): each count split in powers of two
    for i, (size, count) in enumerate(zip(sizes, counts, strict=True)):
        left, step = min(count, room // size), 1
        while left > 0:
            take = min(step, left)
            pieces.append((i, take, take * size))
            left, step = left - take, 2 * step
    mask, reach, states = (1 << (room + 1)) - 1, 1, []
    for _, _, weight in pieces:
        states.append(reach)
        reach = (reach | (reach << weight)) & mask
        if reach >> room & 1:
            break
    total = reach.bit_length() - 1
    chosen: dict[int, int] = {}
    for i in range(len(states) - 1, -1, -1):  # undo: a piece was taken if needed
        if not states[i] >> total & 1:
            size_index, take, weight = pieces[i]
            chosen[size_index] = chosen.get(size_index, 0) + take
            total -= weight
    return chosen


def complete(inst: Instance) -> np.ndarray:
    """The assignment (see module); only for problems where ``applies``."""
    dem, cap = inst.dem[:, 0], inst.cap[:, 0]
    values = np.concatenate([dem, cap])
    unit = int(np.gcd.reduce(values[values > 0]))
    assign = np.full(inst.n_tasks, -1, dtype=np.int64)
    pool: dict[int, list[int]] = {}  # size (in units) -> its tasks, last taken first
    for t in np.flatnonzero(dem > 0)[::-1].tolist():
        pool.setdefault(int(dem[t]) // unit, []).append(t)
    sizes = sorted(pool, reverse=True)
    for a in inst.agent_order.tolist():
        room = int(cap[a]) // unit
        first = next((s for s in sizes if pool[s] and s <= room), None)
        if first is None:
            continue
        assign[pool[first].pop()] = a
        left = [s for s in reversed(sizes) if pool[s]]  # smallest first: see _best_fill
        taken = _best_fill(left, [len(pool[s]) for s in left], room - first)
        for i, count in taken.items():
            for _ in range(count):
                assign[pool[left[i]].pop()] = a
        if not any(pool.values()):
            break
    zero = np.flatnonzero(dem == 0)
    if len(zero) and inst.n_agents:  # no demand, no constraint: on an agent in use
        used = assign[assign >= 0]
        assign[zero] = used[0] if len(used) else inst.agent_order[0]
    return assign
