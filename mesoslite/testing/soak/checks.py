"""The soak's invariant checkers: pure functions (and one stateful class) over what the
harness observed.  No I/O and no clock: times are passed in.  Each returns the
violations it found (``report.Violation``); none quotes a secret value.

* ``CopiesChecker`` / ``allowed_copies`` / ``app_of``: live copies of services tasks
  (invariant "live-copies");
* ``check_exactly_once``: the batch side file against the batch store ("exactly-once");
* ``check_output``: a finished task's sandbox holds its whole output, each line once
  and in order ("output");
* ``check_cron``: every fire time of a schedule run or recorded as skipped ("cron");
* ``check_http``: no 5xx outside the faults that explain it ("5xx");
* ``scan_for_secrets``: no secret value in a file or an answer ("secret-leak");
* ``lb_figures``: the load balancer clients' error rates and recovery times, and
  ``lb_errors_by_fault``: their error rates by what was going on (figures, not
  violations).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from frameworks.batch.cron import fire_times
from frameworks.batch.state import MAX_SKIPS_KEPT
from frameworks.services.deployments import floor_and_ceiling
from frameworks.services.validation import SEGMENT
from frameworks.services.views import AppView
from mesoslite.testing.soak.report import Violation, percentiles

# ------------------------------------------------------------------ live copies

# frameworks/services/taskspec.py::new_task_id: uuid4().hex after the last dot.
_TASK_SUFFIX = re.compile(r"[0-9a-f]{32}")


def app_of(task_id: str) -> str | None:
    """The services app a task id belongs to, or None when it is no services task id.

    Inverse of ``frameworks/services/taskspec.py::new_task_id`` (``<app path with "/"
    as "_">.<uuid4 hex>``): ``"soak_web.<hex>"`` -> ``"/soak/web"``.  The split is on
    the *last* dot because app id segments may contain dots (``validation.SEGMENT``);
    it is unambiguous because segments never contain ``_``.  A batch attempt id
    (``<run>.<step>.<index>.<number>``) and a pod container's task id end with no
    32-hex suffix and give None."""
    head, dot, tail = task_id.rpartition(".")
    if not dot or not _TASK_SUFFIX.fullmatch(tail):
        return None
    segments = head.split("_")
    if not all(SEGMENT.match(s) for s in segments):
        return None
    return "/" + "/".join(segments)


def allowed_copies(instances_before: int | None, instances: int,
                   minimum_health_capacity: float, maximum_over_capacity: float,
                   deploying: bool, *, old_tasks: bool = True) -> int:
    """The most live copies an app may have right now.

    At rest: ``instances``.  While a deployment holds the app: the ceiling of
    ``frameworks/services/deployments.py::floor_and_ceiling`` for the new count (tasks
    being killed count toward it there, so a copy is live only within it), and never
    less than ``instances_before`` (a scale-down or an upgrade that lowers the count
    starts above the new ceiling and kills its way down).  ``old_tasks``: whether tasks
    of an older configuration may exist (an upgrade or restart; False for a pure
    scale): with them, floor == ceiling allows one extra task, as the framework does.
    Computed by the framework's own function, so the two cannot drift apart."""
    if not deploying:
        return instances
    view = AppView(id="", instances=instances, config_version="",
                   min_health_capacity=minimum_health_capacity,
                   max_over_capacity=maximum_over_capacity)
    _, ceiling = floor_and_ceiling(view, old_tasks)
    return max(ceiling, instances, instances_before or 0)


class CopiesChecker:
    """No services app has more live copies than allowed, and no task is live twice.

    Call ``observe`` with each sample of live copies; ``finish`` at the end.  Rules:

    * a task id live on two agents that are not cut off is a violation (any task:
      ids are never reused, by services or batch);
    * per app (``app_of``), the copies on agents that are not cut off, and not healed
      less than ``grace`` seconds ago, above ``limits[app]`` are a violation.  An app
      missing from ``limits`` allows no copy: the harness keeps a deleted app's last
      limit there while its tasks are being killed.

    Copies on a cut agent do not count (the framework replaced them by design: apps
    are partition-aware).  After the heal they must be gone within ``grace`` seconds;
    until then the whole agent is excused, after that its copies count.  "Cut" is
    whatever makes the master give the agent up: a network cut or its agent process
    being down.

    A persisting excess (same task twice, or same app over) is one *episode*: reported
    once, by the ``observe`` call that first sees it; the returned ``Violation``'s
    ``details`` are then updated in place (``last_seen``, ``worst``, ``sightings``)
    while it lasts, ``ended`` is set by the first observation without it, and
    ``finish`` marks the episodes still open.  A later recurrence is a new episode."""

    def __init__(self, grace: float = 30.0) -> None:
        self.grace = grace
        self.violations: list[Violation] = []  # every episode's, in order
        self._open: dict[tuple[str, str], Violation] = {}

    def observe(self, now: float, copies: dict[str, set[str]], limits: dict[str, int],
                cut: set[str], healed: dict[str, float]) -> list[Violation]:
        """Check one sample.  ``copies``: agent -> task ids with a live process or
        container there; ``limits``: app id -> most copies allowed now
        (``allowed_copies``); ``cut``: agents cut off now; ``healed``: agent -> when
        its last cut ended.  Returns the episodes that start with this sample."""
        counted = {a for a in copies if a not in cut}
        excused = {a for a in counted if now - healed.get(a, float("-inf")) < self.grace}
        where: dict[str, list[str]] = defaultdict(list)  # task -> counted agents
        for agent in sorted(counted):
            for task in copies[agent]:
                where[task].append(agent)
        present: dict[tuple[str, str], tuple[int, str, dict[str, Any]]] = {}
        for task, agents in where.items():
            if len(agents) > 1:
                present[("task", task)] = (
                    len(agents), f"task {task} is live on {len(agents)} agents",
                    {"task": task, "agents": agents})
        live: Counter[str] = Counter()
        on: dict[str, Counter[str]] = defaultdict(Counter)
        spared: Counter[str] = Counter()
        for task, agents in where.items():
            app = app_of(task)
            if app is None:
                continue
            for agent in agents:
                if agent in excused:
                    spared[app] += 1
                else:
                    live[app] += 1
                    on[app][agent] += 1
        for app, n in live.items():
            limit = limits.get(app, 0)
            if n > limit:
                present[("app", app)] = (
                    n, f"app {app} has {n} live copies, its upgrade strategy allows {limit}",
                    {"app": app, "live": n, "limit": limit, "agents": dict(sorted(on[app].items())),
                     "excused_after_heal": spared[app]})
        started = []
        for key, (n, message, details) in present.items():
            v = self._open.get(key)
            if v is None:
                v = Violation("live-copies", now, message,
                              {**details, "first_seen": now, "last_seen": now, "worst": n,
                               "sightings": 1})
                self._open[key] = v
                self.violations.append(v)
                started.append(v)
            else:
                v.details.update(last_seen=now, worst=max(v.details["worst"], n),
                                 sightings=v.details["sightings"] + 1)
        for key in [k for k in self._open if k not in present]:
            self._open.pop(key).details["ended"] = now
        return started

    def finish(self, now: float | None = None) -> list[Violation]:
        """Close the record: episodes still open get ``open_at_finish`` (and
        ``finished_at`` = ``now`` if given) in their details.  Returns the violations
        not returned by ``observe`` yet: none, since each is returned when its episode
        starts (the list is for callers that report what ``finish`` returns)."""
        for v in self._open.values():
            v.details["open_at_finish"] = True
            if now is not None:
                v.details["finished_at"] = now
        return []


# ------------------------------------------------------------------ batch

# The agent's message when a command ended by itself with a status (a signal gives
# "Command terminated with signal ..."; mesoslite/agent/lifecycle.py::outcome, the
# process supervisor and docker_container.termination_from_state).
_EXITED = re.compile(r"^Command exited with status (\d+)$")


def must_have_run(attempt: dict[str, Any], now: float | None = None,
                  settle: float = 2.0) -> bool:
    """Whether a batch attempt certainly ran its command far enough to have appended
    its id to the side file (the command's first action).

    * FINISHED: the command ran to its end and exited 0;
    * FAILED with "Command exited with status N", 1 <= N <= 124: the shell exited by
      itself, so it ran its script from the start.  Not >= 125: Docker's own errors
      (125-127) and deaths by signal (128+N) inside a container look the same;
    * RUNNING, not being killed by the framework, first seen RUNNING at least ``settle``
      seconds before ``now`` (when the store was read): RUNNING is reported once the
      command is exec'd, and a shell runs its first builtin well within that.

    Not required: STARTING (queued before the container is even launched), a FAILED
    or KILLED attempt that may have ended before its first line (launch failures,
    "Killed during launch", a kill right after RUNNING, OOM, signals), LOST and ERROR
    (may or may not have run: batch is not partition-aware)."""
    state = attempt.get("state")
    if state == "FINISHED":
        return True
    if state == "FAILED":
        match = _EXITED.match(attempt.get("message") or "")
        return match is not None and 1 <= int(match.group(1)) <= 124
    if state == "RUNNING" and now is not None:
        started = attempt.get("started_at")
        return (started is not None and attempt.get("kill_reason") is None
                and now - started >= settle)
    return False


def _gang_steps(runs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], bool]:
    out = {}
    for run in runs:
        for step in (run.get("spec") or {}).get("steps", []):
            out[(run["id"], step["name"])] = bool(step.get("gang"))
    return out


def check_exactly_once(side_ids: list[str], attempts: list[dict[str, Any]], *,
                       side_ids_before: list[str] | None = None,
                       runs: list[dict[str, Any]] | None = None,
                       now: float | None = None, settle: float = 2.0) -> list[Violation]:
    """Every batch attempt ran at most once, and the store knows every one that ran.

    ``side_ids``: the attempt ids the tasks appended to the shared side file (one line
    each, written by the command as it starts), read *after* the store; ``attempts``:
    the store's attempt documents (``frameworks/batch/records.py::Attempt.to_json``:
    id, run_id, step, index, number, state, started_at, message, kill_reason ...).
    ``side_ids_before``: the side file read *before* the store (default:
    ``side_ids``, right only when nothing starts meanwhile): an attempt is durable
    (LAUNCHING) before its ACCEPT, so every id written before the store was read must
    be in it, while an id written after may belong to an attempt launched since.
    ``runs``: the store's run documents, to tell gang steps and to check that a
    SUCCEEDED run has a FINISHED attempt for every task.  ``now``: when the store was
    read (enables the RUNNING rule of ``must_have_run``).

    Violations: an id twice in the file (ran twice); an id in the file the store does
    not know; an attempt that ``must_have_run`` missing from the file; two FINISHED
    attempts of one task (run, step, index) - except in a gang step, where a round
    broken by another member runs every member again, so a task may finish once per
    round (without ``runs``, an index that finished in a round where another index
    did not is taken for such a gang); with ``runs``, a SUCCEEDED step (not taken over
    by a rerun) with a task that never FINISHED.  LOST attempts may appear once or not
    at all."""
    found: list[Violation] = []
    known = {a["id"]: a for a in attempts}
    default_at = now if now is not None else 0.0

    def at(a: dict[str, Any] | None) -> float:
        if a is None:
            return default_at
        return a.get("finished_at") or a.get("started_at") or a.get("created_at") or default_at

    for aid, n in sorted(Counter(side_ids).items()):
        if n > 1:
            found.append(Violation("exactly-once", at(known.get(aid)),
                                   f"attempt {aid} ran {n} times (side file)",
                                   {"attempt": aid, "lines": n}))
    for aid in sorted(set(side_ids if side_ids_before is None else side_ids_before)):
        if aid not in known:
            found.append(Violation("exactly-once", default_at,
                                   f"attempt {aid} ran but the store does not know it",
                                   {"attempt": aid}))
    written = set(side_ids)
    for a in attempts:
        if a["id"] not in written and must_have_run(a, now, settle):
            found.append(Violation("exactly-once", at(a),
                                   f"attempt {a['id']} is {a['state']} in the store but "
                                   "never wrote its side-file line",
                                   {"attempt": a["id"], "state": a["state"],
                                    "message": a.get("message", "")}))
    gang = _gang_steps(runs or [])
    by_round: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    finished: dict[tuple[str, str, int], list[dict[str, Any]]] = defaultdict(list)
    for a in attempts:
        by_round[(a["run_id"], a["step"], a["number"])].append(a)
        if a["state"] == "FINISHED":
            finished[(a["run_id"], a["step"], a["index"])].append(a)

    def broken_round(a: dict[str, Any]) -> bool:
        return any(b["state"] != "FINISHED" and b["index"] != a["index"]
                   for b in by_round[(a["run_id"], a["step"], a["number"])])

    for (run, step, index), done in sorted(finished.items()):
        if len(done) < 2:
            continue
        rounds = sorted(done, key=lambda a: a["number"])
        # A gang (or, not knowing, maybe a gang) runs a task again only when its
        # round was broken by another member: every finish but the last must be in
        # such a round.  A step known not to be a gang finishes each task once.
        if gang.get((run, step)) is not False and all(broken_round(a) for a in rounds[:-1]):
            continue
        found.append(Violation("exactly-once", at(done[-1]),
                               f"task {index} of step {step} of run {run} finished "
                               f"{len(done)} times",
                               {"run": run, "step": step, "index": index,
                                "attempts": sorted(a["id"] for a in done)}))
    for run in runs or []:
        if run.get("state") != "SUCCEEDED":
            continue
        records = {s["name"]: s for s in run.get("steps", [])}
        for step in (run.get("spec") or {}).get("steps", []):
            rec = records.get(step["name"], {})
            if rec.get("state") != "SUCCEEDED" or rec.get("reused"):
                continue
            for index in range(int(step.get("completions", 1))):
                if not finished.get((run["id"], step["name"], index)):
                    found.append(Violation(
                        "exactly-once", run.get("finished_at") or default_at,
                        f"run {run['id']} SUCCEEDED but task {index} of step "
                        f"{step['name']} never FINISHED",
                        {"run": run["id"], "step": step["name"], "index": index}))
    return found


# ------------------------------------------------------------------ output


def check_output(finished: Iterable[dict[str, Any]],
                 outputs: Mapping[str, tuple[bytes, bytes] | None],
                 expected: Callable[[str], tuple[bytes, bytes]]) -> list[Violation]:
    """Every FINISHED attempt's sandbox holds exactly the output its command wrote.

    ``finished``: the store's FINISHED attempt documents of a job whose tasks write a
    known output; ``outputs``: the (stdout, stderr) found in each attempt's sandbox,
    None when no sandbox was found; ``expected``: the (stdout, stderr) an attempt id's
    task writes.  A task reports FINISHED only once its output is copied (Docker tasks:
    from the engine's log, resumed across agent restarts), so anything missing,
    repeated or out of order was lost or doubled by the copy."""
    found: list[Violation] = []
    for a in finished:
        aid = a["id"]
        at = a.get("finished_at") or 0.0
        got = outputs.get(aid)
        if got is None:
            found.append(Violation("output", at, f"attempt {aid} FINISHED but its sandbox "
                                   "is nowhere to be found", {"attempt": aid}))
            continue
        for name, want, have in zip(("stdout", "stderr"), expected(aid), got, strict=True):
            if have != want:
                found.append(Violation("output", at, f"attempt {aid} FINISHED but its "
                                       f"{name} is not what it wrote: "
                                       f"{describe_lines(want, have)}",
                                       {"attempt": aid, "stream": name}))
    return found


def describe_lines(want: bytes, have: bytes) -> str:
    """How ``have`` differs from ``want``, line by line, in a few words."""
    wanted, had = want.splitlines(), have.splitlines()
    counts, known = Counter(had), set(wanted)
    missing = sum(1 for line in wanted if line not in counts)
    doubled = sum(n - 1 for n in counts.values() if n > 1)
    strange = sum(1 for line in counts if line not in known)
    parts = [f"{missing} of {len(wanted)} lines missing"] if missing else []
    parts += [f"{doubled} repeated"] if doubled else []
    parts += [f"{strange} not written by the task"] if strange else []
    if not parts:
        parts = ["the lines are out of order" if sorted(wanted) == sorted(had)
                 else "the bytes differ"]
    return ", ".join(parts)


# ------------------------------------------------------------------ cron

# frameworks/batch/cron.py::decide: one entry at the last of N missed fire times
# ("at least " when N reached MAX_MISSED_COUNTED; N is still the exact number of fire
# times the entry stands for).
_COLLAPSED = re.compile(r"^missed: (?:at least )?(\d+) earlier fire times? collapsed "
                        r"into the latest$")


@dataclass(frozen=True)
class CronResult:
    """``ticks``: fire times checked; ``unverifiable``: ticks neither run nor covered
    by a kept skip entry while the skip list is full, and older than what this
    schedule's oldest kept entry covers (all such ticks when it has no entry kept):
    their entry may have been dropped; ``pending``: ticks after the schedule's
    cursor (not dealt with yet, not checked)."""

    violations: list[Violation]
    unverifiable: int
    ticks: int
    pending: int = 0


def _key(t: float) -> float:
    return round(float(t), 3)


def check_cron(expr: str, tz: str, created_at: float, until: float,
               runs: list[dict[str, Any]], skips: list[dict[str, Any]], schedule_id: str,
               *, kept: int = MAX_SKIPS_KEPT, cursor: float | None = None) -> CronResult:
    """Every fire time of schedule ``schedule_id`` (``expr`` in zone ``tz``) in
    ``(created_at, until]`` was either run or recorded as skipped, once.

    ``created_at``: when the schedule began (the job's ``created_at``: its cursor
    starts there, so earlier times never fire); ``runs``: the job's run documents
    (``trigger``, ``scheduled_for``, ``created_at``; runs of an earlier job of the same
    id, created before ``created_at``, are ignored); ``skips``: the job's ``skipped``
    entries ``{schedule, fire_time, reason}`` (``frameworks/batch/state.py``: the last
    ``kept`` of all its schedules).  A "missed: N earlier fire time(s) collapsed into
    the latest" entry covers the N fire times ending at its ``fire_time``; any other
    entry (starting deadline, FORBID) covers its own.  ``cursor``: the schedule's
    cursor in the store (last fire time dealt with): later ticks are only counted as
    pending.

    Violations (``at`` = the fire time, so the history around it is what is dumped):
    a tick neither run nor covered; a tick run more than once; a tick both run and
    covered; a run of this schedule for a time that is no fire time.  Not checked: a
    disabled schedule (its ticks pass silently by design)."""
    all_ticks = fire_times(expr, tz, created_at, until)
    # A collapsed entry past ``until`` may still stand for ticks before it.
    last_entry = max((float(s["fire_time"]) for s in skips), default=until)
    wide = fire_times(expr, tz, created_at, last_entry) if last_entry > until else all_ticks
    ticks = [t for t in all_ticks if cursor is None or t <= cursor]
    pending = len(all_ticks) - len(ticks)
    tick_keys = {_key(t) for t in all_ticks}
    mine_runs = [r for r in runs if r.get("trigger") == f"schedule:{schedule_id}"
                 and r.get("scheduled_for") is not None
                 and float(r.get("created_at", created_at)) >= created_at]
    ran = Counter(_key(r["scheduled_for"]) for r in mine_runs)
    mine = [s for s in skips if s.get("schedule") == schedule_id]
    covered: set[float] = set()
    oldest_covered = float("inf")
    for entry in mine:
        at = float(entry["fire_time"])
        match = _COLLAPSED.match(entry.get("reason", ""))
        count = int(match.group(1)) if match else 1
        span = [t for t in wide if t <= at + 1e-6][-count:] or [at]
        covered.update(_key(t) for t in span)
        oldest_covered = min(oldest_covered, span[0])
    full = len(skips) >= kept
    bound = oldest_covered if mine else float("inf")
    found: list[Violation] = []
    unverifiable = 0
    for t in ticks:
        k = _key(t)
        n = ran.get(k, 0)
        if n > 1:
            found.append(Violation("cron", t, f"cron tick at {t:.0f} of schedule "
                                   f"{schedule_id} was run {n} times",
                                   {"fire_time": t, "schedule": schedule_id, "runs": n}))
        if n and k in covered:
            found.append(Violation("cron", t, f"cron tick at {t:.0f} of schedule "
                                   f"{schedule_id} was both run and recorded as skipped",
                                   {"fire_time": t, "schedule": schedule_id}))
        if n or k in covered:
            continue
        if full and t < bound:
            unverifiable += 1
            continue
        found.append(Violation("cron", t, f"cron tick at {t:.0f} of schedule {schedule_id} "
                               "neither run nor recorded as missed",
                               {"fire_time": t, "schedule": schedule_id}))
    for k in sorted(ran):
        if created_at < k <= until and k not in tick_keys:
            found.append(Violation("cron", k, f"schedule {schedule_id} ran for {k:.0f}, "
                                   "which is no fire time of its expression",
                                   {"scheduled_for": k, "schedule": schedule_id}))
    return CronResult(found, unverifiable, len(ticks), pending)


# ------------------------------------------------------------------ HTTP answers


@dataclass(frozen=True)
class HttpRecord:
    """One answer the harness got (connection errors are no answers, not records):
    ``component`` is "master", "services", "batch", "lb" or "agent"."""

    at: float
    component: str
    method: str
    url: str
    status: int


def check_http(records: list[HttpRecord], windows: list[tuple[float, float, str]],
               slack: float = 15.0, excusing: tuple[str, ...] = ("master", "postgres")
               ) -> list[Violation]:
    """Every 5xx answer is a violation, except a master's 503 ("No leading master is
    elected yet", by design during elections) inside a fault window ``(start, end,
    kind)`` whose kind is in ``excusing``, or up to ``slack`` seconds after its end
    (the election and the new leader's state load take that long)."""
    excused = [(a, b + slack) for a, b, kind in windows if kind in excusing]
    found = []
    for r in records:
        if r.status < 500:
            continue
        if r.component == "master" and r.status == 503 and any(
                a <= r.at <= b for a, b in excused):
            continue
        found.append(Violation("5xx", r.at, f"{r.component} answered {r.status} to "
                               f"{r.method} {r.url}",
                               {"component": r.component, "status": r.status,
                                "method": r.method, "url": r.url}))
    return found


# ------------------------------------------------------------------ secrets

MIN_SECRET = 8  # shorter values would be found by chance in binary files
_MIN_FRAGMENT = 12  # base64 characters, for a value embedded in a larger encoding


def secret_forms(value: str) -> dict[str, bytes]:
    """The byte strings that give ``value`` away, by name: raw (UTF-8), JSON-escaped,
    URL-quoted, base64 standard and URL-safe with and without padding, and the parts
    of its base64 that are the same wherever it sits inside a larger base64 blob
    (one per alignment: a value inside an encoded environment or file)."""
    raw = value.encode()
    if len(raw) < MIN_SECRET:
        raise ValueError(f"secret values must have at least {MIN_SECRET} bytes to be "
                         "searched for")
    forms = {"raw": raw,
             "json": json.dumps(value, ensure_ascii=False)[1:-1].encode(),
             "json-ascii": json.dumps(value, ensure_ascii=True)[1:-1].encode(),
             "url-quoted": urllib.parse.quote(value, safe="").encode()}
    for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        full = enc(raw)
        forms[name] = full
        forms[f"{name}-unpadded"] = full.rstrip(b"=")
        for shift, skip in ((0, 0), (1, 2), (2, 3)):
            # bytes after ``shift`` unknown ones, in whole 3-byte groups: the
            # characters from ``skip`` on depend on the value alone
            data = b"\0" * shift + raw
            fragment = enc(data[:len(data) // 3 * 3])[skip:]
            if len(fragment) >= _MIN_FRAGMENT:
                forms[f"{name}-embedded-{shift}"] = fragment
    unique: dict[bytes, str] = {}
    for name, form in forms.items():
        unique.setdefault(form, name)
    return {name: form for form, name in unique.items()}


def scan_for_secrets(chunks: Iterable[tuple[str, bytes]], values: list[str]
                     ) -> list[Violation]:
    """One violation per place (``where``: a file path, an API answer's description)
    whose content holds any secret value in any ``secret_forms`` form.  The message
    names the place and the values' indices in ``values`` and the forms found, never
    a value; a place whose name itself holds a value (say a URL with it in the query)
    is reported with the name redacted.  ``at`` is 0.0: the scan is after the fact."""
    patterns = [(i, name, form) for i, v in enumerate(values)
                for name, form in secret_forms(v).items()]
    found = []
    for where, content in chunks:
        label = where.encode()
        in_name = sorted({i for i, _, form in patterns if form in label})
        hits: dict[int, set[str]] = defaultdict(set)
        for i, name, form in patterns:
            if form in content:
                hits[i].add(name)
        for i in in_name:
            hits[i].add("in the place's name")
        if not hits:
            continue
        shown = f"<a place whose name holds secret #{in_name[0]}>" if in_name else where
        indices = sorted(hits)
        found.append(Violation(
            "secret-leak", 0.0,
            f"{shown} holds secret value(s) {', '.join(f'#{i}' for i in indices)} "
            f"({', '.join(sorted(set().union(*hits.values())))})",
            {"where": shown, "values": indices,
             "forms": {str(i): sorted(hits[i]) for i in indices}}))
    return found


# ------------------------------------------------------------------ load balancer


LB_FAULT = "kill-lb"  # faults.Kind.KILL_LB (faults imports the cluster: not here)


def lb_figures(samples: list[tuple[float, bool, bool, bool]]) -> dict[str, Any]:
    """Figures of the load balancer's clients from samples ``(at, ok, in a rolling
    upgrade, in a fault window)``: error percentages overall, during upgrades without
    faults and during faults (None when no sample), and recovery times - from the
    first failure after a success to the next success - as p50/p99/max seconds
    (``report.percentiles``).  A failure run the samples end in is counted as
    ``unrecovered``, not as a recovery; failures before any success are no recovery
    (the service was not up yet)."""
    def rate(rows: list[tuple[float, bool, bool, bool]]) -> float | None:
        if not rows:
            return None
        return round(100.0 * sum(1 for r in rows if not r[1]) / len(rows), 3)

    ordered = sorted(samples, key=lambda s: s[0])
    recoveries: list[float] = []
    failing_since: float | None = None
    seen_ok = False
    for at, ok, _, _ in ordered:
        if ok:
            if failing_since is not None:
                recoveries.append(at - failing_since)
                failing_since = None
            seen_ok = True
        elif seen_ok and failing_since is None:
            failing_since = at
    upgrades = [s for s in ordered if s[2] and not s[3]]
    faults = [s for s in ordered if s[3]]
    rec = percentiles(recoveries)
    return {
        "samples": len(ordered),
        "errors %": rate(ordered),
        "upgrade samples (no fault)": len(upgrades),
        "errors % in upgrades (no fault)": rate(upgrades),
        "fault samples": len(faults),
        "errors % in faults": rate(faults),
        "recoveries": len(recoveries),
        "recovery p50 s": round(rec["p50"], 3),
        "recovery p99 s": round(rec["p99"], 3),
        "recovery max s": round(rec["max"], 3),
        "unrecovered": failing_since is not None,
    }


def lb_errors_by_fault(samples: list[tuple[float, bool]],
                       faults: list[tuple[float, float, str]],
                       restart: float = 20.0) -> dict[str, tuple[int, float]]:
    """The load balancer clients' samples ``(at, ok)`` by what was going on, each as
    (samples, error %): ``lb down`` (inside a ``kill-lb`` fault), ``lb restarting``
    (up to ``restart`` s after one), then, with the load balancer up, every fault kind
    active (a sample counts for each; ``faults``: (start, end, kind)) and ``no fault``.
    So the load balancer's own downtime does not hide how it rides out the others."""
    def active(at: float, slack: float = 0.0) -> set[str]:
        return {kind for start, end, kind in faults if start <= at <= end + slack}

    counts: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for at, ok in samples:
        kinds = active(at)
        if LB_FAULT in kinds:
            groups = ["lb down"]
        elif LB_FAULT in active(at, restart):
            groups = ["lb restarting"]
        else:
            groups = sorted(kinds) or ["no fault"]
        for group in groups:
            counts[group] += 1
            failed[group] += not ok
    order = ["lb down", "lb restarting", *sorted(set(counts) - {"lb down", "lb restarting",
                                                                  "no fault"}), "no fault"]
    return {group: (counts[group], round(100.0 * failed[group] / counts[group], 3))
            for group in order if counts[group]}
