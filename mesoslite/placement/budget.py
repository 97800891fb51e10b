"""The time budget, kept without reading a clock.

The engine is pure, so it cannot look at a clock.  Instead it keeps an account:
Python work is charged by a cost model (seconds per unit of work, measured on the
2-core benchmark machine and rounded up), and each CP-SAT solve is charged the wall
time the solver itself reports.  A solve is given at most what the account has
left, through CP-SAT's own ``max_time_in_seconds``.

Only ``SAFETY`` of ``time_limit_s`` may be spent; the rest absorbs estimation error
and the solver's own overshoot, so answers come within the limit.
"""

from __future__ import annotations

SAFETY = 0.75

# Cost model, seconds (measured on the 2-core benchmark machine, then rounded up).
FIXED = 0.005  # bounds, result assembly
PER_TASK_COMPILE = 2e-5  # arrays, groups
PER_CELL_COMPILE = 1e-8  # per task x agent: the eligibility matrix
PER_GROUP_AGENT_COMPILE = 1e-7  # per constrained group x agent: static filters
PER_TASK_GREEDY = 5e-5  # one item-centric heuristic, per task ...
PER_CELL_GREEDY = 2e-8  # ... and per task x agent
BIN_CENTRIC_FACTOR = 1 / 800  # dot product costs (1 + T * this) times as much
PER_TASK_FINISH = 3e-5  # final fill pass, ports, result assembly
PER_CELL_EXPLAIN = 2e-6  # per unplaced task x agent
PER_RULE_CLASSES = 2e-8  # per rule x agent: exchangeable agents
PER_PAIR_MODEL = 3e-6  # per candidate pair: variables, constraints, decoding
PER_CONSTRAINT_MODEL = 1.5e-5  # per constraint row written
PER_WINDOW_TASK = 2e-6  # per task of the problem, per window (slices, counts, scores)
SOLVER_START = 0.01  # CP-SAT start-up and teardown beyond its reported wall time


class Budget:
    """Seconds left of ``SAFETY * limit``, charged by estimate or by measurement."""

    def __init__(self, limit_s: float) -> None:
        self.total = SAFETY * limit_s
        self.spent = 0.0

    def charge(self, seconds: float) -> None:
        self.spent += max(0.0, seconds)

    @property
    def left(self) -> float:
        return self.total - self.spent

    def affords(self, seconds: float) -> bool:
        return self.left >= seconds
