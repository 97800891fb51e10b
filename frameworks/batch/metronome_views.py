"""Jobs, runs and schedules in Metronome's JSON shapes (the answers of ``/v1``).

The reverse of ``metronome.py``: a native ``JobSpec`` becomes Metronome's
``{"id", "description", "labels", "run": {...}}`` whose ``run`` parses back to the
same spec, so a Metronome client may GET a job and PUT the same body.  A pipeline is
shown by its first step (Metronome has no steps); native-only fields (``priority``,
``completions``, ``gang``, a step's named Docker volumes...) are not shown: read them
at ``/mesoslite/v1`` (docs/batch.md, "Metronome's shape").

Times are Metronome's text, ``2016-07-15T13:02:59.735+0000`` (UTC).  Run states:
``STARTING`` (no task has reported yet), ``ACTIVE``, ``SUCCESS``, ``FAILED`` (a
cancelled run too: Metronome has no other end).  Pure functions, no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from frameworks.batch import cron
from frameworks.batch.model import JobSpec, ScheduleSpec, StepSpec
from frameworks.batch.records import Attempt, AttemptState, Run, RunState
from frameworks.common.secret_refs import Ref

EMBEDS = ("activeRuns", "schedules", "history", "historySummary")
_TASK_STATUS = {  # Metronome knows only these task states
    AttemptState.LAUNCHING: "TASK_CREATED", AttemptState.STAGING: "TASK_STAGING",
    AttemptState.STARTING: "TASK_STARTING", AttemptState.RUNNING: "TASK_RUNNING",
    AttemptState.KILLING: "TASK_RUNNING", AttemptState.FINISHED: "TASK_FINISHED",
    AttemptState.FAILED: "TASK_FAILED", AttemptState.ERROR: "TASK_FAILED",
    AttemptState.KILLED: "TASK_KILLED", AttemptState.LOST: "TASK_KILLED"}


def iso(t: float | None) -> str | None:
    """Epoch seconds as Metronome writes instants; None stays None."""
    if t is None:
        return None
    seconds, millis = divmod(round(t * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}+0000"


# ---------------------------------------------------------------- jobs


def job_doc(spec: JobSpec) -> dict[str, Any]:
    """The job, without embeds: ``id``, ``description``, ``labels``, ``run``."""
    return {"id": spec.id, "description": spec.description, "labels": dict(spec.labels),
            "run": run_spec_doc(spec.steps[0], spec.user)}


def run_spec_doc(step: StepSpec, user: str) -> dict[str, Any]:
    """A step as Metronome's ``run`` object."""
    secrets = _SecretIds()
    env: dict[str, Any] = dict(step.env)
    env.update({var: {"secret": secrets.id_of(ref)} for var, ref in step.secret_env.items()})
    volumes: list[dict[str, Any]] = [
        {"containerPath": v.container_path, "hostPath": v.host_path, "mode": v.mode}
        for v in step.volumes if v.host_path is not None]
    volumes += [{"containerPath": path, "secret": secrets.id_of(ref)}
                for path, ref in step.secret_files]
    restart: dict[str, Any] = {"policy": "ON_FAILURE" if step.retries else "NEVER"}
    if step.retry_deadline is not None:
        restart["activeDeadlineSeconds"] = _number(step.retry_deadline)
    doc: dict[str, Any] = {
        "cpus": step.cpus, "mem": step.mem, "disk": step.disk, "gpus": _number(step.gpus),
        "env": env, "placement": {"constraints": [_constraint(c) for c in step.constraints]},
        "artifacts": [a.to_json() for a in step.artifacts],
        "maxLaunchDelay": _number(step.backoff.maximum), "volumes": volumes,
        "restart": restart, "secrets": secrets.table(), "networks": []}
    if step.command is not None:
        doc["cmd"] = step.command
    if step.args is not None:
        doc["args"] = list(step.args)
    if step.image is not None:
        doc["docker"] = {"image": step.image}
    if user != "anonymous":
        doc["user"] = user
    if step.kill_grace is not None:
        doc["taskKillGracePeriodSeconds"] = _number(step.kill_grace)
    return doc


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _constraint(c: tuple[str, ...]) -> dict[str, str]:
    out = {"attribute": c[0], "operator": c[1]}
    if len(c) > 2:
        out["value"] = c[2]
    return out


class _SecretIds:
    """Metronome names each secret a job uses (``secrets: {id: {source}}``); native
    jobs name the stored objects directly, so ids are made up in order of use."""

    def __init__(self) -> None:
        self.ids: dict[Ref, str] = {}

    def id_of(self, ref: Ref) -> str:
        return self.ids.setdefault(ref, f"secret{len(self.ids)}")

    def table(self) -> dict[str, dict[str, str]]:
        out = {}
        for ref, sid in self.ids.items():
            entry = {"source": ("config:" if ref.kind == "config" else "") + ref.name}
            if ref.key is not None:
                entry["key"] = ref.key
            out[sid] = entry
        return out


def schedule_doc(schedule: ScheduleSpec, now: float) -> dict[str, Any]:
    """A schedule with its next fire time (``nextRunAt``; absent while disabled)."""
    doc: dict[str, Any] = {"id": schedule.id, "cron": schedule.cron,
                           "timezone": schedule.timezone,
                           "concurrencyPolicy": schedule.concurrency_policy,
                           "enabled": schedule.enabled}
    if schedule.starting_deadline_seconds is not None:
        doc["startingDeadlineSeconds"] = _number(schedule.starting_deadline_seconds)
    if schedule.enabled:
        doc["nextRunAt"] = iso(cron.next_fire(schedule.cron, schedule.timezone, now))
    return doc


# ---------------------------------------------------------------- runs


def run_status(run: Run) -> str:
    if run.state == RunState.SUCCEEDED:
        return "SUCCESS"
    if run.state.terminal:
        return "FAILED"
    if any(a.state != AttemptState.LAUNCHING for a in run.attempts.values()):
        return "ACTIVE"
    return "STARTING"


def task_doc(a: Attempt) -> dict[str, Any]:
    return {"id": a.id, "status": _TASK_STATUS[a.state],
            "startedAt": iso(a.started_at if a.started_at is not None else a.created_at),
            "completedAt": iso(a.finished_at)}


def run_doc(run: Run) -> dict[str, Any]:
    """A run: ``id``, ``jobId``, ``status``, ``createdAt``, ``completedAt``, ``tasks``."""
    attempts = sorted(run.attempts.values(), key=lambda a: (a.created_at, a.id))
    return {"id": run.id, "jobId": run.job_id, "status": run_status(run),
            "createdAt": iso(run.created_at), "completedAt": iso(run.finished_at),
            "tasks": [task_doc(a) for a in attempts]}


# ---------------------------------------------------------------- history


@dataclass(frozen=True)
class FinishedRun:
    """What the history tells of one ended run."""

    id: str
    succeeded: bool
    created_at: float
    finished_at: float
    tasks: tuple[str, ...]


def finished_run(doc: Mapping[str, Any], task_ids: Iterable[str]) -> FinishedRun:
    """From a stored run document and its attempts' ids."""
    return FinishedRun(doc["id"], doc["state"] == RunState.SUCCEEDED.value, doc["created_at"],
                       doc.get("finished_at") or doc["created_at"], tuple(sorted(task_ids)))


@dataclass(frozen=True)
class History:
    """A job's ended runs: every one counted, the newest listed (newest first)."""

    success_count: int
    failure_count: int
    successful: tuple[FinishedRun, ...]
    failed: tuple[FinishedRun, ...]


def history_doc(history: History, summary: bool) -> dict[str, Any]:
    """``historySummary`` (counts, last times) or ``history`` (plus the runs)."""
    good, bad = history.successful, history.failed
    doc: dict[str, Any] = {
        "successCount": history.success_count, "failureCount": history.failure_count,
        "lastSuccessAt": iso(max(r.finished_at for r in good)) if good else None,
        "lastFailureAt": iso(max(r.finished_at for r in bad)) if bad else None}
    if not summary:
        doc["successfulFinishedRuns"] = [_run_info(r) for r in good]
        doc["failedFinishedRuns"] = [_run_info(r) for r in bad]
    return doc


def _run_info(r: FinishedRun) -> dict[str, Any]:
    return {"id": r.id, "createdAt": iso(r.created_at), "finishedAt": iso(r.finished_at),
            "tasks": list(r.tasks)}
