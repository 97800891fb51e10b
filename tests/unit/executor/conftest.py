"""Fixtures for the executor-driver tests: a loopback agent (``fake_agent.py``), a
recording ``Executor``, and drivers run in background tasks that are stopped and
reaped at teardown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from mesoslite.executor import DriverError, Executor, ExecutorDriver
from mesoslite.testing.poll import wait_for
from tests.unit.executor.fake_agent import DEADLINE, FakeAgent


class Recorder(Executor):
    """Records every callback as ``(name, args)``; ``hooks[name]`` runs extra code."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []
        self.hooks: dict[str, Callable[..., Awaitable[None]]] = {}

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [args for n, args in self.events if n == name]

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    async def until(self, predicate: Callable[[], object], what: str) -> None:
        await wait_for(predicate, DEADLINE, interval=0.01, message=what)

    async def _record(self, name: str, driver: ExecutorDriver, *args: Any) -> None:
        self.events.append((name, args))
        hook = self.hooks.get(name)
        if hook is not None:
            await hook(driver, *args)

    async def subscribed(self, driver, info):  # type: ignore[override]
        await self._record("subscribed", driver, info)

    async def launch(self, driver, task):  # type: ignore[override]
        await self._record("launch", driver, task)

    async def launch_group(self, driver, group):  # type: ignore[override]
        await self._record("launch_group", driver, group)

    async def kill(self, driver, task_id, kill_policy):  # type: ignore[override]
        await self._record("kill", driver, task_id, kill_policy)

    async def acknowledged(self, driver, task_id, uuid):  # type: ignore[override]
        await self._record("acknowledged", driver, task_id, uuid)

    async def message(self, driver, data):  # type: ignore[override]
        await self._record("message", driver, data)

    async def shutdown(self, driver):  # type: ignore[override]
        await self._record("shutdown", driver)

    async def error(self, driver, message):  # type: ignore[override]
        await self._record("error", driver, message)

    async def disconnected(self, driver):  # type: ignore[override]
        await self._record("disconnected", driver)


@pytest.fixture
async def make_agent() -> AsyncIterator[Callable[..., Awaitable[FakeAgent]]]:
    agents: list[FakeAgent] = []

    async def make(**options: Any) -> FakeAgent:
        agent = FakeAgent(**options)
        await agent.start()
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        await agent.close()


@pytest.fixture
async def agent(make_agent: Callable[..., Awaitable[FakeAgent]]) -> FakeAgent:
    return await make_agent()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def start(make_agent: Any) -> AsyncIterator[Callable[[ExecutorDriver], asyncio.Task[None]]]:
    """Run drivers in background tasks; stop and reap them at teardown (before the
    agents close, since this fixture depends on ``make_agent``)."""
    running: list[tuple[ExecutorDriver, asyncio.Task[None]]] = []

    def start_driver(driver: ExecutorDriver) -> asyncio.Task[None]:
        task = asyncio.create_task(driver.run())
        running.append((driver, task))
        return task

    yield start_driver
    for driver, task in running:
        driver.stop()
        with contextlib.suppress(DriverError):
            await asyncio.wait_for(task, DEADLINE)
