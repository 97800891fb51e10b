"""A minimal WebSocket client (RFC 6455) on an asyncio protocol, for simulated agents.

Scale benchmarks run thousands of simulated agents in a few processes on the same
cores as the master they measure.  ``aiohttp``'s client spends about half of a
simulated agent's CPU on a (re)connection in its connector, request and response
machinery (failover.py, 4,000 agents: the pools used as much CPU as the new
leader), so the benchmark measured the simulator.  This client does only what an
agent link needs: one upgrade request on a fresh connection, then whole frames.

Contract:

* ``WsLink.connect(url, timeout, max_size)`` returns an open link, or raises
  ``HandshakeRefused`` (the server answered something other than 101: ``status``
  and ``location`` say what), ``TimeoutError`` or ``OSError``;
* ``send_text``/``send_bytes`` queue one frame on the transport (no await: the
  kernel's buffer and the transport's take it; a closed link drops it, as the
  simulated agent's retries resend);
* ``receive(timeout)`` returns the next TEXT or BINARY payload (fragments joined),
  or None once the link is closed; ``TimeoutError`` after ``timeout`` s of silence.
  PINGs are answered with PONGs; a CLOSE is answered and ends the link;
* frames larger than ``max_size`` close the link (status 1009).

Not for production use: frames are masked with a fixed key of zeros (the XOR is the
identity; the RFC wants an unpredictable key to protect intermediaries' caches, of
which a loopback benchmark has none), no extensions, no subprotocols, no TLS.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import os
import struct
from typing import Self
from urllib.parse import urlsplit

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _BINARY, _CLOSE, _PING, _PONG, _CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
_ZERO_MASK = b"\0\0\0\0"
_MAX_HEAD = 16 * 1024  # the response's status line and headers


class HandshakeRefused(Exception):
    """The server did not switch protocols: ``status`` and its ``location`` header."""

    def __init__(self, status: int, location: str | None) -> None:
        super().__init__(f"WebSocket upgrade refused: HTTP {status}")
        self.status = status
        self.location = location


def _frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked (with zeros) client frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + _ZERO_MASK + payload


class WsLink(asyncio.Protocol):
    """One client WebSocket; see the module's contract."""

    def __init__(self, request: bytes, key: bytes, max_size: int) -> None:
        self._request, self._key, self._max_size = request, key, max_size
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._upgraded = False
        self._handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._messages: collections.deque[bytes | None] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._fragments: list[bytes] = []
        self.closed = False

    # ------------------------------------------------------------ opening

    @classmethod
    async def connect(cls, url: str, timeout: float, max_size: int = 1 << 26) -> WsLink:
        """Open ``url`` (``http://host:port/path`` or ``ws://...``) as a WebSocket."""
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        key = base64.b64encode(os.urandom(16))
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n").encode() + (
            b"Sec-WebSocket-Key: " + key + b"\r\n\r\n")
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            _, link = await loop.create_connection(
                lambda: cls(request, key, max_size), host, port)
            try:
                await link._handshake
            except BaseException:
                link.close()
                raise
        return link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def _parse_head(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > _MAX_HEAD:
                self._fail_handshake(ConnectionError("WebSocket upgrade: response head too long"))
            return
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[:end + 4]
        lines = head.split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            self._fail_handshake(ConnectionError(f"WebSocket upgrade: bad status line {lines[0]!r}"))
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 101:
            self._fail_handshake(HandshakeRefused(status, headers.get("location")))
            return
        accept = base64.b64encode(hashlib.sha1(self._key + _GUID).digest()).decode()
        if headers.get("sec-websocket-accept") != accept:
            self._fail_handshake(ConnectionError("WebSocket upgrade: wrong Sec-WebSocket-Accept"))
            return
        self._upgraded = True
        self._handshake.set_result(None)

    def _fail_handshake(self, exc: BaseException) -> None:
        if not self._handshake.done():
            self._handshake.set_exception(exc)
        self.close()

    # ------------------------------------------------------------ frames in

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._upgraded:
            self._parse_head()
            if not self._upgraded:
                return
        self._parse_frames()

    def _parse_frames(self) -> None:
        buf = self._buffer
        pos = 0
        while not self.closed:
            if len(buf) - pos < 2:
                break
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            at = pos + 2
            if n == 126:
                if len(buf) - at < 2:
                    break
                (n,) = struct.unpack_from("!H", buf, at)
                at += 2
            elif n == 127:
                if len(buf) - at < 8:
                    break
                (n,) = struct.unpack_from("!Q", buf, at)
                at += 8
            if b1 & 0x80:  # a masked server frame breaks the RFC
                self._close_with(1002)
                break
            if n > self._max_size:
                self._close_with(1009)
                break
            if len(buf) - at < n:
                break
            payload = bytes(buf[at:at + n])
            pos = at + n
            self._on_frame(b0 & 0x80, b0 & 0x0F, payload)
        del buf[:pos]

    def _on_frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode in (_TEXT, _BINARY, _CONT):
            self._fragments.append(payload)
            if fin:
                message = b"".join(self._fragments) if len(self._fragments) > 1 else payload
                self._fragments = []
                self._deliver(message)
        elif opcode == _PING:
            self._write(_frame(_PONG, payload))
        elif opcode == _CLOSE:
            self._close_with(1000)
        # PONGs and unknown opcodes: nothing to do

    def _deliver(self, message: bytes | None) -> None:
        self._messages.append(message)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def receive(self, timeout: float | None = None) -> bytes | None:
        """The next message, None once closed; TimeoutError after ``timeout`` s."""
        while not self._messages:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            finally:
                self._waiter = None
        return self._messages.popleft()

    # ------------------------------------------------------------ frames out

    def send_text(self, data: bytes | str) -> None:
        self._write(_frame(_TEXT, data.encode() if isinstance(data, str) else data))

    def send_bytes(self, data: bytes) -> None:
        self._write(_frame(_BINARY, data))

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    # ------------------------------------------------------------ closing

    def _close_with(self, code: int) -> None:
        self._write(_frame(_CLOSE, struct.pack("!H", code)))
        self.close()

    def close(self) -> None:
        """Close at once (queued frames are still flushed by the transport)."""
        if self.closed:
            return
        self.closed = True
        if self._transport is not None:
            self._transport.close()
        self._deliver(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._handshake.done():
            self._handshake.set_exception(exc or ConnectionError(
                "WebSocket upgrade: the server closed the connection"))
        self._transport = None
        self.closed = True
        self._deliver(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
