"""The scheduler driver against a fake master over real loopback HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from mesoslite.messages.mesos import (
    ID,
    FrameworkInfo,
    Offer,
    OperationType,
    Resource,
    Scalar,
    TaskState,
    TaskStatus,
    ValueType,
)
from mesoslite.messages.scheduler import (
    CallType,
    Error,
    Event,
    EventType,
    Failure,
    Offers,
    Rescind,
    Update,
    encode_record,
)
from mesoslite.scheduler import (
    CallError,
    Driver,
    DriverAborted,
    MasterConnectionError,
    MasterUnreachableError,
    NotSubscribedError,
    Scheduler,
    task_info,
)
from mesoslite.scheduler import driver as driver_module
from mesoslite.scheduler.recordio import encode
from mesoslite.testing.poll import within
from tests.unit.scheduler.conftest import DEADLINE, HANGUP, FakeMaster, Recorder, dead_url

INFO = FrameworkInfo(user="alice", name="test-framework")


def make_driver(scheduler: Scheduler, master: str | list[str], **options: Any) -> Driver:
    options.setdefault("backoff_initial", 0.01)
    options.setdefault("backoff_max", 0.05)
    return Driver(scheduler, INFO, master, **options)


def offer(offer_id: str = "o1", agent: str = "a1") -> Offer:
    cpus = Resource(name="cpus", type=ValueType.SCALAR, scalar=Scalar(4))
    mem = Resource(name="mem", type=ValueType.SCALAR, scalar=Scalar(4096))
    return Offer(
        id=ID(offer_id),
        framework_id=ID("fw-1"),
        agent_id=ID(agent),
        hostname="host-1",
        resources=[cpus, mem],
    )


def update(task: str, uuid: bytes | None, state: TaskState = TaskState.TASK_RUNNING) -> Event:
    status = TaskStatus(task_id=ID(task), state=state, agent_id=ID("a1"), uuid=uuid)
    return Event(EventType.UPDATE, update=Update(status=status))


async def subscribed(recorder: Recorder, count: int = 1) -> None:
    await recorder.until(lambda: len(recorder.named("subscribed")) >= count, "SUBSCRIBED")


async def test_subscribe_delivers_subscribed(master: FakeMaster, recorder: Recorder, start):
    driver = make_driver(recorder, master.url)
    start(driver)
    await subscribed(recorder)
    framework_id, master_info = recorder.named("subscribed")[0]
    assert framework_id == "fw-1" and master_info.id == "master-1"
    assert driver.subscribed and driver.framework_id == "fw-1"
    assert driver.stream_id == master.stream_ids[0]
    assert driver.leader == master.url + "/api/v1/scheduler"
    (sub,) = master.calls(CallType.SUBSCRIBE)
    assert sub.call.framework_id is None
    assert sub.call.subscribe is not None
    assert sub.call.subscribe.framework_info.name == "test-framework"
    assert sub.headers["Content-Type"] == "application/json"
    assert sub.headers["Accept"] == "application/json"


async def test_offers_delivered_and_launch_carries_stream_id(
    master: FakeMaster, recorder: Recorder, start
):
    async def launch(driver: Driver, offers: list[Offer]) -> None:
        tasks = [task_info("t1", "t1", offers[0].agent_id, cmd="true", cpus=1, mem=64)]
        await driver.launch(offers, tasks)

    recorder.hooks["offers"] = launch
    start(make_driver(recorder, master.url))
    await subscribed(recorder)
    master.push(Event(EventType.OFFERS, offers=Offers(offers=[offer()])))
    await master.until(lambda: master.calls(CallType.ACCEPT), "ACCEPT")
    (offers,) = recorder.named("offers")[0]
    assert [o.id.value for o in offers] == ["o1"] and isinstance(offers[0], Offer)
    (accept,) = master.calls(CallType.ACCEPT)
    assert accept.headers["Mesos-Stream-Id"] == master.stream_ids[0]
    body = json.loads(accept.body)
    assert body["type"] == "ACCEPT" and body["framework_id"] == {"value": "fw-1"}
    assert body["accept"]["offer_ids"] == [{"value": "o1"}]
    (operation,) = body["accept"]["operations"]
    assert operation["type"] == OperationType.LAUNCH.value
    (task,) = operation["launch"]["task_infos"]
    assert task["agent_id"] == {"value": "a1"} and task["command"]["value"] == "true"
    assert {r["name"]: r["scalar"]["value"] for r in task["resources"]} == {"cpus": 1, "mem": 64}


async def test_every_call_reaches_the_master(master: FakeMaster, recorder: Recorder, start):
    driver = make_driver(recorder, master.url)
    start(driver)
    await subscribed(recorder)
    await driver.decline(["o1", ID("o2")], refuse_seconds=30)
    await driver.revive(["web"])
    await driver.suppress()
    await driver.kill("t1", "a1", grace_period=1.5)
    await driver.shutdown("e1", "a1")
    await driver.acknowledge("a1", "t1", b"\x00\x01")
    await driver.reconcile([("t1", "a1"), ("t2", None)])
    await driver.reconcile()
    await driver.message("a1", "e1", b"hi")
    types = [r.call.type for r in master.received[1:]]
    assert types == [
        CallType.DECLINE,
        CallType.REVIVE,
        CallType.SUPPRESS,
        CallType.KILL,
        CallType.SHUTDOWN,
        CallType.ACKNOWLEDGE,
        CallType.RECONCILE,
        CallType.RECONCILE,
        CallType.MESSAGE,
    ]
    assert all(r.headers["Mesos-Stream-Id"] == master.stream_ids[0] for r in master.received[1:])
    bodies = [json.loads(r.body) for r in master.received[1:]]
    assert bodies[0]["decline"] == {
        "offer_ids": [{"value": "o1"}, {"value": "o2"}],
        "filters": {"refuse_seconds": 30.0},
    }
    assert bodies[1]["revive"] == {"roles": ["web"]}
    assert bodies[3]["kill"]["kill_policy"] == {"grace_period": {"nanoseconds": 1_500_000_000}}
    assert bodies[5]["acknowledge"]["uuid"] == "AAE="  # base64, as protobuf JSON
    assert bodies[6]["reconcile"]["tasks"][1] == {"task_id": {"value": "t2"}}
    assert bodies[7]["reconcile"] == {}
    assert bodies[8]["message"]["data"] == "aGk="


async def test_implicit_ack_after_update_callback(master: FakeMaster, recorder: Recorder, start):
    acks_seen_by_callback: list[int] = []

    async def on_update(driver: Driver, status: TaskStatus) -> None:
        acks_seen_by_callback.append(len(master.calls(CallType.ACKNOWLEDGE)))

    recorder.hooks["update"] = on_update
    start(make_driver(recorder, master.url))
    await subscribed(recorder)
    master.push(update("t0", None))  # master-generated: no uuid, no ack
    master.push(update("t1", b"uuid-1"))
    await master.until(lambda: master.calls(CallType.ACKNOWLEDGE), "ACKNOWLEDGE")
    (ack,) = master.calls(CallType.ACKNOWLEDGE)
    assert ack.call.acknowledge is not None
    assert ack.call.acknowledge.uuid == b"uuid-1"
    assert ack.call.acknowledge.task_id.value == "t1"
    assert ack.call.acknowledge.agent_id.value == "a1"
    assert ack.headers["Mesos-Stream-Id"] == master.stream_ids[0]
    assert acks_seen_by_callback == [0, 0]  # sent only after the callback returned


async def test_explicit_acknowledgements(master: FakeMaster, recorder: Recorder, start):
    async def on_update(driver: Driver, status: TaskStatus) -> None:
        assert status.agent_id is not None and status.uuid is not None
        await driver.acknowledge(status.agent_id, status.task_id, status.uuid)

    recorder.hooks["update"] = on_update
    driver = make_driver(recorder, master.url, implicit_acknowledgements=False)
    start(driver)
    await subscribed(recorder)
    master.push(update("t1", b"u1"))
    await recorder.until(lambda: recorder.named("update"), "update")
    await driver.revive()  # a later round trip: an implicit ack would be in by now
    assert len(master.calls(CallType.ACKNOWLEDGE)) == 1


async def test_failed_update_callback_is_not_acknowledged(
    master: FakeMaster, recorder: Recorder, start
):
    async def on_update(driver: Driver, status: TaskStatus) -> None:
        if status.task_id.value == "bad":
            raise RuntimeError("bug in the framework")

    recorder.hooks["update"] = on_update
    start(make_driver(recorder, master.url))
    await subscribed(recorder)
    master.push(update("bad", b"u-bad"))
    master.push(update("good", b"u-good"))
    await master.until(lambda: master.calls(CallType.ACKNOWLEDGE), "ACKNOWLEDGE")
    acks = [r.call.acknowledge.uuid for r in master.calls(CallType.ACKNOWLEDGE)]  # type: ignore[union-attr]
    assert acks == [b"u-good"]


async def test_other_events_reach_their_callbacks(master: FakeMaster, recorder: Recorder, start):
    start(make_driver(recorder, master.url))
    await subscribed(recorder)
    master.push(Event(EventType.RESCIND, rescind=Rescind(offer_id=ID("o9"))))
    master.push(
        Event(EventType.FAILURE, failure=Failure(agent_id=ID("a1"), executor_id=ID("e1"), status=9))
    )
    master.push(encode(b'{"type": "NOT_AN_EVENT"}'))  # undecodable: skipped, stream kept
    master.push(Event(EventType.HEARTBEAT))
    master.push(Event(EventType.FAILURE, failure=Failure(agent_id=ID("a2"))))
    await recorder.until(lambda: len(recorder.named("failure")) == 2, "two failures")
    assert recorder.named("rescinded") == [("o9",)]
    assert recorder.named("failure") == [("a1", "e1", 9), ("a2", None, None)]
    assert len(master.subscribes) == 1


async def test_records_split_across_chunks(master: FakeMaster, recorder: Recorder, start):
    start(make_driver(recorder, master.url))
    await subscribed(recorder)
    data = encode_record(Event(EventType.RESCIND, rescind=Rescind(offer_id=ID("o1"))))
    data += encode_record(Event(EventType.RESCIND, rescind=Rescind(offer_id=ID("o2"))))
    for cut in (1, 5, len(data) - 3):
        master.push(data[:cut])
        data = data[cut:]
    master.push(data)
    await recorder.until(lambda: len(recorder.named("rescinded")) == 2, "two rescinds")
    assert recorder.named("rescinded") == [("o1",), ("o2",)]


async def test_resubscribes_with_framework_id_after_drop(
    master: FakeMaster, recorder: Recorder, start
):
    driver = make_driver(recorder, master.url)
    start(driver)
    await subscribed(recorder)
    master.drop()
    await subscribed(recorder, 2)
    assert recorder.names() == ["subscribed", "disconnected", "subscribed"]
    second = master.subscribes[1]
    assert second.framework_id == ID("fw-1")
    assert second.subscribe is not None and second.subscribe.framework_info.id == ID("fw-1")
    assert driver.stream_id == master.stream_ids[1]


async def test_heartbeat_timeout_triggers_resubscribe(make_master, recorder: Recorder, start):
    master = await make_master(heartbeat=0.05)  # and it never sends one
    start(make_driver(recorder, master.url, heartbeat_grace=2))
    await subscribed(recorder, 2)
    assert "disconnected" in recorder.names()
    assert master.subscribes[1].framework_id == ID("fw-1")


async def test_heartbeats_keep_the_stream_alive(make_master, recorder: Recorder, start):
    master = await make_master(heartbeat=0.05, send_heartbeats=True)
    start(make_driver(recorder, master.url, heartbeat_grace=4))
    await master.until(lambda: master.heartbeats_sent >= 10, "ten heartbeats")
    assert len(master.subscribes) == 1 and "disconnected" not in recorder.names()


async def test_follows_redirect_to_leader(make_master, recorder: Recorder, start):
    leader = await make_master()
    follower = await make_master(redirect_to=leader.url)
    driver = make_driver(recorder, follower.url)
    start(driver)
    await subscribed(recorder)
    assert follower.redirects == 1
    assert driver.leader == leader.url + "/api/v1/scheduler"
    await driver.decline(["o1"])
    assert len(leader.calls(CallType.DECLINE)) == 1 and follower.redirects == 1


async def test_tries_next_master_when_one_is_down(master: FakeMaster, recorder: Recorder, start):
    driver = make_driver(recorder, [dead_url(), master.url])
    start(driver)
    await subscribed(recorder)
    assert driver.leader == master.url + "/api/v1/scheduler"


async def test_gives_up_after_max_reconnect_attempts(recorder: Recorder):
    url = dead_url()
    driver = make_driver(recorder, url, max_reconnect_attempts=2)
    with pytest.raises(MasterUnreachableError, match=url.split("//")[1]):
        await asyncio.wait_for(driver.run(), DEADLINE)


async def test_error_event_aborts_driver(master: FakeMaster, recorder: Recorder, start):
    task = start(make_driver(recorder, master.url))
    await subscribed(recorder)
    master.push(Event(EventType.ERROR, error=Error(message="Framework has been removed")))
    with pytest.raises(DriverAborted, match="Framework has been removed"):
        await asyncio.wait_for(task, DEADLINE)
    assert recorder.named("error") == [("Framework has been removed",)]
    assert len(master.subscribes) == 1


async def test_error_event_without_abort(master: FakeMaster, recorder: Recorder, start):
    task = start(make_driver(recorder, master.url, abort_on_error=False))
    await subscribed(recorder)
    master.push(Event(EventType.ERROR, error=Error(message="transient")))
    master.drop()
    await subscribed(recorder, 2)
    assert recorder.named("error") == [("transient",)] and not task.done()


async def test_rejected_subscribe_aborts(make_master, recorder: Recorder, start):
    master = await make_master(subscribe_reply=(400, "Expecting 'framework_info.user'"))
    task = start(make_driver(recorder, master.url))
    with pytest.raises(DriverAborted, match="framework_info.user"):
        await asyncio.wait_for(task, DEADLINE)
    assert "400" in recorder.named("error")[0][0]


async def test_bad_call_raises_call_error(master: FakeMaster, recorder: Recorder, start):
    master.replies[CallType.DECLINE] = (400, "Offer o1 is no longer valid")
    driver = make_driver(recorder, master.url)
    start(driver)
    await subscribed(recorder)
    with pytest.raises(CallError) as info:
        await driver.decline(["o1"])
    assert info.value.status == 400 and info.value.call_type == "DECLINE"
    assert info.value.message == "Offer o1 is no longer valid"
    await driver.revive()  # the driver is unaffected


async def test_call_connection_error(master: FakeMaster, recorder: Recorder, start):
    master.replies[CallType.KILL] = HANGUP
    driver = make_driver(recorder, master.url)
    start(driver)
    await subscribed(recorder)
    with pytest.raises(MasterConnectionError, match="KILL"):
        await driver.kill("t1")
    await driver.revive()
    assert driver.subscribed and len(master.subscribes) == 1


async def test_call_before_subscribe_raises(recorder: Recorder):
    driver = make_driver(recorder, "127.0.0.1:1")
    with pytest.raises(NotSubscribedError, match="DECLINE"):
        await driver.decline(["o1"])


async def test_callback_exception_does_not_stop_driver(
    master: FakeMaster, recorder: Recorder, start
):
    async def explode(driver: Driver, offers: list[Offer]) -> None:
        raise RuntimeError("boom")

    recorder.hooks["offers"] = explode
    start(make_driver(recorder, master.url))
    await subscribed(recorder)
    master.push(Event(EventType.OFFERS, offers=Offers(offers=[offer()])))
    master.push(Event(EventType.RESCIND, rescind=Rescind(offer_id=ID("o1"))))
    await recorder.until(lambda: recorder.named("rescinded"), "rescind after a failed callback")


async def test_plain_method_callbacks(master: FakeMaster, start):
    seen = asyncio.Event()

    class Sync(Scheduler):
        def subscribed(self, driver, framework_id, master_info):  # type: ignore[override]
            seen.set()

    start(make_driver(Sync(), master.url))
    await asyncio.wait_for(seen.wait(), DEADLINE)


async def test_stop_from_callback(master: FakeMaster, recorder: Recorder):
    async def stop(driver: Driver, *_: Any) -> None:
        driver.stop()

    recorder.hooks["subscribed"] = stop
    driver = make_driver(recorder, master.url)
    await asyncio.wait_for(driver.run(), DEADLINE)
    assert not driver.subscribed and len(master.subscribes) == 1


async def test_stop_from_outside_while_idle(master: FakeMaster, recorder: Recorder):
    driver = make_driver(recorder, master.url)
    task = asyncio.create_task(driver.run())
    await subscribed(recorder)
    driver.stop()
    await asyncio.wait_for(task, DEADLINE)


async def test_stop_while_no_master_is_reachable(recorder: Recorder):
    driver = make_driver(recorder, dead_url(), backoff_initial=1, backoff_max=1)
    task = asyncio.create_task(driver.run())
    driver.stop()
    await asyncio.wait_for(task, DEADLINE)


async def test_cancelling_run_propagates(master: FakeMaster, recorder: Recorder):
    task = asyncio.create_task(make_driver(recorder, master.url).run())
    await subscribed(recorder)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, DEADLINE)


async def test_cancelling_run_is_bounded_when_a_callback_ignores_cancellation(
        master: FakeMaster, recorder: Recorder, monkeypatch, caplog):
    """A scheduler callback that swallows its cancellation (as code using Python
    3.11's ``asyncio.wait_for`` can) must not make cancelling ``run`` hang."""
    monkeypatch.setattr(driver_module, "CANCEL_GRACE", 0.1)
    entered, released = asyncio.Event(), asyncio.Event()

    async def stubborn(driver: Driver, *_: Any) -> None:
        entered.set()
        while not released.is_set():
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    recorder.hooks["subscribed"] = stubborn
    task = asyncio.create_task(make_driver(recorder, master.url).run())
    await within(DEADLINE, "the subscribed callback to start", entered.wait())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(DEADLINE, "run() to end after being cancelled", task)
    assert "the driver's main loop (in a scheduler callback?) did not end" in caplog.text
    assert "in stubborn" in caplog.text  # where it was stuck
    released.set()


async def test_suppression_survives_resubscription(master: FakeMaster, recorder: Recorder, start):
    driver = make_driver(recorder, master.url)
    start(driver)
    await subscribed(recorder)
    await driver.suppress()
    master.drop()
    await subscribed(recorder, 2)
    assert master.subscribes[1].subscribe.suppressed_roles == ["*"]  # type: ignore[union-attr]
    await driver.revive()
    master.drop()
    await subscribed(recorder, 3)
    assert master.subscribes[2].subscribe.suppressed_roles == []  # type: ignore[union-attr]


async def test_teardown_stops_driver(master: FakeMaster, recorder: Recorder):
    async def teardown(driver: Driver, *_: Any) -> None:
        await driver.teardown()

    recorder.hooks["subscribed"] = teardown
    await asyncio.wait_for(make_driver(recorder, master.url).run(), DEADLINE)
    assert len(master.calls(CallType.TEARDOWN)) == 1


async def test_final_ack_delivered_when_stopping(master: FakeMaster, recorder: Recorder):
    async def stop_when_done(driver: Driver, status: TaskStatus) -> None:
        if status.state.terminal:
            driver.stop()

    recorder.hooks["update"] = stop_when_done
    driver = make_driver(recorder, master.url)
    task = asyncio.create_task(driver.run())
    await subscribed(recorder)
    master.push(update("t1", b"last", TaskState.TASK_FINISHED))
    await asyncio.wait_for(task, DEADLINE)
    assert [r.call.acknowledge.uuid for r in master.calls(CallType.ACKNOWLEDGE)] == [b"last"]  # type: ignore[union-attr]
