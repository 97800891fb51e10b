"""The run reconciler, pure: a run's records + now -> what should happen.

``observe(attempt, mesos_state, message, now)`` folds one task status into an attempt.
``plan(run, now)`` looks at a run (its spec snapshot, step records, attempts) and
returns a ``Plan``: units ready to launch, tasks waiting out a backoff, attempts to
kill (and why), step and run records that changed, and when to look again.  Nothing
here does I/O or reads a clock; the scheduler applies plans and persists them.

Rules (docs/batch.md has the user's view):

* Steps run in DAG order (``dag.gate``); a step may start once its dependencies
  succeeded (or failed with ``allow_failure``), else it is skipped.
* A step has ``completions`` tasks; at most ``parallelism`` have an active attempt.
  A task succeeds with its first FINISHED attempt.  A failed attempt (FAILED, ERROR,
  or KILLED by someone else) uses one of the task's ``retries``; the next attempt
  waits ``backoff.delay(failures)`` after it ended.  A LOST attempt (never ran, its
  agent was lost, or it was killed because the operator drains its agent) uses no
  retry and is replaced at once, up to ``MAX_LOST`` times.
  When a task has no retries left the step fails and its other attempts are killed.
  With ``retry_deadline`` (Metronome's ``restart.activeDeadlineSeconds``) a failure at
  or after ``run.created_at + retry_deadline`` leaves no retries either.
* A gang step launches all its tasks as one unit; when a member fails the others are
  killed and, with retries left, the whole gang runs again (one retry per round).
* ``timeout`` is the step's active deadline from the moment it may start: then its
  attempts are killed and it fails.  Cancelling a run kills everything and marks the
  unfinished steps CANCELLED.
* A run ends when every step is terminal and no attempt is active: CANCELLED if it
  was cancelled, FAILED if a step failed without ``allow_failure`` (or was skipped),
  else SUCCEEDED.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass, field

from frameworks.batch.dag import gate, topological_order
from frameworks.batch.model import StepSpec
from frameworks.batch.records import Attempt, AttemptState, Run, RunState, StepRecord, StepState

MAX_LOST = 10  # lost attempts a task may have before further losses count as failures
KILL_RESEND_S = 10.0  # re-send KILL this often while an attempt we killed lives on
NO_DOCKER = "has no docker containerizer"  # the master's TASK_ERROR text for such agents
DRAINING = "REASON_AGENT_DRAINING"  # a kill because the operator drains the agent

_MESOS_TO_STATE = {
    "TASK_STAGING": AttemptState.STAGING, "TASK_STARTING": AttemptState.STARTING,
    "TASK_RUNNING": AttemptState.RUNNING, "TASK_KILLING": AttemptState.KILLING,
    "TASK_FINISHED": AttemptState.FINISHED, "TASK_FAILED": AttemptState.FAILED,
    "TASK_KILLED": AttemptState.KILLED, "TASK_ERROR": AttemptState.ERROR,
    "TASK_LOST": AttemptState.LOST, "TASK_DROPPED": AttemptState.LOST,
    "TASK_GONE": AttemptState.LOST, "TASK_GONE_BY_OPERATOR": AttemptState.LOST,
    "TASK_UNKNOWN": AttemptState.LOST, "TASK_UNREACHABLE": AttemptState.LOST,
}
_RANK = {AttemptState.LAUNCHING: 0, AttemptState.STAGING: 1, AttemptState.STARTING: 2,
         AttemptState.RUNNING: 3, AttemptState.KILLING: 4}


def observe(attempt: Attempt, mesos_state: str, message: str, now: float,
            reason: str | None = None) -> Attempt | None:
    """The attempt after a status update (its state, message and Mesos reason), or
    None when the update changes nothing.

    Terminal attempts never change again (late or duplicate updates are ignored).  An
    attempt we asked to kill counts as no failure however it ends; an ERROR because
    the agent cannot run Docker, or a kill because the agent is being drained
    (``REASON_AGENT_DRAINING``), is a LOST attempt (placed elsewhere, no retry used).
    """
    if not attempt.state.active:
        return None
    state = _MESOS_TO_STATE.get(mesos_state)
    if state is None:
        return None
    if state.active:
        # Only forward: a stale answer (say, a reconciliation STAGING after RUNNING)
        # must not move the attempt back.
        if _RANK[state] <= _RANK[attempt.state]:
            return None
        started = attempt.started_at
        if state == AttemptState.RUNNING and started is None:
            started = now
        return dataclasses.replace(attempt, state=state, started_at=started)
    if state == AttemptState.ERROR and NO_DOCKER in (message or ""):
        state = AttemptState.LOST
    if state == AttemptState.KILLED and reason == DRAINING:
        state = AttemptState.LOST
    counts = state in (AttemptState.FAILED, AttemptState.ERROR, AttemptState.KILLED)
    if attempt.kill_reason is not None:
        counts = False
    return dataclasses.replace(attempt, state=state, finished_at=now, message=message or "",
                               counts=counts, exit_state=mesos_state)


@dataclass(frozen=True)
class Unit:
    """Tasks to launch together: one task, or every task of a gang round."""

    run_id: str
    step: str
    indices: tuple[int, ...]
    number: int  # the attempt number each index gets (a gang's round)
    gang: bool = False

    @property
    def key(self) -> str:
        return f"{self.run_id}.{self.step}.{'gang' if self.gang else self.indices[0]}"


@dataclass
class Plan:
    launch: list[Unit] = field(default_factory=list)
    backoff: list[tuple[Unit, float]] = field(default_factory=list)  # (unit, ready at)
    kills: list[tuple[str, str]] = field(default_factory=list)  # (attempt id, reason)
    steps: dict[str, StepRecord] = field(default_factory=dict)  # changed records
    run_state: tuple[RunState, str] | None = None
    wake_at: float | None = None

    def wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)


@dataclass
class _Task:
    """One task index, summarised from its attempts."""

    done: bool = False
    active: bool = False
    failures: int = 0
    lost: int = 0
    attempts: int = 0
    last: Attempt | None = None


def _summarise(spec: StepSpec, attempts: list[Attempt]) -> list[_Task]:
    tasks = [_Task() for _ in range(spec.completions)]
    for a in sorted(attempts, key=lambda a: a.number):
        if a.index >= len(tasks):
            continue
        t = tasks[a.index]
        t.attempts = max(t.attempts, a.number)
        t.last = a
        if a.state == AttemptState.FINISHED:
            t.done = True
        elif a.state.active:
            t.active = True
        elif a.state == AttemptState.LOST:
            t.lost += 1
        elif a.counts:
            t.failures += 1
    return tasks


def plan(run: Run, now: float) -> Plan:
    """What should happen to ``run`` at ``now`` (see the module docstring)."""
    out = Plan()
    if run.state.terminal:
        return out
    by_step: dict[str, list[Attempt]] = defaultdict(list)
    for a in run.attempts.values():
        by_step[a.step].append(a)
    states = {name: rec.state.value for name, rec in run.steps.items()}
    allow = {s.name: s.allow_failure for s in run.spec.steps}
    for name in topological_order(run.spec.steps):
        spec = run.spec.step(name)
        rec = dataclasses.replace(run.steps[name])
        before = dataclasses.replace(rec)
        _plan_step(run, spec, rec, by_step[name], states, allow, now, out)
        states[name] = rec.state.value
        if rec != before:
            out.steps[name] = rec
    _kill_resends(run, now, out)
    _finish_run(run, out)
    return out


def _plan_step(run: Run, spec: StepSpec, rec: StepRecord, attempts: list[Attempt],
               states: dict[str, str], allow: dict[str, bool], now: float, out: Plan) -> None:
    if not rec.state.terminal and run.cancel_requested:
        _end(rec, StepState.CANCELLED, run.cancel_message or "run cancelled", now)
    if rec.state == StepState.WAITING:
        verdict = gate(spec, states, allow)
        if verdict == "skip":
            failed = [d for d in spec.depends_on if states.get(d) != StepState.SUCCEEDED
                      and not (states.get(d) == StepState.FAILED and allow.get(d))]
            _end(rec, StepState.SKIPPED, f"skipped: {', '.join(failed)} did not succeed", now)
        elif verdict == "ready":
            rec.state, rec.started_at = StepState.RUNNING, now
    if rec.state == StepState.RUNNING and spec.timeout is not None:
        deadline = (rec.started_at or now) + spec.timeout
        if now >= deadline:
            _end(rec, StepState.FAILED, f"timed out after {spec.timeout:g}s", now)
        else:
            out.wake(deadline)
    if rec.state.terminal:
        reason = {StepState.FAILED: rec.message or "step failed",
                  StepState.CANCELLED: "cancelled"}.get(rec.state, "step ended")
        _kill_all(attempts, reason, out)
        return
    if rec.state != StepState.RUNNING:
        return
    if spec.gang:
        _plan_gang(run, spec, rec, attempts, now, out)
    else:
        _plan_tasks(run, spec, rec, attempts, now, out)


def _end(rec: StepRecord, state: StepState, message: str, now: float) -> None:
    rec.state, rec.message, rec.finished_at = state, message, now


def _kill_all(attempts: list[Attempt], reason: str, out: Plan) -> None:
    for a in attempts:
        if a.state.active and a.kill_reason is None:
            out.kills.append((a.id, reason))


def _failures(task: _Task) -> int:
    return task.failures + max(0, task.lost - MAX_LOST)


def _plan_tasks(run: Run, spec: StepSpec, rec: StepRecord, attempts: list[Attempt],
                now: float, out: Plan) -> None:
    tasks = _summarise(spec, attempts)
    for index, task in enumerate(tasks):
        if not task.done and not task.active and _out_of_retries(run, spec, task):
            last = task.last.message if task.last else ""
            tries = "attempt" if task.attempts == 1 else "attempts"
            late = (f" (past the retry deadline of {spec.retry_deadline:g}s)"
                    if _failures(task) <= spec.retries else "")
            _end(rec, StepState.FAILED, f"task {index} failed after {task.attempts} {tries}"
                                        f"{late}: {last}".rstrip(": "), now)
            _kill_all(attempts, f"step {spec.name} failed", out)
            return
    if all(t.done for t in tasks):
        _end(rec, StepState.SUCCEEDED, "", now)
        return
    slots = spec.parallelism - sum(1 for t in tasks if t.active)
    for index, task in enumerate(tasks):
        if slots <= 0:
            break
        if task.done or task.active:
            continue
        unit = Unit(run.id, spec.name, (index,), task.attempts + 1)
        ready = _ready_at(spec, task)
        if ready <= now:
            out.launch.append(unit)
            slots -= 1
        else:
            out.backoff.append((unit, ready))
            out.wake(ready)


def _out_of_retries(run: Run, spec: StepSpec, task: _Task) -> bool:
    """Whether a task whose last attempt ended may not be relaunched: too many
    failures, or (``retry_deadline``) its last failure came too late."""
    if _failures(task) > spec.retries:
        return True
    return _past_retry_deadline(run, spec, task.last)


def _past_retry_deadline(run: Run, spec: StepSpec, last: Attempt | None) -> bool:
    # Decided by when the failure happened (not by now), as Metronome does, so a
    # relaunch that waits out a backoff past the deadline still happens.
    if spec.retry_deadline is None or last is None or not last.counts:
        return False
    ended = last.finished_at if last.finished_at is not None else run.created_at
    return ended >= run.created_at + spec.retry_deadline


def _ready_at(spec: StepSpec, task: _Task) -> float:
    """When the task's next attempt may start: after a backoff if its last failed."""
    last = task.last
    if last is None or last.finished_at is None:
        return 0.0
    if last.counts:
        return last.finished_at + spec.backoff.delay(_failures(task))
    return last.finished_at  # lost, or killed by us: at once


def _plan_gang(run: Run, spec: StepSpec, rec: StepRecord, attempts: list[Attempt],
               now: float, out: Plan) -> None:
    rounds: dict[int, list[Attempt]] = defaultdict(list)
    for a in attempts:
        rounds[a.number].append(a)
    current = max(rounds, default=0)
    members = rounds.get(current, [])
    every = tuple(range(spec.completions))
    if current and {a.index for a in members if a.state == AttemptState.FINISHED} == set(every):
        _end(rec, StepState.SUCCEEDED, "", now)
        return
    if any(a.state.active for a in members):
        broken = [a for a in members if not a.state.active and a.state != AttemptState.FINISHED]
        if broken:
            _kill_all(members, f"gang member {broken[0].index} ended {broken[0].state.value}",
                      out)
        return
    failures = sum(1 for n, group in rounds.items() if any(a.counts for a in group))
    lost_rounds = sum(1 for group in rounds.values()
                      if not any(a.counts for a in group)
                      and any(a.state == AttemptState.LOST for a in group))
    failures += max(0, lost_rounds - MAX_LOST)
    culprit = next((a for a in members if a.counts), members[0] if members else None)
    if failures > spec.retries or _past_retry_deadline(run, spec, culprit):
        detail = f": task {culprit.index}: {culprit.message}" if culprit else ""
        _end(rec, StepState.FAILED, f"gang failed after {current} rounds{detail}", now)
        return
    unit = Unit(run.id, spec.name, every, current + 1, gang=True)
    ended = [a.finished_at for a in members if a.finished_at is not None]
    ready = 0.0
    if ended:
        ready = max(ended)
        if any(a.counts for a in members):
            ready += spec.backoff.delay(failures)
    if ready <= now:
        out.launch.append(unit)
    else:
        out.backoff.append((unit, ready))
        out.wake(ready)


def _kill_resends(run: Run, now: float, out: Plan) -> None:
    """KILLs we sent whose attempt still lives are sent again, every KILL_RESEND_S."""
    for a in run.attempts.values():
        if a.state.active and a.kill_reason is not None:
            due = (a.kill_sent_at or 0.0) + KILL_RESEND_S
            if a.kill_sent_at is None or now >= due:
                out.kills.append((a.id, a.kill_reason))
            else:
                out.wake(due)


def _finish_run(run: Run, out: Plan) -> None:
    steps = {**run.steps, **out.steps}
    if not all(s.state.terminal for s in steps.values()):
        return
    killing = {k for k, _ in out.kills}
    if any(a.state.active for a in run.attempts.values()) or killing:
        return  # wait until every attempt has ended
    if run.cancel_requested:
        out.run_state = (RunState.CANCELLED, run.cancel_message or "cancelled")
        return
    allow = {s.name: s.allow_failure for s in run.spec.steps}
    for name in topological_order(run.spec.steps):
        rec = steps[name]
        if rec.state == StepState.SKIPPED or (rec.state == StepState.FAILED
                                              and not allow[name]):
            out.run_state = (RunState.FAILED, f"step {name} {rec.state.value.lower()}"
                             + (f": {rec.message}" if rec.message else ""))
            return
    out.run_state = (RunState.SUCCEEDED, "")
