"""The placement engine: which pending tasks go to which agents.

A pure function (no I/O, no clock, seeded)::

    from mesoslite.placement import Agent, Problem, Task, place
    answer = place(Problem(agents=[...], tasks=[...], objective="binpack"))
    answer.assignments, answer.ports, answer.unplaced, answer.status

Greedy heuristics give a feasible start, CP-SAT improves it within the time budget,
and every unplaced task gets its reasons counted by cause.  See docs/placement.md.
"""

from .engine import place
from .model import Agent, Constraint, PlacementInputError, Problem, Running, Task
from .parse import problem_from_json, problem_to_json
from .reasons import Reason
from .result import Placement, Rejection

__all__ = [
    "Agent",
    "Constraint",
    "Placement",
    "PlacementInputError",
    "Problem",
    "Reason",
    "Rejection",
    "Running",
    "Task",
    "place",
    "problem_from_json",
    "problem_to_json",
]
