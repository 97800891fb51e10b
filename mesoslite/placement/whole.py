"""CP-SAT on the whole problem, when its model is small enough to search.

Two uses:

* *improve* (default): answers strictly better than the start, with exchangeable
  agents merged (``symmetry``).  OPTIMAL proves the answer optimal, INFEASIBLE
  proves the start optimal; either way the status is ``optimal``.
* *repair*: when the cheaper repairs (``repair``) still leave tasks out, every
  task that could go somewhere must be placed: a hard constraint and no objective,
  so CP-SAT stops at the first full placement (the later steps improve it).  Tight
  packings that a "place as many as you can" objective does not find in a second
  are often found this way: the hard constraint propagates.  INFEASIBLE proves that
  the tasks cannot all be placed; then the improve step maximises what is placed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import budget as cost
from . import cpsat
from .budget import Budget
from .instance import Instance, agents_used
from .symmetry import restrict

MIN_SOLVE_S = 0.02  # below this CP-SAT cannot do useful work on a mid-size model ...
SOLVE_S_PER_PAIR, TINY_SOLVE_S = 1e-5, 0.002  # ... a small one needs less
FULL_MODEL_PAIRS = 20_000  # beyond, the whole-problem model searches too slowly
REPAIR_SHARE = 0.8  # of the budget left: placing more tasks comes first


@dataclass
class Outcome:
    """A search's answer, with what it proved."""

    assign: np.ndarray
    solve_ms: float = 0.0
    bound: int | None = None  # agents needed by answers placing ``bound_placed`` tasks
    bound_placed: int = -1
    proven: bool = False
    solved: bool = False
    complete: bool | None = None  # False: proven that no answer places every task


def placeable(inst: Instance) -> np.ndarray:
    """Tasks that could go somewhere alone, with every member of their gang."""
    ok = inst.eligible().any(axis=1)
    for gang in inst.gangs:
        ok[gang] = ok[gang].all()
    return ok


def whole_problem(inst: Instance, start: np.ndarray, budget: Budget, workers: int,
                  repair: bool = False) -> Outcome | None:
    """Search the whole problem if its model fits the limits; None when it does not."""
    problem = inst.problem
    binpack = problem.objective == "binpack"
    all_placed = bool((start >= 0).all())
    # A better binpack answer placing as many uses fewer agents of any one class.
    per_class = agents_used(start) if binpack and all_placed and not repair else inst.n_tasks
    # At least min(per_class, agents) agents are kept, and most tasks could go to
    # most of them: far too big, skip the set-up work.
    if inst.n_tasks > FULL_MODEL_PAIRS // 4 or \
            inst.n_tasks * min(per_class, inst.n_agents) > 4 * FULL_MODEL_PAIRS:
        return None
    budget.charge(cost.PER_CELL_COMPILE * inst.n_tasks * inst.n_agents
                  + cost.PER_RULE_CLASSES * len(inst.rules) * inst.n_agents)
    kept, chains, hint = restrict(inst, start, per_class)
    pairs_t, pairs_a = np.nonzero(inst.eligible() & kept[None, :])
    rows = inst.n_tasks + int(kept.sum()) * (len(inst.dims) + 2)
    build = cost.PER_PAIR_MODEL * len(pairs_t) + cost.PER_CONSTRAINT_MODEL * rows
    least = min(MIN_SOLVE_S, max(TINY_SOLVE_S, SOLVE_S_PER_PAIR * len(pairs_t)))
    if len(pairs_t) > FULL_MODEL_PAIRS or not budget.affords(build + cost.SOLVER_START + least):
        return None
    sub = cpsat.SubModel(
        tasks=np.arange(inst.n_tasks),
        pairs_t=pairs_t.astype(np.int64),
        pairs_a=pairs_a.astype(np.int64),
        cap=inst.cap,
        rules=inst.rule_state(),
        hint=hint,
        # When the start placed everything, so must any better answer.
        must_place=placeable(inst) if repair else np.full(inst.n_tasks, all_placed),
        complete=True,
        chains=chains if binpack else [],
        improve=not repair,
        # Repair looks for any full placement: without an objective CP-SAT stops at
        # the first, and the other steps then improve it.
        objective=not repair,
    )
    share = REPAIR_SHARE if repair else 1.0
    time_s = max(least, (budget.left - build - cost.SOLVER_START) * share)
    result = cpsat.solve(inst, sub, time_s, workers, problem.seed)
    budget.charge(cost.PER_PAIR_MODEL * result.n_pairs
                  + cost.PER_CONSTRAINT_MODEL * result.n_constraints
                  + cost.SOLVER_START + result.wall_ms / 1000)
    found = result.status in ("OPTIMAL", "FEASIBLE")
    assign = result.assign if found else start
    return Outcome(
        assign=assign,
        solve_ms=result.wall_ms,
        bound=result.agent_bound,
        bound_placed=int((assign >= 0).sum()),
        # Improving, OPTIMAL: nothing beats the solver's answer; INFEASIBLE: nothing
        # beats the start.  A repair answer is only a full placement.
        proven=not repair and result.status in ("OPTIMAL", "INFEASIBLE"),
        solved=found,
        # Repair, INFEASIBLE: the tasks that could go somewhere cannot all go at once.
        complete=False if repair and result.status == "INFEASIBLE" else None,
    )
