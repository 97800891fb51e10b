"""What asyncio tasks are waiting for: so a test that hangs names its cause.

``awaiting(task)`` follows a task's chain of awaits (coroutine -> coroutine -> ...)
down to the future it is blocked on and describes it, innermost own frame first:
``frameworks/batch/scheduler.py:106 in stop: await self._loop_task -> <Task pending
name='batch-passes' ...>``.  ``report`` does so for every pending task, for the
pytest safety net (``mesoslite.testing.pytest_hangs``) and ``poll.within``.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import linecache
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from types import FrameType

_STDLIB = sysconfig.get_paths()["stdlib"]


@dataclass(frozen=True)
class Frame:
    """One suspended coroutine frame: where it is and the line it waits on."""

    filename: str
    lineno: int
    function: str

    @property
    def source(self) -> str:
        return linecache.getline(self.filename, self.lineno).strip()

    @property
    def library(self) -> bool:
        """Part of the standard library or an installed package (not our code)."""
        return self.filename.startswith(_STDLIB) or "site-packages" in self.filename

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} in {self.function}: {self.source}"


def _frame_of(coro: object) -> FrameType | None:
    for attr in ("cr_frame", "gi_frame", "ag_frame"):
        frame = getattr(coro, attr, None)
        if frame is not None:
            return frame
    return None


def _awaited_by(coro: object) -> object | None:
    for attr in ("cr_await", "gi_yieldfrom", "ag_await"):
        inner = getattr(coro, attr, None)
        if inner is not None:
            return _generator_behind(inner)
    return None


def _generator_behind(awaitable: object) -> object:
    """``await agen.__anext__()`` awaits an ``asend`` object, which does not show its
    generator; the garbage collector knows it refers to it."""
    if type(awaitable).__name__ not in ("async_generator_asend", "async_generator_athrow"):
        return awaitable
    generators = [r for r in gc.get_referents(awaitable) if inspect.isasyncgen(r)]
    return generators[0] if generators else awaitable


def await_chain(task: asyncio.Task[object]) -> list[Frame]:
    """The task's suspended frames, outermost first (empty once it is done)."""
    frames: list[Frame] = []
    coro: object | None = task.get_coro()
    while coro is not None:
        frame = _frame_of(coro)
        if frame is None:
            break  # a future's iterator or a C awaitable: no frame to show
        frames.append(Frame(frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        coro = _awaited_by(coro)
    return frames


def blocked_on(task: asyncio.Task[object]) -> object | None:
    """The future the task waits for (another task, a plain future), if any."""
    # ``_fut_waiter`` is how asyncio itself tracks it (and what Task.cancel cancels).
    return getattr(task, "_fut_waiter", None)


def awaiting(task: asyncio.Task[object]) -> str:
    """One line: the task, its innermost own frame and what that awaits."""
    frames = await_chain(task)
    own = [f for f in frames if not f.library] or frames
    where = str(own[-1]) if own else "(no frame)"
    waiter = blocked_on(task)
    target = f" -> {waiter!r:.300}" if waiter is not None else ""
    return f"task {task.get_name()!r} at {where}{target}"


def pending_tasks(loop: asyncio.AbstractEventLoop | None = None) -> list[asyncio.Task[object]]:
    """Pending tasks of ``loop`` (default: the running loop, else every loop's)."""
    if loop is None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Called from a signal handler outside a loop, or another thread's loop:
            # asyncio keeps every task of every loop in this (private) registry.
            registry: Iterable[asyncio.Task[object]] = getattr(asyncio.tasks, "_all_tasks", ())
            return [t for t in list(registry) if not t.done()]
    return [t for t in asyncio.all_tasks(loop) if not t.done()]


def report(tasks: Iterable[asyncio.Task[object]]) -> str:
    """Every task with its whole await chain (outermost first) and what it awaits."""
    blocks = []
    for task in sorted(tasks, key=lambda t: t.get_name()):
        lines = [awaiting(task)]
        lines += [f"    {frame}" for frame in await_chain(task)]
        waiter = blocked_on(task)
        if waiter is not None:
            lines.append(f"    awaits {waiter!r:.300}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks) if blocks else "(no pending asyncio tasks)"
