"""Time as a dependency.

Pure cores take ``now`` as a parameter; servers read it from a ``Clock``.  Tests
inject a ``ManualClock`` and advance it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall clock, for timestamps shown to users)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for timeouts)."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 0.0

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go back")
        self._now += seconds
        self._mono += seconds


class ListeningClock(SystemClock):
    """A ``SystemClock`` whose monotonic time stands still while the event loop is
    blocked (a long synchronous call, a GC pause, a starved CPU).

    Liveness timeouts ("no word from the agent for 3 pings") are measured on it:
    time in which this process could not listen is not the peer's silence, so a
    stalled master does not declare every agent unreachable when it wakes, and a
    stalled agent does not drop a healthy master link.  A small task samples the
    loop every ``resolution`` seconds; lateness beyond ``slack`` counts as a stall,
    including a stall still in progress when ``monotonic()`` is read.  Without a
    running loop (or before ``start``) it is plain ``time.monotonic()``.
    """

    def __init__(self, resolution: float = 0.05, slack: float = 0.05) -> None:
        self.resolution = resolution
        self.slack = slack
        self._stalled = 0.0
        self._expected: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin sampling the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._expected = time.monotonic() + self.resolution
            self._task = asyncio.get_running_loop().create_task(self._sample())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._expected = None

    @property
    def stalled_seconds(self) -> float:
        """Total time the loop was found blocked (for metrics and tests)."""
        return self._stalled

    def monotonic(self) -> float:
        real = time.monotonic()
        overdue = 0.0
        if self._expected is not None:
            overdue = max(0.0, real - self._expected - self.slack)
        return real - self._stalled - overdue

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self.resolution)
            real = time.monotonic()
            assert self._expected is not None
            # Continuous with monotonic(): the overdue part becomes a recorded stall.
            self._stalled += max(0.0, real - self._expected - self.slack)
            self._expected = real + self.resolution
