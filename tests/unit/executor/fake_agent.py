"""A loopback agent (real HTTP, aiohttp.web) that serves the v1 executor API as the
agent does (docs/executors.md): SUBSCRIBE answers a RecordIO stream that starts with
SUBSCRIBED, UPDATE and MESSAGE answer 202, a refused call 400 with
``{"message", "details"}``, and events are pushed by the test.  Updates are
acknowledged (an ACKNOWLEDGED event on the stream) only when the test says so, or
at once with ``auto_ack``.  Everything it receives is recorded; tests wait on
conditions with deadlines, never sleep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from mesoslite.executor import ExecutorEnv
from mesoslite.messages import executor as ex
from mesoslite.messages.mesos import (
    ID,
    AgentInfo,
    CommandInfo,
    ContainerID,
    ExecutorInfo,
    FrameworkInfo,
    KillPolicy,
    TaskInfo,
)
from mesoslite.messages.scheduler import CallError
from mesoslite.testing.poll import wait_for

DEADLINE = 10.0  # seconds any awaited condition may take before the test fails
FRAMEWORK_ID = "fw-1"
EXECUTOR_ID = "exec-1"
HANGUP = "hangup"  # a reply that closes the connection without answering


@dataclass
class Received:
    call: ex.Call
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeAgent:
    """Set ``subscribe_reply`` / ``update_reply`` to script refusals; ``hold_subscribed``
    (an unset Event) keeps SUBSCRIBED back after the stream's headers went out."""

    token: str | None = None
    auto_ack: bool = False
    heartbeat: float | None = None  # send HEARTBEAT after this much idle time
    subscribe_reply: tuple[int, str] | None = None
    update_reply: tuple[int, str] | str | None = None
    hold_subscribed: asyncio.Event | None = None
    received: list[Received] = field(default_factory=list)
    tasks: dict[str, TaskInfo] = field(default_factory=dict)  # every task launched
    url: str = ""
    endpoint: str = ""
    _streams: list[asyncio.Queue[ex.Event | None]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/executor", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.endpoint = f"{host}:{port}"
        self.url = f"http://{self.endpoint}/api/v1/executor"

    async def close(self) -> None:
        for queue in self._streams:
            queue.put_nowait(None)
        if self._runner is not None:
            await self._runner.cleanup()

    def env(self, **overrides: object) -> ExecutorEnv:
        """The environment an agent would give its executor (short timeouts)."""
        env = ExecutorEnv(
            agent_endpoint=self.endpoint, framework_id=FRAMEWORK_ID, executor_id=EXECUTOR_ID,
            agent_id="agent-1", checkpoint=True, shutdown_grace_period=2.0,
            recovery_timeout=30.0, subscription_backoff_max=0.02,
            authentication_token=self.token)
        return dataclasses.replace(env, **overrides)  # type: ignore[arg-type]

    def environ(self, **extra: str) -> dict[str, str]:
        """The same as process environment variables, as an agent sets them."""
        return {"MESOS_AGENT_ENDPOINT": self.endpoint, "MESOS_FRAMEWORK_ID": FRAMEWORK_ID,
                "MESOS_EXECUTOR_ID": EXECUTOR_ID, "MESOS_AGENT_ID": "agent-1",
                "MESOS_CHECKPOINT": "1", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
                "MESOS_RECOVERY_TIMEOUT": "30secs", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "50ms",
                "MESOS_HTTP_COMMAND_EXECUTOR": "0", **extra}

    # -- scripting ---------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return bool(self._streams)

    def push(self, event: ex.Event) -> None:
        """Send an event on the open stream."""
        assert self._streams, "no open event stream"
        self._streams[-1].put_nowait(event)

    def launch(self, task_id: str, data: bytes | None = None) -> TaskInfo:
        task = TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("agent-1"), data=data)
        self.tasks[task_id] = task
        self.push(ex.Event(type=ex.EventType.LAUNCH, launch=ex.Launch(task=task)))
        return task

    def kill(self, task_id: str, policy: KillPolicy | None = None) -> None:
        self.push(ex.Event(type=ex.EventType.KILL, kill=ex.Kill(task_id=ID(task_id),
                                                                  kill_policy=policy)))

    def acknowledge(self, update: ex.Update) -> None:
        status = update.status
        assert status.uuid is not None
        self.push(ex.Event(type=ex.EventType.ACKNOWLEDGED, acknowledged=ex.Acknowledged(
            task_id=status.task_id, uuid=status.uuid)))

    def drop(self) -> None:
        """End the open stream (the executor sees EOF, as when an agent restarts)."""
        assert self._streams, "no open event stream"
        self._streams[-1].put_nowait(None)

    def calls(self, call_type: ex.CallType) -> list[Received]:
        return [r for r in self.received if r.call.type == call_type]

    @property
    def subscribes(self) -> list[ex.Subscribe]:
        return [r.call.subscribe for r in self.calls(ex.CallType.SUBSCRIBE)
                if r.call.subscribe is not None]

    @property
    def updates(self) -> list[ex.Update]:
        return [r.call.update for r in self.calls(ex.CallType.UPDATE)
                if r.call.update is not None]

    @property
    def messages(self) -> list[bytes]:
        return [r.call.message.data for r in self.calls(ex.CallType.MESSAGE)
                if r.call.message is not None]

    async def until(self, predicate: Callable[[], object], what: str,
                    timeout: float = DEADLINE) -> None:
        await wait_for(predicate, timeout, interval=0.01, message=what)

    # -- HTTP ----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            call = ex.decode_call(body)
        except CallError as exc:
            return _refuse(400, str(exc), exc.path or "$")
        self.received.append(Received(call, dict(request.headers), body))
        if self.token is not None and request.headers.get("Authorization") != \
                f"Bearer {self.token}":
            return _refuse(401, "Executor authentication failed", "$")
        if (call.framework_id.value, call.executor_id.value) != (FRAMEWORK_ID, EXECUTOR_ID):
            return _refuse(400, f"Executor '{call.executor_id.value}' of framework "
                           f"'{call.framework_id.value}' is not running here", "$.executor_id")
        if call.type == ex.CallType.SUBSCRIBE:
            return await self._subscribe(request)
        if call.type == ex.CallType.UPDATE:
            return self._update(request, call)
        if call.type == ex.CallType.MESSAGE and call.message is not None \
                and len(call.message.data) > ex.MAX_MESSAGE_BYTES:
            return _refuse(400, "'message.data' is larger than the limit", "$.message.data")
        return web.Response(status=202)

    def _update(self, request: web.Request, call: ex.Call) -> web.Response:
        reply = self.update_reply
        if reply == HANGUP:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=202)
        if isinstance(reply, tuple):
            return _refuse(reply[0], reply[1], "$.update.status")
        assert call.update is not None
        task_id = call.update.status.task_id.value
        if task_id not in self.tasks:
            return _refuse(400, f"Task '{task_id}' is not a task of executor '{EXECUTOR_ID}'",
                           "$.update.status")
        if self.auto_ack and self._streams:
            self.acknowledge(call.update)
        return web.Response(status=202)

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        if self.subscribe_reply is not None:
            status, text = self.subscribe_reply
            return _refuse(status, text, "$")
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        queue: asyncio.Queue[ex.Event | None] = asyncio.Queue()
        try:
            if self.hold_subscribed is not None:
                await self.hold_subscribed.wait()
            self._streams.append(queue)
            await response.write(ex.encode_record(_subscribed()))
            await self._pump(response, queue)
        except ConnectionResetError:
            pass  # the executor went away
        finally:
            if queue in self._streams:
                self._streams.remove(queue)
        return response

    async def _pump(self, response: web.StreamResponse,
                    queue: asyncio.Queue[ex.Event | None]) -> None:
        while True:
            try:
                async with asyncio.timeout(self.heartbeat):
                    event = await queue.get()
            except TimeoutError:
                event = ex.HEARTBEAT
            if event is None:
                return
            await response.write(ex.encode_record(event))


def _refuse(status: int, message: str, path: str) -> web.Response:
    return web.Response(status=status, content_type="application/json", text=json.dumps(
        {"message": message, "details": [{"path": path, "errors": [message]}]}))


def _subscribed() -> ex.Event:
    return ex.Event(type=ex.EventType.SUBSCRIBED, subscribed=ex.Subscribed(
        executor_info=ExecutorInfo(executor_id=ID(EXECUTOR_ID),
                                   command=CommandInfo(value="exec executor")),
        framework_info=FrameworkInfo(user="alice", name="fake", id=ID(FRAMEWORK_ID)),
        agent_info=AgentInfo(hostname="localhost", id=ID("agent-1"), port=5051),
        container_id=ContainerID(value="container-1")))
