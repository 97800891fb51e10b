"""The proxy's data path on loopback sockets: whole streams both ways, half-closes
passed on, a slow reader holding the sender back, counters, and shutdown."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket

from mesoslite.lb.proxy import Proxy
from mesoslite.lb.table import Backend, Route
from mesoslite.testing.poll import wait_for

PAYLOAD = os.urandom(5 * 2**20 + 17)  # several reads and writes, not a round size


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_proxy(backend_port: int) -> tuple[Proxy, int]:
    port = free_port()
    proxy = Proxy(["127.0.0.1"])
    await proxy.update({port: Route("/t", port, 0, "round-robin",
                                     (Backend("t1", "127.0.0.1", backend_port),))})
    return proxy, port


async def test_streams_cross_whole_both_ways_and_half_closes_pass() -> None:
    async def digest_then_answer(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
        received = await reader.read()  # until the client's half-close
        writer.write(hashlib.sha256(received).hexdigest().encode() + b"\n" + PAYLOAD)
        await writer.drain()
        writer.close()

    backend = await asyncio.start_server(digest_then_answer, "127.0.0.1", 0)
    proxy, port = await start_proxy(backend.sockets[0].getsockname()[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(PAYLOAD)
        await writer.drain()
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 30)
        digest, _, back = answer.partition(b"\n")
        assert digest.decode() == hashlib.sha256(PAYLOAD).hexdigest()
        assert back == PAYLOAD
        writer.close()
        [stats] = proxy.endpoint_stats()
        await wait_for(lambda: stats.active == 0, message="the connection closed")
        assert stats.connections == 1
        assert stats.bytes_in == len(PAYLOAD) and stats.bytes_out == len(answer)
    finally:
        await proxy.close()
        backend.close()


async def test_a_slow_reader_holds_the_sender_back_and_loses_nothing() -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(64):
            writer.write(PAYLOAD[: 2**20])
            await writer.drain()
        writer.close()

    backend = await asyncio.start_server(flood, "127.0.0.1", 0)
    proxy, port = await start_proxy(backend.sockets[0].getsockname()[1])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        [joint] = proxy._joints
        await wait_for(lambda: joint.backend is not None, message="the backend joined")
        upstream = joint.backend.transport
        # The client reads nothing yet: the proxy must stop reading the backend
        # rather than buffer its 64 MiB.
        await wait_for(lambda: not upstream.is_reading(), 30,
                       message="the proxy to pause reading from the backend")
        assert joint.client.transport.get_write_buffer_size() < 4 * 2**20
        data = await asyncio.wait_for(reader.read(), 60)
        assert len(data) == 64 * 2**20
        writer.close()
    finally:
        await proxy.close()
        backend.close()


async def test_close_cuts_open_connections_and_no_backend_means_rejected() -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    backend = await asyncio.start_server(hold, "127.0.0.1", 0)
    proxy, port = await start_proxy(backend.sockets[0].getsockname()[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    [stats] = proxy.endpoint_stats()
    await wait_for(lambda: stats.active == 1, message="the connection joined")
    await proxy.close()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # cut by the proxy
    writer.close()
    backend.close()
    await backend.wait_closed()

    proxy, port = await start_proxy(free_port())  # nothing listens there
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""
        assert proxy.rejected[port] == 1
        assert proxy.endpoint_stats()[0].failures == 1
        writer.close()
    finally:
        await proxy.close()


def test_under_uvloop_what_comes_before_the_backend_is_connected_is_kept() -> None:
    """uvloop reads a new connection at once (it ignores a pause made in
    connection_made): a request and its EOF that arrive before the backend is
    connected must still reach it, in order, and the answer come back."""
    import uvloop

    async def scenario() -> None:
        async def digest(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received = await reader.read()  # until the client's half-close
            writer.write(hashlib.sha256(received).hexdigest().encode())
            await writer.drain()
            writer.close()

        backend = await asyncio.start_server(digest, "127.0.0.1", 0)
        proxy, port = await start_proxy(backend.sockets[0].getsockname()[1])
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            writer.write_eof()  # in the same breath: before the proxy has its backend
            answer = await asyncio.wait_for(reader.read(), 30)
            assert answer.decode() == hashlib.sha256(b"GET / HTTP/1.0\r\n\r\n").hexdigest()
            writer.close()
            [stats] = proxy.endpoint_stats()
            await wait_for(lambda: stats.active == 0, message="the connection closed")
            assert stats.bytes_in == 18 and stats.bytes_out == 64
        finally:
            await proxy.close()
            backend.close()

    uvloop.run(scenario())
