"""Improve an answer one small window of agents at a time (large neighbourhoods).

A whole-problem model of thousands of tasks cannot be built, let alone searched,
in a sub-second budget, and even mid-size ones search slowly.  Answers improve
locally, though.  Two kinds of window, each a small CP-SAT model over a few agents
(about ``WINDOW_PAIRS`` candidate pairs) with everything else fixed (its capacity
use and constraint counts are constants of the window model):

* *repair*, while tasks are unplaced: an unplaced unit (gang or task) must go in,
  on agents its constraints allow now (drawn by room) plus the agents with most
  room of all, where the tasks in the way can move;
* *binpack*: the least-filled used agent not tried since the last gain (the
  target), partners drawn (seeded) among used agents with room where the target's
  tasks need it, the tasks on them and some unplaced tasks that could go there.
  Only strictly better answers are admitted: fewer agents, or at least less load
  left on the target, which the next windows build on.

A window's answer is kept only if it is no worse by ``instance.quality``, so the
result is never worse than the start.  One worker and a deterministic-time limit
make windows reproducible.  Work is bounded by the budget, by a sweep rule (stop
once every used agent has been a target since the last gain) and by at most
``MAX_WINDOWS_PER_AGENT`` windows per agent used.
"""

from __future__ import annotations

import math

import numpy as np

from . import budget as cost
from . import cpsat
from .budget import Budget
from .constraints import CLUSTER_FREE, RuleState
from .explain import final_rule_state
from .instance import Instance, agents_used, loads, quality

WINDOW_PAIRS = 100  # candidate pairs per window model: small enough to solve in ms
WINDOW_SOLVE_S = 0.03  # CP-SAT wall-time cap per window (the budget is charged its use)
WINDOW_DTIME = 0.01  # CP-SAT deterministic time per window: reproducible windows
REPAIR_SOLVE_S, REPAIR_DTIME = 0.1, 0.04  # placing a task is worth a longer search
MAX_UNPLACED = 16  # unplaced tasks offered to each window
MIN_AGENTS, MAX_AGENTS = 2, 12
MAX_WINDOWS_PER_AGENT = 4  # work limit: windows per agent used by the start


def _pick(inst: Instance, assign: np.ndarray, rng: np.random.Generator,
          tried: set[int]) -> tuple[np.ndarray, int]:
    """Window agents and target: the least-filled untried used agent, partners with room."""
    used = np.unique(assign[assign >= 0])
    candidates = [int(a) for a in used if int(a) not in tried]
    if len(used) < 2 or not candidates:
        return np.zeros(0, dtype=np.int64), -1
    used_cap = loads(inst, assign)
    load = used_cap / inst.norm
    free = (inst.cap - used_cap) / inst.norm
    fill = load.sum(axis=1)
    target = min(candidates, key=lambda a: (fill[a], a))
    per_agent = max(1.0, float((assign >= 0).sum()) / len(used))
    size = int(np.clip(math.sqrt(WINDOW_PAIRS / per_agent), MIN_AGENTS, MAX_AGENTS))
    rest = used[used != target]
    # Room where the target's tasks need it (dot product), never zero.
    room = free[rest] @ load[target] + 1e-3
    k = min(len(rest), size - 1)
    partners = rng.choice(rest, size=k, replace=False, p=room / room.sum())
    return np.sort(np.append(partners, target)).astype(np.int64), target


def _pick_repair(inst: Instance, assign: np.ndarray, unit: np.ndarray, base: RuleState,
                 rng: np.random.Generator) -> np.ndarray:
    """Window agents for an unplaced unit.

    Half are agents the unit's constraints allow now (GROUP_BY: a least-used value;
    UNIQUE: an unused one...), drawn by room for the unit; half are the agents with
    most room of all, where the tasks in the way can move.  For a group bound to one
    value (free CLUSTER) the first half stays on the value of the first agent drawn.
    """
    eligible = inst.eligible()[unit].any(axis=0)
    group = inst.groups[inst.group_of[unit[0]]]
    allowed = np.flatnonzero(eligible & base.group_ok(group.rules, inst.n_agents))
    if len(allowed) == 0:
        allowed = np.flatnonzero(eligible)
    if len(allowed) == 0:
        return allowed
    free = (inst.cap - loads(inst, assign)) / inst.norm
    room = np.maximum(free[allowed] @ (inst.dem[unit] / inst.norm).sum(axis=0), 0) + 1e-3
    first = int(rng.choice(allowed, p=room / room.sum()))
    for r in group.rules:
        if inst.rules[r].kind == CLUSTER_FREE:
            vid = inst.attrs[inst.rules[r].attr].agent_vid
            keep = vid[allowed] == vid[first]
            allowed, room = allowed[keep], room[keep]
    k = min(len(allowed), MAX_AGENTS // 2)
    near = rng.choice(allowed, size=k, replace=False, p=room / room.sum())
    spare = np.setdiff1d(np.arange(inst.n_agents), np.append(near, first))
    roomiest = spare[np.argsort(-free[spare].sum(axis=1), kind="stable")][:MAX_AGENTS - k - 1]
    return np.unique(np.concatenate([near, [first], roomiest])).astype(np.int64)


def _window(inst: Instance, assign: np.ndarray, agents: np.ndarray, base: RuleState,
            extra: np.ndarray | None = None) -> cpsat.SubModel:
    """The tasks on ``agents`` (to keep placed), ``extra`` and some unplaced tasks
    that could go there (to place if possible), everything else fixed."""
    in_window = np.isin(assign, agents)
    placed = np.flatnonzero(in_window)
    eligible = inst.eligible()
    loose = np.flatnonzero((assign < 0) & (inst.gang_of < 0))
    if len(loose):
        loose = loose[eligible[np.ix_(loose, agents)].any(axis=1)][:MAX_UNPLACED]
    if extra is not None:
        loose = np.union1d(loose, extra)
    tasks = np.concatenate([placed, loose]).astype(np.int64)
    # The window's own tasks are variables, not constants: lift their counts out of
    # ``base`` (in place, cheaper than a copy; ``_restore`` puts them back).
    _shift(inst, base, assign, placed, -1)
    rows, cols = np.nonzero(eligible[np.ix_(tasks, agents)])
    return cpsat.SubModel(
        tasks=tasks,
        pairs_t=tasks[rows],
        pairs_a=agents[cols],
        cap=inst.cap - loads(inst, np.where(in_window, -1, assign)),
        rules=base,
        hint=assign,
        must_place=np.concatenate([np.ones(len(placed), bool), np.zeros(len(loose), bool)]),
        complete=False,
    )


def _shift(inst: Instance, base: RuleState, assign: np.ndarray, tasks: np.ndarray,
           sign: int) -> None:
    for t in tasks:
        rules = inst.groups[inst.group_of[t]].rules
        if rules:
            base.add(rules, int(assign[t]), sign)


def _rebase(inst: Instance, base: RuleState, old: np.ndarray, new: np.ndarray) -> None:
    """Move the constraint counts of tasks whose agent changed."""
    for t in np.flatnonzero(old != new):
        rules = inst.groups[inst.group_of[t]].rules
        if old[t] >= 0:
            base.add(rules, int(old[t]), -1)
        if new[t] >= 0:
            base.add(rules, int(new[t]), +1)


def window_cost(n_pairs: int, n_constraints: int) -> float:
    return cost.PER_PAIR_MODEL * n_pairs + cost.PER_CONSTRAINT_MODEL * n_constraints


def _next_repair(inst: Instance, assign: np.ndarray, tried: set[int]) -> np.ndarray | None:
    """The largest unplaced unit (gang or task) not yet tried since the last gain."""
    best, best_size = None, -1.0
    size = inst.task_size
    for unit in inst.units():
        first = int(unit[0])
        if assign[first] < 0 and first not in tried and size[unit].sum() > best_size:
            best, best_size = unit, float(size[unit].sum())
    return best


def _step(inst: Instance, assign: np.ndarray, base: RuleState, rng: np.random.Generator,
          tried: set[int], repaired: set[int], seed: int, budget: Budget):
    """One window: (solver result or None, unit or None, target); None: no window left."""
    unit = _next_repair(inst, assign, repaired)
    target = -1
    if unit is not None:
        agents = _pick_repair(inst, assign, unit, base, rng)
        if len(agents) == 0:
            repaired.add(int(unit[0]))
            return None, unit, target
    else:
        agents, target = _pick(inst, assign, rng, tried)
        if len(agents) < 2:
            return None, None, target  # every used agent was a target since the last gain
    sub = _window(inst, assign, agents, base, unit)
    sub.drain = target
    placed = sub.tasks[sub.must_place]  # lifted out of ``base`` by ``_window``
    if unit is not None:
        # The unit must go in (a hard constraint propagates far better than a
        # reward); any answer is then better, so no cut on the objective.
        if not np.isin(unit, sub.pairs_t).all():
            _shift(inst, base, assign, placed, +1)
            repaired.add(int(unit[0]))
            return None, unit, target
        sub.must_place = sub.must_place | np.isin(sub.tasks, unit)
        sub.improve = False
    try:
        # One worker: windows are small, and threads would only add start-up cost.
        wall, dtime = (REPAIR_SOLVE_S, REPAIR_DTIME) if unit is not None else \
            (WINDOW_SOLVE_S, WINDOW_DTIME)
        result = cpsat.solve(inst, sub, min(wall, budget.left), 1, seed, dtime=dtime)
    finally:
        _shift(inst, base, assign, placed, +1)
    return result, unit, target


def improve_in_windows(inst: Instance, start: np.ndarray, budget: Budget, seed: int,
                       floor: int = 0) -> tuple[np.ndarray, float]:
    """The improved assignment and the solver's total wall time in ms.

    Unplaced units come first: a *repair* window around agents that could take
    one tries to place it (moving others aside).  Then binpack windows: each either
    saves agents, or at least drains its target (moves load off it, the window
    model's last objective term), which the next windows build on; a target or
    unit is marked tried only when its window finds nothing.  Stops early once
    every task is placed on ``floor`` (a lower bound) agents.
    """
    if inst.problem.objective != "binpack":
        return start, 0.0
    assign, total_ms = start.copy(), 0.0
    rng = np.random.default_rng(seed)
    tried: set[int] = set()
    repaired: set[int] = set()
    base = final_rule_state(inst, assign)
    # Typical window: WINDOW_PAIRS pairs and a constraint per task, agent, dimension.
    typical = window_cost(WINDOW_PAIRS, 4 * MAX_AGENTS * (2 + len(inst.dims))) \
        + cost.PER_WINDOW_TASK * inst.n_tasks
    limit = MAX_WINDOWS_PER_AGENT * agents_used(assign) + 8 + int((assign < 0).sum())
    for step in range(limit):
        if not budget.affords(typical + WINDOW_SOLVE_S + cost.SOLVER_START) or \
                (assign >= 0).all() and agents_used(assign) <= floor:
            break
        result, unit, target = _step(inst, assign, base, rng, tried, repaired, seed + step,
                                     budget)
        if result is None:
            if unit is None:
                break
            continue
        budget.charge(window_cost(result.n_pairs, result.n_constraints) + cost.SOLVER_START
                      + cost.PER_WINDOW_TASK * inst.n_tasks + result.wall_ms / 1000)
        total_ms += result.wall_ms
        better = result.status in ("OPTIMAL", "FEASIBLE")
        if better and quality(inst, result.assign) <= quality(inst, assign):
            if quality(inst, result.assign) < quality(inst, assign):
                tried.clear()
            _rebase(inst, base, assign, result.assign)
            assign = result.assign
        elif unit is not None:
            repaired.add(int(unit[0]))
        else:
            tried.add(target)
    return assign, total_ms
