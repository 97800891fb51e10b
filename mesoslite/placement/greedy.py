"""Vectorised greedy heuristics: the engine's feasible start and its baseline.

* ``ffd``: first-fit decreasing.  Units (gangs, single tasks) by decreasing size;
  each task to the first agent, in preference order (biggest first), that takes it.
* ``best_fit``: the norm-based variant: the opened agent whose residual capacity,
  after taking the task, has the smallest L2 norm; else the next agent in order.
* ``dot_product``: bin-centric (Panigrahy et al., "Heuristics for Vector Bin
  Packing"): fill one agent at a time with the pending task whose demand has the
  largest dot product with the agent's residual capacity.
* ``worst_fit`` (the ``spread`` objective): the agent whose peak utilisation after
  taking the task is lowest;
* ``completion`` (``completion``), for one-dimensional problems without
  constraints: fill one agent at a time with the subset of tasks that fills it best.

Each heuristic honours every constraint (counting rules are checked online, which
implies the final-state semantics, see ``constraints``) and gangs (a unit is rolled
back when one member finds no agent).  A final pass retries unplaced units, because
GROUP_BY admits more once other values fill up.  ``greedy`` runs the variants for the
objective and keeps the best by ``instance.quality``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import budget as cost
from .budget import Budget
from .completion import applies as completion_applies
from .completion import complete
from .instance import Instance, quality

Chooser = Callable[["State", int, np.ndarray], int]
STALL_VARIANTS = 1  # stop trying variants once one found nothing better


class State:
    """A partial assignment with remaining capacities and constraint counts."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        # Dimension-major: one contiguous row per dimension makes the per-task fit
        # test a few fast comparisons instead of a slow 2-D reduction.
        self.free = inst.cap.T.copy()  # (D, A), C-contiguous
        self.dem = [row.tolist() for row in inst.dem]  # Python ints, fast to index
        self.group_of = inst.group_of.tolist()
        self.assign = np.full(inst.n_tasks, -1, dtype=np.int64)
        self.used = np.zeros(inst.n_agents, dtype=np.int64)  # tasks per agent
        self.rules = inst.rule_state()
        self.static = inst.static_rows()
        self._group_ok: dict[int, np.ndarray] = {}

    def feasible(self, t: int) -> np.ndarray:
        """Agents that can take task ``t`` now."""
        g = self.group_of[t]
        ok = self._group_ok.get(g)
        if ok is None:
            group = self.inst.groups[g]
            ok = self.static[g]
            if group.rules:
                ok = ok & self.rules.group_ok(group.rules, self.inst.n_agents)
            self._group_ok[g] = ok
        fit = None
        for d, need in enumerate(self.dem[t]):
            if need:
                fit = self.free[d] >= need if fit is None else fit & (self.free[d] >= need)
        return ok if fit is None else ok & fit

    @property
    def remaining(self) -> np.ndarray:
        """(A, D) capacity left."""
        return self.free.T

    def put(self, t: int, a: int) -> None:
        self._move(t, a, +1)
        self.assign[t] = a

    def take(self, t: int) -> None:
        self._move(t, int(self.assign[t]), -1)
        self.assign[t] = -1

    def _move(self, t: int, a: int, sign: int) -> None:
        g = self.group_of[t]
        self.free[:, a] -= sign * self.inst.dem[t]
        self.used[a] += sign
        rules = self.inst.groups[g].rules
        if rules:  # only counting rules make a group's allowed agents change
            self.rules.add(rules, a, sign)
            self._group_ok.pop(g, None)

    def place_unit(self, unit: np.ndarray, choose: Chooser) -> bool:
        """Place every task of ``unit`` or none of them."""
        done = []
        for t in unit:
            a = choose(self, int(t), self.feasible(int(t)))
            if a < 0:
                for p in reversed(done):
                    self.take(p)
                return False
            self.put(int(t), a)
            done.append(int(t))
        return True


def first_fit(state: State, t: int, ok: np.ndarray) -> int:
    order = state.inst.agent_order
    if len(order) == 0:
        return -1
    hits = ok[order]
    i = int(hits.argmax())
    return int(order[i]) if hits[i] else -1


def best_fit(state: State, t: int, ok: np.ndarray) -> int:
    opened = np.flatnonzero(ok & (state.used > 0))
    if len(opened) == 0:
        return first_fit(state, t, ok)
    inst = state.inst
    left = (state.free[:, opened] - inst.dem[t][:, None]) / inst.norm[:, None]
    return int(opened[np.argmin((left * left).sum(axis=0))])


def worst_fit(state: State, t: int, ok: np.ndarray) -> int:
    cand = np.flatnonzero(ok)
    if len(cand) == 0:
        return -1
    inst = state.inst
    cap = np.maximum(inst.cap[cand].T, 1)
    after = (cap - state.free[:, cand] + inst.dem[t][:, None]) / cap
    peak = after.max(axis=0, initial=0.0)
    # Lowest peak, then the agent holding fewest tasks, then preference order.
    best = np.lexsort((cand, state.used[cand], np.round(peak, 9)))[0]
    return int(cand[best])


def size_key(inst: Instance, key: str) -> np.ndarray:
    """A way to say how big each task is, over demands normalised by the largest agent.

    ``sum``, ``max``, ``l2``, ``prod`` of the normalised demands; ``tight``: summed
    size over the number of agents that could ever take the task (most constrained
    first).
    """
    norm = inst.dem / inst.norm
    if key == "max":
        return norm.max(axis=1, initial=0.0)
    if key == "l2":
        return np.sqrt((norm * norm).sum(axis=1))
    if key == "prod":
        return np.prod(norm + 1e-3, axis=1)
    if key == "tight":
        return norm.sum(axis=1) / np.maximum(inst.eligible().sum(axis=1), 1)
    return norm.sum(axis=1)


def ordered_units(inst: Instance, key: str = "sum") -> list[np.ndarray]:
    """Units by decreasing total size (``key``), members by decreasing size."""
    size = size_key(inst, key)
    units = [unit[np.lexsort((unit, -size[unit]))] for unit in inst.units()]
    total = np.array([size[u].sum() for u in units])
    first = np.array([u.min() for u in units])
    return [units[i] for i in np.lexsort((first, -total))]


def _retry(state: State, units: list[np.ndarray], choose: Chooser) -> None:
    """Retry unplaced units until a pass places nothing more."""
    for _ in range(3):
        progress = False
        for unit in units:
            if state.assign[unit[0]] < 0 and state.place_unit(unit, choose):
                progress = True
        if not progress:
            return


def item_centric(inst: Instance, choose: Chooser, key: str = "sum") -> np.ndarray:
    return in_order(inst, ordered_units(inst, key), choose)


def in_order(inst: Instance, units: list[np.ndarray], choose: Chooser) -> np.ndarray:
    """Place ``units`` in this order with ``choose``, then retry those left out."""
    state = State(inst)
    for unit in units:
        state.place_unit(unit, choose)
    _retry(state, units, choose)
    return state.assign


def dot_product(inst: Instance, key: str = "sum") -> np.ndarray:
    state = State(inst)
    units = ordered_units(inst, key)
    for unit in units:
        if len(unit) > 1:  # gangs first, all-or-nothing, first fit
            state.place_unit(unit, first_fit)
    pending = np.array([u[0] for u in units if len(u) == 1], dtype=np.int64)
    eligible = inst.eligible()
    dem_n = inst.dem / inst.norm
    dem_t = np.ascontiguousarray(inst.dem.T)
    opened = [a for a in inst.agent_order if state.used[a] > 0]
    order = opened + [a for a in inst.agent_order if state.used[a] == 0]
    for a in order:
        if len(pending) == 0:
            break
        mine = pending[eligible[pending, a]]  # those it could take while empty
        if len(mine) and _fill_agent(state, int(a), mine, dem_n, dem_t):
            pending = pending[state.assign[pending] < 0]
    _retry(state, units, first_fit)
    return state.assign


def _fill_agent(state: State, a: int, pending: np.ndarray, dem_n: np.ndarray,
                dem_t: np.ndarray) -> int:
    """Fill agent ``a`` from ``pending`` by largest dot product; return how many went."""
    inst = state.inst
    placed = 0
    while len(pending):
        fits = state.rules.groups_ok_at(a)[inst.group_of[pending]]
        for d in range(len(dem_t)):
            fits &= dem_t[d, pending] <= state.free[d, a]
        # Capacity only shrinks and no other group's count moves while this agent
        # fills, so a task that does not fit now never will: drop it.
        pending = pending[fits]
        if len(pending) == 0:
            break
        score = dem_n[pending] @ (state.free[:, a] / inst.norm)
        i = int(np.argmax(score))
        state.put(int(pending[i]), a)
        pending = np.delete(pending, i)
        placed += 1
    return placed


def fill(inst: Instance, assign: np.ndarray) -> np.ndarray:
    """``assign`` plus whatever unplaced units still fit (so no answer leaves room idle)."""
    state = State(inst)
    for t in np.flatnonzero(assign >= 0):
        state.put(int(t), int(assign[t]))
    choose = worst_fit if inst.problem.objective == "spread" else first_fit
    _retry(state, [u for u in ordered_units(inst) if assign[u[0]] < 0], choose)
    return state.assign


@dataclass
class GreedyResult:
    assign: np.ndarray
    name: str


def variant_cost(inst: Instance, bin_centric: bool = False, completion: bool = False) -> float:
    """Estimated seconds of one heuristic on ``inst`` (see ``budget``)."""
    each = (cost.PER_CELL_GREEDY * inst.n_tasks * inst.n_agents
            + cost.PER_TASK_GREEDY * inst.n_tasks)
    if completion:
        return 2 * each
    return each * (1 + inst.n_tasks * cost.BIN_CENTRIC_FACTOR) if bin_centric else each


def greedy(inst: Instance, budget: Budget | None = None, floor: int = 0) -> GreedyResult:
    """The best of the heuristics suited to the objective (see module docstring).

    The classic ones run first (bin completion for one-dimensional problems,
    most-constrained-first first fit when agents differ in what they may take, first
    fit, dot product, best fit by norm, by decreasing summed size); then variants ordering by other size measures, which win now and
    then.  The first always runs; each further one only while the budget can pay
    for it several times over (the solver needs time after it), none once an
    answer places everything on ``floor`` (a lower bound) agents, and none after
    ``STALL_VARIANTS`` in a row found nothing better.
    """
    if inst.problem.objective == "spread":
        variants = {
            "worst_fit": lambda: item_centric(inst, worst_fit),
            "worst_fit/tight": lambda: item_centric(inst, worst_fit, "tight"),
        }
    else:
        # One dimension and interchangeable tasks: bin completion leads.
        variants = {"completion": lambda: complete(inst)} if completion_applies(inst) else {}
        eligible = inst.eligible().sum(axis=1)
        # With constraints, most-constrained-first leads: when only one heuristic
        # fits the budget it is the one that places most.  Without, it is plain FFD.
        if len(np.unique(eligible)) > 1:
            variants["ffd/tight"] = lambda: item_centric(inst, first_fit, "tight")
        variants |= {
            "ffd": lambda: item_centric(inst, first_fit),
            "dot_product": lambda: dot_product(inst),
            "best_fit": lambda: item_centric(inst, best_fit),
            "best_fit/prod": lambda: item_centric(inst, best_fit, "prod"),
            "dot_product/max": lambda: dot_product(inst, "max"),
            "best_fit/l2": lambda: item_centric(inst, best_fit, "l2"),
            "dot_product/l2": lambda: dot_product(inst, "l2"),
        }
    best: GreedyResult | None = None
    stale = 0  # variants in a row that found nothing better
    for i, (name, run) in enumerate(variants.items()):
        each = variant_cost(inst, name.startswith("dot_product"), name == "completion")
        if best is not None and (
            budget is not None and not budget.affords((2 if i < 4 else 8) * each)
            or quality(inst, best.assign)[:2] <= (-inst.n_tasks, floor)
            or stale >= STALL_VARIANTS
        ):
            continue
        assign = run()
        if budget is not None:
            budget.charge(each)
        if best is None or quality(inst, assign) < quality(inst, best.assign):
            best, stale = GreedyResult(assign, name), 0
        else:
            stale += 1
    assert best is not None
    return best
