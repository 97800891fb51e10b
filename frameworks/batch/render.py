"""Text for the ``mesoslite batch`` CLI: progress bars, tables, run status.

Pure functions from API documents to strings, so the CLI stays thin and the output is
testable.  ``color`` adds ANSI colours (terminals only); plain output is meant for CI
logs: one line per change, no escape codes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from mesoslite.cli.waiting import HEADER

BAR_WIDTH = 24
_COLORS = {"SUCCEEDED": "32", "FAILED": "31", "CANCELLED": "33", "SKIPPED": "90",
           "RUNNING": "36", "WAITING": "90", "CANCELLING": "33", "QUEUED": "90"}


def paint(text: str, state: str, color: bool) -> str:
    code = _COLORS.get(state)
    return f"\x1b[{code}m{text}\x1b[0m" if color and code else text


def bar(counts: Mapping[str, int], width: int = BAR_WIDTH, color: bool = False) -> str:
    """``[####==....]``: done, running, failed, pending, proportional to the tasks."""
    total = sum(counts.get(k, 0) for k in ("done", "running", "failed", "pending")) or 1
    cells = {k: counts.get(k, 0) * width // total for k in ("done", "running", "failed")}
    # Round so a non-empty class shows at least one cell.
    for k in ("done", "running", "failed"):
        if counts.get(k, 0) and not cells[k]:
            cells[k] = 1
    while sum(cells.values()) > width:  # the bumps may overflow: shrink the largest
        cells[max(cells, key=lambda k: cells[k])] -= 1
    pending = max(0, width - sum(cells.values()))
    if not color:
        body = "#" * cells["done"] + "=" * cells["running"] + "x" * cells["failed"]
        return f"[{body}{'.' * pending}]"
    parts = [("32", "█", "done"), ("36", "▒", "running"), ("31", "█", "failed")]
    body = "".join(f"\x1b[{code}m{glyph * cells[k]}\x1b[0m" for code, glyph, k in parts
                   if cells[k])
    return f"[{body}{'░' * pending}]"


def counts_text(counts: Mapping[str, int]) -> str:
    return (f"{counts.get('pending', 0)} pending, {counts.get('running', 0)} running, "
            f"{counts.get('done', 0)} done, {counts.get('failed', 0)} failed")


def progress_lines(run: Mapping[str, Any], color: bool = False) -> list[str]:
    """One line per step: name, bar, state, counts."""
    width = max(len(s["name"]) for s in run["steps"])
    lines = []
    for s in run["steps"]:
        state = paint(f"{s['state']:<9}", s["state"], color)
        lines.append(f"  {s['name']:<{width}}  {bar(s['counts'], color=color)} {state} "
                     f"{counts_text(s['counts'])}")
    return lines


def step_line(step: Mapping[str, Any]) -> str:
    """The plain (CI log) form of one step's progress."""
    return f"{step['name']}: {step['state']} ({counts_text(step['counts'])})"


def outcome_line(run: Mapping[str, Any], color: bool = False) -> str:
    took = ""
    if run.get("finished_at") and run.get("created_at"):
        took = f" in {duration(run['finished_at'] - run['created_at'])}"
    text = f"run {run['id']} {run['state']}{took}"
    if run.get("message"):
        text += f": {run['message']}"
    return paint(text, run["state"], color)


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def when(t: float | None) -> str:
    if t is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in cells]
    return "\n".join(out)


def jobs_table(jobs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for j in jobs:
        sched = j["schedules"][0] if j.get("schedules") else None
        rows.append([j["id"], j["user"], len(j["steps"]),
                     f"{sched['cron']} {sched['timezone']}" if sched else "-",
                     when(sched.get("next_run_at")) if sched else "-",
                     len(j.get("active_runs", []))])
    return table(["JOB", "USER", "STEPS", "SCHEDULE", "NEXT RUN", "ACTIVE"], rows)


def runs_table(runs: Sequence[Mapping[str, Any]],
               waiting: Mapping[str, str] | None = None) -> str:
    """One line per run; ``waiting`` (run id -> text) adds the WAITING / LAST FAILURE
    column (``mesoslite.cli.waiting``)."""
    rows = [[r["id"], r["state"], r["trigger"], when(r["created_at"]),
             duration((r["finished_at"] or time.time()) - r["created_at"])]
            + ([waiting.get(r["id"], "-")] if waiting is not None else [])
            for r in runs]
    headers = ["RUN", "STATE", "TRIGGER", "STARTED", "TOOK"]
    return table(headers + ([HEADER] if waiting is not None else []), rows)


def status_text(run: Mapping[str, Any], color: bool = False) -> str:
    """``mesoslite batch status``: header, steps, and what went wrong."""
    phase = paint(run["phase"], run["phase"], color)
    lines = [f"run {run['id']}  job {run['job_id']}  user {run['user']}  {phase}",
             f"started {when(run['created_at'])}  trigger {run['trigger']}"
             + (f"  finished {when(run['finished_at'])}" if run.get("finished_at") else "")]
    if run.get("message"):
        lines.append(f"message: {run['message']}")
    lines.append("")
    lines += progress_lines(run, color)
    failed = [a for a in run.get("attempts", []) if a["counts_as_failure"]
              or a["state"] in ("LOST", "ERROR")]
    if failed:
        lines += ["", "failed attempts:"]
        lines += [f"  {a['step']}[{a['index']}] attempt {a['number']} {a['state']} on "
                  f"{a['hostname'] or '-'}: {a['message']}" for a in failed[-20:]]
    return "\n".join(lines)
