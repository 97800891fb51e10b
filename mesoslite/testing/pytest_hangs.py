"""A pytest plugin: when a test outlives its pytest-timeout limit, say what it awaited.

pytest-timeout's signal method fails a hung test with the main thread's stack, which
for an asyncio test is only the event loop idling in ``select``.  This plugin takes
over the timer (the ``pytest_timeout_set_timer`` hook) and, when it fires, fails the
test with every pending asyncio task and the await chain it is suspended in, the
test's own task first (see ``mesoslite.testing.awaiting``).

The limit also covers the teardown after a failure: pytest-timeout stops its timer
as soon as a test fails (``pytest_exception_interact``, meant for pdb), which leaves
the fixtures' teardown of a failed test unbounded; here the timer runs until the
whole protocol (setup, call, teardown) ends, unless pdb is in use.  After firing
the alarm is re-armed, so a teardown that hangs on the same thing fails too instead
of blocking the run.  Tests that do not run an event loop and the thread method are
left to pytest-timeout.

Enable with ``pytest_plugins = ("mesoslite.testing.pytest_hangs",)`` (tests/conftest.py).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
import pytest_timeout

from mesoslite.testing.awaiting import await_chain, awaiting, pending_tasks, report

# After the first expiry, how often a still-hanging teardown is interrupted again.
TEARDOWN_GRACE = 30.0
_CANCEL = pytest.StashKey[Callable[[], None]]()
_NAMED = pytest.StashKey[set[int]]()  # ids of the tasks an expiry already named


def _most_telling_first(item: pytest.Item, tasks: list[Any]) -> list[Any]:
    """Tasks not named by an earlier expiry first (a hanging teardown's, not the
    failed test's again), then those with a frame in the test's file."""
    path = str(item.path)
    named = item.stash.setdefault(_NAMED, set())

    def own(task: Any) -> bool:
        return any(frame.filename == path for frame in await_chain(task))

    ordered = sorted(tasks, key=lambda t: (id(t) in named, not own(t)))
    named.update(id(t) for t in tasks)
    return ordered


def hang_message(item: pytest.Item, limit: float, frame: FrameType | None) -> str | None:
    """The failure text for a timed-out asyncio test, or None when no task is pending."""
    tasks = _most_telling_first(item, pending_tasks())
    if not tasks:
        return None
    if frame is None or frame.f_code.co_name in ("select", "poll", "_run_once"):
        state = "the event loop was idle: every task awaits something that never came"
    else:
        code = frame.f_code
        state = f"the loop was busy in {code.co_filename}:{frame.f_lineno} ({code.co_name})"
    return (f"Timeout (>{limit:g}s): it awaited {awaiting(tasks[0])}\n{state}\n"
            f"pending asyncio tasks ({len(tasks)}):\n{report(tasks)}")


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    if settings.method != "signal" or threading.current_thread() is not threading.main_thread():
        return None  # pytest-timeout's own implementation

    def handler(signum: int, frame: FrameType | None) -> None:
        __tracebackhide__ = True
        if not settings.disable_debugger_detection and pytest_timeout.is_debugging():
            return
        message = hang_message(item, settings.timeout, frame)
        signal.setitimer(signal.ITIMER_REAL, min(TEARDOWN_GRACE, settings.timeout))
        if message is None:
            pytest_timeout.timeout_sigalrm(item, settings)  # thread stacks, then fail
        pytest.fail(message, pytrace=False)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.stash[_CANCEL] = cancel
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> bool | None:
    if _CANCEL not in item.stash:
        return None  # pytest-timeout's timer (thread method, no event loop)
    if item.config.getoption("usepdb", False):
        item.stash.pop(_CANCEL)()  # a debugger session must not be interrupted
    return True  # otherwise the timer runs on through the teardown (see the docstring)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Any:
    # Outermost wrapper: this runs after setup, call and teardown all ended.
    yield
    cancel = item.stash.get(_CANCEL, None)
    if cancel is not None:
        del item.stash[_CANCEL]
        cancel()
