"""What a soak run records: violations of its invariants, a history of what happened,
and the figures it prints.

``Violation`` is what every checker returns; ``History`` keeps every event of the run
(faults, workload actions, observations) with its time, so that the events around a
violation can be dumped for whoever replays the seed.  Nothing here holds a secret
value: checkers name secrets, never quote them.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The invariants (issue 17); a Violation names one of them.
INVARIANTS = (
    "ack-durable",  # an acknowledged status update is not in the framework's store
    "live-copies",  # more live copies of an app's tasks than its upgrade strategy allows
    "exactly-once",  # a batch attempt ran twice, or ran without the store knowing
    "output",  # a finished task's sandbox lacks, repeats or reorders lines it wrote
    "cron",  # a cron tick neither run nor recorded as missed
    "convergence",  # an app or run not back to its target within the bound
    "5xx",  # an API answered 5xx outside the faults that explain it
    "secret-leak",  # a secret value found in a log, a file or an API answer
)


@dataclass(frozen=True)
class Violation:
    """An invariant found broken.  ``at``: ``time.time()`` when it was observed;
    ``message``: one line; ``details``: JSON-able facts (never a secret value)."""

    invariant: str
    at: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.invariant not in INVARIANTS:
            raise ValueError(f"unknown invariant {self.invariant!r}")


@dataclass(frozen=True)
class Event:
    """Something that happened: ``kind`` is "fault", "heal", "action", "observe" or
    "violation"; ``what`` one line; ``data`` JSON-able."""

    at: float
    kind: str
    what: str
    data: dict[str, Any] = field(default_factory=dict)


class History:
    """Every event of a run, in order; ``around`` the ones near a time."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, at: float, kind: str, what: str, **data: Any) -> Event:
        event = Event(at, kind, what, data)
        self.events.append(event)
        return event

    def around(self, at: float, before: float = 60.0, after: float = 10.0) -> list[Event]:
        return [e for e in self.events if at - before <= e.at <= at + after]

    def dump(self, path: Path, at: float | None = None) -> None:
        """Write the events (all, or those around ``at``) as JSON lines."""
        events = self.events if at is None else self.around(at)
        with open(path, "w") as f:
            f.writelines(json.dumps(asdict(event), default=str) + "\n" for event in events)


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of ``values`` (all 0.0 when there are none)."""
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": statistics.median(ordered), "p99": p99, "max": ordered[-1]}


@dataclass
class Report:
    """The figures of a run; ``summary()`` is what the harness prints."""

    seed: int
    duration: float
    faults: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)
    convergence: list[float] = field(default_factory=list)  # seconds, one per recovery
    final_convergence: float | None = None  # after the faults stopped
    lb: dict[str, Any] = field(default_factory=dict)
    lb_by_fault: dict[str, tuple[int, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        conv = percentiles(self.convergence)
        lines = [
            (f"soak: seed {self.seed}, {self.duration:.0f} s of faults; replay with "
            f"`.venv/bin/python benchmarks/soak.py --seed {self.seed} "
            f"--duration {self.duration:.0f}`"),
            "  faults: " + (", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
                            or "none"),
            "  work: " + (", ".join(f"{k} {v}" for k, v in sorted(self.actions.items()))
                          or "none"),
            f"  back to every target after a heal: p50 {conv['p50']:.1f} s, p99 {conv['p99']:.1f} s, "
            f"max {conv['max']:.1f} s over {len(self.convergence)}; after the faults "
            "stopped: " + (f"{self.final_convergence:.1f} s" if self.final_convergence
                           is not None else "not reached"),
        ]
        if self.lb:
            lines.append("  load balancer: " + ", ".join(f"{k} {v}" for k, v in self.lb.items()))
        if self.lb_by_fault:
            lines.append("  load balancer errors by what was going on: " + ", ".join(
                f"{k} {pct:.1f} % of {n}"
                for k, (n, pct) in self.lb_by_fault.items()))
        by_kind = Counter(v.invariant for v in self.violations)
        lines.append(f"  invariant violations: {len(self.violations)}"
                     + (" (" + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())) + ")"
                        if by_kind else ""))
        for v in self.violations[:20]:
            lines.append(f"    [{v.invariant}] {v.message}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)
