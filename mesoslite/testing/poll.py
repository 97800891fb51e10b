"""Bounded waits for tests: no fixed sleeps, no unbounded awaits, and a failure that
says what was awaited, for how long, and (for ``within``) where it was stuck.

* ``wait_for(predicate, timeout, message=...)``: poll until a condition holds.
* ``within(seconds, what, awaitable)``: await one thing (a server's start or stop, a
  queue, an event, a stream read) for at most ``seconds``.

Both raise ``WaitTimeout`` (an ``AssertionError``) naming what they waited for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mesoslite.testing.awaiting import awaiting

T = TypeVar("T")

# How long a timed-out ``within`` lets its cancelled work unwind before reporting.
CANCEL_GRACE = 1.0
# Bounds for fixtures starting or stopping a whole server or cluster: generous (a
# loaded 2-core CI machine, Docker containers stopping with their grace periods), yet
# a hang fails in a minute or two and says which start or stop hung.
SERVER_LIMIT = 60.0
CLUSTER_LIMIT = 120.0


class WaitTimeout(AssertionError):
    """A bounded wait in a test ran out; the message names what it waited for."""


async def within(seconds: float, what: str, awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` for at most ``seconds`` and return its result.

    On timeout raises ``WaitTimeout``: "timed out after 10.0s (limit 10s) waiting for
    <what>", plus where the work was stuck (its innermost frame and the future it
    awaited).  A coroutine is run as its own task and cancelled on timeout; ``within``
    returns after at most ``CANCEL_GRACE`` more seconds even if it ignores the
    cancellation (so a swallowed cancel cannot turn the bound into a hang).  A future
    or task passed in is not cancelled: its owner decides.
    """
    owned = asyncio.iscoroutine(awaitable)
    task = asyncio.ensure_future(awaitable)
    if owned and isinstance(task, asyncio.Task):
        task.set_name(f"within: {what}")
    start = time.monotonic()
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        if owned:
            task.cancel()
        raise
    if done:
        return task.result()
    where = awaiting(task) if isinstance(task, asyncio.Task) else repr(task)
    if owned:
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_GRACE)
    raise WaitTimeout(f"timed out after {time.monotonic() - start:.1f}s (limit {seconds:g}s) "
                      f"waiting for {what}; stuck in {where}")


async def wait_for(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Call ``predicate`` (sync or async) until it returns a truthy value; return it.

    Raises ``WaitTimeout`` (with ``message`` and the last value) after ``timeout`` s;
    one async call of ``predicate`` may take the time left (at least 1 s), no more.
    """
    deadline = time.monotonic() + timeout
    what = message or repr(predicate)
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            # An async check (an HTTP GET, say) is bounded too: a wedged server must
            # not hold the poll past its deadline.
            left = max(deadline - time.monotonic(), 1.0)
            value = await within(left, f"one check of {what}", value)
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout:g}s waiting for {what} (last value: {value!r})"
            )
        await asyncio.sleep(interval)


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Blocking variant of ``wait_for`` for synchronous code."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeout(
                f"timed out after {timeout:g}s waiting for {message or predicate!r} "
                f"(last value: {value!r})"
            )
        time.sleep(interval)
