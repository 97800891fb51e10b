"""The engine's answer: ``Placement``, and ``Rejection`` (one counted reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STATUSES = ("optimal", "feasible", "greedy")


@dataclass(frozen=True)
class Rejection:
    """Why a task could not go to ``agents`` agents: one reason, a detail, a count."""

    reason: str
    detail: str
    agents: int

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class Placement:
    """The engine's answer.

    ``lower_bound``: no placement that places as many tasks uses fewer agents.
    ``status``: ``optimal`` (proven), ``feasible`` (from the solver, not proven) or
    ``greedy`` (the heuristic's answer).  ``solve_ms`` is the solver's own
    measurement of its search; callers time the whole call themselves.
    ``all_placeable``: whether an answer placing every task exists: True (this
    answer places every task; where the greedy start left some out, the repair
    found room for them), False (proven impossible: a task fits no agent, CP-SAT
    proved the tasks cannot all go at once, or this answer is optimal), None
    (unknown: the search ended first).
    """

    assignments: dict[str, str]
    ports: dict[str, list[int]]
    unplaced: dict[str, str]
    agents_used: int
    lower_bound: int
    greedy_agents_used: int
    solve_ms: float
    status: str
    greedy_placed: int = 0
    all_placeable: bool | None = None
    why: dict[str, tuple[Rejection, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``mesoslite pack`` output document."""
        return {
            "assignments": dict(self.assignments),
            "ports": {k: list(v) for k, v in self.ports.items()},
            "unplaced": dict(self.unplaced),
            "agents_used": self.agents_used,
            "lower_bound": self.lower_bound,
            "greedy_agents_used": self.greedy_agents_used,
            "greedy_placed": self.greedy_placed,
            "all_placeable": self.all_placeable,
            "solve_ms": round(self.solve_ms, 3),
            "status": self.status,
        }
