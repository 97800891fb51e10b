"""The scheduler driver: subscribes to the master and runs a ``Scheduler``.

``await Driver(...).run()`` keeps one subscription alive until ``stop()``:

* SUBSCRIBE goes to the last known leader first, then to each configured master in
  order; 307 redirects are followed to the leader.
* Events are read from the RecordIO stream and handed to the scheduler's callbacks
  one at a time, in order.
* When the stream drops, or nothing arrives for ``heartbeat_grace`` heartbeat
  intervals, the driver calls ``disconnected`` and re-subscribes with the framework
  id it was given, after a capped, jittered exponential backoff.
* An ERROR event (or a SUBSCRIBE the master refuses with a 4xx) is passed to
  ``Scheduler.error``; then, unless ``abort_on_error=False``, ``run`` raises
  ``DriverAborted``: Mesos' contract is that such a framework must not carry on.

Calls (``launch``, ``decline``, ...) are separate POSTs over one kept-alive
``aiohttp.ClientSession``; they raise ``CallError`` when the master refuses them and
``MasterConnectionError`` when it cannot be reached.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import ssl
from collections.abc import Sequence

import aiohttp
import msgspec

from mesoslite.messages.mesos import FrameworkInfo, MasterInfo, OperationStatus, TaskStatus
from mesoslite.messages.scheduler import Call, CallType, Subscribed, decode_event, encode_call
from mesoslite.scheduler import calls
from mesoslite.scheduler.actions import CallMethods
from mesoslite.scheduler.backoff import Backoff
from mesoslite.scheduler.callbacks import Scheduler
from mesoslite.scheduler.errors import (
    CallError,
    DriverAborted,
    DriverError,
    MasterUnreachableError,
    NotSubscribedError,
)
from mesoslite.scheduler.events import callback_for
from mesoslite.scheduler.stream_driver import StreamDriver
from mesoslite.scheduler.transport import (
    StreamLost,
    endpoint,
    open_subscription,
    post_call,
)

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_INTERVAL = 15.0  # Mesos' default, used until SUBSCRIBED states one
ACK_DRAIN_TIMEOUT = 5.0  # how long stopping waits for acknowledgements in flight
# How long a cancelled task (the main loop, an acknowledgement) or closing the HTTP
# session may take before ``run`` stops waiting for it: code that ignores its
# cancellation (Python 3.11's ``asyncio.wait_for`` can swallow one) must not make
# stopping a framework hang.
CANCEL_GRACE = 5.0


class Driver(CallMethods, StreamDriver):
    """Connects a ``Scheduler`` to a mesoslite (or Mesos) master.

    ``master`` is one URL or a list (``http://host:5050`` or ``host:5050``).
    ``heartbeat_grace`` is how many heartbeat intervals may pass without any event
    before the stream counts as dead.  ``backoff_*`` shape the delay between
    re-subscription attempts; ``max_reconnect_attempts`` (None: forever) bounds how
    many consecutive attempts may find no master before ``run`` raises
    ``MasterUnreachableError``.  A ``session`` passed in is used and left open;
    otherwise ``run`` creates one and closes it on exit, sending ``authorization``
    (an ``Authorization`` header value, e.g. ``mesoslite.auth.basic_header(p, s)``)
    with every request and verifying TLS with ``ssl_context``.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        framework_info: FrameworkInfo,
        master: str | Sequence[str],
        *,
        implicit_acknowledgements: bool = True,
        heartbeat_grace: float = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        backoff_factor: float = 2.0,
        max_reconnect_attempts: int | None = None,
        abort_on_error: bool = True,
        connect_timeout: float = 10.0,
        call_timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        rng: random.Random | None = None,
        authorization: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # "http://m1:5050,http://m2:5050" is accepted as the list it spells
        masters = ([m.strip() for m in master.split(",") if m.strip()]
                   if isinstance(master, str) else list(master))
        if not masters:
            raise ValueError("at least one master URL is needed")
        if heartbeat_grace <= 0:
            raise ValueError("heartbeat_grace must be > 0")
        StreamDriver.__init__(self)
        self.scheduler = scheduler
        self.masters = [endpoint(m) for m in masters]
        self.implicit_acknowledgements = implicit_acknowledgements
        self.heartbeat_grace = heartbeat_grace
        self.abort_on_error = abort_on_error
        self.connect_timeout = connect_timeout
        self.call_timeout = call_timeout
        self.max_reconnect_attempts = max_reconnect_attempts
        self._backoff = Backoff(backoff_initial, backoff_max, backoff_factor, rng)
        self._framework_info = framework_info
        self._session = session
        self._authorization = authorization
        self._ssl_context = ssl_context
        self._leader: str | None = None
        self._stream_id: str | None = None
        self._response: aiohttp.ClientResponse | None = None
        self._subscribed = False
        self._master_info: MasterInfo | None = None
        self._heartbeat_interval = DEFAULT_HEARTBEAT_INTERVAL
        self._suppressed: set[str] = set()
        self._acks: set[asyncio.Task[None]] = set()
        self._acks_in_flight: set[tuple[str, bytes]] = set()
        self._abort: str | None = None
        self._failed_attempts = 0

    # ------------------------------------------------------------ state

    @property
    def framework_id(self) -> str | None:
        """The framework id (from SUBSCRIBED, or ``framework_info.id`` on failover)."""
        return self._framework_info.id.value if self._framework_info.id else None

    @property
    def framework_info(self) -> FrameworkInfo:
        return self._framework_info

    @property
    def subscribed(self) -> bool:
        """True between SUBSCRIBED and the loss of that stream."""
        return self._subscribed

    @property
    def stream_id(self) -> str | None:
        return self._stream_id

    @property
    def leader(self) -> str | None:
        """Scheduler endpoint URL of the master that accepted the last SUBSCRIBE."""
        return self._leader

    @property
    def master_info(self) -> MasterInfo | None:
        return self._master_info

    @property
    def heartbeat_interval(self) -> float:
        return self._heartbeat_interval

    # ------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Subscribe and dispatch events until ``stop()``.

        Returns after ``stop()``; raises ``DriverAborted`` after an ERROR (see the
        module docstring) and ``MasterUnreachableError`` when
        ``max_reconnect_attempts`` consecutive attempts found no master.
        """
        if self._main is not None:
            raise RuntimeError("Driver.run() is already running")
        self._abort = None
        owns_session = self._session is None
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": self._authorization} if self._authorization else None,
                connector=aiohttp.TCPConnector(ssl=self._ssl_context)
                if self._ssl_context else None)

        async def finish(main: asyncio.Task[None]) -> None:
            if not main.done():
                main.cancel()
                await _settle({main}, "the driver's main loop (in a scheduler callback?)")
            self._main = None
            await self._shutdown(owns_session)

        await self._run_main("mesoslite-driver", finish)
        if self._abort is not None:
            raise DriverAborted(self._abort)

    def stop(self) -> None:
        """Ask ``run`` to return.  Safe from callbacks and other tasks; a callback in
        progress finishes first.  The framework stays registered with the master
        until its failover timeout (use ``teardown`` to remove it)."""
        StreamDriver.stop(self)

    def _leaving(self) -> bool:
        return self._stop_requested or self._abort is not None

    async def _drain_acks(self) -> None:
        """Let in-flight acknowledgements land so agents stop re-sending updates.

        Runs before the stream closes: the master refuses calls (403) from a
        framework whose stream is gone."""
        if self._acks:
            _, pending = await asyncio.wait(set(self._acks), timeout=ACK_DRAIN_TIMEOUT)
            for task in pending:
                task.cancel()
            await _settle(pending, "acknowledgements in flight")

    async def _shutdown(self, owns_session: bool) -> None:
        await self._drain_acks()
        self._close_stream()
        self._subscribed = False
        if owns_session and self._session is not None:
            session, self._session = self._session, None
            await _settle({asyncio.ensure_future(session.close())}, "closing the HTTP session")
        self._stop_requested = False

    async def _main_loop(self) -> None:
        while not self._stop_requested:
            try:
                await self._subscribe_and_read()
            except MasterUnreachableError as exc:
                self._failed_attempts += 1
                limit = self.max_reconnect_attempts
                if limit is not None and self._failed_attempts >= limit:
                    raise
                log.warning("%s; retrying", exc)
            except CallError as exc:
                self._failed_attempts += 1
                await self._fatal(f"master refused SUBSCRIBE (HTTP {exc.status}): {exc.message}")
            except StreamLost as exc:
                log.warning("event stream from %s lost: %s", self._leader, exc)
            finally:
                if self._stop_requested:
                    await self._drain_acks()
                self._close_stream()
            if self._stop_requested or self._abort is not None:
                return
            if self._subscribed:
                self._subscribed = False
                await self._callback("disconnected")
                if self._stop_requested:
                    return
            await self._interruptibly(asyncio.sleep(self._backoff.next()))

    def _candidates(self) -> list[str]:
        """The known leader first, then the configured masters in order."""
        ordered = ([self._leader] if self._leader else []) + self.masters
        return list(dict.fromkeys(ordered))

    async def _subscribe_and_read(self) -> None:
        assert self._session is not None
        body = encode_call(calls.subscribe(self._framework_info, self._suppressed))
        sub = await self._interruptibly(open_subscription(
            self._session, self._candidates(), body, self.connect_timeout))
        self._response, self._leader, self._stream_id = sub.response, sub.url, sub.stream_id
        log.info("subscribed to %s (stream %s)", sub.url, sub.stream_id)
        await self._read_events(
            sub.response, lambda: self.heartbeat_grace * self._heartbeat_interval)

    def _close_stream(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None
        self._stream_id = None

    async def _handle_record(self, record: bytes) -> None:
        try:
            event = decode_event(record)
        except msgspec.DecodeError as exc:
            # One bad event must not cost the subscription; the framing is intact.
            log.warning("ignoring an event the driver cannot decode: %s", exc)
            return
        target = callback_for(event)
        if target is None:
            return  # HEARTBEAT (its arrival already reset the silence timer) and the like
        name, args = target
        if name == "error":
            await self._fatal(str(args[0]))
            return
        if event.subscribed is not None:
            self._note_subscribed(event.subscribed)
        handled = await self._callback(name, *args)
        status = event.update.status if event.update else None
        # Only updates with a uuid come from an agent waiting for the ack;
        # master-generated ones (reconciliation) carry none.
        if handled and status is not None and status.uuid and self.implicit_acknowledgements:
            self._acknowledge_later(status)
        op_status = event.update_operation_status.status if event.update_operation_status \
            else None
        # Likewise for operation updates: only tracked ones (with a uuid) want an ack.
        if handled and op_status is not None and op_status.uuid and \
                self.implicit_acknowledgements:
            self._acknowledge_operation_later(op_status)

    def _note_subscribed(self, sub: Subscribed) -> None:
        self._framework_info = msgspec.structs.replace(self._framework_info, id=sub.framework_id)
        if sub.heartbeat_interval_seconds and sub.heartbeat_interval_seconds > 0:
            self._heartbeat_interval = sub.heartbeat_interval_seconds
        self._master_info = sub.master_info
        self._subscribed = True
        self._backoff.reset()
        self._failed_attempts = 0

    async def _fatal(self, message: str) -> None:
        log.error("master error: %s", message)
        await self._callback("error", message)
        if self.abort_on_error:
            self._abort = message

    async def _callback(self, name: str, *args: object) -> bool:
        """Run ``scheduler.<name>(self, *args)``; False if it raised (logged)."""
        try:
            result = getattr(self.scheduler, name)(self, *args)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("Scheduler.%s raised; the driver carries on", name)
            return False
        return True

    def _acknowledge_later(self, status: TaskStatus) -> None:
        if status.agent_id is None or status.uuid is None:
            log.warning("update of task %s has no agent_id; not acknowledged", status.task_id.value)
            return
        self._send_ack(calls.acknowledge(status.agent_id, status.task_id, status.uuid),
                       (status.task_id.value, status.uuid), f"task {status.task_id.value}")

    def _acknowledge_operation_later(self, status: OperationStatus) -> None:
        if status.operation_id is None or status.uuid is None:
            return
        self._send_ack(calls.acknowledge_operation_status(status),
                       (status.operation_id.value, status.uuid.value),
                       f"operation {status.operation_id.value}")

    def _send_ack(self, call: Call, key: tuple[str, bytes], what: str) -> None:
        if key in self._acks_in_flight:
            return  # a retransmission of an update whose ack is on its way
        try:
            # Bind the current stream now: the ack may run after stop() closed it.
            target = self._target(call)
        except NotSubscribedError:
            log.warning("update of %s came unsubscribed; not acknowledged", what)
            return
        task = asyncio.create_task(self._acknowledge(call, target, what))
        self._acks.add(task)
        self._acks_in_flight.add(key)
        task.add_done_callback(self._acks.discard)
        task.add_done_callback(lambda _: self._acks_in_flight.discard(key))

    async def _acknowledge(self, call: Call, target: tuple[str, str], what: str) -> None:
        try:
            await self._post(call, target)
        except DriverError as exc:
            log.warning("acknowledging %s failed (it will be resent): %s", what, exc)

    # ------------------------------------------------------------ calls

    def _target(self, call: Call) -> tuple[str, str]:
        """(leader URL, stream id) for ``call``; raises ``NotSubscribedError``."""
        if not self._subscribed or self._stream_id is None or self._leader is None:
            raise NotSubscribedError(f"cannot send {call.type.value}: the driver is not subscribed")
        return self._leader, self._stream_id

    async def _post(self, call: Call, target: tuple[str, str]) -> None:
        assert self._session is not None
        call = msgspec.structs.replace(call, framework_id=self._framework_info.id)
        url, stream_id = target
        await post_call(
            self._session, url, stream_id, encode_call(call), call.type.value, self.call_timeout
        )

    async def send(self, call: Call) -> None:
        """Send any call but SUBSCRIBE (built with ``mesoslite.scheduler.calls`` or by
        hand); the framework id is filled in.  Raises ``NotSubscribedError``,
        ``CallError`` or ``MasterConnectionError``."""
        if call.type == CallType.SUBSCRIBE:
            raise ValueError("the driver subscribes by itself")
        await self._post(call, self._target(call))

    def _note_suppression(self, roles: list[str], suppressed: bool) -> None:
        if suppressed:
            self._suppressed |= set(roles or self._framework_info.effective_roles())
        else:
            self._suppressed = self._suppressed - set(roles) if roles else set()


async def _settle(tasks: set[asyncio.Future[None]], what: str) -> None:
    """Wait (at most ``CANCEL_GRACE`` s) for cancelled or closing ``tasks`` to end;
    past that, log where they are stuck and carry on without them."""
    if not tasks:
        return
    _, stuck = await asyncio.wait(tasks, timeout=CANCEL_GRACE)
    for task in stuck:
        where = " -> ".join(_await_chain(task)) or repr(task)
        log.error("stopping the driver: %s did not end within %gs of being cancelled "
                  "(stuck at %s); leaving it behind", what, CANCEL_GRACE, where)
    for task in tasks - stuck:
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s ended with %r", what, task.exception())


def _await_chain(task: asyncio.Future[None]) -> list[str]:
    """Where a task is suspended, outermost first (``get_stack`` shows only the top)."""
    out = []
    coro = task.get_coro() if isinstance(task, asyncio.Task) else None
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        frame = coro.cr_frame
        out.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None)
    return out
