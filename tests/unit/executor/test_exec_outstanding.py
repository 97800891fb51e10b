"""What an executor holds for the agent until acknowledged (Mesos' executor API,
SUBSCRIBE): examples, and a Hypothesis state machine against a plain model."""

from __future__ import annotations

import os
import uuid as uuidlib

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesoslite.executor import Outstanding
from mesoslite.messages.executor import Update
from mesoslite.messages.mesos import ID, TaskInfo, TaskState, TaskStatus

EXAMPLES = int(os.environ.get("OUTSTANDING_EXAMPLES", "200"))
TASK_IDS = ["a", "b", "c"]


def task(task_id: str) -> TaskInfo:
    return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("agent"))


def update(task_id: str, state: TaskState = TaskState.TASK_RUNNING) -> Update:
    return Update(status=TaskStatus(task_id=ID(task_id), state=state,
                                    uuid=uuidlib.uuid4().bytes))


def test_a_task_is_held_until_one_of_its_updates_is_acknowledged():
    held = Outstanding()
    assert held.launched(task("a")) and held.launched(task("b"))
    assert not held.launched(task("a"))  # a repeated LAUNCH
    running, finished = update("a"), update("a", TaskState.TASK_FINISHED)
    held.sending(running)
    held.sending(finished)
    sub = held.subscribe()
    assert [t.task_id.value for t in sub.unacknowledged_tasks] == ["a", "b"]
    assert sub.unacknowledged_updates == [running, finished]  # in the order sent
    assert held.acknowledged("a", running.status.uuid) == running
    sub = held.subscribe()
    assert [t.task_id.value for t in sub.unacknowledged_tasks] == ["b"]
    assert sub.unacknowledged_updates == [finished]


def test_updates_not_yet_delivered_are_those_sent_since_the_last_subscribe():
    held = Outstanding()
    first, second, third = update("a"), update("b"), update("c")
    held.sending(first)
    held.subscribe()  # carries ``first``
    held.sending(second)
    held.sending(third)
    assert held.undelivered() == [second, third]
    held.delivered(second.status.uuid)
    assert held.pending(second.status.uuid) is None
    assert held.pending(third.status.uuid) == third
    assert held.undelivered() == [third]
    assert held.refused(third.status.uuid) == third  # refused: resending cannot help
    assert held.undelivered() == [] and held.updates == [first, second]


def test_an_update_needs_a_uuid():
    held = Outstanding()
    try:
        held.sending(Update(status=TaskStatus(task_id=ID("a"), state=TaskState.TASK_RUNNING)))
    except ValueError as exc:
        assert "uuid" in str(exc)
    else:
        raise AssertionError("an update without a uuid was held")


class OutstandingMachine(RuleBasedStateMachine):
    """Random launches, updates, deliveries, refusals, acknowledgements (also of
    unknown or repeated uuids) and subscriptions against a model of lists."""

    def __init__(self) -> None:
        super().__init__()
        self.held = Outstanding()
        self.tasks: list[str] = []  # given, no acknowledged update: the model
        self.updates: list[Update] = []  # sent, neither acknowledged nor refused
        self.undelivered: list[Update] = []
        self.sent: list[Update] = []  # every update ever sent

    @rule(task_id=st.sampled_from(TASK_IDS))
    def launch(self, task_id: str) -> None:
        new = self.held.launched(task(task_id))
        assert new == (task_id not in self.tasks)
        if new:
            self.tasks.append(task_id)

    @rule(task_id=st.sampled_from(TASK_IDS))
    def send(self, task_id: str) -> None:
        u = update(task_id)
        self.held.sending(u)
        self.updates.append(u)
        self.undelivered.append(u)
        self.sent.append(u)

    @precondition(lambda self: self.undelivered)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        u = data.draw(st.sampled_from(self.undelivered))
        self.held.delivered(u.status.uuid)
        self.undelivered.remove(u)

    @precondition(lambda self: self.updates)
    @rule(data=st.data())
    def refuse(self, data: st.DataObject) -> None:
        u = data.draw(st.sampled_from(self.updates))
        assert self.held.refused(u.status.uuid) == u
        self.updates.remove(u)
        if u in self.undelivered:
            self.undelivered.remove(u)

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        u = data.draw(st.sampled_from(self.sent))  # maybe acknowledged already
        expected = u if u in self.updates else None
        assert self.held.acknowledged(u.status.task_id.value, u.status.uuid) == expected
        for bucket in (self.updates, self.undelivered):
            if u in bucket:
                bucket.remove(u)
        if u.status.task_id.value in self.tasks:
            self.tasks.remove(u.status.task_id.value)

    @rule(task_id=st.sampled_from(TASK_IDS))
    def acknowledge_unknown(self, task_id: str) -> None:
        assert self.held.acknowledged(task_id, uuidlib.uuid4().bytes) is None
        if task_id in self.tasks:
            self.tasks.remove(task_id)

    @rule()
    def subscribe(self) -> None:
        sub = self.held.subscribe()
        assert [t.task_id.value for t in sub.unacknowledged_tasks] == self.tasks
        assert sub.unacknowledged_updates == self.updates
        self.undelivered.clear()

    @invariant()
    def holds_what_the_model_holds(self) -> None:
        assert self.held.updates == self.updates
        assert [t.task_id.value for t in self.held.tasks] == self.tasks
        assert self.held.undelivered() == self.undelivered


TestOutstanding = OutstandingMachine.TestCase
TestOutstanding.settings = settings(max_examples=EXAMPLES, stateful_step_count=40,
                                    deadline=None)
