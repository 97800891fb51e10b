"""Improve an answer one small window of agents at a time (large neighbourhoods).

A whole-problem model of thousands of tasks cannot be built, let alone searched,
in a sub-second budget, and even mid-size ones search slowly.  Answers improve
locally, though.  A window is a small CP-SAT model over a few agents (about
``WINDOW_PAIRS`` candidate pairs) with everything else fixed (its capacity use and
constraint counts are constants of the window model): the least-filled used agent
not tried since the last gain (the target), partners drawn (seeded) among used
agents with room where the target's tasks need it, the tasks on them and some
unplaced tasks that could go there.  Only strictly better answers are admitted:
fewer agents, or at least less load left on the target, which the next windows
build on.  (Unplaced tasks are first given their own models, see ``repair``.)

A window's answer is kept only if it is no worse by ``instance.quality``, so the
result is never worse than the start.  One worker and a deterministic-time limit
make windows reproducible.  Work is bounded by the budget and its stall horizon
(each strict gain extends it), by a sweep rule (stop once every used agent has
been a target since the last gain) and by at most ``MAX_WINDOWS_PER_AGENT``
windows per agent used.
"""

from __future__ import annotations

import math

import numpy as np

from . import budget as cost
from . import cpsat
from .budget import Budget
from .constraints import RuleState
from .explain import final_rule_state
from .instance import Instance, agents_used, loads, quality

WINDOW_PAIRS = 100  # candidate pairs per window model: small enough to solve in ms
WINDOW_SOLVE_S = 0.03  # CP-SAT wall-time cap per window (the budget is charged its use)
WINDOW_DTIME = 0.01  # CP-SAT deterministic time per window: reproducible windows
MIN_WINDOW_S = 0.005  # no window with less than this left for its solver
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


def _window(inst: Instance, assign: np.ndarray, agents: np.ndarray,
            base: RuleState) -> cpsat.SubModel:
    """The tasks on ``agents`` (to keep placed) and some unplaced tasks that could go
    there (to place if possible), everything else fixed."""
    in_window = np.isin(assign, agents)
    placed = np.flatnonzero(in_window)
    eligible = inst.eligible()
    loose = np.flatnonzero((assign < 0) & (inst.gang_of < 0))
    if len(loose):
        loose = loose[eligible[np.ix_(loose, agents)].any(axis=1)][:MAX_UNPLACED]
    tasks = np.concatenate([placed, loose]).astype(np.int64)
    # The window's own tasks are variables, not constants: lift their counts out of
    # ``base`` (in place, cheaper than a copy; the caller puts them back).
    shift_counts(inst, base, assign, placed, -1)
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


def shift_counts(inst: Instance, base: RuleState, assign: np.ndarray, tasks: np.ndarray,
                 sign: int) -> None:
    """Add (``sign`` +1) or lift (-1) the constraint counts of ``tasks`` where placed."""
    for t in tasks:
        rules = inst.groups[inst.group_of[t]].rules
        if rules:
            base.add(rules, int(assign[t]), sign)


def rebase_counts(inst: Instance, base: RuleState, old: np.ndarray,
                  new: np.ndarray) -> None:
    """Move the constraint counts of tasks whose agent changed."""
    for t in np.flatnonzero(old != new):
        rules = inst.groups[inst.group_of[t]].rules
        if old[t] >= 0:
            base.add(rules, int(old[t]), -1)
        if new[t] >= 0:
            base.add(rules, int(new[t]), +1)


def window_cost(n_pairs: int, n_constraints: int) -> float:
    return cost.PER_PAIR_MODEL * n_pairs + cost.PER_CONSTRAINT_MODEL * n_constraints


def _step(inst: Instance, assign: np.ndarray, base: RuleState, rng: np.random.Generator,
          tried: set[int], seed: int, time_s: float) -> tuple[cpsat.SolveResult | None, int]:
    """One window: (solver result, target); None when every used agent was a target
    since the last gain."""
    agents, target = _pick(inst, assign, rng, tried)
    if len(agents) < 2:
        return None, target
    sub = _window(inst, assign, agents, base)
    sub.drain = target
    placed = sub.tasks[sub.must_place]  # lifted out of ``base`` by ``_window``
    try:
        # One worker: windows are small, and threads would only add start-up cost.
        result = cpsat.solve(inst, sub, time_s, 1, seed, dtime=WINDOW_DTIME)
    finally:
        shift_counts(inst, base, assign, placed, +1)
    return result, target


def improve_in_windows(inst: Instance, start: np.ndarray, budget: Budget, seed: int,
                       floor: int = 0) -> tuple[np.ndarray, float]:
    """The improved assignment and the solver's total wall time in ms.

    Each window either saves agents (a gain: the budget's stall horizon moves out),
    or at least drains its target (moves load off it, the window model's last
    objective term), which the next windows build on; a target is marked tried only
    when its window finds nothing.  Stops early once every task is placed on
    ``floor`` (a lower bound) agents.
    """
    if inst.problem.objective != "binpack":
        return start, 0.0
    assign, total_ms = start.copy(), 0.0
    rng = np.random.default_rng(seed)
    tried: set[int] = set()
    base = final_rule_state(inst, assign)
    # Typical window: WINDOW_PAIRS pairs and a constraint per task, agent, dimension.
    typical = window_cost(WINDOW_PAIRS, 4 * MAX_AGENTS * (2 + len(inst.dims))) \
        + cost.PER_WINDOW_TASK * inst.n_tasks + cost.SOLVER_START
    for step in range(MAX_WINDOWS_PER_AGENT * agents_used(assign) + 8):
        if not budget.affords(typical + MIN_WINDOW_S) or \
                (assign >= 0).all() and agents_used(assign) <= floor:
            break
        time_s = min(WINDOW_SOLVE_S, budget.left - typical)
        result, target = _step(inst, assign, base, rng, tried, seed + step, time_s)
        if result is None:
            break
        budget.charge(window_cost(result.n_pairs, result.n_constraints) + cost.SOLVER_START
                      + cost.PER_WINDOW_TASK * inst.n_tasks + result.wall_ms / 1000)
        total_ms += result.wall_ms
        found = result.status in ("OPTIMAL", "FEASIBLE")
        if found and quality(inst, result.assign) <= quality(inst, assign):
            if quality(inst, result.assign) < quality(inst, assign):
                tried.clear()
                budget.progress()
            rebase_counts(inst, base, assign, result.assign)
            assign = result.assign
        else:
            tried.add(target)
    return assign, total_ms
