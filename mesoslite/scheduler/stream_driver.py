"""What the scheduler driver and the executor driver share: one main task that
reads an event stream and hands its records to callbacks, and a ``stop()`` that may
cancel that task only where it waits (on I/O or a backoff sleep), never while a
callback runs.

A subclass supplies ``_main_loop`` (the task), ``_handle_record`` (one record) and
``_leaving`` (whether the current stream should be left now), and calls
``_run_main`` from its ``run``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp

from mesoslite.scheduler.transport import event_records

T = TypeVar("T")


class StreamDriver:
    def __init__(self) -> None:
        self._main: asyncio.Task[None] | None = None
        # True only while the main task waits on I/O or a backoff sleep, i.e. where
        # stop() may cancel it; never while a callback runs.
        self._interruptible = False
        self._stop_requested = False

    async def _main_loop(self) -> None:
        raise NotImplementedError

    async def _handle_record(self, record: bytes) -> None:
        raise NotImplementedError

    def _leaving(self) -> bool:
        """Whether to stop reading the current stream (after the record in hand)."""
        return self._stop_requested

    def stop(self) -> None:
        """Ask ``run`` to return.  Safe from callbacks and other tasks; a callback in
        progress finishes first."""
        self._stop_requested = True
        if self._main is not None and self._interruptible and not self._main.done():
            self._main.cancel()

    async def _run_main(self, name: str,
                        finish: Callable[[asyncio.Task[None]], Awaitable[None]]) -> None:
        """Run ``_main_loop`` as the main task until it ends or ``stop()`` cancels it;
        ``finish(main)`` then cleans up (whatever happened).  Cancelling the caller
        is passed on, unless it is the cancellation ``stop()`` asked for."""
        self._main = main = asyncio.create_task(self._main_loop(), name=name)
        try:
            # Not ``await main``: cancelling run() would be passed on to main and wait
            # for it to end, for ever if a callback ignores its cancellation.
            await asyncio.wait({main})
            main.result()
        except asyncio.CancelledError:
            current = asyncio.current_task()
            ours = self._stop_requested and main.cancelled()
            if not ours or (current is not None and current.cancelling()):
                raise
        finally:
            await finish(main)

    async def _interruptibly(self, waiting: Awaitable[T]) -> T:
        """Await ``waiting`` where ``stop()`` may cancel the main task."""
        self._interruptible = True
        try:
            return await waiting
        finally:
            self._interruptible = False

    async def _read_events(self, response: aiohttp.ClientResponse,
                           silence_limit: Callable[[], float]) -> None:
        """Dispatch the stream's records until it ends, goes silent (``StreamLost``)
        or ``_leaving()``."""
        batches = event_records(response, silence_limit)
        try:
            while True:
                records = await self._interruptibly(anext(batches))
                for record in records:
                    await self._handle_record(record)
                    if self._leaving():
                        return
        finally:
            await batches.aclose()
