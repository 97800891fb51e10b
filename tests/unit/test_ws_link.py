"""The simulated agents' WebSocket client against aiohttp's server on loopback: messages
both ways (large and fragmented ones too), a refused upgrade, pings, closes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import WSMsgType, web

from mesoslite.testing.ws_link import HandshakeRefused, WsLink

pytestmark = pytest.mark.asyncio

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_get("/link", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/link"

    yield start
    for runner in runners:
        await runner.cleanup()


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str("text:" + msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(b"bin:" + msg.data)
    return ws


async def test_messages_both_ways_of_every_length_class(serve) -> None:
    link = await WsLink.connect(await serve(echo), timeout=10)
    async with link:
        for size in (0, 125, 126, 65535, 65536, 1 << 20):
            link.send_bytes(b"x" * size)
            assert await link.receive(timeout=10) == b"bin:" + b"x" * size
        link.send_text("héllo")
        assert await link.receive(timeout=10) == "text:héllo".encode()


async def test_a_refused_upgrade_names_status_and_location(serve) -> None:
    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect("http://127.0.0.1:1/link")

    with pytest.raises(HandshakeRefused) as refused:
        await WsLink.connect(await serve(redirect), timeout=10)
    assert (refused.value.status, refused.value.location) == (307, "http://127.0.0.1:1/link")

    async def unavailable(request: web.Request) -> web.StreamResponse:
        raise web.HTTPServiceUnavailable()

    with pytest.raises(HandshakeRefused) as refused:
        await WsLink.connect(await serve(unavailable), timeout=10)
    assert refused.value.status == 503


async def test_pings_are_answered_and_fragments_joined() -> None:
    """A hand-written server: one message in two frames with a PING between them
    (RFC 6455 allows control frames inside a fragmented message), then a CLOSE."""
    pong: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
                                  .digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        writer.write(bytes([0x01, 3]) + b"hel")  # TEXT, not final
        writer.write(bytes([0x89, 1]) + b"p")  # PING
        writer.write(bytes([0x80, 2]) + b"lo")  # final continuation
        b0, b1 = await reader.readexactly(2)
        mask = await reader.readexactly(4)
        data = bytes(c ^ mask[i % 4] for i, c in enumerate(await reader.readexactly(b1 & 0x7F)))
        pong.set_result(bytes([b0, b1 & 0x80]) + data)
        writer.write(bytes([0x88, 2]) + struct.pack("!H", 1000))  # CLOSE
        await writer.drain()
        await reader.read()  # until the client closes
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        link = await WsLink.connect(f"ws://127.0.0.1:{port}/link", timeout=10)
        assert await link.receive(timeout=10) == b"hello"
        # a final, masked PONG echoing the PING's payload
        assert await asyncio.wait_for(pong, 10) == bytes([0x8A, 0x80]) + b"p"
        assert await link.receive(timeout=10) is None  # the server's CLOSE ends the link
        assert link.closed
    finally:
        server.close()
        await server.wait_closed()


async def test_silence_times_out_and_an_oversized_frame_closes(serve) -> None:
    async def big(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the client's go-ahead
        await ws.send_bytes(b"y" * 2048)
        await ws.receive()
        return ws

    link = await WsLink.connect(await serve(big), timeout=10, max_size=1024)
    with pytest.raises(TimeoutError):
        await link.receive(timeout=0.05)
    link.send_text("go")
    assert await link.receive(timeout=10) is None
    assert link.closed


async def test_an_unreachable_server_raises_oserror() -> None:
    with pytest.raises(OSError):
        await WsLink.connect("http://127.0.0.1:1/link", timeout=10)
