"""The soak's invariant checkers: pure functions (and one stateful class) over what the
harness observed.  No I/O and no clock: times are passed in.  Each returns the
violations it found (``report.Violation``); none quotes a secret value.
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from frameworks.batch.cron import fire_times
from mesoslite.testing.soak.report import Violation, percentiles

EPS = 1e-9
# A services task id: the app's path with "/" as "_", a dot, 32 hex digits
# (frameworks/services/taskspec.py: new_task_id).
_SERVICES_TASK = re.compile(r"^([^.]+)\.[0-9a-f]{32}$")


# ------------------------------------------------------------------ live copies


def app_of(task_id: str) -> str | None:
    """The services app a task id belongs to ("soak_web.<hex>" -> "/soak/web"), or
    None for any other task (a batch attempt's id has several dots).  App ids with
    "_" in a segment cannot be told apart from nesting; the soak's apps have none."""
    match = _SERVICES_TASK.match(task_id)
    return "/" + match.group(1).replace("_", "/") if match else None


def allowed_copies(instances_before: int | None, instances: int,
                   minimum_health_capacity: float, maximum_over_capacity: float,
                   deploying: bool) -> int:
    """The most live copies an app may have: its instance count at rest; during a
    deployment the ceiling of ``frameworks/services/deployments.floor_and_ceiling``
    (over the new count), and never less than the count it had before (a scale-down
    kills the extra tasks one by one)."""
    if not deploying:
        return instances
    floor = math.ceil(instances * minimum_health_capacity - EPS)
    ceiling = math.floor(instances * (1 + maximum_over_capacity) + EPS)
    if instances > 0 and floor >= ceiling:
        ceiling = floor + 1
    return max(ceiling, instances_before or 0, instances)


@dataclass
class _Episode:
    first: float
    last: float
    worst: int
    reported: bool = False


@dataclass
class CopiesChecker:
    """No task live twice and no app above its limit, except, for ``grace`` seconds
    after an agent's cut healed, the copies on that agent (the framework replaced
    them while the agent was cut off; they must be killed once it is back).

    A persisting excess is one episode: reported once, when first seen past the
    rules, with its first and last sighting updated until ``finish``."""

    grace: float = 30.0
    episodes: dict[str, _Episode] = field(default_factory=dict)
    _found: list[Violation] = field(default_factory=list)

    def observe(self, now: float, copies: dict[str, set[str]], limits: dict[str, int],
                cut: set[str], healed: dict[str, float]) -> list[Violation]:
        counted: dict[str, list[str]] = {}  # task -> agents where it counts now
        for agent, tasks in copies.items():
            if agent in cut or now - healed.get(agent, -math.inf) < self.grace:
                continue
            for task in tasks:
                counted.setdefault(task, []).append(agent)
        problems: dict[str, tuple[int, dict[str, Any]]] = {}
        per_app: Counter[str] = Counter()
        for task, agents in counted.items():
            app = app_of(task)
            if app is None:
                continue
            per_app[app] += len(agents)
            if len(agents) > 1:
                problems[f"task {task}"] = (len(agents), {"task": task, "agents": sorted(agents)})
        for app, count in per_app.items():
            limit = limits.get(app, 0)
            if count > limit:
                problems[f"app {app}"] = (count, {"app": app, "live": count, "limit": limit})
        found = []
        for key, (n, details) in problems.items():
            episode = self.episodes.get(key)
            if episode is None or now - episode.last > 3 * max(self.grace, 1.0):
                episode = self.episodes[key] = _Episode(now, now, n)
            episode.last, episode.worst = now, max(episode.worst, n)
            if not episode.reported:
                episode.reported = True
                what = ("live on several agents" if key.startswith("task")
                        else "more live copies than its upgrade strategy allows")
                found.append(Violation("live-copies", now, f"{key}: {what} ({n})",
                                       {**details, "first_seen": episode.first}))
        self._found.extend(found)
        return found

    def finish(self) -> list[Violation]:
        """The episodes' last sightings, for the record (no new violations)."""
        return []


# ------------------------------------------------------------------ batch


_STARTED_FOR_SURE = {"FINISHED"}  # its command ran to the end: its first line is written


def check_exactly_once(side_ids: list[str], attempts: list[dict[str, Any]]
                       ) -> list[Violation]:
    """Every batch attempt ran at most once, and the store knows every one that ran.

    ``side_ids``: the attempt ids the tasks appended to the side file as their first
    command; ``attempts``: the batch store's attempt documents (id, run_id, step,
    index, state).  Violations: an id twice in the file (a task ran twice); an id the
    store does not know; a FINISHED attempt missing from the file; two FINISHED
    attempts of one (run, step, index).  RUNNING, FAILED or KILLED attempts may have
    been stopped before their first line, and LOST ones may or may not have run
    (batch is not partition-aware), so they are not required in the file."""
    found = []
    known = {a["id"]: a for a in attempts}
    for attempt_id, n in Counter(side_ids).items():
        if n > 1:
            found.append(Violation("exactly-once", 0.0, f"attempt {attempt_id} ran {n} times",
                                   {"attempt": attempt_id, "runs": n}))
        if attempt_id not in known:
            found.append(Violation("exactly-once", 0.0,
                                   f"attempt {attempt_id} ran but the store does not know it",
                                   {"attempt": attempt_id}))
    written = set(side_ids)
    finished: Counter[tuple[str, str, int]] = Counter()
    for a in attempts:
        if a.get("state") in _STARTED_FOR_SURE and a["id"] not in written:
            found.append(Violation("exactly-once", 0.0,
                                   f"attempt {a['id']} FINISHED without having run",
                                   {"attempt": a["id"]}))
        if a.get("state") == "FINISHED":
            finished[(a["run_id"], a["step"], a["index"])] += 1
    for (run, step, index), n in finished.items():
        if n > 1:
            found.append(Violation("exactly-once", 0.0,
                                   f"task {index} of step {step} of run {run} finished {n} times",
                                   {"run": run, "step": step, "index": index}))
    return found


_COLLAPSED = re.compile(r"^missed: (at least )?(\d+) earlier fire times? collapsed")


@dataclass(frozen=True)
class CronResult:
    violations: list[Violation]
    unverifiable: int  # ticks older than every skip entry kept, neither run nor skipped
    ticks: int


def check_cron(expr: str, tz: str, created_at: float, until: float,
               runs: list[dict[str, Any]], skips: list[dict[str, Any]], schedule_id: str,
               kept: int = 20) -> CronResult:
    """Every fire time in ``(created_at, until]`` was either run (a run whose trigger
    is ``schedule:<schedule_id>`` and ``scheduled_for`` that time) or recorded as
    skipped.  A collapsed entry ("missed: N earlier fire times collapsed into the
    latest") covers the N fire times ending at its own.  Only the last ``kept`` skip
    entries are stored: when the list is full, ticks before its oldest entry that
    were not run cannot be verified and are counted, not reported."""
    ticks = fire_times(expr, tz, created_at, until)
    ran = {round(float(r["scheduled_for"]), 3) for r in runs
           if r.get("trigger") == f"schedule:{schedule_id}" and r.get("scheduled_for")}
    mine = [s for s in skips if s.get("schedule", schedule_id) == schedule_id]
    covered: set[float] = set()
    for entry in mine:
        at = round(float(entry["fire_time"]), 3)
        match = _COLLAPSED.match(entry.get("reason", ""))
        count = int(match.group(2)) if match else 1
        if match and match.group(1):  # "at least N": everything before it too
            covered |= {round(t, 3) for t in ticks if t <= at + EPS}
        else:
            earlier = [round(t, 3) for t in ticks if t <= at + EPS]
            covered |= set(earlier[-count:]) | {at}
    oldest = min((float(s["fire_time"]) for s in mine), default=math.inf)
    full = len(skips) >= kept
    found, unverifiable = [], 0
    for t in ticks:
        key = round(t, 3)
        if key in ran or key in covered:
            continue
        if full and t < oldest:
            unverifiable += 1
            continue
        found.append(Violation("cron", t, f"cron tick at {t:.0f} neither run nor recorded "
                               "as missed", {"fire_time": t, "schedule": schedule_id}))
    return CronResult(found, unverifiable, len(ticks))


# ------------------------------------------------------------------ HTTP answers


@dataclass(frozen=True)
class HttpRecord:
    """One answer the harness got: ``component`` is master, services, batch, lb or
    agent."""

    at: float
    component: str
    method: str
    url: str
    status: int


def check_http(records: list[HttpRecord], windows: list[tuple[float, float, str]],
               slack: float = 15.0) -> list[Violation]:
    """No 5xx, except a master's 503 (no leader elected yet) while a fault on the
    masters or the database is active, or ``slack`` s after it ends."""
    excused = [(a, b + slack) for a, b, what in windows if what in ("master", "postgres")]
    found = []
    for r in records:
        if r.status < 500:
            continue
        if r.component == "master" and r.status == 503 and any(
                a <= r.at <= b for a, b in excused):
            continue
        found.append(Violation("5xx", r.at, f"{r.component} answered {r.status} to "
                               f"{r.method} {r.url}", {"status": r.status}))
    return found


# ------------------------------------------------------------------ secrets


def _forms(value: str) -> list[bytes]:
    raw = value.encode()
    forms = {raw}
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        text = enc(raw)
        forms |= {text, text.rstrip(b"=")}
    return sorted(forms)


def scan_for_secrets(chunks: Iterable[tuple[str, bytes]], values: list[str]
                     ) -> list[Violation]:
    """Each place (a file, an answer) holding a secret value, raw or in base64
    (standard or URL-safe, with or without padding).  The violation names the place
    and the value's index, never the value."""
    patterns = [(i, form) for i, v in enumerate(values) for form in _forms(v)]
    found = []
    for where, content in chunks:
        hits = sorted({i for i, form in patterns if form in content})
        if hits:
            found.append(Violation("secret-leak", 0.0, f"{where} holds secret value(s) "
                                   f"#{', #'.join(map(str, hits))}",
                                   {"where": where, "values": hits}))
    return found


# ------------------------------------------------------------------ load balancer


def lb_figures(samples: list[tuple[float, bool, bool, bool]]) -> dict[str, Any]:
    """From client samples (time, ok, during a rolling upgrade, during a fault):
    error rates and recovery times (first failure after a success -> next success)."""
    def rate(rows: list[tuple[float, bool, bool, bool]]) -> str:
        if not rows:
            return "n/a"
        bad = sum(1 for r in rows if not r[1])
        return f"{100.0 * bad / len(rows):.2f}% of {len(rows)}"

    recoveries = []
    failing_since: float | None = None
    for at, ok, _, _ in sorted(samples):
        if not ok and failing_since is None:
            failing_since = at
        elif ok and failing_since is not None:
            recoveries.append(at - failing_since)
            failing_since = None
    rec = percentiles(recoveries)
    return {
        "errors": rate(samples),
        "errors during upgrades without faults": rate(
            [s for s in samples if s[2] and not s[3]]),
        "errors during faults": rate([s for s in samples if s[3]]),
        "recovery p50/p99/max": f"{rec['p50']:.1f}/{rec['p99']:.1f}/{rec['max']:.1f} s "
                                f"over {len(recoveries)}",
    }
