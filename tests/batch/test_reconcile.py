"""The reconciler, pure: runs driven to the end by a simulated cluster.

A small simulator launches every unit the plan asks for, lets attempts end as a
hypothesis-chosen script says, applies kills, advances time, and checks the rules of
docs/batch.md after every step: parallelism, exact retry counts, DAG order, gangs
whole, no launches after a step ended, every run ends.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frameworks.batch.model import parse_job
from frameworks.batch.reconcile import MAX_LOST, observe, plan
from frameworks.batch.records import Attempt, AttemptState, Run, RunState, StepState, attempt_id

T0 = 1_000_000.0


def make_run(doc, cancel_at=None):
    spec = parse_job({"id": "job", **doc})
    return Run("r1", "job", spec, T0)


class Sim:
    """Drives a run: ``outcome(attempt) -> mesos state`` decides how each attempt ends."""

    def __init__(self, run, outcome, now=T0):
        self.run, self.outcome, self.now = run, outcome, now
        self.launched: list[list[Attempt]] = []
        self.max_active: Counter[str] = Counter()

    def apply(self, p):
        for name, rec in p.steps.items():
            self.run.steps[name] = rec
        if p.run_state is not None:
            self.run.state, self.run.message = p.run_state

    def put(self, a):
        self.run.attempts[a.id] = a

    def step(self):
        p = plan(self.run, self.now)
        self.apply(p)
        for aid, reason in p.kills:
            a = self.run.attempts[aid]
            self.put(dataclasses.replace(a, kill_reason=reason, kill_sent_at=self.now))
        batch = []
        for unit in p.launch:
            step = self.run.spec.step(unit.step)
            assert not self.run.steps[unit.step].state.terminal
            for dep in step.depends_on:  # DAG order
                dep_state = self.run.steps[dep].state
                assert dep_state == StepState.SUCCEEDED or (
                    dep_state == StepState.FAILED and self.run.spec.step(dep).allow_failure)
            group = []
            for i in unit.indices:
                a = Attempt(attempt_id(self.run.id, unit.step, i, unit.number), self.run.id,
                            unit.step, i, unit.number, AttemptState.LAUNCHING, self.now)
                assert a.id not in self.run.attempts, "an attempt id is never reused"
                self.put(a)
                group.append(a)
            batch.append(group)
        self.launched.extend(batch)
        for step in self.run.spec.steps:
            active = sum(1 for a in self.run.attempts.values() if a.step == step.name
                         and a.state.active)
            assert active <= step.parallelism
            self.max_active[step.name] = max(self.max_active[step.name], active)
        return p

    def settle(self):
        """Every active attempt runs, then ends (killed ones as KILLED)."""
        for a in list(self.run.attempts.values()):
            if not a.state.active:
                continue
            self.put(observe(a, "TASK_RUNNING", "", self.now) or a)
            a = self.run.attempts[a.id]
            end = "TASK_KILLED" if a.kill_reason else self.outcome(a)
            if end is not None:
                self.put(observe(a, end, f"ended {end}", self.now + 1) or a)

    def drive(self, limit=2000):
        for _ in range(limit):
            p = self.step()
            if self.run.state.terminal:
                return
            self.settle()
            self.now = max(self.now + 1, p.wake_at or 0)
        raise AssertionError("the run did not end")


def always(state):
    return lambda a: state


def test_success():
    sim = Sim(make_run({"command": "x", "completions": 3, "parallelism": 2}),
              always("TASK_FINISHED"))
    sim.drive()
    assert sim.run.state == RunState.SUCCEEDED
    assert len(sim.run.attempts) == 3 and sim.max_active["main"] == 2


@pytest.mark.parametrize("retries", [0, 1, 4])
def test_failing_task_gets_exactly_retries_plus_one_attempts(retries):
    sim = Sim(make_run({"command": "x", "retries": retries, "backoff": {"initial": 2}}),
              always("TASK_FAILED"))
    sim.drive()
    assert sim.run.state == RunState.FAILED
    assert len(sim.run.attempts) == retries + 1
    starts = sorted(a.created_at for a in sim.run.attempts.values())
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g >= 2 for g in gaps)  # each retry waited its backoff
    assert gaps == sorted(gaps)  # exponentially growing


def test_lost_attempts_use_no_retry_until_too_many():
    sim = Sim(make_run({"command": "x", "retries": 1}), always("TASK_LOST"))
    sim.drive()
    assert sim.run.state == RunState.FAILED
    assert len(sim.run.attempts) == MAX_LOST + 2  # 10 free losses, then 2 counted


def test_an_attempt_killed_by_a_drain_uses_no_retry():
    attempt = Attempt("a1", "r1", "main", 0, 1, AttemptState.RUNNING, T0)
    drained = observe(attempt, "TASK_KILLED", "Task killed", T0 + 1, "REASON_AGENT_DRAINING")
    assert drained is not None
    assert (drained.state, drained.counts, drained.exit_state) == (
        AttemptState.LOST, False, "TASK_KILLED")
    killed = observe(attempt, "TASK_KILLED", "Task killed", T0 + 1, "REASON_COMMAND_EXECUTOR_FAILED")
    assert killed is not None and (killed.state, killed.counts) == (AttemptState.KILLED, True)


def test_timeout_kills_and_fails_the_step():
    run = make_run({"command": "x", "timeout": 30, "completions": 2})
    sim = Sim(run, lambda a: None)  # attempts run forever
    sim.step()
    sim.settle()
    sim.now = T0 + 31
    p = sim.step()
    assert {k for k, _ in p.kills} == set(run.attempts)
    assert all(reason.startswith("timed out") for _, reason in p.kills)
    assert run.steps["main"].state == StepState.FAILED
    assert run.state == RunState.ACTIVE  # until the attempts have ended
    sim.settle()
    sim.step()
    assert run.state == RunState.FAILED and "timed out" in run.message


def test_cancel_kills_everything_and_ends_cancelled():
    run = make_run({"steps": [{"name": "a", "command": "x"},
                              {"name": "b", "command": "y", "depends_on": ["a"]}]})
    sim = Sim(run, lambda a: None)
    sim.step()
    sim.settle()
    run.cancel_requested, run.cancel_message = True, "stop it"
    p = sim.step()
    assert len(p.kills) == 1
    sim.settle()
    sim.step()
    assert run.state == RunState.CANCELLED
    assert run.steps["b"].state == StepState.CANCELLED
    assert all(not a.counts for a in run.attempts.values())


def test_failure_skips_dependants_unless_allowed():
    doc = {"command": "x", "steps": [
        {"name": "lint", "allow_failure": True}, {"name": "test"},
        {"name": "package", "depends_on": ["test", "lint"]},
        {"name": "deploy", "depends_on": ["package"]}]}
    fail = {"lint", "test"}
    sim = Sim(make_run(doc), lambda a: "TASK_FAILED" if a.step in fail else "TASK_FINISHED")
    sim.drive()
    states = {n: s.state for n, s in sim.run.steps.items()}
    assert states == {"lint": StepState.FAILED, "test": StepState.FAILED,
                      "package": StepState.SKIPPED, "deploy": StepState.SKIPPED}
    assert sim.run.state == RunState.FAILED
    assert not any(a.step in ("package", "deploy") for a in sim.run.attempts.values())
    fail.discard("test")
    sim2 = Sim(make_run(doc), lambda a: "TASK_FAILED" if a.step in fail else "TASK_FINISHED")
    sim2.drive()
    assert sim2.run.state == RunState.SUCCEEDED  # lint's failure was allowed


def test_gang_member_failure_restarts_the_whole_gang():
    failed_once: set[int] = set()

    def outcome(a):
        if a.index == 1 and a.number == 1:
            failed_once.add(a.index)
            return "TASK_FAILED"
        return None if a.number == 1 else "TASK_FINISHED"

    sim = Sim(make_run({"command": "x", "completions": 3, "gang": True, "retries": 1,
                        "backoff": {"initial": 0}}), outcome)
    sim.drive()
    assert sim.run.state == RunState.SUCCEEDED
    rounds = Counter(a.number for a in sim.run.attempts.values())
    assert rounds == {1: 3, 2: 3}
    first = [a for a in sim.run.attempts.values() if a.number == 1]
    assert sorted(a.kill_reason is not None for a in first) == [False, True, True]
    assert all(len(g) == 3 for g in sim.launched)  # whole gangs only


# ---------------------------------------------------------------- properties

ENDS = ["TASK_FINISHED", "TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_KILLED"]


@st.composite
def pipelines(draw):
    n = draw(st.integers(1, 4))
    steps = []
    for i in range(n):
        completions = draw(st.integers(1, 5))
        gang = draw(st.booleans()) and completions > 1
        steps.append({
            "name": f"s{i}", "command": "x", "completions": completions,
            "parallelism": completions if gang else draw(st.integers(1, completions)),
            "retries": draw(st.integers(0, 3)), "gang": gang,
            "allow_failure": draw(st.booleans()),
            "backoff": {"initial": draw(st.sampled_from([0, 1, 5])), "factor": 2},
            "depends_on": draw(st.lists(st.sampled_from([f"s{j}" for j in range(i)]),
                                        unique=True, max_size=2)) if i else []})
    return {"steps": steps}


@settings(max_examples=150)
@given(pipelines(), st.lists(st.sampled_from(ENDS), min_size=1, max_size=40))
def test_any_pipeline_ends_and_keeps_the_rules(doc, script):
    ends = iter(script)
    sim = Sim(make_run(doc), lambda a: next(ends, "TASK_FINISHED"))
    sim.drive()
    run = sim.run
    assert run.state.terminal
    assert all(not a.state.active for a in run.attempts.values())
    for step in run.spec.steps:
        rec = run.steps[step.name]
        mine = [a for a in run.attempts.values() if a.step == step.name]
        assert rec.state.terminal
        if rec.state == StepState.SUCCEEDED:
            finished = {a.index for a in mine if a.state == AttemptState.FINISHED}
            assert finished == set(range(step.completions))
        if not step.gang:
            for index in range(step.completions):
                tries = [a for a in mine if a.index == index]
                counted = sum(1 for a in tries if a.counts)
                lost = sum(1 for a in tries if a.state == AttemptState.LOST)
                assert counted + max(0, lost - MAX_LOST) <= step.retries + 1
                assert sorted(a.number for a in tries) == list(range(1, len(tries) + 1))
        else:
            rounds = Counter(a.number for a in mine)
            assert all(c == step.completions for c in rounds.values())
    if run.state == RunState.SUCCEEDED:
        for step in run.spec.steps:
            assert run.steps[step.name].state == StepState.SUCCEEDED or step.allow_failure


@given(pipelines())
def test_plan_is_idempotent_without_new_observations(doc):
    run = make_run(doc)
    first = plan(run, T0)
    for name, rec in first.steps.items():
        run.steps[name] = rec
    again = plan(run, T0)
    assert [u.key for u in again.launch] == [u.key for u in first.launch]
    assert not again.steps or all(r.state == run.steps[n].state for n, r in again.steps.items())


@pytest.mark.parametrize("gang", [False, True])
def test_metronome_on_failure_relaunches_until_the_deadline_from_the_runs_creation(gang):
    deadline = 30
    doc = {"id": "m", "run": {"cmd": "x", "restart": {
        "policy": "ON_FAILURE", "activeDeadlineSeconds": deadline}}}
    spec = parse_job(doc)
    if gang:  # the native gang step under the same rule
        spec = parse_job({**spec.to_json(), "steps": [
            {**spec.steps[0].to_json(), "name": "g", "gang": True, "completions": 2,
             "parallelism": 2}]})
    sim = Sim(Run("r1", "m", spec, T0), always("TASK_FAILED"))
    sim.drive()
    assert sim.run.state == RunState.FAILED
    ends = sorted(a.finished_at for a in sim.run.attempts.values())
    last_round = [a for a in sim.run.attempts.values() if a.finished_at == ends[-1]]
    assert ends[-1] >= T0 + deadline  # the failure that ended it came at the deadline
    earlier = [e for e in ends if e not in {a.finished_at for a in last_round}]
    assert earlier and all(e < T0 + deadline for e in earlier)  # each was relaunched
    assert len(sim.run.attempts) > 2


def test_metronome_never_fails_the_run_with_its_first_failure():
    spec = parse_job({"id": "m", "run": {"cmd": "x", "restart": {
        "policy": "NEVER", "activeDeadlineSeconds": 300}}})
    sim = Sim(Run("r1", "m", spec, T0), always("TASK_FAILED"))
    sim.drive()
    assert sim.run.state == RunState.FAILED and len(sim.run.attempts) == 1
