"""The health Prober against real loopback servers: HTTP statuses, TCP, commands,
timeouts - the targets the agent and the services framework give it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from mesoslite.agent.health import CommandTarget, HttpTarget, Prober, TcpTarget

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """An HTTP server on loopback: /ok 200, /moved 302, /broken 500, /slow never."""
    never = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await never.wait()
        return web.Response()

    def answer(status: int, **headers: str):
        async def handler(request: web.Request) -> web.Response:
            return web.Response(status=status, headers=headers)
        return handler

    app = web.Application()
    app.router.add_get("/ok", answer(200))
    app.router.add_get("/moved", answer(302, Location="/broken"))
    app.router.add_get("/broken", answer(500))
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    never.set()
    await runner.cleanup()


@pytest.fixture
async def prober() -> AsyncIterator[Prober]:
    p = Prober()
    yield p
    await p.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_http_is_healthy_on_2xx_and_3xx_without_following_redirects(server, prober):
    assert await prober.probe(HttpTarget("127.0.0.1", server, "/ok"), 5) == (True, "")
    assert await prober.probe(HttpTarget("127.0.0.1", server, "moved"), 5) == (True, "")
    ok, detail = await prober.probe(HttpTarget("127.0.0.1", server, "/broken"), 5)
    assert not ok and detail == f"GET http://127.0.0.1:{server}/broken answered 500"


async def test_http_statuses_decide_when_given(server, prober):
    assert (await prober.probe(HttpTarget("127.0.0.1", server, "/broken", statuses=(500,)), 5)
            == (True, ""))
    assert not (await prober.probe(HttpTarget("127.0.0.1", server, "/ok", statuses=(204,)),
                                   5))[0]


async def test_every_interface_means_loopback(server, prober):
    assert (await prober.probe(HttpTarget("0.0.0.0", server, "/ok"), 5))[0]
    assert (await prober.probe(TcpTarget("0.0.0.0", server), 5))[0]


async def test_a_slow_answer_times_out(server, prober):
    assert await prober.probe(HttpTarget("127.0.0.1", server, "/slow"), 0.2) == (
        False, "timed out after 0.2s")


async def test_tcp_healthy_when_it_connects(server, prober):
    assert await prober.probe(TcpTarget("127.0.0.1", server), 5) == (True, "")
    ok, detail = await prober.probe(TcpTarget("127.0.0.1", closed_port()), 5)
    assert not ok and detail.startswith("ConnectionRefusedError")


async def test_a_command_target_runs_through_its_runner(prober):
    calls: list[tuple[list[str], float]] = []

    async def run(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append((argv, timeout))
        return (0, "") if argv[-1] == "good" else (3, "not ready\n")

    assert await prober.probe(CommandTarget(("check", "good"), run), 4) == (True, "")
    assert await prober.probe(CommandTarget(("check", "bad"), run), 0) == (
        False, "command exited with status 3 (not ready)")
    assert calls == [(["check", "good"], 4), (["check", "bad"], 1e9)]
    assert await prober.probe(CommandTarget(("check",), None), 4) == (
        False, "the task has no container")
