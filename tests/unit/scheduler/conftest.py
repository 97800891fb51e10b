"""Fixtures for the scheduler-driver tests: a fake master on 127.0.0.1 (real HTTP,
aiohttp.web) that speaks just enough of the v1 scheduler API, and a recording
``Scheduler``.  Everything waits on conditions with deadlines; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from mesoslite.messages.mesos import ID, MasterInfo
from mesoslite.messages.scheduler import (
    HEARTBEAT,
    Call,
    CallError,
    CallType,
    Event,
    EventType,
    Subscribed,
    decode_call,
    encode_record,
)
from mesoslite.scheduler import Driver, DriverError, Scheduler

DEADLINE = 5.0  # seconds any awaited condition may take before the test fails
HANGUP = "hangup"  # a reply that closes the connection without answering


async def until(
    cond: asyncio.Condition, predicate: Callable[[], bool], what: str, timeout: float = DEADLINE
) -> None:
    """Wait until ``predicate()`` holds (re-checked on every notify), or fail."""
    async with cond:
        try:
            await asyncio.wait_for(cond.wait_for(predicate), timeout)
        except TimeoutError:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Received:
    call: Call
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeMaster:
    """A loopback master; set ``replies``/``subscribe_reply`` to script answers."""

    framework_id: str = "fw-1"
    heartbeat: float = 15.0
    send_heartbeats: bool = False
    redirect_to: str | None = None  # base URL of the leader to send 307s to
    replies: dict[CallType, tuple[int, str] | str] = field(default_factory=dict)
    subscribe_reply: tuple[int, str] | None = None
    received: list[Received] = field(default_factory=list)
    stream_ids: list[str] = field(default_factory=list)
    redirects: int = 0
    heartbeats_sent: int = 0
    url: str = ""
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _streams: list[asyncio.Queue[Event | bytes | None]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/scheduler", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        for queue in self._streams:
            queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    # -- scripting ---------------------------------------------------------

    def push(self, event: Event | bytes) -> None:
        """Send an event (or raw bytes) on the newest open stream."""
        assert self._streams, "no open event stream"
        self._streams[-1].put_nowait(event)

    def drop(self) -> None:
        """End the newest stream cleanly (the client sees EOF)."""
        self.push_none()

    def push_none(self) -> None:
        assert self._streams, "no open event stream"
        self._streams[-1].put_nowait(None)

    def calls(self, call_type: CallType) -> list[Received]:
        return [r for r in self.received if r.call.type == call_type]

    @property
    def subscribes(self) -> list[Call]:
        return [r.call for r in self.calls(CallType.SUBSCRIBE)]

    async def until(
        self, predicate: Callable[[], bool], what: str, timeout: float = DEADLINE
    ) -> None:
        await until(self.changed, predicate, what, timeout)

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # -- HTTP ----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.redirect_to is not None:
            self.redirects += 1
            leader = self.redirect_to.split("://", 1)[1]
            # Mesos writes the leader scheme-relative.
            return web.Response(status=307, headers={"Location": f"//{leader}/api/v1/scheduler"})
        body = await request.read()
        try:
            call = decode_call(body)
        except CallError as exc:
            return web.Response(status=400, text=str(exc))
        self.received.append(Received(call, dict(request.headers), body))
        await self._notify()
        if call.type == CallType.SUBSCRIBE:
            return await self._subscribe(request, call)
        if request.headers.get("Mesos-Stream-Id") not in self.stream_ids:
            return web.Response(status=403, text="Framework is not subscribed")
        reply = self.replies.get(call.type)
        if reply == HANGUP:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=202)
        if isinstance(reply, tuple):
            return web.Response(status=reply[0], text=reply[1])
        return web.Response(status=202)

    async def _subscribe(self, request: web.Request, call: Call) -> web.StreamResponse:
        if self.subscribe_reply is not None:
            status, text = self.subscribe_reply
            return web.Response(status=status, text=text)
        stream_id = str(uuid.uuid4())
        self.stream_ids.append(stream_id)
        response = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", "Mesos-Stream-Id": stream_id}
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        framework_id = call.framework_id.value if call.framework_id else self.framework_id
        subscribed = Subscribed(
            framework_id=ID(framework_id),
            heartbeat_interval_seconds=self.heartbeat,
            master_info=MasterInfo(id="master-1", ip=0x7F000001, port=5050, hostname="localhost"),
        )
        queue: asyncio.Queue[Event | bytes | None] = asyncio.Queue()
        self._streams.append(queue)
        try:
            await response.write(encode_record(Event(EventType.SUBSCRIBED, subscribed=subscribed)))
            await self._pump(response, queue)
        except ConnectionResetError:
            pass  # the client went away
        finally:
            self._streams.remove(queue)
        return response

    async def _pump(self, response: web.StreamResponse, queue: asyncio.Queue[Any]) -> None:
        while True:
            if self.send_heartbeats:
                try:
                    item = await asyncio.wait_for(queue.get(), self.heartbeat)
                except TimeoutError:
                    item = HEARTBEAT
                    self.heartbeats_sent += 1
                    await self._notify()
            else:
                item = await queue.get()
            if item is None:
                return
            await response.write(item if isinstance(item, bytes) else encode_record(item))


class Recorder(Scheduler):
    """Records every callback as ``(name, args)``; ``hooks[name]`` runs extra code."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.hooks: dict[str, Callable[..., Awaitable[None]]] = {}
        self.changed = asyncio.Condition()

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.events if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        await until(self.changed, predicate, what)

    async def _record(self, name: str, driver: Driver, *args: Any) -> None:
        self.events.append((name, args))
        try:
            hook = self.hooks.get(name)
            if hook is not None:
                await hook(driver, *args)
        finally:
            async with self.changed:
                self.changed.notify_all()

    async def subscribed(self, driver, framework_id, master_info):  # type: ignore[override]
        await self._record("subscribed", driver, framework_id, master_info)

    async def disconnected(self, driver):  # type: ignore[override]
        await self._record("disconnected", driver)

    async def offers(self, driver, offers):  # type: ignore[override]
        await self._record("offers", driver, offers)

    async def rescinded(self, driver, offer_id):  # type: ignore[override]
        await self._record("rescinded", driver, offer_id)

    async def update(self, driver, status):  # type: ignore[override]
        await self._record("update", driver, status)

    async def message(self, driver, agent_id, executor_id, data):  # type: ignore[override]
        await self._record("message", driver, agent_id, executor_id, data)

    async def failure(self, driver, agent_id, executor_id, status):  # type: ignore[override]
        await self._record("failure", driver, agent_id, executor_id, status)

    async def error(self, driver, message):  # type: ignore[override]
        await self._record("error", driver, message)


def dead_url() -> str:
    """A loopback URL nothing listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def make_master() -> AsyncIterator[Callable[..., Awaitable[FakeMaster]]]:
    masters: list[FakeMaster] = []

    async def make(**options: Any) -> FakeMaster:
        master = FakeMaster(**options)
        await master.start()
        masters.append(master)
        return master

    yield make
    for master in masters:
        await master.close()


@pytest.fixture
async def master(make_master: Callable[..., Awaitable[FakeMaster]]) -> FakeMaster:
    return await make_master()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def start(
    make_master: Any,
) -> AsyncIterator[Callable[[Driver], asyncio.Task[None]]]:
    """Run drivers in background tasks; stop and reap them at teardown (before the
    masters close, since this fixture depends on ``make_master``)."""
    running: list[tuple[Driver, asyncio.Task[None]]] = []

    def start_driver(driver: Driver) -> asyncio.Task[None]:
        task = asyncio.create_task(driver.run())
        running.append((driver, task))
        return task

    yield start_driver
    for driver, task in running:
        driver.stop()
        with contextlib.suppress(DriverError):
            await asyncio.wait_for(task, DEADLINE)
