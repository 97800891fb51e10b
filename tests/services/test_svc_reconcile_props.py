"""Property tests of the pure reconciler and the rolling-deployment rule.

A small world model plays the cluster: tasks we launch start (in an order hypothesis
chooses), become healthy or fail, and tasks we kill go away some rounds later.  Each
round the reconciler's plan is checked against the invariants users rely on, and
every deployment must finish once the world lets it.
"""

from __future__ import annotations

import math
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from frameworks.services.deployments import floor_and_ceiling
from frameworks.services.reconcile import Settings, reconcile
from frameworks.services.views import AppView, DeploymentView, TaskView, is_healthy

fractions = st.sampled_from([0.0, 0.25, 0.5, 0.6, 0.75, 0.85, 1.0])


@st.composite
def upgrades(draw):
    instances = draw(st.integers(0, 8))
    old = draw(st.integers(0, 8))
    app = AppView(
        id="/web", instances=instances, config_version="v2",
        min_health_capacity=draw(fractions), max_over_capacity=draw(fractions),
        kill_selection=draw(st.sampled_from(["YOUNGEST_FIRST", "OLDEST_FIRST"])),
        has_health_checks=draw(st.booleans()),
    )
    tasks = [TaskView(f"old{i}", "/web", "v1", running=True,
                      healthy=True if app.has_health_checks else None,
                      staged_at=float(i), started_at=float(i)) for i in range(old)]
    return app, tasks


def healthy_count(tasks, app):
    return sum(1 for t in tasks if not t.kill_requested and is_healthy(t, app))


class World:
    """Applies plans: launches appear as staging, kills take effect later."""

    def __init__(self, app, tasks):
        self.app = app
        self.tasks = {t.id: t for t in tasks}
        self.next_id = 0
        self.now = 100.0

    def apply(self, plan):
        for kill in plan.kills:
            t = self.tasks[kill.task_id]
            self.tasks[kill.task_id] = replace(t, kill_requested_at=self.now)
        for _ in range(plan.launches.get(self.app.id, 0)):
            self.next_id += 1
            tid = f"new{self.next_id}"
            self.tasks[tid] = TaskView(tid, self.app.id, self.app.config_version,
                                       staged_at=self.now)

    def progress(self, data, allow_failures):
        """Hypothesis picks which tasks move on this round."""
        self.now += 1.0
        for tid in sorted(self.tasks):
            t = self.tasks[tid]
            if t.kill_requested and data.draw(st.booleans(), label=f"gone {tid}"):
                del self.tasks[tid]
            elif not t.running and data.draw(st.booleans(), label=f"start {tid}"):
                fails = allow_failures and data.draw(st.booleans(), label=f"fail {tid}")
                if fails:
                    del self.tasks[tid]
                else:
                    healthy = True if self.app.has_health_checks else None
                    self.tasks[tid] = replace(t, running=True, healthy=healthy,
                                              started_at=self.now)

    def settle(self):
        """Everything that can happen does."""
        self.now += 1.0
        for tid in sorted(self.tasks):
            t = self.tasks[tid]
            if t.kill_requested:
                del self.tasks[tid]
            elif not t.running:
                self.tasks[tid] = replace(t, running=True, started_at=self.now,
                                          healthy=True if self.app.has_health_checks else None)


def check_round(app, before, plan):
    """The invariants of one plan against the tasks it was computed from."""
    floor, ceiling = floor_and_ceiling(app, any(t.config_version != app.config_version
                                                for t in before))
    by_id = {t.id: t for t in before}
    killed = [k.task_id for k in plan.kills]
    assert len(killed) == len(set(killed)), "a task is killed twice in one plan"
    assert all(k in by_id and not by_id[k].kill_requested for k in killed)
    after = [t for t in before if t.id not in set(killed)]
    healthy_before = healthy_count(before, app)
    # the floor: never kill a healthy task when that leaves fewer than the floor
    assert healthy_count(after, app) >= min(floor, healthy_before)
    # the ceiling: never launch past it
    launches = plan.launches.get(app.id, 0)
    if launches:
        assert len(before) + launches <= max(ceiling, len(before))
    current = sum(1 for t in after if not t.kill_requested
                  and t.config_version == app.config_version)
    assert current + launches <= app.instances


@settings(max_examples=300)
@given(upgrades(), st.data())
def test_rolling_upgrade_keeps_floor_and_ceiling_and_finishes(case, data):
    app, tasks = case
    world = World(app, tasks)
    deployment = DeploymentView("d1", app.id, started_at=0.0, timeout=None)
    knobs = Settings(kill_retry_s=1e9, staging_timeout_s=1e9)
    finished = False
    for round_no in range(60):
        before = list(world.tasks.values())
        plan = reconcile({app.id: app}, before, [deployment], world.now, knobs)
        check_round(app, before, plan)
        if "d1" in plan.finished:
            finished = True
            break
        world.apply(plan)
        if round_no < 30:
            world.progress(data, allow_failures=round_no < 10)
        else:
            world.settle()
    assert finished, f"deployment did not finish: {sorted(world.tasks.values(), key=str)}"
    final = list(world.tasks.values())
    assert len(final) == app.instances
    assert all(t.config_version == "v2" and t.running for t in final)


@given(st.integers(0, 10), st.integers(0, 10), st.booleans())
def test_steady_state_converges_to_instances(instances, existing, oldest_first):
    app = AppView("/a", instances, "v1",
                  kill_selection="OLDEST_FIRST" if oldest_first else "YOUNGEST_FIRST")
    tasks = [TaskView(f"t{i}", "/a", "v1", running=True, staged_at=i, started_at=i)
             for i in range(existing)]
    plan = reconcile({"/a": app}, tasks, [], 50.0)
    kills = [k.task_id for k in plan.kills]
    assert existing - len(kills) + plan.launches.get("/a", 0) == instances
    if kills:
        ages = sorted(range(existing), reverse=not oldest_first)
        assert kills == [f"t{i}" for i in ages[:len(kills)]]


@given(st.integers(1, 6), st.floats(0, 100), st.floats(0, 100))
def test_backoff_holds_launches_until_due(instances, now, ready_at):
    app = AppView("/a", instances, "v1", launch_ready_at=ready_at)
    plan = reconcile({"/a": app}, [], [], now)
    if now < ready_at:
        assert not plan.launches and plan.waiting["/a"].count == instances
        assert plan.waiting["/a"].ready_at == ready_at
    else:
        assert plan.launches == {"/a": instances}


@given(st.integers(1, 5))
def test_unknown_apps_tasks_are_killed_once_until_retry(n):
    tasks = [TaskView(f"t{i}", "/gone", "v1", running=True) for i in range(n)]
    plan = reconcile({}, tasks, [], 10.0, Settings(kill_retry_s=5))
    assert sorted(k.task_id for k in plan.kills) == sorted(t.id for t in tasks)
    asked = [replace(t, kill_requested_at=8.0) for t in tasks]
    assert not reconcile({}, asked, [], 10.0, Settings(kill_retry_s=5)).kills
    assert len(reconcile({}, asked, [], 13.0, Settings(kill_retry_s=5)).kills) == n


@given(st.integers(1, 6), fractions, fractions)
def test_floor_and_ceiling_match_marathon(instances, mhc, moc):
    app = AppView("/a", instances, "v2", min_health_capacity=mhc, max_over_capacity=moc)
    floor, ceiling = floor_and_ceiling(app, has_old=True)
    assert floor == math.ceil(instances * mhc - 1e-9)
    assert ceiling >= floor + 1 or ceiling == math.floor(instances * (1 + moc) + 1e-9)
    assert ceiling > floor  # something can always move
