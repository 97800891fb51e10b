"""The executor driver against a loopback agent over real HTTP: subscription, the
reliable update path (held until ACKNOWLEDGED, carried by the next SUBSCRIBE after a
broken stream), messages, kills, SHUTDOWN and giving up on a lost agent."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from mesoslite.clock import ManualClock
from mesoslite.executor import (
    AgentLostError,
    CallError,
    ExecutorDriver,
    NotSubscribedError,
)
from mesoslite.messages import executor as ex
from mesoslite.messages.mesos import (
    ID,
    DurationInfo,
    KillPolicy,
    Source,
    TaskGroupInfo,
    TaskInfo,
    TaskState,
)
from mesoslite.testing.poll import within
from tests.unit.executor.conftest import Recorder
from tests.unit.executor.fake_agent import (
    DEADLINE,
    EXECUTOR_ID,
    FRAMEWORK_ID,
    HANGUP,
    FakeAgent,
)

RUNNING, FINISHED = TaskState.TASK_RUNNING, TaskState.TASK_FINISHED


def make_driver(recorder: Recorder, agent: FakeAgent, **options: Any) -> ExecutorDriver:
    env = agent.env(**options.pop("env", {}))
    return ExecutorDriver(recorder, env, **options)


async def subscribed(recorder: Recorder, count: int = 1) -> None:
    await recorder.until(lambda: len(recorder.named("subscribed")) >= count,
                         f"SUBSCRIBED number {count}")


async def test_subscribe_names_the_executor_and_needs_no_stream_id(
        make_agent, recorder: Recorder, start):
    agent = await make_agent(token="t0ken")
    driver = make_driver(recorder, agent)
    start(driver)
    await subscribed(recorder)
    (sub,) = agent.calls(ex.CallType.SUBSCRIBE)
    assert (sub.call.executor_id.value, sub.call.framework_id.value) == (EXECUTOR_ID,
                                                                         FRAMEWORK_ID)
    assert json.loads(sub.body)["subscribe"] == {}  # nothing held: empty lists left out
    assert sub.headers["Content-Type"] == "application/json"
    assert sub.headers["Accept"] == "application/json"
    assert sub.headers["Authorization"] == "Bearer t0ken"
    assert "Mesos-Stream-Id" not in sub.headers
    (info,) = recorder.named("subscribed")[0]
    assert info.agent_info.id == ID("agent-1") and info.container_id.value == "container-1"
    assert driver.subscribed and driver.info == info


async def test_an_update_is_held_until_acknowledged(agent: FakeAgent, recorder: Recorder,
                                                    start):
    clock = ManualClock(start=1_800_000_000.0)

    async def run_it(driver: ExecutorDriver, task: TaskInfo) -> None:
        await driver.update(task.task_id, RUNNING, message="started", data=b"\x00\xff")

    recorder.hooks["launch"] = run_it
    driver = make_driver(recorder, agent, clock=clock)
    start(driver)
    await subscribed(recorder)
    agent.launch("t1")
    await agent.until(lambda: agent.updates, "the executor's UPDATE")
    (update,) = agent.updates
    status = update.status
    assert (status.task_id.value, status.state, status.message) == ("t1", RUNNING, "started")
    assert status.source == Source.SOURCE_EXECUTOR and status.executor_id == ID(EXECUTOR_ID)
    assert status.timestamp == 1_800_000_000.0 and len(status.uuid or b"") == 16
    # the JSON on the wire, as Mesos encodes bytes: base64
    body = json.loads(agent.calls(ex.CallType.UPDATE)[0].body)
    assert body["update"]["status"]["data"] == base64.b64encode(b"\x00\xff").decode()
    assert body["update"]["status"]["uuid"] == base64.b64encode(status.uuid).decode()
    assert [u.status.uuid for u in driver.outstanding.updates] == [status.uuid]
    assert [t.task_id.value for t in driver.outstanding.tasks] == ["t1"]
    agent.acknowledge(update)
    await recorder.until(lambda: recorder.named("acknowledged"), "ACKNOWLEDGED")
    assert recorder.named("acknowledged") == [("t1", status.uuid)]
    assert driver.outstanding.updates == [] and driver.outstanding.tasks == []


async def test_resubscription_after_an_agent_restart_carries_what_is_unacknowledged(
        agent: FakeAgent, recorder: Recorder, start):
    """Mesos' contract: the updates not acknowledged, and the tasks none of whose
    updates were acknowledged, go with the SUBSCRIBE after a broken stream."""
    driver = make_driver(recorder, agent)
    start(driver)
    await subscribed(recorder)
    for task_id in ("t1", "t2", "t3"):
        agent.launch(task_id)
    await recorder.until(lambda: len(recorder.named("launch")) == 3, "three LAUNCHes")
    await driver.update("t1", RUNNING)
    await driver.update("t2", RUNNING)
    t2_done = await driver.update("t2", FINISHED)
    t1_running, t2_running, _ = agent.updates
    agent.acknowledge(t2_running)  # t2 now counts as acknowledged; its FINISHED does not
    await recorder.until(lambda: recorder.named("acknowledged"), "ACKNOWLEDGED of t2")
    agent.drop()  # the agent restarts
    await recorder.until(lambda: recorder.named("disconnected"), "disconnected")
    await subscribed(recorder, 2)
    again = agent.subscribes[-1]
    assert [t.task_id.value for t in again.unacknowledged_tasks] == ["t1", "t3"]
    assert [(u.status.task_id.value, u.status.state, u.status.uuid)
            for u in again.unacknowledged_updates] == [
        ("t1", RUNNING, t1_running.status.uuid), ("t2", FINISHED, t2_done)]
    assert recorder.names() == ["subscribed", "launch", "launch", "launch", "acknowledged",
                                "disconnected", "subscribed"]


async def test_updates_sent_while_unsubscribed_are_delivered_once_subscribed(
        agent: FakeAgent, recorder: Recorder, start):
    """An update sent after the SUBSCRIBE left but before SUBSCRIBED came is not in
    that SUBSCRIBE: the driver POSTs it once subscribed."""
    driver = make_driver(recorder, agent)
    start(driver)
    await subscribed(recorder)
    agent.launch("t1")
    await recorder.until(lambda: recorder.named("launch"), "LAUNCH")
    agent.hold_subscribed = asyncio.Event()
    agent.drop()
    await agent.until(lambda: len(agent.subscribes) == 2, "the second SUBSCRIBE")
    assert not driver.subscribed
    uuid = await driver.update("t1", RUNNING)  # held: nothing to send it on
    assert agent.updates == []
    agent.hold_subscribed.set()
    await agent.until(lambda: agent.updates, "the held UPDATE")
    assert [u.status.uuid for u in agent.updates] == [uuid]
    assert agent.subscribes[-1].unacknowledged_updates == []


async def test_an_update_that_does_not_reach_the_agent_goes_with_the_next_subscribe(
        agent: FakeAgent, recorder: Recorder, start):
    driver = make_driver(recorder, agent)
    start(driver)
    await subscribed(recorder)
    agent.launch("t1")
    await recorder.until(lambda: recorder.named("launch"), "LAUNCH")
    agent.update_reply = HANGUP
    uuid = await driver.update("t1", RUNNING)  # no error: the update is held
    await subscribed(recorder, 2)
    assert [u.status.uuid for u in agent.subscribes[-1].unacknowledged_updates] == [uuid]


async def test_an_update_the_agent_refuses_raises_and_is_dropped(
        agent: FakeAgent, recorder: Recorder, start):
    driver = make_driver(recorder, agent)
    start(driver)
    await subscribed(recorder)
    with pytest.raises(CallError) as refused:
        await driver.update("not-mine", RUNNING)
    assert refused.value.status == 400 and "is not a task of executor" in refused.value.message
    assert driver.outstanding.updates == []
    with pytest.raises(ValueError, match="TASK_STAGING"):
        await driver.update("t1", TaskState.TASK_STAGING)


async def test_a_repeated_launch_is_handed_on_once(agent: FakeAgent, recorder: Recorder,
                                                   start):
    start(make_driver(recorder, agent))
    await subscribed(recorder)
    agent.launch("t1")
    agent.launch("t1")
    group = TaskGroupInfo(tasks=[TaskInfo(name=n, task_id=ID(n), agent_id=ID("agent-1"))
                                 for n in ("g1", "g2")])
    agent.tasks.update({t.task_id.value: t for t in group.tasks})
    agent.push(ex.Event(type=ex.EventType.LAUNCH_GROUP,
                        launch_group=ex.LaunchGroup(task_group=group)))
    agent.launch("t2")
    await recorder.until(lambda: len(recorder.named("launch")) == 2, "the second task")
    assert [t.task_id.value for (t,) in recorder.named("launch")] == ["t1", "t2"]
    assert recorder.named("launch_group") == [(group,)]


async def test_kill_and_messages_both_ways(agent: FakeAgent, recorder: Recorder, start):
    async def echo(driver: ExecutorDriver, data: bytes) -> None:
        await driver.send_message(b"echo:" + data)

    recorder.hooks["message"] = echo
    driver = make_driver(recorder, agent)
    start(driver)
    await subscribed(recorder)
    agent.launch("t1")
    policy = KillPolicy(grace_period=DurationInfo(nanoseconds=3_000_000_000))
    agent.kill("t1", policy)
    agent.push(ex.Event(type=ex.EventType.MESSAGE, message=ex.Message(data=b"\x01hi")))
    await agent.until(lambda: agent.messages, "the executor's MESSAGE")
    assert agent.messages == [b"echo:\x01hi"]
    assert recorder.named("kill") == [("t1", policy)]
    with pytest.raises(ValueError, match="at most"):
        await driver.send_message(b"x" * (ex.MAX_MESSAGE_BYTES + 1))
    assert len(agent.messages) == 1


async def test_a_message_needs_a_subscription(agent: FakeAgent, recorder: Recorder):
    driver = make_driver(recorder, agent)
    with pytest.raises(NotSubscribedError):
        await driver.send_message(b"hello")


async def test_shutdown_runs_while_subscribed_then_run_returns(
        agent: FakeAgent, recorder: Recorder, start):
    async def kill_all(driver: ExecutorDriver) -> None:
        await driver.update("t1", TaskState.TASK_KILLED)

    recorder.hooks["shutdown"] = kill_all
    task = start(make_driver(recorder, agent))
    await subscribed(recorder)
    agent.launch("t1")
    agent.push(ex.SHUTDOWN)
    await within(DEADLINE, "run() to return after SHUTDOWN", task)
    assert [u.status.state for u in agent.updates] == [TaskState.TASK_KILLED]
    assert recorder.names() == ["subscribed", "launch", "shutdown"]


async def test_a_shutdown_callback_gets_only_the_grace_period(
        agent: FakeAgent, recorder: Recorder, start):
    async def hang(driver: ExecutorDriver) -> None:
        await asyncio.Event().wait()

    recorder.hooks["shutdown"] = hang
    task = start(make_driver(recorder, agent, env={"shutdown_grace_period": 0.1}))
    await subscribed(recorder)
    agent.push(ex.SHUTDOWN)
    await within(DEADLINE, "run() to return once the grace period is over", task)


async def test_the_driver_gives_up_after_the_recovery_timeout(
        agent: FakeAgent, recorder: Recorder, start):
    clock = ManualClock()
    driver = make_driver(recorder, agent, clock=clock, env={"recovery_timeout": 60.0})
    task = start(driver)
    await subscribed(recorder)
    agent.subscribe_reply = (503, "Agent is recovering")
    agent.drop()
    await agent.until(lambda: len(agent.subscribes) >= 3, "SUBSCRIBEs retried")
    assert not task.done()  # refused for now, not for good: it keeps trying
    clock.advance(60.0)
    with pytest.raises(AgentLostError, match="recovery timeout"):
        await within(DEADLINE, "run() to give up", task)
    assert recorder.names() == ["subscribed", "disconnected", "shutdown"]


async def test_without_checkpointing_a_broken_stream_ends_the_executor(
        agent: FakeAgent, recorder: Recorder, start):
    task = start(make_driver(recorder, agent, env={"checkpoint": False}))
    await subscribed(recorder)
    agent.drop()
    with pytest.raises(AgentLostError, match="checkpointing is off"):
        await within(DEADLINE, "run() to give up", task)
    assert recorder.names() == ["subscribed", "disconnected", "shutdown"]
    assert len(agent.subscribes) == 1


async def test_a_silent_agent_is_left_and_subscribed_to_again(
        agent: FakeAgent, recorder: Recorder, start):
    """No event, not even a HEARTBEAT, for heartbeat_grace intervals: the stream is
    dead although its connection is open."""
    start(make_driver(recorder, agent, heartbeat_interval=0.05, heartbeat_grace=2))
    await subscribed(recorder, 2)
    assert recorder.names()[:3] == ["subscribed", "disconnected", "subscribed"]


async def test_heartbeats_keep_the_stream(make_agent, recorder: Recorder, start):
    agent = await make_agent(heartbeat=0.01)
    start(make_driver(recorder, agent, heartbeat_interval=0.5, heartbeat_grace=20))
    await subscribed(recorder)
    agent.launch("t1")
    await recorder.until(lambda: recorder.named("launch"), "LAUNCH after heartbeats")
    assert len(agent.subscribes) == 1 and "disconnected" not in recorder.names()


async def test_an_error_event_is_reported_and_the_driver_subscribes_again(
        agent: FakeAgent, recorder: Recorder, start):
    start(make_driver(recorder, agent))
    await subscribed(recorder)
    agent.push(ex.Event(type=ex.EventType.ERROR, error=ex.Error(message="bad things")))
    await subscribed(recorder, 2)
    assert recorder.named("error") == [("bad things",)]


async def test_request_shutdown_runs_shutdown_then_stops(
        agent: FakeAgent, recorder: Recorder, start):
    driver = make_driver(recorder, agent)
    task = start(driver)
    await subscribed(recorder)
    driver.request_shutdown()
    await within(DEADLINE, "run() to return after request_shutdown", task)
    assert recorder.names() == ["subscribed", "shutdown"]


async def test_stop_returns_without_shutdown(agent: FakeAgent, recorder: Recorder, start):
    driver = make_driver(recorder, agent)
    task = start(driver)
    await subscribed(recorder)
    driver.stop()
    await within(DEADLINE, "run() to return after stop", task)
    assert recorder.names() == ["subscribed"] and not driver.subscribed
