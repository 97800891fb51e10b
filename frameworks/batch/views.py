"""JSON views of jobs, runs and the queue, as the HTTP API returns them.

Times are epoch seconds (floats).  A step's ``counts`` classify its tasks by their
latest attempt: ``done`` (finished), ``running`` (an attempt is active), ``failed``
(the latest attempt failed: retrying after a backoff, or out of retries) and
``pending`` (the rest).  These are the numbers ``mesoslite batch submit --wait`` draws.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from frameworks.batch import cron
from frameworks.batch.records import Attempt, AttemptState, Run, StepState, attempt_id

if TYPE_CHECKING:
    from frameworks.batch.state import BatchState, JobRecord
    from frameworks.batch.workload import BatchWorkload
    from mesoslite.framework import FrameworkCore


def job_json(record: JobRecord, active: list[Run], now: float) -> dict[str, Any]:
    doc = record.spec.to_json()
    schedules = []
    for s in record.spec.schedules:
        entry = s.to_json()
        entry["next_run_at"] = cron.next_fire(s.cron, s.timezone, now) if s.enabled else None
        schedules.append(entry)
    doc["schedules"] = schedules
    doc.update(created_at=record.created_at, updated_at=record.updated_at,
               active_runs=[r.id for r in active], skipped=list(record.skips))
    return doc


def task_status(run: Run) -> dict[tuple[str, int], str]:
    """(step, index) -> done | running | failed | pending, by the task's latest attempt."""
    latest: dict[tuple[str, int], Attempt] = {}
    for a in run.attempts.values():
        key = (a.step, a.index)
        if key not in latest or a.number > latest[key].number:
            latest[key] = a
    out = {}
    for step in run.spec.steps:
        reused = run.steps[step.name].reused
        for index in range(step.completions):
            a = latest.get((step.name, index))
            if reused or (a is not None and a.state == AttemptState.FINISHED):
                out[(step.name, index)] = "done"
            elif a is not None and a.state.active:
                out[(step.name, index)] = "running"
            elif a is not None and a.counts:
                out[(step.name, index)] = "failed"
            else:
                out[(step.name, index)] = "pending"
    return out


def step_counts(run: Run) -> dict[str, dict[str, int]]:
    failed_attempts: dict[str, int] = defaultdict(int)
    for a in run.attempts.values():
        if a.counts:
            failed_attempts[a.step] += 1
    out = {s.name: {"pending": 0, "running": 0, "done": 0, "failed": 0,
                    "failed_attempts": failed_attempts[s.name]} for s in run.spec.steps}
    for (step, _), status in task_status(run).items():
        out[step][status] += 1
    return out


def run_json(run: Run, attempts: bool = True) -> dict[str, Any]:
    counts = step_counts(run)
    steps = []
    for spec in run.spec.steps:
        rec = run.steps[spec.name]
        steps.append({
            "name": spec.name, "state": rec.state.value, "message": rec.message,
            "depends_on": list(spec.depends_on), "allow_failure": spec.allow_failure,
            "gang": spec.gang, "completions": spec.completions,
            "parallelism": spec.parallelism, "image": spec.image,
            "started_at": rec.started_at, "finished_at": rec.finished_at,
            "counts": counts[spec.name]})
    doc: dict[str, Any] = {
        "id": run.id, "job_id": run.job_id, "user": run.spec.user,
        "priority": run.spec.priority, "state": run.state.value, "phase": phase(run),
        "trigger": run.trigger, "scheduled_for": run.scheduled_for,
        "created_at": run.created_at, "finished_at": run.finished_at, "message": run.message,
        "cancel_requested": run.cancel_requested, "rerun_of": run.rerun_of, "steps": steps}
    if attempts:
        doc["attempts"] = [attempt_json(a) for a in sorted(
            run.attempts.values(), key=lambda a: (a.created_at, a.id))]
    return doc


def phase(run: Run) -> str:
    """A finer state for people: QUEUED (nothing started yet), RUNNING, CANCELLING,
    or the terminal state."""
    if run.state.terminal:
        return run.state.value
    if run.cancel_requested:
        return "CANCELLING"
    if any(a.state != AttemptState.LAUNCHING for a in run.attempts.values()):
        return "RUNNING"
    return "QUEUED"


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {"id": a.id, "task_id": a.id, "step": a.step, "index": a.index, "number": a.number,
            "state": a.state.value, "agent_id": a.agent_id, "hostname": a.hostname,
            "created_at": a.created_at, "started_at": a.started_at,
            "finished_at": a.finished_at, "message": a.message, "kill_reason": a.kill_reason,
            "exit_state": a.exit_state, "counts_as_failure": a.counts}


def run_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored run document, trimmed for listings."""
    return {k: doc.get(k) for k in ("id", "job_id", "state", "trigger", "scheduled_for",
                                    "created_at", "finished_at", "message", "rerun_of")}


def queue_json(state: BatchState, workload: BatchWorkload, core: FrameworkCore, now: float
               ) -> dict[str, Any]:
    """Every task that has not started, and why (see docs/batch.md, "The queue")."""
    entries: list[dict[str, Any]] = []
    shares = workload.user_shares()
    unplaced = ("being placed" if core.held
                else "no offers held: waiting for the master to offer resources")
    for position, w in enumerate(workload.queue_order, 1):
        run, unit = w.payload
        if run.state.terminal or _launched(run, unit):
            continue  # launched since the pass that ordered it
        entries.append(_unit_entry(run, unit, "ready", workload.queue_reasons.get(
            w.key, unplaced), position, shares))
    for run_id, plan in state.plans.items():
        run = state.runs[run_id]
        for unit, ready_at in plan.backoff:
            why = (f"attempt {unit.number} backs off after a failure: starts in "
                   f"{max(0.0, ready_at - now):.1f}s")
            entries.append(_unit_entry(run, unit, "backoff", why, None, shares) |
                           {"ready_at": ready_at})
        entries.extend(_held_back(run, plan))
    return {"queue": entries, "shares": shares,
            "offers": {"held": len(core.held),
                       "agents": len({h.offer.agent_id.value for h in core.held.values()})},
            "suppressed": core.suppressed}


def _launched(run: Run, unit: Any) -> bool:
    return any(attempt_id(run.id, unit.step, i, unit.number) in run.attempts
               for i in unit.indices)


def _unit_entry(run: Run, unit: Any, status: str, why: str, position: int | None,
                shares: dict[str, float]) -> dict[str, Any]:
    return {"run": run.id, "job": run.job_id, "user": run.spec.user,
            "priority": run.spec.priority, "step": unit.step, "tasks": list(unit.indices),
            "attempt": unit.number, "gang": unit.gang, "status": status, "why": why,
            "position": position, "user_share": shares.get(run.spec.user, 0.0)}


def _held_back(run: Run, plan: Any) -> list[dict[str, Any]]:
    """Steps waiting on dependencies, and tasks waiting for a parallelism slot."""
    out = []
    listed = {(u.step, i) for u in plan.launch if not _launched(run, u) for i in u.indices}
    listed |= {(u.step, i) for u, _ in plan.backoff for i in u.indices}
    status = task_status(run)
    for spec in run.spec.steps:
        rec = run.steps[spec.name]
        base = {"run": run.id, "job": run.job_id, "user": run.spec.user,
                "priority": run.spec.priority, "step": spec.name}
        if rec.state == StepState.WAITING:
            waits = [d for d in spec.depends_on if run.steps[d].state != StepState.SUCCEEDED]
            out.append(base | {"tasks": list(range(spec.completions)), "status": "dependencies",
                               "why": f"waits for {', '.join(waits)}"})
        elif rec.state == StepState.RUNNING and not spec.gang:
            held = [i for i in range(spec.completions) if (spec.name, i) not in listed
                    and status[(spec.name, i)] in ("pending", "failed")]
            if held:
                running = sum(1 for i in range(spec.completions)
                              if status[(spec.name, i)] == "running")
                out.append(base | {"tasks": held, "status": "parallelism",
                                   "why": f"{running} running, parallelism "
                                          f"{spec.parallelism}"})
    return out
