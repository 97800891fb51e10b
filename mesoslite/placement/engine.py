"""``place(problem) -> Placement``: greedy start, improvement, explanations.

1. compile the problem to arrays (``instance``) and run the greedy heuristics
   (``greedy``); their best answer is the start, and the baseline.  If it places
   every task on as many agents as the lower bound (``bounds``) it is optimal and
   returned at once, without CP-SAT;
2. if tasks are left out, place what could go somewhere (``repair``): greedy
   priority restarts, then small targeted CP-SAT models around each unplaced
   task, then the whole problem with every such task required (``whole``);
3. improve, until the answer meets the lower bound, a step proves it optimal, the
   budget runs out, or the search stalls (``budget``: it may go on for as long
   again as it took to reach the last gain, so a search finding nothing stops
   after a few tens of milliseconds while one that keeps finding better answers
   uses the budget).  For binpack: bin elimination (``local``, emptying agents
   into the room of others), windows of a few agents (``decompose``), then the
   whole problem when its model is small enough (exchangeable agents merged,
   ``symmetry``), in rounds, which can prove the answer optimal.  A tiny whole
   problem goes first and gets a fixed allowance: CP-SAT proves most in
   milliseconds;
4. fill any room left, explain every unplaced task (``explain``) and hand out
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
from .local import eliminate
from .model import Problem
from .ports import assign_ports
from .repair import repair, restarts
from .result import Placement
from .whole import MIN_SOLVE_S, Outcome, placeable, whole_problem

WHOLE_FIRST_PAIRS = 500  # tasks x agents used up to which the whole problem goes first
TINY_PROOF_S = 0.05  # ... and may search this long whatever the stall horizon says


def _search(inst: Instance, start: np.ndarray, budget: Budget, floor: int) -> Outcome:
    """Improve ``start``; see the module docstring for the order of the steps."""
    workers = _workers(inst.problem)
    outcome = Outcome(start)
    if (start < 0).any():  # first place what could go somewhere
        outcome = _place_more(inst, start, budget, workers)
        if outcome.proven:
            return outcome
    budget.progress()  # the stall horizon starts (see ``budget``)
    # A tiny whole problem is searched first (it often proves the optimum at once);
    # otherwise the cheap local moves and windows, which find most gains quickly.
    tiny = inst.n_tasks * min(inst.n_agents, agents_used(outcome.assign)) <= WHOLE_FIRST_PAIRS
    if tiny:  # CP-SAT proves most tiny problems in a few tens of milliseconds
        budget.allow(TINY_PROOF_S)
    steps = (_whole_rounds, _eliminate, _windows) if tiny else \
        (_eliminate, _windows, _whole_rounds)
    for step in steps:
        if outcome.proven or _meets(inst, outcome.assign, floor):
            break
        outcome = _merge(step(inst, outcome.assign, budget, workers, floor), outcome)
    return outcome


def _eliminate(inst: Instance, assign: np.ndarray, budget: Budget, workers: int,
               floor: int) -> Outcome:
    # Unconstrained first fit leaves no hole an agent's tasks could move into (none
    # was seen on the unconstrained families); constraints do.
    if inst.problem.objective != "binpack" or not any(g.constraints for g in inst.groups):
        return Outcome(assign)
    better = eliminate(inst, assign, budget)
    return Outcome(better, solved=bool((better != assign).any()))


def _windows(inst: Instance, assign: np.ndarray, budget: Budget, workers: int,
             floor: int) -> Outcome:
    assign, ms = improve_in_windows(inst, assign, budget, inst.problem.seed, floor)
    return Outcome(assign, ms, solved=ms > 0)


def _whole_rounds(inst: Instance, assign: np.ndarray, budget: Budget, workers: int,
                  floor: int) -> Outcome:
    """The whole problem, in rounds: each better answer moves the stall horizon out."""
    outcome = Outcome(assign)
    while not _meets(inst, assign, floor):
        whole = whole_problem(inst, assign, budget, workers)
        if whole is None:
            break
        better = quality(inst, whole.assign) < quality(inst, assign)
        outcome = _merge(whole, outcome)
        assign = outcome.assign
        if whole.proven or not better:
            break
        budget.progress()
    return outcome


def _place_more(inst: Instance, start: np.ndarray, budget: Budget, workers: int) -> Outcome:
    """Priority restarts and targeted repair models for the unplaced units, then, for
    those still out, the whole problem with every task that could go somewhere
    placed (when small).  See ``repair``."""
    assign, ms = restarts(inst, start, budget), 0.0
    if ((assign < 0) & placeable(inst)).any():
        assign, ms = repair(inst, assign, budget, inst.problem.seed)
    outcome = Outcome(assign, ms, solved=bool((assign != start).any()))
    if ((assign < 0) & placeable(inst)).any():
        whole = whole_problem(inst, assign, budget, workers, repair=True)
        if whole is not None:
            outcome = _merge(whole, outcome)
    return outcome


def _merge(last: Outcome, before: Outcome) -> Outcome:
    """``last`` (a search that started from ``before``'s answer), with the solver
    time and "the solver changed something" of both."""
    last.solve_ms += before.solve_ms
    last.solved = last.solved or before.solved
    if last.bound is None:
        last.bound, last.bound_placed = before.bound, before.bound_placed
    if last.complete is None:
        last.complete = before.complete
    return last


def _meets(inst: Instance, assign: np.ndarray, floor: int) -> bool:
    """Every task placed on ``floor`` (a lower bound) agents: nothing can be better."""
    return inst.problem.objective == "binpack" and bool((assign >= 0).all()) \
        and agents_used(assign) <= floor


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
    g_placed = int((start >= 0).sum())
    # Explanations come last; reserve their cost now (the answer never has more
    # unplaced tasks than the start).
    budget.charge(cost.PER_CELL_EXPLAIN * (inst.n_tasks - g_placed) * inst.n_agents
                  + cost.PER_WINDOW_TASK * inst.n_tasks)
    outcome = Outcome(start)
    if _meets(inst, start, floor):
        outcome.proven = True  # the greedy answer meets the lower bound: no search
    elif inst.n_tasks and inst.n_agents and budget.affords(MIN_SOLVE_S):
        outcome = _search(inst, start, budget, floor)
    assign = outcome.assign
    if outcome.solved and (assign < 0).any():
        assign = fill(inst, assign)
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


def _all_placeable(inst: Instance, assign: np.ndarray, outcome: Outcome,
                   status: str) -> bool | None:
    """Does an answer placing every task exist?  True: this one.  False: proven (a
    task fits no agent, a whole-problem repair was infeasible, or an answer
    placing fewer is optimal).  None: unknown."""
    if (assign >= 0).all():
        return True
    if not placeable(inst).all() or outcome.complete is False or status == "optimal":
        return False
    return None


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
        all_placeable=_all_placeable(inst, assign, outcome, status),
        why={ids[t]: r for t, r in why.items()},
    )
