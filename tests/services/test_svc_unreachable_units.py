"""unreachableStrategy's pure parts: the deadlines (``unreachable.due``), the task
records through status updates, and what the reconciler then launches or kills."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frameworks.services import operations, unreachable
from frameworks.services.model import UnreachableEnabled, app_json
from frameworks.services.reconcile import reconcile
from frameworks.services.state import ServicesState
from frameworks.services.tasks import TaskRecord, task_counts
from frameworks.services.validation import Invalid, parse_app
from mesoslite.messages.mesos import ID, TaskState, TaskStatus

T0 = 1_000_000.0


def status(task_id: str, state: TaskState) -> TaskStatus:
    return TaskStatus(task_id=ID(task_id), state=state)


def one_instance(strategy: Any = None, **extra: Any) -> tuple[ServicesState, TaskRecord]:
    """An app of one instance whose task runs (its deployment finished)."""
    state = ServicesState()
    body = {"id": "/u", "cmd": "sleep 1", "instances": 1, **extra}
    if strategy is not None:
        body["unreachableStrategy"] = strategy
    app, _ = parse_app(body)
    d = operations.create_app(state, app, T0)
    operations.finish_deployment(state, d.id, T0)
    stored = state.apps["/u"]
    task = TaskRecord(id="u.1", app_id="/u", version=stored.version or "",
                      config_version=stored.config_version, agent_id="a1", hostname="h1",
                      staged_at=T0, state="TASK_RUNNING", started_at=T0)
    state.put_task(task)
    return state, task


def launches(state: ServicesState, now: float) -> int:
    apps, tasks, deployments = state.views({})
    return reconcile(apps, tasks, deployments, now).launches.get("/u", 0)


def kills(state: ServicesState, now: float) -> list[str]:
    apps, tasks, deployments = state.views({})
    return [k.task_id for k in reconcile(apps, tasks, deployments, now).kills]


# ---------------------------------------------------------------- the deadlines


def test_replaced_after_inactive_then_expunged_while_still_unreachable() -> None:
    state, task = one_instance({"inactiveAfterSeconds": 60, "expungeAfterSeconds": 120})
    state.apply_status(status("u.1", TaskState.TASK_UNREACHABLE), T0 + 10)
    assert state.tasks["u.1"].unreachable_since == T0 + 10
    # a reconciliation answer does not restart the clock
    state.apply_status(status("u.1", TaskState.TASK_UNREACHABLE), T0 + 40)
    unreachable.apply_due(state, T0 + 69.9)
    assert not task.inactive and launches(state, T0 + 69.9) == 0
    assert kills(state, T0 + 69.9) == []  # not "stuck in staging" either
    unreachable.apply_due(state, T0 + 70)
    assert task.inactive and launches(state, T0 + 70) == 1  # the replacement
    unreachable.apply_due(state, T0 + 129.9)
    assert "u.1" in state.tasks
    unreachable.apply_due(state, T0 + 130)
    assert "u.1" not in state.tasks  # expunged: unknown (and killed) if it comes back


def test_back_after_it_was_replaced_it_runs_beside_the_replacement_until_expunged() -> None:
    state, task = one_instance({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 300})
    state.apply_status(status("u.1", TaskState.TASK_UNREACHABLE), T0)
    unreachable.apply_due(state, T0)
    assert task.inactive and launches(state, T0) == 1
    state.apply_status(status("u.1", TaskState.TASK_RUNNING), T0 + 50)
    assert task.running and task.inactive  # still replaced: two tasks for one instance
    assert launches(state, T0 + 50) == 1 and kills(state, T0 + 50) == []
    unreachable.apply_due(state, T0 + 299)
    assert task.kill_requested_at is None
    unreachable.apply_due(state, T0 + 300)
    assert task.kill_requested_at == T0 + 300 and "expunged" in (task.kill_reason or "")


def test_back_before_it_was_replaced_it_is_the_instance_again() -> None:
    state, task = one_instance({"inactiveAfterSeconds": 60, "expungeAfterSeconds": 60})
    state.apply_status(status("u.1", TaskState.TASK_UNREACHABLE), T0)
    state.apply_status(status("u.1", TaskState.TASK_RUNNING), T0 + 30)
    assert task.unreachable_since is None and not task.inactive
    unreachable.apply_due(state, T0 + 1000)
    assert "u.1" in state.tasks and task.kill_requested_at is None
    assert launches(state, T0 + 1000) == 0


def test_disabled_never_replaces_nor_forgets() -> None:
    state, task = one_instance("disabled")
    state.apply_status(status("u.1", TaskState.TASK_UNREACHABLE), T0)
    later = T0 + 10 * 86400
    unreachable.apply_due(state, later)
    assert "u.1" in state.tasks and not task.inactive
    assert launches(state, later) == 0 and kills(state, later) == []
    counts = task_counts(state.app_tasks("/u"), False)
    assert counts["tasksRunning"] == 0 and counts["tasksStaged"] == 0
    state.apply_status(status("u.1", TaskState.TASK_RUNNING), later)
    assert task.running and launches(state, later) == 0


def test_the_default_replaces_at_once() -> None:
    state, _ = one_instance()
    out = state.apply_status(status("u.1", TaskState.TASK_UNREACHABLE), T0)
    assert out.terminal and not out.failed and "u.1" not in state.tasks
    assert launches(state, T0) == 1


def test_apps_with_persistent_volumes_default_to_disabled() -> None:
    app, _ = parse_app({"id": "/r", "cmd": "x", "container": {
        "type": "MESOS", "volumes": [{"containerPath": "data", "persistent": {"size": 8}}]}})
    assert app.unreachable is None and app_json(app)["unreachableStrategy"] == "disabled"
    plain, _ = parse_app({"id": "/p", "cmd": "x"})
    assert plain.unreachable == UnreachableEnabled()
    assert app_json(plain)["unreachableStrategy"] == {"inactiveAfterSeconds": 0,
                                                      "expungeAfterSeconds": 0}


def test_killing_an_unreachable_task_expunges_it() -> None:
    from frameworks.services.workload import ServicesWorkload
    from mesoslite.framework import LaunchBackoff

    state, _ = one_instance("disabled")
    state.apply_status(status("u.1", TaskState.TASK_UNREACHABLE), T0)
    operations.kill_tasks(state, ["u.1"], T0)
    plan = ServicesWorkload(state).plan(T0, True, LaunchBackoff())
    assert [k.task_id for k in plan.kills] == ["u.1"] and "u.1" not in state.tasks


@pytest.mark.parametrize(("strategy", "message"), [
    ({"inactiveAfterSeconds": -1, "expungeAfterSeconds": 10},
     "inactiveAfterSeconds (-1) must be greater than or equal to 0"),
    ({"inactiveAfterSeconds": 20, "expungeAfterSeconds": 10},
     "inactiveAfterSeconds (20) must be less or equal to expungeAfterSeconds, which is 10"),
    ({"expungeAfterSeconds": -5}, ("inactiveAfterSeconds (0) must be less or equal to "
                                  "expungeAfterSeconds, which is -5")),
])
def test_marathon_s_rules(strategy: dict[str, int], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_app({"id": "/v", "cmd": "x", "unreachableStrategy": strategy})
    assert caught.value.details == [("/unreachableStrategy/inactiveAfterSeconds", [message])]


def test_other_strings_are_refused() -> None:
    with pytest.raises(Invalid) as caught:
        parse_app({"id": "/v", "cmd": "x", "unreachableStrategy": "sometimes"})
    assert caught.value.details[0][0] == "/unreachableStrategy"


@given(inactive=st.integers(0, 1000), extra=st.integers(0, 1000),
       reported=st.integers(0, 5000), now=st.integers(0, 10_000),
       back=st.booleans(), replaced=st.booleans())
def test_due_follows_the_deadlines(inactive: int, extra: int, reported: int, now: int,
                                   back: bool, replaced: bool) -> None:
    strategy = UnreachableEnabled(inactive, inactive + extra)
    state = "TASK_RUNNING" if back else "TASK_UNREACHABLE"
    task = TaskRecord(id="t", app_id="/a", version="v", config_version="v", agent_id="a",
                      hostname="h", staged_at=0.0, state=state, unreachable_since=reported,
                      inactive=replaced or back)
    got = unreachable.due(task, strategy, reported + now)
    if now >= inactive + extra:
        assert got == ("kill" if back else "expunge")
    elif now >= inactive and not replaced and not back:
        assert got == "inactive"
    else:
        assert got is None
    assert unreachable.due(task, None, reported + now) is None  # disabled
