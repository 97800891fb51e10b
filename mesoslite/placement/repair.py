"""Place the tasks the greedy start left out, cheapest means first.

1. *Priority restarts* (``restarts``), the squeaky wheel of Joslin & Clements: the
   most-constrained-first greedy runs again with the units it left out moved to
   the front of its order (and those left out then, after them...).  A unit that
   came last usually found its only allowed agents full (GROUP_BY sending it to one
   rack, say); going first, it takes room that the others, less constrained, find
   elsewhere.  A greedy pass costs milliseconds.
2. *Targeted models* (``repair``), for each unit still out, largest first: a small
   CP-SAT model holding

   * the unit, which must be placed;
   * the tasks on a few *candidate* agents: agents the unit may use (its counting
     rules allow it there now first, then those needing the least room freed; one
     value for a free CLUSTER);
   * the unit's group-mates, when the group has counting rules, so that GROUP_BY,
     UNIQUE or MAX_PER counts can be rebalanced;

   where every one of these tasks may go to *any* agent with room for it
   (everything else is fixed: its capacity use and constraint counts are
   constants).  They must all stay placed and there is no objective, so CP-SAT
   stops at the first answer: a hard constraint propagates where a "place as
   many as you can" reward does not.  A small neighbourhood is tried first, then
   a wider one.  One worker and a deterministic-time limit make them reproducible.

The engine then tries the whole problem (``whole``, repair mode) for what is still
out, when it is small.  Only the binpack agent count can suffer here (tasks moved
out of the way may open agents); placing more tasks comes first, and the windows
that follow pack again.
"""

from __future__ import annotations

import numpy as np

from . import budget as cost
from . import cpsat
from .budget import Budget
from .constraints import CLUSTER_FREE, RuleState
from .decompose import rebase_counts, shift_counts, window_cost
from .explain import final_rule_state
from .greedy import first_fit, in_order, ordered_units, variant_cost, worst_fit
from .instance import Instance, loads, quality
from .whole import placeable

RESTARTS = 4  # priority restarts at most
NEIGHBOURHOODS = (4, 12)  # candidate agents per attempt: small first, then wider
MAX_MATES = 32  # group-mates that may move (larger groups: only those on candidates)
REPAIR_PAIRS = 4000  # candidate pairs per model at most (else fewer destinations)
REPAIR_SOLVE_S, REPAIR_DTIME = 0.2, 0.1  # per attempt: wall cap, deterministic time


def restarts(inst: Instance, start: np.ndarray, budget: Budget) -> np.ndarray:
    """The best of ``start`` and greedy passes with the units left out first (see
    module): each pass puts the units left out by the last one behind those already
    in front."""
    choose = worst_fit if inst.problem.objective == "spread" else first_fit
    units = ordered_units(inst, "tight")
    front: list[np.ndarray] = []
    ok = placeable(inst)
    best = current = start
    for _ in range(RESTARTS):
        left = [u for u in units if current[u[0]] < 0 and ok[u].all()]
        if not left or not budget.affords(2 * variant_cost(inst)):
            break
        ahead = {int(u[0]) for u in front}
        front += [u for u in left if int(u[0]) not in ahead]
        ahead = {int(u[0]) for u in front}
        current = in_order(inst, front + [u for u in units if int(u[0]) not in ahead], choose)
        budget.charge(variant_cost(inst))
        if quality(inst, current) < quality(inst, best):
            best = current
    return best


def _units(inst: Instance, assign: np.ndarray) -> list[np.ndarray]:
    """Unplaced units whose members could each go somewhere, largest first."""
    ok = placeable(inst)
    size = inst.task_size
    units = [u for u in inst.units() if assign[u[0]] < 0 and ok[u].all()]
    return sorted(units, key=lambda u: (-float(size[u].sum()), int(u[0])))


def _candidates(inst: Instance, assign: np.ndarray, unit: np.ndarray, base: RuleState,
                k: int) -> np.ndarray:
    """Up to ``k`` agents for the unit: allowed now first, then least room to free."""
    eligible = inst.eligible()[unit].any(axis=0)
    free = inst.cap - loads(inst, assign)
    need = inst.dem[unit].max(axis=0)
    short = (np.maximum(need[None, :] - free, 0) / inst.norm).sum(axis=1)
    groups = {int(g) for g in inst.group_of[unit]}
    rules = [r for g in groups for r in inst.groups[g].rules]
    allowed = base.group_ok(rules, inst.n_agents)
    order = np.lexsort((np.arange(inst.n_agents), short, ~allowed))
    order = order[eligible[order]]
    if len(order) == 0:
        return order
    for r in rules:  # a free CLUSTER: every candidate on the first one's value
        if inst.rules[r].kind == CLUSTER_FREE:
            vid = inst.attrs[inst.rules[r].attr].agent_vid
            order = order[vid[order] == vid[order[0]]]
    return order[:k].astype(np.int64)


def _mates(inst: Instance, assign: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Placed tasks of the unit's groups that have counting rules (small groups only)."""
    out = []
    for g in {int(g) for g in inst.group_of[unit]}:
        group = inst.groups[g]
        if group.rules and len(group.tasks) <= MAX_MATES:
            out.append(group.tasks[assign[group.tasks] >= 0])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _model(inst: Instance, assign: np.ndarray, unit: np.ndarray, agents: np.ndarray,
           base: RuleState) -> cpsat.SubModel:
    """The repair model (see module).  Lifts the moving tasks' counts out of ``base``."""
    movers = np.flatnonzero(np.isin(assign, agents))
    tasks = np.unique(np.concatenate([unit, movers, _mates(inst, assign, unit)]))
    tasks = tasks.astype(np.int64)
    placed = tasks[assign[tasks] >= 0]
    shift_counts(inst, base, assign, placed, -1)
    fixed = assign.copy()
    fixed[tasks] = -1
    cap = inst.cap - loads(inst, fixed)
    dem = inst.dem[tasks]
    ok = inst.eligible()[tasks] & (dem[:, None, :] <= cap[None, :, :]).all(axis=2)
    if ok.sum() > REPAIR_PAIRS:  # keep the candidates, where tasks are now, the roomiest
        keep = np.zeros(inst.n_agents, dtype=bool)
        keep[agents] = True
        keep[assign[placed]] = True
        room = ((cap - cap.min(axis=0)) / inst.norm).sum(axis=1)
        spare = max(0, REPAIR_PAIRS // len(tasks) - int(keep.sum()))
        keep[np.argsort(-room, kind="stable")[:spare]] = True
        ok &= keep[None, :]
    rows, cols = np.nonzero(ok)
    return cpsat.SubModel(
        tasks=tasks, pairs_t=tasks[rows], pairs_a=cols.astype(np.int64), cap=cap,
        rules=base, hint=assign, must_place=np.ones(len(tasks), dtype=bool),
        complete=False, improve=False, objective=False)


def _attempt(inst: Instance, assign: np.ndarray, unit: np.ndarray, base: RuleState,
             k: int, budget: Budget, seed: int) -> tuple[np.ndarray | None, float]:
    """One repair model; (the assignment with the unit placed, or None; solver ms)."""
    agents = _candidates(inst, assign, unit, base, k)
    if len(agents) == 0:
        return None, 0.0
    sub = _model(inst, assign, unit, agents, base)
    placed = sub.tasks[assign[sub.tasks] >= 0]
    try:
        if not np.isin(unit, sub.pairs_t).all():
            return None, 0.0  # a member has room nowhere, even with the others moved
        result = cpsat.solve(inst, sub, min(REPAIR_SOLVE_S, budget.left), 1, seed,
                             dtime=REPAIR_DTIME)
    finally:
        shift_counts(inst, base, assign, placed, +1)
    budget.charge(window_cost(result.n_pairs, result.n_constraints) + cost.SOLVER_START
                  + cost.PER_WINDOW_TASK * inst.n_tasks + result.wall_ms / 1000)
    if result.status in ("OPTIMAL", "FEASIBLE") and \
            quality(inst, result.assign) < quality(inst, assign):
        return result.assign, result.wall_ms
    return None, result.wall_ms


def repair(inst: Instance, start: np.ndarray, budget: Budget,
           seed: int) -> tuple[np.ndarray, float]:
    """``start`` with as many unplaced units placed as repair models find room for,
    and the solver's total wall time in ms.  A unit that fails skips the others of
    its group with the same demands (they would fail the same way)."""
    assign, total_ms = start.copy(), 0.0
    base = final_rule_state(inst, assign)
    failed: set[tuple] = set()
    typical = window_cost(REPAIR_PAIRS // 4, 200) + cost.SOLVER_START \
        + cost.PER_WINDOW_TASK * inst.n_tasks
    for i, unit in enumerate(_units(inst, assign)):
        key = (tuple(inst.group_of[unit].tolist()), inst.dem[unit].tobytes())
        if key in failed:
            continue
        for k in NEIGHBOURHOODS:
            if not budget.affords(typical + REPAIR_SOLVE_S / 4):
                return assign, total_ms
            found, ms = _attempt(inst, assign, unit, base, k, budget, seed + i)
            total_ms += ms
            if found is not None:
                rebase_counts(inst, base, assign, found)
                assign = found
                break
        else:
            failed.add(key)
    return assign, total_ms
