"""The kit's core, one behaviour at a time, in a world with a fake master (world.py)."""

from __future__ import annotations

from mesoslite.framework import KitSettings
from mesoslite.framework.events import (
    CallOutcome,
    Disconnected,
    Error,
    Placed,
    Rescind,
    Subscribed,
)
from mesoslite.framework.instructions import (
    Accept,
    Decline,
    Kill,
    Place,
    Reconcile,
    Suppress,
)
from tests.unit.framework.world import World, offer


def kinds(instructions: list) -> list[str]:
    return [type(i).__name__ for i in instructions]


def subscribed(world: World) -> None:
    world.feed(Subscribed("fw-1"))
    world.step()


def test_nothing_is_launched_before_the_master_answered_for_every_known_task() -> None:
    w = World(count=1)
    w.disk["i0-old"] = (0, "TASK_RUNNING")
    w.crash()  # start from the disk: one task the framework believes runs
    w.answers_reconciliation = False
    w.feed(Subscribed("fw-1"))
    first = w.step()
    assert Reconcile((("i0-old", None),)) in first and Reconcile(()) in first
    assert not w.core.reconciled  # the master said nothing yet...
    w.offers(offer("o1", "a1", 4))
    assert not any(isinstance(i, Place) for i in w.step())  # ...so nothing is placed
    w.now += 6.0  # past reconcile_wait_s: the master never answered
    after = w.step()
    assert w.core.reconciled and not any(isinstance(i, Place) for i in after)
    assert w.workload.live() == {0: "i0-old"}  # still believed live: not launched again


def test_an_answer_for_every_task_ends_the_wait_at_once() -> None:
    w = World(count=1)
    w.disk["i0-old"] = (0, "TASK_RUNNING")
    w.crash()
    w.feed(Subscribed("fw-1"))
    w.step()  # sends the reconciliation; the master does not know the task...
    w.step()
    assert w.core.reconciled  # ...and said so (TASK_LOST) at once
    w.offers(offer("o1", "a1", 4))
    assert any(isinstance(i, Place) for i in w.step())  # the lost instance is replaced


def test_revive_and_suppress_follow_demand() -> None:
    w = World(count=2)
    subscribed(w)
    assert w.suppressed is False  # two instances wait
    w.offers(offer("o1", "a1", 4))
    w.step()
    w.answer_place()
    sent = w.step()
    assert kinds(sent).count("Accept") == 1
    w.finish_accept(CallOutcome.OK)
    assert w.suppressed is True and isinstance(w.sent[-1], Suppress)  # nothing waits now
    task = next(iter(w.master))
    w.agent_update(task, "TASK_FAILED")
    w.deliver(task)
    w.step()
    assert w.suppressed is False  # the failed instance waits again


def test_an_unknown_live_task_is_killed_at_most_every_retry_interval() -> None:
    w = World(count=0)
    subscribed(w)
    from mesoslite.framework.events import Update
    from mesoslite.messages.mesos import ID, TaskState, TaskStatus

    stray = Update(TaskStatus(task_id=ID("stray"), state=TaskState.TASK_RUNNING,
                              agent_id=ID("a1"), uuid=b"u1"))
    w.feed(stray)
    w.feed(stray)  # resent
    kills = [i for i in w.step() if isinstance(i, Kill)]
    assert [k.task_id for k in kills] == ["stray"]
    w.now += w.core.settings.kill_retry_s
    w.feed(stray)
    assert [i.task_id for i in w.step() if isinstance(i, Kill)] == ["stray"]


def test_offers_that_vanish_while_the_engine_thinks_are_not_accepted() -> None:
    w = World(count=2)
    subscribed(w)
    w.offers(offer("o1", "a1", 1), offer("o2", "a2", 1))
    w.step()
    w.feed(Rescind("o2"))
    w.answer_place()
    sent = w.step()
    accepts = [i for i in sent if isinstance(i, Accept)]
    assert [a.offer_ids for a in accepts] == [("o1",)]
    assert len(w.workload.live()) == 1  # the instance meant for a2 was never recorded


def test_a_refused_accept_gives_its_tasks_back() -> None:
    w = World(count=1)
    subscribed(w)
    w.offers(offer("o1", "a1", 1))
    w.step()
    w.answer_place()
    w.step()
    w.finish_accept(CallOutcome.REFUSED)
    assert w.workload.live() == {}  # written off (DROPPED): the instance waits again
    assert w.step() and w.suppressed is False


def test_a_launch_with_no_word_is_asked_about_after_the_grace_period() -> None:
    w = World(count=1)
    subscribed(w)
    w.offers(offer("o1", "a1", 1))
    w.step()
    w.answer_place()
    w.step()
    w.finish_accept(CallOutcome.UNKNOWN)  # the connection broke: did it arrive?
    asked = [i for i in w.step() if isinstance(i, Reconcile) and i.tasks]
    assert [t for t, _ in asked[0].tasks] == list(w.workload.live().values())


def test_unused_offers_are_held_while_work_waits_then_declined() -> None:
    w = World(count=1, settings=KitSettings(offer_hold_s=1.0))
    subscribed(w)
    w.offers(offer("o1", "a1", 0.5))  # too small
    w.step()
    w.answer_place()
    assert not any(isinstance(i, Decline) for i in w.step())  # held: another may come
    w.now += 1.0
    declined = [i for i in w.step() if isinstance(i, Decline)]
    assert declined == [Decline(("o1",), w.core.settings.refuse_waiting_s)]


def test_a_lost_subscription_voids_the_round_and_the_offers() -> None:
    w = World(count=1)
    subscribed(w)
    w.offers(offer("o1", "a1", 4))
    w.step()
    place = w.pending_places.pop()
    w.feed(Disconnected())
    w.feed(Placed(place.round_id, None, "too late"))
    assert not w.core.held and not any(isinstance(i, Accept) for i in w.step())


def test_a_removed_framework_forgets_its_id_and_backs_off() -> None:
    w = World(count=0)
    subscribed(w)
    assert w.core.framework_id == "fw-1"
    w.feed(Error("Framework has been removed"))
    assert w.core.framework_id is None
    delays = [w.core.resubscribe_delay() for _ in range(4)]
    assert delays[-1] > delays[0]
    w.feed(Error("Framework is not authorized"))
    w.feed(Subscribed("fw-2"))
    assert w.core.framework_id == "fw-2"


def test_acknowledgements_wait_for_the_write() -> None:
    w = World(count=1)
    subscribed(w)
    w.offers(offer("o1", "a1", 1))
    w.step()
    w.answer_place()
    w.step()
    w.finish_accept(CallOutcome.OK)
    task = next(iter(w.master))
    w.agent_update(task, "TASK_RUNNING")
    w.deliver(task)
    assert w.acked == []  # folded in, not yet written
    w.step()
    assert [(t, s) for t, _, s in w.acked] == [(task, "TASK_RUNNING")]
    assert w.disk[task][1] == "TASK_RUNNING"


def test_a_wake_up_already_due_does_not_keep_the_loop_spinning() -> None:
    """A workload that asks to be woken at a time already past (batch's next backoff while
    it is not subscribed, say) gets its tick; the next wake-up is not in the past again."""
    from mesoslite.framework import Plan

    w = World(count=0)
    w.workload.plan = lambda now, ready, backoff: Plan(wake_at=now - 5.0)  # type: ignore
    w.step()
    assert w.core.next_wake() is None  # not subscribed: nothing else falls due
    w.workload.plan = lambda now, ready, backoff: Plan(wake_at=now + 5.0)  # type: ignore
    w.step()
    assert w.core.next_wake() == w.now + 5.0
