"""The executor driver: subscribes to the agent and runs an ``Executor``.

``await ExecutorDriver(executor).run()`` keeps one subscription to the agent's
``/api/v1/executor`` alive until the executor is told to leave:

* SUBSCRIBE carries the updates the agent has not acknowledged and the tasks none of
  whose updates it acknowledged (``Outstanding``), so an agent restart loses neither.
* Events are read from the RecordIO stream and handed to the executor's callbacks one
  at a time, in order.  A LAUNCH of a task already held is not handed on twice.
* When the stream breaks, or nothing (not even a HEARTBEAT) arrives for
  ``heartbeat_grace`` heartbeat intervals, the driver calls ``disconnected`` and
  re-subscribes after a random delay of at most ``MESOS_SUBSCRIPTION_BACKOFF_MAX``
  (as Mesos' executor library does).  With framework checkpointing off, or with no
  subscription for ``MESOS_RECOVERY_TIMEOUT``, it gives up instead: the executor's
  ``shutdown`` runs and ``run`` raises ``AgentLostError``.
* SHUTDOWN runs the executor's ``shutdown`` (for at most the shutdown grace period,
  still subscribed so its last updates go out) and ``run`` returns.

Updates are reliable: ``send_update`` holds every update until ACKNOWLEDGED; one that
cannot be delivered now (no subscription, the agent unreachable) goes out with the
next SUBSCRIBE.  Messages are best effort: ``send_message`` raises when the agent
cannot take one and nothing resends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import signal
import ssl
import uuid as uuidlib
from typing import Any

import aiohttp
import msgspec

from mesoslite.clock import Clock, SystemClock
from mesoslite.executor.callbacks import Executor
from mesoslite.executor.env import ExecutorEnv
from mesoslite.executor.errors import AgentConnectionError, AgentLostError
from mesoslite.executor.outstanding import Outstanding
from mesoslite.messages.executor import (
    MAX_MESSAGE_BYTES,
    Call,
    CallType,
    Event,
    EventType,
    Message,
    Subscribed,
    Update,
    decode_event,
    encode_call,
)
from mesoslite.messages.mesos import ID, Reason, Source, TaskState, TaskStatus
from mesoslite.scheduler.calls import IdLike, as_id
from mesoslite.scheduler.errors import CallError, NotSubscribedError
from mesoslite.scheduler.stream_driver import StreamDriver
from mesoslite.scheduler.transport import StreamLost, error_message

log = logging.getLogger(__name__)

# mesoslite's agents send a HEARTBEAT after 30 s without events (Mesos' after 30 min:
# pass heartbeat_interval=1800 to a driver talking to one).
DEFAULT_HEARTBEAT_INTERVAL = 30.0
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# How long run() waits for a cancelled task or the closing session before it gives up
# on them: a callback that ignores its cancellation must not make stopping hang.
CANCEL_GRACE = 5.0
# The shortest pause between subscription attempts: a zero backoff must not spin.
MIN_RETRY_DELAY = 0.01


class ExecutorDriver(StreamDriver):
    """Connects an ``Executor`` to its agent.

    ``env`` says where the agent is and who the executor is; by default it is read
    from the process environment the agent set (``ExecutorEnv.from_environ``).
    ``heartbeat_interval`` is how often the agent sends HEARTBEAT when idle and
    ``heartbeat_grace`` how many intervals of silence mean it is gone.  A ``session``
    passed in is used and left open; otherwise ``run`` makes one (verifying TLS with
    ``ssl_context``).  ``clock`` stamps updates and times the recovery timeout;
    ``rng`` draws the re-subscription delays.
    """

    def __init__(
        self,
        executor: Executor,
        env: ExecutorEnv | None = None,
        *,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        heartbeat_grace: float = 5,
        connect_timeout: float = 10.0,
        call_timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if heartbeat_interval <= 0 or heartbeat_grace <= 0:
            raise ValueError("heartbeat_interval and heartbeat_grace must be > 0")
        self.executor = executor
        self.env = env if env is not None else ExecutorEnv.from_environ(os.environ)
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_grace = heartbeat_grace
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self._session = session
        self._ssl_context = ssl_context
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._outstanding = Outstanding()
        self._info: Subscribed | None = None
        self._subscribed = False
        self._response: aiohttp.ClientResponse | None = None
        self._update_lock = asyncio.Lock()
        StreamDriver.__init__(self)
        self._shutdown_reason: str | None = None
        self._shutdown_started = False
        self._shutdown_job: asyncio.Task[None] | None = None
        self._lost: str | None = None  # why the driver gave up on the agent
        self._lost_since: float | None = None  # monotonic time the subscription went

    # ------------------------------------------------------------ state

    @property
    def executor_id(self) -> str:
        return self.env.executor_id

    @property
    def framework_id(self) -> str:
        return self.env.framework_id

    @property
    def subscribed(self) -> bool:
        """True between SUBSCRIBED and the loss of that stream."""
        return self._subscribed

    @property
    def info(self) -> Subscribed | None:
        """The last SUBSCRIBED event's executor, framework and agent info."""
        return self._info

    @property
    def outstanding(self) -> Outstanding:
        """The updates and tasks held until the agent acknowledges them (read only)."""
        return self._outstanding

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Subscribe and dispatch events until SHUTDOWN or ``stop()``.

        Raises ``AgentLostError`` when it gave up on the agent (see the module
        docstring), after the executor's ``shutdown`` ran.  A driver runs once: an
        executor that stopped is done (the agent reports what it left unfinished).
        """
        if self._main is not None:
            raise RuntimeError("ExecutorDriver.run() is already running")
        owns_session = self._session is None
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl_context)
                if self._ssl_context else None)
        await self._run_main("mesoslite-executor",
                             lambda main: self._finish(main, owns_session))
        if self._lost is not None:
            raise AgentLostError(self._lost)

    def stop(self) -> None:
        """Ask ``run`` to return (without calling ``shutdown``).  Safe from callbacks
        and other tasks; a callback in progress finishes first."""
        super().stop()

    def _leaving(self) -> bool:
        return self._stop_requested or self._shutdown_reason is not None

    def request_shutdown(self) -> None:
        """Leave as if the agent had sent SHUTDOWN: the executor's ``shutdown`` runs
        (bounded by the grace period), then the driver stops.  For a SIGTERM handler;
        call it on the driver's event loop."""
        if self._shutdown_job is None and not self._shutdown_started:
            self._shutdown_job = asyncio.get_running_loop().create_task(self._shutdown_then_stop())

    async def _shutdown_then_stop(self) -> None:
        await self._shut_down("asked to shut down")
        self.stop()

    async def _finish(self, main: asyncio.Task[None], owns_session: bool) -> None:
        pending = {t for t in (main, self._shutdown_job) if t is not None and not t.done()}
        if main in pending:
            main.cancel()
        if pending:
            # A shutdown job in flight gets its grace period to send its last updates.
            await asyncio.wait(pending, timeout=self.env.shutdown_grace_period + CANCEL_GRACE)
        for task in pending:
            task.cancel()
        self._main = None
        self._close_stream()
        self._subscribed = False
        if owns_session and self._session is not None:
            session, self._session = self._session, None
            await asyncio.wait({asyncio.ensure_future(session.close())}, timeout=CANCEL_GRACE)

    async def _main_loop(self) -> None:
        while not self._stop_requested and self._shutdown_reason is None:
            try:
                await self._subscribe_and_read()
            except StreamLost as exc:
                log.warning("executor %s: %s", self.executor_id, exc)
            finally:
                self._close_stream()
            if self._stop_requested or self._shutdown_reason is not None:
                break
            if self._subscribed:
                self._subscribed = False
                self._lost_since = self._clock.monotonic()
                await self._callback("disconnected")
                if not self.env.checkpoint:
                    self._give_up("the agent connection broke and framework checkpointing "
                                  "is off")
                    break
            if self._recovery_over():
                break
            await self._pause(max(MIN_RETRY_DELAY,
                                  self._rng.uniform(0, self.env.subscription_backoff_max)))
        if self._shutdown_reason is not None and not self._stop_requested:
            await self._shut_down(self._shutdown_reason)

    def _recovery_over(self) -> bool:
        """Start the recovery clock, or give up when it ran out."""
        now = self._clock.monotonic()
        if self._lost_since is None:
            self._lost_since = now
        elif now - self._lost_since >= self.env.recovery_timeout:
            self._give_up(f"no subscription to the agent for "
                          f"{self.env.recovery_timeout:g}s (the recovery timeout)")
            return True
        return False

    def _give_up(self, reason: str) -> None:
        log.error("executor %s gives up on its agent: %s", self.executor_id, reason)
        self._lost = self._shutdown_reason = reason

    async def _pause(self, seconds: float) -> None:
        await self._interruptibly(asyncio.sleep(seconds))

    async def _shut_down(self, reason: str) -> None:
        """Run the executor's ``shutdown`` once, for at most the grace period."""
        if self._shutdown_started:
            return
        self._shutdown_started = True
        self._shutdown_reason = self._shutdown_reason or reason
        log.info("executor %s shutting down: %s", self.executor_id, reason)
        grace = self.env.shutdown_grace_period
        try:
            async with asyncio.timeout(grace):
                await self._callback("shutdown")
        except TimeoutError:
            log.warning("Executor.shutdown did not return within the grace period (%gs)", grace)

    # ------------------------------------------------------------ the stream

    async def _subscribe_and_read(self) -> None:
        body = self._call(CallType.SUBSCRIBE, subscribe=self._outstanding.subscribe())
        self._response = await self._interruptibly(self._open_stream(body))
        await self._read_events(
            self._response, lambda: self.heartbeat_interval * self.heartbeat_grace)

    async def _open_stream(self, body: bytes) -> aiohttp.ClientResponse:
        assert self._session is not None
        # Only connecting is bounded: the heartbeat check bounds an open stream's silence.
        timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout,
                                        sock_read=None)
        try:
            response = await self._session.post(self.env.url, data=body,
                                                headers=self._headers(), timeout=timeout)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise StreamLost(f"cannot reach the agent at {self.env.url}: "
                             f"{_describe(exc)}") from None
        if response.status == 200:
            return response
        try:
            text = (await response.read()).decode("utf-8", "replace").strip()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            text = _describe(exc)
        finally:
            response.release()
        # Refusals are retried too: an agent recovering after a restart, or still
        # starting the executor's container, refuses a SUBSCRIBE it takes moments later.
        raise StreamLost(f"the agent refused SUBSCRIBE (HTTP {response.status}): "
                         f"{error_message(text)}")

    def _close_stream(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    async def _handle_record(self, record: bytes) -> None:
        try:
            event = decode_event(record)
        except msgspec.DecodeError as exc:
            # One bad event must not cost the subscription; the framing is intact.
            log.warning("ignoring an event the driver cannot decode: %s", exc)
            return
        await self._handle_event(event)

    async def _handle_event(self, event: Event) -> None:
        t = event.type
        if t == EventType.SUBSCRIBED and event.subscribed is not None:
            await self._on_subscribed(event.subscribed)
        elif t == EventType.LAUNCH and event.launch is not None:
            task = event.launch.task
            if self._outstanding.launched(task):
                await self._callback("launch", task)
            else:
                log.info("task %s was launched already; ignoring the repeat",
                         task.task_id.value)
        elif t == EventType.LAUNCH_GROUP and event.launch_group is not None:
            group = event.launch_group.task_group
            if [task for task in group.tasks if self._outstanding.launched(task)]:
                await self._callback("launch_group", group)
        elif t == EventType.KILL and event.kill is not None:
            await self._callback("kill", event.kill.task_id.value, event.kill.kill_policy)
        elif t == EventType.ACKNOWLEDGED and event.acknowledged is not None:
            ack = event.acknowledged
            self._outstanding.acknowledged(ack.task_id.value, ack.uuid)
            await self._callback("acknowledged", ack.task_id.value, ack.uuid)
        elif t == EventType.MESSAGE and event.message is not None:
            await self._callback("message", event.message.data)
        elif t == EventType.ERROR:
            message = event.error.message if event.error else "(no message)"
            await self._callback("error", message)
            # Mesos' advice on ERROR: drop the subscription and subscribe again.
            raise StreamLost(f"the agent sent ERROR: {message}")
        elif t == EventType.SHUTDOWN:
            self._shutdown_reason = "the agent sent SHUTDOWN"
            await self._shut_down(self._shutdown_reason)
        # HEARTBEAT: its arrival already reset the silence timer

    async def _on_subscribed(self, info: Subscribed) -> None:
        self._info = info
        self._subscribed = True
        self._lost_since = None
        log.info("executor %s subscribed to agent %s", self.executor_id,
                 info.agent_info.id.value if info.agent_info.id else info.agent_info.hostname)
        # Updates sent after the SUBSCRIBE left were not in it: deliver them now.
        for update in self._outstanding.undelivered():
            assert update.status.uuid is not None
            try:
                await self._deliver(update.status.uuid)
            except CallError as exc:
                log.warning("the agent refused an update held for it: %s", exc)
        await self._callback("subscribed", info)

    # ------------------------------------------------------------ calls

    async def send_update(self, status: TaskStatus) -> bytes:
        """Send a task status update reliably; returns its uuid.

        Fills in ``uuid`` (when missing), ``timestamp`` (when missing), ``source``
        (SOURCE_EXECUTOR) and ``executor_id``.  The update is held until the agent
        acknowledges it: when it cannot be delivered now it goes out with the next
        SUBSCRIBE, so this raises only ``CallError`` when the agent refuses it (e.g. a
        task that is not this executor's; it is then dropped) and ``ValueError`` for
        TASK_STAGING, which only the agent sends.
        """
        if status.state == TaskState.TASK_STAGING:
            raise ValueError("an executor cannot send TASK_STAGING")
        status = msgspec.structs.replace(
            status, uuid=status.uuid or uuidlib.uuid4().bytes,
            timestamp=status.timestamp if status.timestamp is not None else self._clock.now(),
            source=Source.SOURCE_EXECUTOR, executor_id=ID(self.executor_id))
        uuid = self._outstanding.sending(Update(status=status))
        if self._subscribed:
            await self._deliver(uuid)
        return uuid

    async def update(self, task_id: IdLike, state: TaskState, *, message: str | None = None,
                     data: bytes | None = None, reason: Reason | None = None,
                     healthy: bool | None = None) -> bytes:
        """``send_update`` of a status built from these fields; returns its uuid."""
        return await self.send_update(TaskStatus(
            task_id=as_id(task_id), state=state, message=message, data=data, reason=reason,
            healthy=healthy))

    async def send_message(self, data: bytes) -> None:
        """Send a framework message to the scheduler (best effort: nothing resends
        it).  Raises ``ValueError`` over ``MAX_MESSAGE_BYTES``, ``NotSubscribedError``
        without a subscription, ``CallError`` when the agent refuses it and
        ``AgentConnectionError`` when it cannot reach the agent."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError(f"a framework message carries at most {MAX_MESSAGE_BYTES} bytes, "
                             f"not {len(data)}")
        if not self._subscribed:
            raise NotSubscribedError("cannot send MESSAGE: the executor is not subscribed")
        await self._post(CallType.MESSAGE, self._call(CallType.MESSAGE,
                                                      message=Message(data=data)))

    async def _deliver(self, uuid: bytes) -> None:
        """POST the held update ``uuid`` unless it reached the agent already.  One at
        a time, so the agent gets a task's updates in the order they were sent."""
        async with self._update_lock:
            update = self._outstanding.pending(uuid)
            if update is None:
                return  # delivered meanwhile (with a SUBSCRIBE), or acknowledged
            try:
                await self._post(CallType.UPDATE, self._call(CallType.UPDATE, update=update))
            except CallError as exc:
                if exc.status < 500 and exc.status != 404:
                    self._outstanding.refused(uuid)
                    raise
                self._resubscribe(f"UPDATE answered HTTP {exc.status}: {exc.message}")
                return
            except AgentConnectionError as exc:
                self._resubscribe(str(exc))
                return
            self._outstanding.delivered(uuid)

    def _resubscribe(self, why: str) -> None:
        """An update did not reach the agent: drop the stream so the next SUBSCRIBE
        carries it (the agent may be restarting; the stream may be dead already)."""
        log.warning("executor %s: %s; re-subscribing to deliver held updates",
                    self.executor_id, why)
        self._close_stream()

    async def _post(self, call_type: CallType, body: bytes) -> None:
        """POST one call; return on any 2xx, raise ``CallError`` or
        ``AgentConnectionError`` otherwise."""
        assert self._session is not None, "the driver is not running"
        try:
            async with self._session.post(
                    self.env.url, data=body, headers=self._headers(),
                    timeout=aiohttp.ClientTimeout(total=self.call_timeout)) as response:
                text = (await response.read()).decode("utf-8", "replace").strip()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise AgentConnectionError(f"{call_type.value} to {self.env.url} failed: "
                                       f"{_describe(exc)}") from exc
        if not 200 <= status < 300:
            raise CallError(status, error_message(text), call_type.value)

    def _call(self, call_type: CallType, **fields: Any) -> bytes:
        return encode_call(Call(executor_id=ID(self.executor_id),
                                framework_id=ID(self.framework_id), type=call_type, **fields))

    def _headers(self) -> dict[str, str]:
        token = self.env.authentication_token
        return {**JSON_HEADERS, "Authorization": f"Bearer {token}"} if token else JSON_HEADERS

    async def _callback(self, name: str, *args: object) -> bool:
        """Run ``executor.<name>(self, *args)``; False if it raised (logged)."""
        try:
            result = getattr(self.executor, name)(self, *args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("Executor.%s raised; the driver carries on", name)
            return False
        return True


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def run(executor: Executor, env: ExecutorEnv | None = None, **options: Any) -> int:
    """Run ``executor`` until it is told to leave; returns the exit status: 0 after
    SHUTDOWN, 1 when the agent was lost, 2 when the environment is not an executor's.

    For executors started with ``python -m``::

        if __name__ == "__main__":
            raise SystemExit(run(MyExecutor()))

    SIGTERM runs the executor's ``shutdown`` as a SHUTDOWN event does.  Logs go to
    stderr (the sandbox's ``stderr`` file) unless logging is configured already.
    ``options`` are ``ExecutorDriver``'s.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        env = env if env is not None else ExecutorEnv.from_environ(os.environ)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    return asyncio.run(_run(executor, env, options))


async def _run(executor: Executor, env: ExecutorEnv, options: dict[str, Any]) -> int:
    driver = ExecutorDriver(executor, env, **options)
    with contextlib.suppress(NotImplementedError):  # no signal handlers on this platform
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, driver.request_shutdown)
    try:
        await driver.run()
    except AgentLostError:
        return 1
    return 0
