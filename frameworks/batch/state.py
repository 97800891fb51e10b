"""The framework's in-memory world: jobs, runs and attempts, mirrored to the store.

``BatchState`` is the only code that changes jobs, runs and attempts.  Each change is
applied in memory synchronously (so callers keep the event loop's atomicity between
awaits), recorded in the framework kit's ``Journal`` (the durable mirror) and
announced as an event (``emit(type, payload)``: the SSE stream, once the change is
durable).  It decides nothing itself: plans come from ``reconcile.plan``, cron
decisions from ``cron.decide``; this module applies them.  Active runs live in memory; finished ones stay for a while (``keep_finished``)
and are otherwise read from the store.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from frameworks.batch import cron
from frameworks.batch.model import JobSpec, parse_job
from frameworks.batch.reconcile import Plan, Unit, observe, plan
from frameworks.batch.records import (
    Attempt,
    AttemptState,
    Run,
    StepRecord,
    StepState,
    attempt_id,
)
from frameworks.batch.store import ATTEMPTS, JOBS, RUNS, batch_journal
from mesoslite.framework import Journal

log = logging.getLogger(__name__)
MAX_SKIPS_KEPT = 20


class StateObserver(Protocol):
    """Told of what the state does (metrics); must not change it."""

    def launched(self, run: Run, attempts: list[Attempt]) -> None:
        """``attempts`` were just recorded for launch."""


@dataclass
class JobRecord:
    """A job definition and its schedules' cursors (last fire time dealt with)."""

    spec: JobSpec
    created_at: float
    updated_at: float
    cursors: dict[str, float] = field(default_factory=dict)
    skips: list[dict[str, Any]] = field(default_factory=list)  # recent skipped fire times

    def to_json(self) -> dict[str, Any]:
        return {"spec": self.spec.to_json(), "created_at": self.created_at,
                "updated_at": self.updated_at, "cursors": dict(self.cursors),
                "skips": list(self.skips)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> JobRecord:
        return cls(parse_job(doc["spec"]), doc["created_at"], doc["updated_at"],
                   dict(doc.get("cursors", {})), list(doc.get("skips", [])))


def new_run_id(job_id: str, now: float) -> str:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now))
    return f"{job_id}-{stamp}-{secrets.token_hex(3)}"


class BatchState:
    def __init__(self, journal: Journal | None = None, keep_finished: int = 500,
                 observer: StateObserver | None = None) -> None:
        self.journal = journal or batch_journal()
        self.observer = observer
        self.keep_finished = keep_finished
        self.jobs: dict[str, JobRecord] = {}
        self.runs: dict[str, Run] = {}  # active runs and recently finished ones
        self.finished: OrderedDict[str, None] = OrderedDict()
        self.owner: dict[str, str] = {}  # attempt id -> run id (runs in memory)
        self.plans: dict[str, Plan] = {}  # latest plan of each active run
        self.dirty: set[str] = set()

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        """Announce an event once the changes made so far are durable."""
        self.journal.note((event_type, payload))

    # ------------------------------------------------------------ loading

    def load(self, job_docs: Iterable[dict[str, Any]],
             active: Iterable[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        for doc in job_docs:
            record = JobRecord.from_json(doc)
            self.jobs[record.spec.id] = record
        for run_doc, attempt_docs in active:
            run = Run.from_json(run_doc, [Attempt.from_json(a) for a in attempt_docs])
            self._remember(run)
            self.dirty.add(run.id)

    def _remember(self, run: Run) -> None:
        self.runs[run.id] = run
        for aid in run.attempts:
            self.owner[aid] = run.id

    # ------------------------------------------------------------ jobs

    def put_job(self, spec: JobSpec, now: float) -> tuple[JobRecord, bool]:
        """Create or replace a job; schedules keep their cursors by id (new ones start
        now, so a new schedule never fires for times before it existed)."""
        old = self.jobs.get(spec.id)
        cursors = {s.id: (old.cursors.get(s.id, now) if old else now) for s in spec.schedules}
        record = JobRecord(spec, old.created_at if old else now, now, cursors,
                           old.skips if old else [])
        self.jobs[spec.id] = record
        self.journal.put(JOBS, spec.id, record)
        self.emit("job_updated" if old else "job_created", {"job": spec.id})
        return record, old is None

    def delete_job(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self.journal.delete(JOBS, job_id)
        self.emit("job_deleted", {"job": job_id})

    # ------------------------------------------------------------ runs

    def start_run(self, spec: JobSpec, now: float, trigger: str = "manual",
                  scheduled_for: float | None = None, rerun_of: Run | None = None,
                  failed_only: bool = False) -> Run:
        """A new ACTIVE run of ``spec`` (a snapshot).  ``rerun_of`` + ``failed_only``:
        steps that succeeded in that run are taken over as SUCCEEDED."""
        run = Run(new_run_id(spec.id, now), spec.id, spec, now, trigger=trigger,
                  scheduled_for=scheduled_for, rerun_of=rerun_of.id if rerun_of else None)
        if rerun_of is not None and failed_only:
            for name, rec in rerun_of.steps.items():
                if rec.state == StepState.SUCCEEDED and name in run.steps:
                    run.steps[name] = StepRecord(name, StepState.SUCCEEDED, now, now,
                                                 f"reused from run {rerun_of.id}", True)
        self._remember(run)
        self.dirty.add(run.id)
        self.journal.put(RUNS, run.id, run)
        self.emit("run_started", {"run": run.id, "job": spec.id, "trigger": trigger})
        return run

    def cancel_run(self, run: Run, message: str) -> bool:
        """Ask for ``run`` to be cancelled (its attempts are killed by the next plan)."""
        if run.state.terminal or run.cancel_requested:
            return False
        run.cancel_requested, run.cancel_message = True, message
        self.dirty.add(run.id)
        self.journal.put(RUNS, run.id, run)
        self.emit("run_cancelling", {"run": run.id, "message": message})
        return True

    def active_runs(self, job_id: str | None = None) -> list[Run]:
        return [r for r in self.runs.values()
                if not r.state.terminal and (job_id is None or r.job_id == job_id)]

    # ------------------------------------------------------------ attempts

    def run_of(self, aid: str) -> Run | None:
        run_id = self.owner.get(aid)
        return self.runs.get(run_id) if run_id else None

    def record_launch(self, unit: Unit, agents: dict[int, tuple[str, str]], now: float
                      ) -> list[Attempt]:
        """LAUNCHING attempts for ``unit``, one per index, on ``agents[index]`` =
        (agent id, hostname).  They are durable before any ACCEPT goes out (the kit
        commits the journal before it sends)."""
        run = self.runs[unit.run_id]
        out = []
        for index in unit.indices:
            agent_id, hostname = agents[index]
            a = Attempt(attempt_id(run.id, unit.step, index, unit.number), run.id, unit.step,
                        index, unit.number, AttemptState.LAUNCHING, now, agent_id, hostname)
            if a.id in run.attempts:
                raise ValueError(f"attempt {a.id} exists already")
            run.attempts[a.id] = a
            self.owner[a.id] = run.id
            self.journal.put(ATTEMPTS, a.id, a)
            out.append(a)
        self.dirty.add(run.id)
        if self.observer is not None:
            self.observer.launched(run, out)
        return out

    def apply_status(self, aid: str, mesos_state: str, message: str, now: float,
                     reason: str | None = None) -> Attempt | None:
        """Fold a status update in; returns the changed attempt (None: no change)."""
        run = self.run_of(aid)
        if run is None:
            return None
        current = run.attempts[aid]
        changed = observe(current, mesos_state, message, now, reason)
        if changed is None:
            return None
        self._put_attempt(run, changed)
        return changed

    def launch_failed(self, attempts: Iterable[Attempt], message: str, now: float) -> None:
        """The ACCEPT carrying these attempts was refused: they never ran."""
        for a in attempts:
            run = self.runs.get(a.run_id)
            if run is not None and run.attempts[a.id].state == AttemptState.LAUNCHING:
                self._put_attempt(run, dataclasses.replace(
                    run.attempts[a.id], state=AttemptState.LOST, finished_at=now,
                    message=f"launch refused: {message}", exit_state="NOT_LAUNCHED"))

    def note_kill(self, aid: str, reason: str, now: float) -> Attempt | None:
        run = self.run_of(aid)
        if run is None or not run.attempts[aid].state.active:
            return None
        a = dataclasses.replace(run.attempts[aid], kill_reason=reason, kill_sent_at=now)
        self._put_attempt(run, a)
        return a

    def _put_attempt(self, run: Run, a: Attempt) -> None:
        old = run.attempts.get(a.id)
        run.attempts[a.id] = a
        self.journal.put(ATTEMPTS, a.id, a)
        self.dirty.add(run.id)
        if old is None or old.state != a.state:
            self.emit("attempt_updated", {"run": run.id, "attempt": a.id, "step": a.step,
                                          "index": a.index, "state": a.state.value,
                                          "message": a.message})

    # ------------------------------------------------------------ planning

    def replan(self, now: float) -> list[tuple[str, str]]:
        """Plan every dirty run and every run whose wake-up time has come; apply the
        step and run changes.  Returns the kills to send ((attempt id, reason))."""
        due = {rid for rid, p in self.plans.items()
               if p.wake_at is not None and p.wake_at <= now}
        kills: list[tuple[str, str]] = []
        for run_id in sorted(self.dirty | due):
            run = self.runs.get(run_id)
            if run is None or run.state.terminal:
                self.plans.pop(run_id, None)
                continue
            # Apply step changes until they settle (a step ending can start another).
            for _ in range(len(run.steps) + 2):
                p = plan(run, now)
                self._apply(run, p, now)
                if not p.steps and p.run_state is None:
                    break
            kills.extend(p.kills)
            if run.state.terminal:
                self.plans.pop(run_id, None)
            else:
                self.plans[run_id] = p
        self.dirty.clear()
        return kills

    def _apply(self, run: Run, p: Plan, now: float) -> None:
        for name, rec in p.steps.items():
            run.steps[name] = rec
            self.emit("step_updated", {"run": run.id, "step": name, "state": rec.state.value,
                                       "message": rec.message})
        if p.run_state is not None:
            run.state, run.message = p.run_state
            run.finished_at = now
            self.emit("run_finished", {"run": run.id, "job": run.job_id,
                                       "state": run.state.value, "message": run.message})
            self._retire(run)
        if p.steps or p.run_state is not None:
            self.journal.put(RUNS, run.id, run)

    def _retire(self, run: Run) -> None:
        self.finished[run.id] = None
        while len(self.finished) > self.keep_finished:
            old_id, _ = self.finished.popitem(last=False)
            old = self.runs.pop(old_id, None)
            for aid in old.attempts if old else ():
                self.owner.pop(aid, None)

    def next_wake(self) -> float | None:
        times = [p.wake_at for p in self.plans.values() if p.wake_at is not None]
        return min(times) if times else None

    def waiting_units(self) -> list[tuple[Run, Unit]]:
        """Units ready to launch now, from the latest plans."""
        return [(self.runs[rid], u) for rid, p in self.plans.items() for u in p.launch
                if rid in self.runs]

    # ------------------------------------------------------------ cron

    def cron_tick(self, now: float) -> list[Run]:
        """Start (or skip) the scheduled runs due at ``now``; returns runs started."""
        started = []
        for job in list(self.jobs.values()):
            for sched in job.spec.schedules:
                cursor = job.cursors.get(sched.id, job.created_at)
                active = self.active_runs(job.spec.id)
                decision = cron.decide(sched, cursor, now, len(active))
                if decision.cursor == cursor and decision.start is None:
                    continue
                for when, why in decision.skipped:
                    self._note_skip(job, sched.id, when, why)
                if decision.replace:
                    for run in active:
                        self.cancel_run(run, f"replaced by the run scheduled for "
                                             f"{_iso(decision.start or now)}")
                if decision.start is not None:
                    started.append(self.start_run(job.spec, now, f"schedule:{sched.id}",
                                                  decision.start))
                job.cursors[sched.id] = decision.cursor
                self.journal.put(JOBS, job.spec.id, job)
        return started

    def _note_skip(self, job: JobRecord, schedule_id: str, when: float, why: str) -> None:
        entry = {"schedule": schedule_id, "fire_time": when, "reason": why}
        job.skips = [*job.skips, entry][-MAX_SKIPS_KEPT:]
        self.emit("schedule_skipped", {"job": job.spec.id, **entry})


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
