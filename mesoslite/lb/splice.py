"""The proxy's data path at the transport level: two sockets joined by protocols.

Each side reads into its own buffer and writes from it straight into the other side's
transport: no bytes object per chunk, no tasks, no ``drain``.  Flow control is the transports' own: when
a side's outgoing buffer passes its high-water mark (``pause_writing``), the other
side stops reading until it drains (``resume_writing``).  An EOF on one side is
passed on as a half-close of the other; the connection ends when both directions
are done, or at once when either side fails or closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

WRITE_HIGH = 1024 * 1024  # bytes buffered for one side before its peer stops reading
READ_SIZE = 256 * 1024  # the most one read takes from a socket
FIRST_READ_SIZE = 4096  # a connection's first reads: most are short requests


class Side(asyncio.BufferedProtocol):
    """One socket of a joined pair; ``client``: the side the proxy accepted.

    Reads go straight into this side's buffer (``recv_into``; 4 KiB at first, growing
    to READ_SIZE while reads fill it) and from it into the peer's transport.  The buffer is reused while the peer
    sends everything at once; when the peer's transport keeps part of it for later,
    the next read gets a fresh buffer (a transport may keep a view, not a copy)."""

    def __init__(self, joint: Joint, client: bool) -> None:
        self.joint = joint
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.peer: Side | None = None
        self.read_eof = False
        self.lost = False
        self._view = memoryview(bytearray(FIRST_READ_SIZE))
        self.early: bytearray | None = None  # read before there was a peer (see below)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport: no isinstance check
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        if self.peer is None:
            transport.pause_reading()  # nothing is read before there is a peer to take it

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        peer = self.peer
        if peer is None:
            # uvloop starts reading right after connection_made, whose pause it
            # ignores: keep what came, pause now, and hand it on at ``Joint.join``
            if self.early is None:
                self.early = bytearray()
            self.early += self._view[:nbytes]
            if self.transport is not None:
                self.transport.pause_reading()
            return
        if peer.transport is None or peer.lost:
            return
        transport = peer.transport
        view = self._view
        transport.write(view[:nbytes])
        self.joint.counted(self.client, nbytes)
        size = len(view)
        if nbytes == size and size < READ_SIZE:  # a stream, not a request: read more
            self._view = memoryview(bytearray(size * 4))
        elif transport.get_write_buffer_size():
            self._view = memoryview(bytearray(size))

    def eof_received(self) -> bool:
        self.read_eof = True
        peer = self.peer
        if peer is None and not self.joint.closed:
            return True  # (uvloop) before the join: ``Joint.join`` passes it on
        if (peer is not None and peer.transport is not None and not peer.lost
                and peer.transport.can_write_eof()):
            try:
                peer.transport.write_eof()
            except (OSError, RuntimeError):
                self.joint.close()
                return True
        if peer is None or peer.read_eof:
            self.joint.close()  # both directions done
        return True  # keep our write side open for the other direction

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.lost:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.joint.close()


class Joint:
    """A client connection and (once connected) its backend connection.

    ``on_bytes(from_client, n)`` counts what is copied; ``on_closed`` runs once, when
    the joint is closed."""

    def __init__(self, on_closed: Callable[[Joint], None],
                 on_bytes: Callable[[bool, int], None] | None = None) -> None:
        self.client: Side | None = None
        self.backend: Side | None = None
        self.on_bytes = on_bytes
        self._on_closed = on_closed
        self.closed = False

    def counted(self, from_client: bool, n: int) -> None:
        if self.on_bytes is not None:
            self.on_bytes(from_client, n)

    def join(self, client: Side, backend: Side) -> None:
        """Pair the two connected sides and let both read."""
        client.peer, backend.peer = backend, client
        self.client, self.backend = client, backend
        for side in (client, backend):
            peer = side.peer
            assert peer is not None
            if side.early and peer.transport is not None and not peer.lost:
                peer.transport.write(bytes(side.early))
                self.counted(side.client, len(side.early))
            side.early = None
            if side.read_eof:  # (uvloop) it ended before the join
                side.eof_received()
            elif side.transport is not None and not side.lost:
                side.transport.resume_reading()

    def close(self) -> None:
        """End both sides (buffered data is still flushed)."""
        if self.closed:
            return
        self.closed = True
        for side in (self.client, self.backend):
            if side is not None and side.transport is not None:
                side.transport.close()
        self._on_closed(self)

    def abort(self) -> None:
        """Cut both sides now (the proxy is shutting down)."""
        for side in (self.client, self.backend):
            if side is not None and side.transport is not None:
                side.transport.abort()
        self.close()
