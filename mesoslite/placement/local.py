"""Bin elimination: empty an agent into the room the others have left (binpack).

A local search move from the bin-packing literature: take every task off one used
agent and put each, largest first, on another used agent (best fit: the smallest
residual norm), honouring every constraint online; keep the move only if all of
them found room, else put them back.  Agents are tried least-filled first, in
passes, until a pass eliminates nothing.  Every kept move saves an agent, so the
answer only improves.

First fit with constraints leaves holes that no single window of a few agents sees
but that are plain to this move: on the constraint-heavy families it saves as many
agents in tens of milliseconds as CP-SAT windows do in most of a second.  (The
engine skips it without constraints: unconstrained first fit leaves no such holes,
and it never gained on those families.)  A quick test (every task must fit some
other used agent, and all of them the room left in total) rejects most hopeless
attempts without moving anything.

Counting rules are checked online as tasks return.  The tasks are all taken off
first, so a task leaving a GROUP_BY value that held the minimum can only go back
to a value as empty (its minimum dropped); the final-state rule is checked again
before a move is kept, as a guard.
"""

from __future__ import annotations

import numpy as np

from . import budget as cost
from .budget import Budget
from .constraints import GROUP_BY, RuleState
from .greedy import State
from .instance import Instance

MAX_PASSES = 8
QUICK_TEST_S = 1e-4  # cost model: one agent's quick test (a few small array operations)


def _group_by_holds(rules: RuleState, rule_ids: list[int]) -> bool:
    """Every GROUP_BY value holding new tasks has at most ``minimum + 1`` of them."""
    for r in rule_ids:
        if rules.kind[r] != GROUP_BY:
            continue
        rule = rules.rules[r]
        counts = rules.counts[rules.offset[r]: rules.offset[r] + len(rule.running)]
        holds_new = counts > rule.running
        if holds_new.any() and counts[holds_new].max() > rules.minimum[r] + 1:
            return False
    return True


def _could_empty(state: State, a: int, tasks: np.ndarray) -> bool:
    """Room for each task on some other used agent, and for all of them in total."""
    others = np.flatnonzero(state.used > 0)
    others = others[others != a]
    if len(others) == 0:
        return False
    free = state.free[:, others]  # (D, U)
    dem = state.inst.dem[tasks]  # (k, D)
    each = (free[None, :, :] >= dem[:, :, None]).all(axis=1).any(axis=1)
    return bool(each.all() and (dem.sum(axis=0) <= free.sum(axis=1)).all())


def _empty(state: State, a: int, tasks: np.ndarray) -> bool:
    """Move ``tasks`` (all of agent ``a``'s) to other used agents, or change nothing."""
    inst = state.inst
    for t in tasks:
        state.take(int(t))
    moved = []
    for t in tasks:
        ok = state.feasible(int(t)) & (state.used > 0)
        ok[a] = False
        cand = np.flatnonzero(ok)
        if len(cand) == 0:
            break
        left = (state.free[:, cand] - inst.dem[t][:, None]) / inst.norm[:, None]
        state.put(int(t), int(cand[np.argmin((left * left).sum(axis=0))]))
        moved.append(int(t))
    rules = [r for g in {int(inst.group_of[t]) for t in tasks} for r in inst.groups[g].rules]
    if len(moved) == len(tasks) and _group_by_holds(state.rules, rules):
        return True
    for t in moved:
        state.take(t)
    for t in tasks:
        state.put(int(t), a)
    return False


def eliminate(inst: Instance, start: np.ndarray, budget: Budget) -> np.ndarray:
    """``start`` with as many agents emptied as the move finds (see module); each
    success is a gain for the budget's stall horizon."""
    budget.charge(cost.PER_TASK_FINISH * inst.n_tasks)
    state = State(inst)
    for t in np.flatnonzero(start >= 0):
        state.put(int(t), int(start[t]))
    size = inst.task_size
    per_task = cost.PER_TASK_GREEDY + cost.PER_CELL_GREEDY * inst.n_agents
    for _ in range(MAX_PASSES):
        used = np.flatnonzero(state.used > 0)
        fill = ((inst.cap[used] - state.remaining[used]) / inst.norm).sum(axis=1)
        gained = False
        for a in used[np.argsort(fill, kind="stable")].tolist():
            tasks = np.flatnonzero(state.assign == a)
            tasks = tasks[np.argsort(-size[tasks], kind="stable")]
            if not budget.affords(QUICK_TEST_S + 2 * len(tasks) * per_task):
                return state.assign
            budget.charge(QUICK_TEST_S)
            if len(tasks) == 0 or not _could_empty(state, a, tasks):
                continue
            budget.charge(2 * len(tasks) * per_task)
            if _empty(state, a, tasks):
                gained = True
                budget.progress()
        if not gained:
            break
    return state.assign
