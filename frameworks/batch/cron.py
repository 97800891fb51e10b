"""Cron schedules, pure: time is a parameter, nothing reads a clock.

Expressions are standard 5-field cron (``minute hour day-of-month month day-of-week``)
or the macros ``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``,
evaluated in the schedule's IANA time zone (so ``0 9 * * *`` in ``Europe/Berlin``
fires at 09:00 local time on both sides of a daylight-saving change; a local time that
does not exist that day fires at the first instant after the gap, one that occurs
twice fires once).  Evaluation is croniter's.

``decide`` is the whole policy.  A schedule keeps a *cursor*: the last fire time
already dealt with (persisted by the caller).  Every fire time between the cursor and
now is due; only the latest may start a run, so a framework that was down for a day
starts at most one run per schedule when it comes back, not a burst (the others are
reported as missed, as Kubernetes' CronJob does).  That run starts only if it is no
more than ``starting_deadline_seconds`` late, and according to the
``concurrency_policy`` when a run of the job is still active: ALLOW starts it anyway,
FORBID skips it, REPLACE cancels the active runs and starts it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from frameworks.batch.model import ScheduleSpec

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MAX_MISSED_COUNTED = 1000  # beyond this, missed fire times are reported as "at least"


class CronError(ValueError):
    """An expression that cannot be a schedule (the message says why)."""


def validate_cron(expr: str) -> None:
    """Raise ``CronError`` unless ``expr`` is a 5-field expression or macro that fires."""
    text = expr.strip()
    if not text.startswith("@") and len(text.split()) != 5:
        raise CronError("must have 5 fields (minute hour day-of-month month day-of-week) "
                        "or be a macro such as @daily")
    if text.startswith("@") and text.lower() not in MACROS:
        raise CronError(f"unknown macro; use one of {', '.join(MACROS)}")
    try:
        croniter(text, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).get_next(float)
    except CroniterBadDateError:
        raise CronError("never fires (no such date)") from None
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise CronError(f"invalid cron expression: {exc}") from None


@lru_cache(maxsize=256)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def next_fire(expr: str, tz: str, after: float) -> float:
    """The first fire time strictly after ``after`` (epoch seconds)."""
    start = dt.datetime.fromtimestamp(after, _zone(tz))
    return float(croniter(expr.strip(), start).get_next(float))


def latest_fire(expr: str, tz: str, at: float) -> float:
    """The last fire time at or before ``at``."""
    # croniter's get_prev is strictly before its start; nudge past ``at`` so a fire
    # time exactly at ``at`` counts.
    start = dt.datetime.fromtimestamp(at + 0.0005, _zone(tz))
    return float(croniter(expr.strip(), start).get_prev(float))


def fire_times(expr: str, tz: str, after: float, until: float, limit: int = 10_000
               ) -> list[float]:
    """Fire times in ``(after, until]``, at most ``limit`` of them, in order."""
    out: list[float] = []
    start = dt.datetime.fromtimestamp(after, _zone(tz))
    it = croniter(expr.strip(), start)
    while len(out) < limit:
        t = float(it.get_next(float))
        if t > until:
            break
        out.append(t)
    return out


@dataclass(frozen=True)
class CronDecision:
    """What to do for one schedule now.

    ``start``: the fire time of the run to start (None: start nothing).
    ``replace``: cancel the job's active runs first.  ``skipped``: fire times that
    start nothing, with why (missed ones are collapsed into one entry with a count).
    ``cursor``: the new cursor to persist.  ``next_fire``: the next fire time after now.
    """

    start: float | None
    replace: bool
    skipped: tuple[tuple[float, str], ...]
    cursor: float
    next_fire: float


def decide(schedule: ScheduleSpec, cursor: float, now: float, active_runs: int
           ) -> CronDecision:
    """The decision for ``schedule`` at ``now`` (see the module docstring)."""
    expr, tz = schedule.cron, schedule.timezone
    upcoming = next_fire(expr, tz, max(cursor, now))
    if not schedule.enabled:
        return CronDecision(None, False, (), max(cursor, now), upcoming)
    latest = latest_fire(expr, tz, now)
    if latest <= cursor:
        return CronDecision(None, False, (), cursor, upcoming)
    skipped: list[tuple[float, str]] = []
    earlier = fire_times(expr, tz, cursor, latest, MAX_MISSED_COUNTED + 1)[:-1]
    if earlier:
        count = len(earlier)
        more = "at least " if count >= MAX_MISSED_COUNTED else ""
        plural = "s" if count > 1 else ""
        why = f"missed: {more}{count} earlier fire time{plural} collapsed into the latest"
        skipped.append((earlier[-1], why))
    deadline = schedule.starting_deadline_seconds
    if deadline is not None and now - latest > deadline:
        late = f"{now - latest:.0f}s late, deadline {deadline:g}s"
        skipped.append((latest, f"missed its starting deadline ({late})"))
        return CronDecision(None, False, tuple(skipped), latest, upcoming)
    if active_runs and schedule.concurrency_policy == "FORBID":
        skipped.append((latest, "FORBID: a run of this job is still active"))
        return CronDecision(None, False, tuple(skipped), latest, upcoming)
    replace = bool(active_runs) and schedule.concurrency_policy == "REPLACE"
    return CronDecision(latest, replace, tuple(skipped), latest, upcoming)
