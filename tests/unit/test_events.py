"""The event stream's parts without I/O: events derived from the state machine's
dirty records, and the replay buffer's resume rules."""

from __future__ import annotations

import asyncio

from mesoslite.master.events import EventLog, EventType, MasterEvent, MasterEvents
from mesoslite.master.state import MasterState
from mesoslite.master.stimuli import (
    Admitted,
    AgentLinkClosed,
    AgentRegisters,
    FrameworkStreamClosed,
    FrameworkSubscribes,
    Tick,
)
from mesoslite.messages.agent import Register
from mesoslite.messages.mesos import FrameworkInfo, from_resources
from mesoslite.messages.scheduler import Subscribe
from mesoslite.resources import Resources


def flush(state: MasterState, events: MasterEvents) -> list[str]:
    """What the server's flusher does per tick (collect before the writes clear)."""
    batch = events.collect()
    state.take_writes()
    state.drain()
    events.publish(batch)
    return [e.type.value for e in batch]


def register(state: MasterState, agent_id: str | None = None, connection: int = 1,
             cpus: float = 2) -> str:
    msg = Register(agent_id=agent_id, hostname="h1", address="127.0.0.1", port=5051,
                   resources=from_resources(Resources.of(cpus=cpus, mem=256)),
                   attributes={"rack": "r1"}, containerizers=["process"])
    answer = state.handle(AgentRegisters(msg, connection), now=1.0, mono=1.0)
    assert isinstance(answer, Admitted)
    return answer.id


def test_agent_lifecycle_gives_added_updated_removed_added() -> None:
    state = MasterState("m")
    events = MasterEvents(state)
    aid = register(state)
    assert flush(state, events) == ["AGENT_ADDED"]
    assert flush(state, events) == []  # nothing changed, nothing said
    state.handle(AgentLinkClosed(aid, 1), now=2.0, mono=2.0)
    assert flush(state, events) == ["AGENT_UPDATED"]
    register(state, aid, connection=2)
    assert flush(state, events) == ["AGENT_UPDATED"]
    register(state, aid, connection=3)  # same agent, same resources: no change
    assert flush(state, events) == []
    register(state, aid, connection=4, cpus=4)
    assert flush(state, events) == ["AGENT_UPDATED"]
    limit = state.config.agent_ping_timeout * state.config.max_agent_ping_timeouts
    state.handle(Tick(), now=3.0, mono=1.0 + limit)  # silent since its registration
    assert flush(state, events) == ["AGENT_REMOVED"]
    register(state, aid, connection=5)
    assert flush(state, events) == ["AGENT_ADDED"]
    body = events.log.since(0)[-1].to_dict()
    assert body["agent_added"]["agent"]["agent_info"]["attributes"] == [
        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}}]


def test_framework_lifecycle_gives_added_updated_removed() -> None:
    state = MasterState("m")
    events = MasterEvents(state)
    info = FrameworkInfo(user="u", name="<b>fw</b>")
    answer = state.handle(FrameworkSubscribes(Subscribe(framework_info=info), "s1"),
                          now=1.0, mono=1.0)
    assert isinstance(answer, Admitted)
    fid = answer.id
    assert flush(state, events) == ["FRAMEWORK_ADDED"]
    state.handle(FrameworkStreamClosed(fid, "s1"), now=2.0, mono=2.0)
    assert flush(state, events) == ["FRAMEWORK_UPDATED"]
    state.handle(Tick(), now=3.0, mono=3.0)  # past its failover timeout (0 s)
    assert flush(state, events) == ["FRAMEWORK_REMOVED"]
    removed = events.log.since(0)[-1].to_dict()
    assert removed["framework_removed"]["framework_info"]["name"] == "<b>fw</b>"


def test_prime_takes_recovered_records_as_reported() -> None:
    state = MasterState("m")
    register(state)
    events = MasterEvents(state)
    events.prime()
    assert flush(state, events) == []


def test_events_render_once_and_are_cached() -> None:
    state = MasterState("m")
    events = MasterEvents(state)
    register(state)
    flush(state, events)
    event = events.log.since(0)[0]
    assert event.body() is event.body()


def _events(n: int) -> list[MasterEvent]:
    return [MasterEvent(EventType.HEARTBEAT, None) for _ in range(n)]


def test_log_resume_rules() -> None:
    log = EventLog(capacity=3, stream="abc")
    assert log.resume(None) == (0, None)
    log.publish(_events(5))  # holds 3, 4, 5
    assert log.first_seq == 3
    assert log.resume("abc-2") == (2, None)  # 3.. still held
    assert log.resume("abc-5") == (5, None)
    cursor, reason = log.resume("abc-1")
    assert cursor == 5 and "no longer held" in reason
    assert log.resume("xyz-4")[1] is not None
    assert log.resume("abc-9")[1] is not None
    assert log.resume("garbage")[1] is not None
    assert [e.seq for e in log.since(2)] == [3, 4, 5]
    assert log.since(5) == []
    assert log.since(1) is None


async def test_log_wait_wakes_on_publish_and_times_out() -> None:
    log = EventLog(capacity=10)
    assert await log.wait(0, timeout=0.01) == []
    waiter = asyncio.create_task(log.wait(0, timeout=5))
    await asyncio.sleep(0)
    log.publish(_events(2))
    assert [e.seq for e in await asyncio.wait_for(waiter, 1)] == [1, 2]
    closing = asyncio.create_task(log.wait(2, timeout=5))
    await asyncio.sleep(0)
    log.close()
    assert await asyncio.wait_for(closing, 1) == []
