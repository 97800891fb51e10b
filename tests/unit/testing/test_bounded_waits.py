"""Bounded waits name what they waited for: ``within``, ``wait_for`` and the pytest
safety net that turns a hung asyncio test into a failure naming the awaited thing."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from mesoslite.testing.awaiting import awaiting
from mesoslite.testing.poll import WaitTimeout, wait_for, within


async def never(event: asyncio.Event) -> None:
    await event.wait()  # nothing sets it


async def test_within_returns_the_result() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert await within(5, "the answer", answer()) == 42


async def test_within_names_what_it_waited_for_and_where_it_was_stuck() -> None:
    with pytest.raises(WaitTimeout) as caught:
        await within(0.1, "the never-set event", never(asyncio.Event()))
    message = str(caught.value)
    assert "waiting for the never-set event" in message
    assert "in never: await event.wait()" in message  # the line it was stuck on


@pytest.mark.timeout(60)
async def test_within_is_bounded_even_when_the_work_swallows_its_cancellation() -> None:
    """Python 3.11's ``asyncio.wait_for`` can swallow a cancellation; work that does
    must still not turn ``within`` into a hang."""
    stubborn_done = asyncio.Event()

    async def stubborn() -> None:
        while not stubborn_done.is_set():
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                continue  # ignores every cancel

    with pytest.raises(WaitTimeout, match="the stubborn work"):
        await within(0.1, "the stubborn work", stubborn())
    stubborn_done.set()


async def test_within_leaves_a_future_it_was_given_to_its_owner() -> None:
    owned_elsewhere: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    with pytest.raises(WaitTimeout, match="the owner's future"):
        await within(0.05, "the owner's future", owned_elsewhere)
    assert not owned_elsewhere.cancelled()
    owned_elsewhere.set_result(None)


async def test_wait_for_bounds_one_async_check_by_its_deadline() -> None:
    async def wedged_check() -> bool:
        await asyncio.Event().wait()
        return True

    with pytest.raises(WaitTimeout, match="one check of the wedged server to answer"):
        await wait_for(wedged_check, 0.1, message="the wedged server to answer")


async def test_awaiting_names_the_innermost_own_frame_and_its_future() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(never(event), name="sleeper")
    await asyncio.sleep(0)
    line = awaiting(task)
    assert line.startswith("task 'sleeper' at ") and "in never: await event.wait()" in line
    assert "-> <Future pending" in line
    event.set()
    await task


def test_a_hung_test_fails_at_its_timeout_naming_what_it_awaited(pytester) -> None:
    """The safety net: an inner test awaiting an event nobody sets, with a fixture whose
    teardown hangs too, fails at its timeout with the awaited lines named, and the
    session ends (the teardown is interrupted as well)."""
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makeconftest('pytest_plugins = ("mesoslite.testing.pytest_hangs",)\n')
    pytester.makepyfile(test_inner=textwrap.dedent("""
        import asyncio
        import pytest

        async def stop_server(stopped):
            await stopped.wait()  # the server never reports that it stopped

        @pytest.fixture
        async def server():
            yield
            await stop_server(asyncio.Event())

        @pytest.mark.timeout(1)
        async def test_hangs(server):
            reply = asyncio.Event()
            await reply.wait()  # the reply never comes
    """))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1, errors=1)
    out = result.stdout.str()
    assert "Timeout (>1s): it awaited task" in out
    assert "in test_hangs: await reply.wait()  # the reply never comes" in out
    assert "the event loop was idle" in out
    assert "in stop_server: await stopped.wait()" in out  # the teardown's hang, named
