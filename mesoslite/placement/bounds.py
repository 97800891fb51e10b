"""Lower bounds on the number of agents.

Contract of ``agent_lower_bound(inst, placed)``: no assignment that places at least
``placed`` tasks (honouring capacities and constraints) uses fewer agents.  Each
bound below only relaxes the problem, so the maximum of them is still a bound:

* volume, per dimension: the ``placed`` smallest demands must fit in the agents'
  capacities, so at least as many agents as it takes the largest capacities to
  cover that sum;
* large tasks, per dimension: two tasks each needing more than half of the largest
  capacity never share an agent; at least ``placed - (T - big)`` big ones are placed;
* Martello & Toth's L2, per dimension, on the ``placed`` smallest demands with
  every agent as large as the largest (both only relax the problem, and L2 only
  grows with the demands): for a threshold ``k <= C/2``, tasks above ``C - k``
  (``J1``) and above ``C/2`` (``J2``) each need an agent of their own, and tasks
  from ``k`` to ``C/2`` (``J3``) fit only in the room ``J2``'s agents leave, or in
  more agents.  It takes the best ``k`` among the demands, and is never below
  the volume bound with equal agents (``k = 0``);
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


def martello_toth_l2(sizes: np.ndarray, cap: int) -> int:
    """L2 of Martello & Toth for items ``sizes`` (each <= ``cap``) in bins of ``cap``."""
    w = np.sort(sizes[sizes > 0])
    if len(w) == 0 or cap <= 0:
        return 0
    prefix = np.concatenate(([0], np.cumsum(w)))
    ks = np.unique(np.concatenate(([0], w[2 * w <= cap])))
    half = np.searchsorted(w, cap // 2, side="right")  # first index above C/2
    lo = np.searchsorted(w, ks, side="left")  # first index >= k
    hi = np.searchsorted(w, cap - ks, side="right")  # first index above C - k
    n1 = len(w) - hi  # J1: above C - k
    n2 = np.maximum(hi - half, 0)  # J2: above C/2, at most C - k
    s2 = prefix[np.maximum(hi, half)] - prefix[half]
    s3 = prefix[half] - prefix[np.minimum(lo, half)]  # J3: from k to C/2
    extra = np.maximum(0, -((n2 * cap - s2 - s3) // cap))  # ceil((s3 - room) / C)
    return int((n1 + n2 + extra).max())


def _l2(inst: Instance, placed: int, d: int) -> int:
    cap = int(inst.cap[:, d].max(initial=0))
    return martello_toth_l2(np.sort(inst.dem[:, d])[:placed], cap)


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
        bound = max(bound, _volume(inst, placed, d), _big_tasks(inst, placed, d),
                    _l2(inst, placed, d))
    if placed == inst.n_tasks:
        bound = max(bound, _rules(inst))
    return min(bound, inst.n_agents)
