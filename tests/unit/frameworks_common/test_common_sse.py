"""The SSE broadcaster: fan-out, filters, Last-Event-ID resume, slow subscribers."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from frameworks.common.sse import RESET_EVENT, SseBroadcaster
from mesoslite.testing.poll import wait_for


async def serve(bus: SseBroadcaster):
    app = web.Application()

    async def handler(request: web.Request) -> web.StreamResponse:
        return await bus.handle(request, request.query.getall("type", []) or None)

    app.router.add_get("/events", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/events"


async def read_events(resp: aiohttp.ClientResponse, n: int) -> list[tuple[str, str, str]]:
    """(id, event, data) of the next ``n`` events; comments skipped."""
    out, current = [], {}
    while len(out) < n:
        line = (await asyncio.wait_for(resp.content.readline(), 5)).decode().rstrip("\n")
        if not line:
            if current:
                out.append((current.get("id", ""), current["event"], current["data"]))
            current = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            current[key] = value
    return out


async def test_fan_out_filters_and_resume() -> None:
    bus = SseBroadcaster(replay=10, keepalive=0.2)
    runner, url = await serve(bus)
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(url) as all_, s.get(url, params={"type": "b"}) as only_b:
                await wait_for(lambda: bus.subscribers >= 2, timeout=10,
                               message="both streams subscribed")
                bus.publish("a", {"n": 1})
                bus.publish("b", {"n": 2})
                got = await read_events(all_, 2)
                assert [e[1] for e in got] == ["a", "b"]
                assert [e[1] for e in await read_events(only_b, 1)] == ["b"]
            first_id = got[0][0]
            bus.publish("c", {"n": 3})  # while nobody listens
            async with s.get(url, headers={"Last-Event-ID": first_id}) as resumed:
                assert [e[1] for e in await read_events(resumed, 2)] == ["b", "c"]
            async with s.get(url, headers={"Last-Event-ID": "other-epoch-5"}) as stale:
                events = await read_events(stale, 4)
                assert events[0][1] == RESET_EVENT and [e[1] for e in events[1:]] == [
                    "a", "b", "c"]
    finally:
        await bus.close()
        await runner.cleanup()


def test_replay_window_reports_what_is_gone() -> None:
    bus = SseBroadcaster(replay=2)
    events = [bus.publish("x", i) for i in range(5)]
    replay, gap = bus.replay_since(events[0].id)
    assert [e.seq for e in replay] == [4, 5] and gap
    replay, gap = bus.replay_since(events[3].id)
    assert [e.seq for e in replay] == [5] and gap is None
    assert bus.replay_since(None) == ([], None)


async def test_a_slow_subscriber_is_dropped_not_waited_for() -> None:
    bus = SseBroadcaster(queue_size=2, keepalive=5)
    runner, url = await serve(bus)
    try:
        async with aiohttp.ClientSession() as s, s.get(url) as resp:
            await wait_for(lambda: bus.subscribers >= 1, timeout=10,
                           message="the stream subscribed")
            for i in range(50):  # never blocks, whatever the reader does
                bus.publish("x", {"i": i, "pad": "y" * 10000})
            body = b""
            while True:
                chunk = await asyncio.wait_for(resp.content.read(65536), 5)
                if not chunk:
                    break
                body += chunk
            assert body.count(b"event: x") < 50  # cut off, resumable with Last-Event-ID
    finally:
        await bus.close()
        await runner.cleanup()
