"""``place(problem) -> Placement``: greedy start, CP-SAT improvement, explanations.

1. compile the problem to arrays (``instance``) and run the greedy heuristics
   (``greedy``); their best answer is the start, and the baseline;
2. if the start does not meet the lower bound, CP-SAT looks for better answers:
   if tasks are left out, a whole-problem model that must place every task that
   could go somewhere (``whole``; hard constraints find tight packings that a
   "place as many as you can" objective misses); for binpack, windows of a few
   agents (``decompose``), which find most gains quickly at any size; then, with
   what is left of the budget, the whole problem when its model is small enough
   (exchangeable agents merged, ``symmetry``), which can prove the answer optimal;
3. fill any room left, explain every unplaced task (``explain``) and hand out
   port numbers (``ports``).

The function is pure: no I/O, no clock (the budget is an account, see ``budget``),
and seeded.  The answer is never worse than the start (``instance.quality``).
"""

from __future__ import annotations

import os

import numpy as np

from . import budget as cost
from .bounds import agent_lower_bound
from .budget import Budget
from .decompose import improve_in_windows
from .explain import explain, render
from .greedy import fill, greedy
from .instance import Instance, agents_used, build_instance, quality
from .model import Problem
from .ports import assign_ports
from .result import Placement
from .whole import MIN_SOLVE_S, Outcome, whole_problem


def _search(inst: Instance, start: np.ndarray, budget: Budget, floor: int) -> Outcome:
    """Improve ``start``; see the module docstring for the order of the steps."""
    workers = _workers(inst.problem)
    ms, solved = 0.0, False
    if (start < 0).any():  # first try to place everything that could go somewhere
        repaired = whole_problem(inst, start, budget, workers, repair=True)
        if repaired is not None:
            if repaired.proven:
                return repaired
            start, ms, solved = repaired.assign, repaired.solve_ms, repaired.solved
    if inst.problem.objective == "binpack":
        start, window_ms = improve_in_windows(inst, start, budget, inst.problem.seed, floor)
        ms += window_ms
    outcome = whole_problem(inst, start, budget, workers) or Outcome(start)
    outcome.solve_ms += ms
    outcome.solved = outcome.solved or solved or ms > 0
    return outcome


def _workers(problem: Problem) -> int:
    if problem.workers:
        return problem.workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def place(problem: Problem) -> Placement:
    """Assign ``problem.tasks`` to agents (see the module docstring and ``Placement``)."""
    budget = Budget(problem.time_limit_s)
    inst = build_instance(problem)
    constrained = sum(1 for g in inst.groups if g.constraints)
    budget.charge(cost.FIXED + cost.PER_TASK_COMPILE * inst.n_tasks
                  + cost.PER_CELL_COMPILE * inst.n_tasks * inst.n_agents
                  + cost.PER_GROUP_AGENT_COMPILE * constrained * inst.n_agents
                  + cost.PER_TASK_FINISH * inst.n_tasks)
    floor = agent_lower_bound(inst, inst.n_tasks) if problem.objective == "binpack" else 0
    start = greedy(inst, budget, floor).assign
    g_used, g_placed = agents_used(start), int((start >= 0).sum())
    # Explanations come last; reserve their cost now (the answer never has more
    # unplaced tasks than the start).
    budget.charge(cost.PER_CELL_EXPLAIN * (inst.n_tasks - g_placed) * inst.n_agents
                  + cost.PER_WINDOW_TASK * inst.n_tasks)
    outcome = Outcome(start)
    if g_placed == inst.n_tasks and problem.objective == "binpack" and g_used <= floor:
        outcome.proven = True  # the greedy answer meets the lower bound
    elif inst.n_tasks and inst.n_agents and budget.affords(MIN_SOLVE_S):
        outcome = _search(inst, start, budget, floor)
    assign = fill(inst, outcome.assign) if outcome.solved else outcome.assign
    if quality(inst, assign) > quality(inst, start):
        assign, outcome = start, Outcome(start)  # never worse (cannot happen; cheap to keep)
    placed = int((assign >= 0).sum())
    bound = agent_lower_bound(inst, placed)
    if outcome.bound is not None and placed == outcome.bound_placed:
        bound = max(bound, outcome.bound)
    used = agents_used(assign)
    proven = outcome.proven and outcome.bound_placed in (-1, placed)
    if problem.objective == "binpack" and placed == inst.n_tasks and used <= bound:
        proven = True
    # "greedy": the answer is as good as the start, so the heuristic could have given it.
    improved = quality(inst, assign) < quality(inst, start)
    status = "optimal" if proven else ("feasible" if improved else "greedy")
    return _placement(inst, assign, start, bound, outcome, status)


def _placement(inst: Instance, assign: np.ndarray, start: np.ndarray, bound: int,
               outcome: Outcome, status: str) -> Placement:
    ids = [t.id for t in inst.problem.tasks]
    agent_ids = [a.id for a in inst.problem.agents]
    why = explain(inst, assign, status == "optimal")
    return Placement(
        assignments={ids[t]: agent_ids[assign[t]] for t in np.flatnonzero(assign >= 0)},
        ports={ids[t]: p for t, p in assign_ports(
            [a.ports for a in inst.problem.agents], [t.ports for t in inst.problem.tasks],
            assign).items()},
        unplaced={ids[t]: render(r) for t, r in why.items()},
        agents_used=agents_used(assign),
        lower_bound=int(bound),
        greedy_agents_used=agents_used(start),
        solve_ms=float(outcome.solve_ms),
        status=status,
        greedy_placed=int((start >= 0).sum()),
        why={ids[t]: r for t, r in why.items()},
    )
