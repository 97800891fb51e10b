"""The time budget, kept without reading a clock.

The engine is pure, so it cannot look at a clock.  Instead it keeps an account:
Python work is charged by a cost model (seconds per unit of work, measured on the
2-core benchmark machine and rounded up), and each CP-SAT solve is charged the wall
time the solver itself reports.  A solve is given at most what the account has
left, through CP-SAT's own ``max_time_in_seconds``.

Only ``SAFETY`` of ``time_limit_s`` may be spent; the rest absorbs estimation error
and the solver's own overshoot, so answers come within the limit.

Improvement stops early when it stalls: once the search starts (``progress``), it
may go on for as long again as it took to reach the last gain (``STALL_RATIO``
times what was spent then, at least ``STALL_MIN_S``); each gain pushes this
*horizon* out.  Searches that keep finding better answers thus use the budget,
while one that finds nothing stops after a small multiple of what the start cost
(a few tens of milliseconds at 100 tasks x 100 agents).
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

STALL_RATIO = 1.0  # search on for this many times the effort that led to the last gain ...
STALL_MIN_S = 0.02  # ... and at least this long


class Budget:
    """Seconds left of ``SAFETY * limit``, charged by estimate or by measurement.

    ``left`` counts up to the stall horizon once ``progress`` has set one (see the
    module docstring); ``horizon`` is None before.
    """

    def __init__(self, limit_s: float) -> None:
        self.total = SAFETY * limit_s
        self.spent = 0.0
        self.horizon: float | None = None
        self.gains = 0  # progress calls after the first: improvements found

    def charge(self, seconds: float) -> None:
        self.spent += max(0.0, seconds)

    def progress(self) -> None:
        """The search starts, or just improved: it may go on as long again."""
        if self.horizon is not None:
            self.gains += 1
        self.horizon = self.spent + max(STALL_MIN_S, STALL_RATIO * self.spent)

    def allow(self, seconds: float) -> None:
        """Let the search go on for at least ``seconds`` more (a step known to pay)."""
        if self.horizon is not None:
            self.horizon = max(self.horizon, self.spent + seconds)

    @property
    def stalled(self) -> bool:
        """The horizon, not the time limit, is what ends the search now."""
        return self.horizon is not None and self.horizon < self.total

    @property
    def left(self) -> float:
        end = self.total if self.horizon is None else min(self.total, self.horizon)
        return end - self.spent

    def affords(self, seconds: float) -> bool:
        return self.left >= seconds
