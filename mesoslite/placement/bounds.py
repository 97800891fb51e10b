"""Lower bounds on the number of agents.

Contract of ``agent_lower_bound(inst, placed)``: no assignment that places at least
``placed`` tasks (honouring capacities and constraints) uses fewer agents.  Each
bound below only relaxes the problem, so the maximum of them is still a bound:

* volume, per dimension: the ``placed`` smallest demands must fit in the agents'
  capacities, so at least as many agents as it takes the largest capacities to
  cover that sum;
* large tasks, per dimension: two tasks each needing more than half of the largest
  capacity never share an agent; at least ``placed - (T - big)`` big ones are placed;
* counting rules, when every task is placed: an agent holds one attribute value,
  so ``UNIQUE`` / ``MAX_PER n`` put at most 1 / ``n`` of the group on each agent.
"""

from __future__ import annotations

import math

import numpy as np

from .constraints import LIMIT
from .instance import Instance


def _volume(inst: Instance, placed: int, d: int) -> int:
    need = int(np.sort(inst.dem[:, d])[:placed].sum())
    if need == 0:
        return 0
    covered = np.cumsum(np.sort(inst.cap[:, d])[::-1])
    k = int(np.searchsorted(covered, need)) + 1  # first prefix whose sum reaches need
    return min(k, inst.n_agents)


def _big_tasks(inst: Instance, placed: int, d: int) -> int:
    half = inst.cap[:, d].max(initial=0) / 2
    big = int((inst.dem[:, d] > half).sum())
    return max(0, big - (inst.n_tasks - placed))


def _rules(inst: Instance) -> int:
    best = 0
    for rule in inst.rules:
        if rule.kind == LIMIT:
            size = len(inst.groups[rule.group].tasks)
            best = max(best, math.ceil(size / rule.limit))
    return best


def agent_lower_bound(inst: Instance, placed: int) -> int:
    """A lower bound on agents for any assignment placing ``placed`` tasks (see module)."""
    if placed <= 0:
        return 0
    bound = 1
    for d in range(len(inst.dims)):
        bound = max(bound, _volume(inst, placed, d), _big_tasks(inst, placed, d))
    if placed == inst.n_tasks:
        bound = max(bound, _rules(inst))
    return min(bound, inst.n_agents)
