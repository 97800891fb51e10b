"""The listening clock: a blocked event loop is not counted as a peer's silence."""

import asyncio
import time

from mesoslite.clock import ListeningClock
from mesoslite.testing.poll import wait_for


async def test_a_blocked_loop_does_not_advance_listening_time() -> None:
    clock = ListeningClock(resolution=0.01, slack=0.01)
    clock.start()
    try:
        await wait_for(lambda: clock.monotonic() > 0, 1)  # sampler running
        before_real, before = time.monotonic(), clock.monotonic()
        time.sleep(0.3)  # noqa: ASYNC251 - the point: a synchronous stall
        # Read during the stall's aftermath, before the sampler has run again:
        during = clock.monotonic()
        assert during - before < 0.1
        await asyncio.sleep(0)
        await wait_for(lambda: clock.stalled_seconds > 0.2, 2, interval=0.01)
        after = clock.monotonic()
        assert after >= during  # never goes back
        assert (time.monotonic() - before_real) - (after - before) > 0.2
    finally:
        clock.stop()


async def test_an_attentive_loop_keeps_real_time() -> None:
    clock = ListeningClock(resolution=0.01, slack=0.05)
    clock.start()
    try:
        start_real, start = time.monotonic(), clock.monotonic()
        await wait_for(lambda: time.monotonic() - start_real > 0.2, 2, interval=0.01)
        assert abs((clock.monotonic() - start) - (time.monotonic() - start_real)) < 0.05
    finally:
        clock.stop()


def test_without_a_loop_it_is_the_system_monotonic_clock() -> None:
    clock = ListeningClock()
    assert abs(clock.monotonic() - time.monotonic()) < 0.01
