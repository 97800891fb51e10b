"""The I/O around a ``FrameworkCore``: the driver, the store, the calls, the clock.

``FrameworkRunner`` connects a ``Workload`` to a master:

* the driver's callbacks only turn what arrives into events and hand them to the
  core (synchronously: the core does no I/O), so a status update is folded in the
  moment it arrives, never behind an offer round;
* one loop wakes when something was handed in, when ``kick()`` is called (an API
  change) or when the core says something falls due; it feeds the core a ``Tick``,
  makes the journal durable (``commit``), and only then passes the instructions on:
  nothing the store does not yet reflect is ever sent;
* the placement engine runs in a worker thread; its answer comes back as an event;
* one sender carries the calls out in order (runs of one kind at once) and reports
  how each ACCEPT went; the acknowledgements the journal releases join it;
* the driver is restarted, after the core's backoff, when the master aborts it (a
  framework the master removed subscribes afresh).

``commit()`` is the barrier for API handlers: it returns once every change recorded
before the call is durable.  Every wait of ``stop()`` is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from mesoslite.clock import Clock, SystemClock
from mesoslite.framework.backoff import LaunchBackoff
from mesoslite.framework.core import FrameworkCore, KitSettings
from mesoslite.framework.events import (
    AcceptDone,
    CallOutcome,
    Disconnected,
    Error,
    Event,
    Failure,
    Message,
    Offers,
    Placed,
    Rescind,
    Subscribed,
    Tick,
    Update,
)
from mesoslite.framework.instructions import (
    Accept,
    Decline,
    Instruction,
    Kill,
    Place,
    Reconcile,
    Revive,
    Suppress,
    Teardown,
)
from mesoslite.framework.journal import Acknowledge, Journal
from mesoslite.framework.store import DocumentStore
from mesoslite.framework.workload import Workload
from mesoslite.messages.mesos import (
    ID,
    Filters,
    FrameworkInfo,
    InverseOffer,
    MasterInfo,
    Offer,
    TaskStatus,
)
from mesoslite.placement import place
from mesoslite.scheduler import (
    CallError,
    Driver,
    DriverAborted,
    DriverError,
    NotSubscribedError,
    Scheduler,
)

log = logging.getLogger(__name__)

STOP_TIMEOUT = 10.0  # each step of stop() waits at most this long
COMMIT_RETRY_MAX = 5.0  # longest pause between attempts to write to a failing store


class FrameworkRunner:
    """Runs ``workload`` against ``masters`` (see the module docstring).

    ``framework_info`` is the FrameworkInfo to subscribe with, or a function building
    it; its id is the core's at every attempt (``framework_id``: the one loaded from
    the store's meta table, with which a restarted framework fails over).
    ``store`` None keeps the journal in memory only (a framework without durable
    state, like ``examples/frameworks/hello.py``).  ``on_commit`` is called with the
    notes of every generation once it is durable (events to publish, say).
    ``driver_options`` go to every ``Driver`` (authorization, TLS, backoff ...).
    """

    def __init__(self, workload: Workload,
                 framework_info: FrameworkInfo | Callable[[], FrameworkInfo],
                 masters: str | Sequence[str], *, journal: Journal | None = None,
                 store: DocumentStore | None = None, settings: KitSettings | None = None,
                 clock: Clock | None = None, tick_s: float = 0.5,
                 on_commit: Callable[[list[Any]], None] | None = None,
                 driver_options: dict[str, Any] | None = None,
                 rng: random.Random | None = None, backoff: LaunchBackoff | None = None,
                 framework_id: str | None = None) -> None:
        self.workload = workload
        self.journal = journal or Journal()
        self.store = store
        self.clock = clock or SystemClock()
        self.core = FrameworkCore(workload, self.journal, settings, rng, backoff,
                                  framework_id)
        self.masters = masters
        self.tick_s = tick_s
        self.on_commit = on_commit
        self.driver_options = dict(driver_options or {})
        self.driver: Driver | None = None
        self._framework_info = framework_info
        self._todo: list[Instruction] = []
        self._wake = asyncio.Event()
        self._outbox: list[Instruction] = []
        self._out_wake = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._placing: set[asyncio.Task[None]] = set()
        self._stopping = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the loop, the sender and the driver; returns at once."""
        self._tasks = {
            "loop": asyncio.create_task(self._loop(), name="framework-loop"),
            "sender": asyncio.create_task(self._sender(), name="framework-calls"),
            "driver": asyncio.create_task(self._drive(), name="framework-driver"),
        }

    async def run(self) -> None:
        """``start``, then wait until the framework tears itself down or ``stop``s."""
        await self.start()
        with contextlib.suppress(asyncio.CancelledError):
            await self._tasks["driver"]
        await self.stop()

    async def stop(self) -> None:
        """Stop deciding, make what was decided durable, send what is due, then close
        the subscription (the master keeps the tasks until the failover timeout)."""
        self._stopping = True
        await _cancel(self._tasks.get("loop"))
        for task in list(self._placing):
            await _cancel(task)
        await _bounded(self.commit(), "the last commit")
        await _bounded(self._drain_outbox(), "the last calls to be sent")
        await _cancel(self._tasks.get("sender"))
        if self.driver is not None:
            self.driver.stop()
        driver_task = self._tasks.get("driver")
        if driver_task is not None and not driver_task.done():
            await _bounded(asyncio.shield(driver_task), "the driver to stop")
            await _cancel(driver_task)
        if self.store is not None:
            await _bounded(asyncio.to_thread(self.store.close), "the store to close")

    def kick(self) -> None:
        """Plan again soon (after an API change)."""
        self._wake.set()

    async def commit(self) -> None:
        """Return once every change recorded before this call is durable.  A failing
        store is retried (with backoff) until it takes the write: callers wait
        rather than being told something false."""
        async with self._commit_lock:
            batch = self.journal.take()
            if batch is None:
                return
            if batch and self.store is not None:
                await self._write(batch)
            acks = self.journal.committed(batch)
            if self.on_commit is not None and batch.notes:
                self.on_commit(batch.notes)
            self._send_later(acks)

    async def _write(self, batch: Any) -> None:
        assert self.store is not None
        delay = 0.05
        while True:
            try:
                await asyncio.to_thread(self.store.apply, batch)
                return
            except Exception as exc:  # noqa: BLE001 - the database may come back
                log.warning("store %s: write failed (%s); retrying in %.2fs",
                            self.store.describe(), exc, delay)
                await asyncio.sleep(delay)
                delay = min(COMMIT_RETRY_MAX, delay * 2)

    # ------------------------------------------------------------ events in

    def feed(self, event: Event) -> None:
        """Hand ``event`` to the core now; its instructions go out after the next
        commit."""
        self._todo += self.core.handle(event, self.clock.now())
        self._wake.set()  # the loop ticks, commits and sends what came of it

    async def _loop(self) -> None:
        while True:
            wake = self.core.next_wake()
            timeout = self.tick_s
            if wake is not None:
                timeout = max(0.0, min(timeout, wake - self.clock.now()))
            # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a
            # cancellation that arrives as the event is set, and stop() cancels us.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            self._wake.clear()
            try:
                self._todo += self.core.handle(Tick(), self.clock.now())
            except Exception:  # a bad plan must not stop the framework; the next retries
                log.exception("planning failed")
            todo, self._todo = self._todo, []
            await self.commit()  # covers every change made while deciding ``todo``
            self._dispatch(todo)

    def _dispatch(self, todo: list[Instruction]) -> None:
        calls = []
        for instruction in todo:
            if isinstance(instruction, Place):
                task = asyncio.create_task(self._place(instruction))
                self._placing.add(task)
                task.add_done_callback(self._placing.discard)
            else:
                calls.append(instruction)
        self._send_later(calls)

    async def _place(self, instruction: Place) -> None:
        try:
            answer = await asyncio.to_thread(place, instruction.problem)
        except Exception as exc:  # an unanswered offer is lost to every framework
            log.exception("placement failed")
            self.feed(Placed(instruction.round_id, None, str(exc) or type(exc).__name__))
            return
        self.feed(Placed(instruction.round_id, answer))

    # ------------------------------------------------------------ calls out

    def _send_later(self, calls: Sequence[Instruction]) -> None:
        if calls:
            self._outbox.extend(calls)
            self._out_wake.set()

    async def _sender(self) -> None:
        while True:
            await self._out_wake.wait()
            self._out_wake.clear()
            await self._send_outbox()

    async def _send_outbox(self) -> None:
        batch, self._outbox = self._outbox, []
        # Calls of one kind in a row go together; kinds stay in order (an ACCEPT
        # before a KILL of what it launched, a SUPPRESS before a later REVIVE).
        start = 0
        for i in range(1, len(batch) + 1):
            if i == len(batch) or type(batch[i]) is not type(batch[start]):
                await asyncio.gather(*(self._send(c) for c in batch[start:i]))
                start = i

    async def _drain_outbox(self) -> None:
        while self._outbox:
            await self._send_outbox()

    async def _send(self, call: Instruction) -> None:
        driver = self.driver
        try:
            if driver is None:
                raise NotSubscribedError("no driver yet")
            await _call(driver, call)
        except (CallError, NotSubscribedError) as exc:
            if isinstance(call, Accept):
                self.feed(AcceptDone(call.accept_id, CallOutcome.REFUSED, str(exc)))
            else:
                log.info("%s not sent: %s", type(call).__name__, exc)
            return
        except DriverError as exc:  # it may or may not have arrived
            if isinstance(call, Accept):
                log.warning("ACCEPT on %s not confirmed (%s)", call.agent_id, exc)
                self.feed(AcceptDone(call.accept_id, CallOutcome.UNKNOWN, str(exc)))
            else:
                log.info("%s not confirmed: %s", type(call).__name__, exc)
            return
        if isinstance(call, Accept):
            self.feed(AcceptDone(call.accept_id, CallOutcome.OK))

    # ------------------------------------------------------------ the driver

    @property
    def framework_id(self) -> str | None:
        return self.core.framework_id

    def _info(self) -> FrameworkInfo:
        base = self._framework_info
        info = base() if callable(base) else base
        fid = self.core.framework_id
        return msgspec.structs.replace(info, id=ID(fid) if fid else None)

    async def _drive(self) -> None:
        """Keep a subscription; after an abort, start again (afresh if removed)."""
        inbox = _Inbox(self)
        while not self._stopping:
            self.driver = Driver(inbox, self._info(), self.masters,
                                 implicit_acknowledgements=False, **self.driver_options)
            try:
                await self.driver.run()
                return  # stopped, or torn down
            except DriverAborted as exc:
                if self._stopping:
                    return
                self.feed(Error(str(exc)))
            except Exception:  # keep the framework alive; the next attempt may work
                log.exception("the scheduler driver failed")
            delay = self.core.resubscribe_delay()
            log.info("subscribing again in %.1fs", delay)
            await asyncio.sleep(delay)


async def _call(driver: Driver, call: Instruction) -> None:
    """Carry out one call instruction with the driver."""
    if isinstance(call, Accept):
        await driver.accept(call.offer_ids, call.operations,
                            Filters(refuse_seconds=call.refuse_seconds))
    elif isinstance(call, Decline):
        await driver.decline(call.offer_ids, refuse_seconds=call.refuse_seconds)
    elif isinstance(call, Kill):
        log.info("killing %s: %s", call.task_id, call.reason)
        await driver.kill(call.task_id, call.agent_id, call.grace_period)
    elif isinstance(call, Acknowledge):
        await driver.acknowledge(call.agent_id, call.task_id, call.uuid)
    elif isinstance(call, Revive):
        await driver.revive(call.roles or None)
    elif isinstance(call, Suppress):
        await driver.suppress(call.roles or None)
    elif isinstance(call, Reconcile):
        await driver.reconcile(list(call.tasks) or None)
    elif isinstance(call, Teardown):
        await driver.teardown()
    else:
        raise TypeError(f"not a call: {call!r}")


class _Inbox(Scheduler):
    """The driver's callbacks: each becomes one event, handed in at once."""

    def __init__(self, runner: FrameworkRunner) -> None:
        self.runner = runner

    async def subscribed(self, driver: Driver, framework_id: str,
                         master_info: MasterInfo | None) -> None:
        log.info("subscribed as framework %s", framework_id)
        self.runner.feed(Subscribed(framework_id, master_info))

    async def disconnected(self, driver: Driver) -> None:
        log.warning("lost the master; re-subscribing")
        self.runner.feed(Disconnected())

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        self.runner.feed(Offers(tuple(offers)))

    async def rescinded(self, driver: Driver, offer_id: str) -> None:
        self.runner.feed(Rescind(offer_id))

    async def inverse_offers(self, driver: Driver, inverse_offers: list[InverseOffer]) -> None:
        # Left unanswered (the operator sees UNKNOWN): the framework moves its tasks
        # when the machine goes DOWN and they are reported lost.
        for inverse in inverse_offers:
            log.info("maintenance of agent %s is scheduled (inverse offer %s)",
                     inverse.agent_id.value if inverse.agent_id else "?", inverse.id.value)

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        self.runner.feed(Update(status))

    async def message(self, driver: Driver, agent_id: str, executor_id: str,
                      data: bytes) -> None:
        self.runner.feed(Message(agent_id, executor_id, data))

    async def failure(self, driver: Driver, agent_id: str | None, executor_id: str | None,
                      status: int | None) -> None:
        self.runner.feed(Failure(agent_id, executor_id, status))

    async def error(self, driver: Driver, message: str) -> None:
        log.error("the master reported an error: %s", message)


async def _bounded(awaitable: Any, what: str) -> None:
    """Wait for ``awaitable`` at most ``STOP_TIMEOUT`` seconds (logged if it did not end)."""
    try:
        await asyncio.wait_for(awaitable, STOP_TIMEOUT)
    except TimeoutError:
        log.warning("stopping: gave up waiting for %s after %.0fs", what, STOP_TIMEOUT)
    except Exception:  # stopping goes on
        log.exception("stopping: waiting for %s failed", what)


async def _cancel(task: asyncio.Task[Any] | None) -> None:
    if task is None or task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(task, STOP_TIMEOUT)
