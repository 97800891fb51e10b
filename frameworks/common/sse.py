"""Server-Sent Events with a bounded replay buffer and ``Last-Event-ID`` resume.

``SseBroadcaster.publish`` never blocks and never fails: each subscriber has a bounded
queue, and a subscriber that falls that far behind is disconnected (it reconnects
with ``Last-Event-ID`` and is replayed what it missed, while the buffer still holds
it).  Event ids are ``<epoch>-<seq>``: the epoch changes with every broadcaster (every
server start), so an id from a previous run is recognised as such instead of being
compared with unrelated sequence numbers.

When a resuming client asked for events no longer buffered (or from another epoch),
the stream begins with one ``event_stream_reset`` event
(``{"eventType": "event_stream_reset", "reason": ...}``) before the buffered events,
so the client knows to re-read state rather than trust its replay to be complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

RESET_EVENT = "event_stream_reset"
_enc = msgspec.json.Encoder()


@dataclass(frozen=True)
class SseEvent:
    """One published event; ``data`` is its JSON payload."""

    id: str
    seq: int
    type: str
    data: bytes

    def encode(self) -> bytes:
        """The wire form: ``id``, ``event`` and one ``data`` line (JSON has no newlines)."""
        return b"id: %s\nevent: %s\ndata: %s\n\n" % (
            self.id.encode(), self.type.encode(), self.data)


class _Subscriber:
    def __init__(self, types: frozenset[str] | None, size: int,
                 hidden: frozenset[str] = frozenset()) -> None:
        self.types = types
        self.hidden = hidden  # sent only when ``types`` names them
        self.queue: asyncio.Queue[SseEvent | None] = asyncio.Queue(size)
        self.overflowed = False

    def wants(self, event_type: str) -> bool:
        if self.types is None:
            return event_type not in self.hidden
        return event_type in self.types

    def offer(self, event: SseEvent | None) -> None:
        if event is not None and not self.wants(event.type):
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            # Too slow: drop it (it resumes with Last-Event-ID) rather than block others.
            self.overflowed = True


class SseBroadcaster:
    """Fan events out to any number of SSE streams.

    ``replay``: events kept for ``Last-Event-ID`` resume.  ``queue_size``: events a
    subscriber may lag behind before it is disconnected.  ``keepalive``: seconds
    between comment lines on an idle stream (proxies close silent connections).
    """

    def __init__(self, replay: int = 1024, queue_size: int = 1024, keepalive: float = 15.0,
                 epoch: str | None = None) -> None:
        if replay < 0 or queue_size < 1 or keepalive <= 0:
            raise ValueError("need replay >= 0, queue_size >= 1, keepalive > 0")
        self.epoch = epoch or format(time.time_ns() // 1000, "x")
        self.keepalive = keepalive
        self._buffer: deque[SseEvent] = deque(maxlen=replay or None)
        self._replay = replay
        self._queue_size = queue_size
        self._seq = 0
        self._subscribers: set[_Subscriber] = set()
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, event_type: str, payload: Any) -> SseEvent:
        """Send ``payload`` (any JSON-encodable value) to every matching stream."""
        self._seq += 1
        event = SseEvent(f"{self.epoch}-{self._seq}", self._seq, event_type, _enc.encode(payload))
        if self._replay:
            self._buffer.append(event)
        for sub in list(self._subscribers):
            sub.offer(event)
        return event

    def replay_since(self, last_event_id: str | None) -> tuple[list[SseEvent], str | None]:
        """Buffered events after ``last_event_id`` and, when some may be missing, why.

        No id: nothing to replay (a fresh client starts with what happens next).
        """
        if not last_event_id:
            return [], None
        epoch, _, seq_text = last_event_id.strip().rpartition("-")
        if epoch != self.epoch or not seq_text.isdigit():
            return list(self._buffer), "the server restarted since that event"
        seq = int(seq_text)
        if seq > self._seq:
            return list(self._buffer), "that event id was never issued"
        events = [e for e in self._buffer if e.seq > seq]
        first = self._buffer[0].seq if self._buffer else self._seq + 1
        if seq + 1 < first:
            return events, "events after that id are no longer buffered"
        return events, None

    async def close(self) -> None:
        """End every stream (server shutdown)."""
        self._closed = True
        for sub in list(self._subscribers):
            sub.offer(None)

    async def handle(self, request: web.Request, types: Iterable[str] | None = None,
                     attached: Callable[[], None] | None = None,
                     detached: Callable[[], None] | None = None,
                     only_if_asked: Iterable[str] = ()) -> web.StreamResponse:
        """Serve one SSE stream for ``request``, resuming after its ``Last-Event-ID``.

        ``types`` limits the stream to those event types (None: all).  ``attached`` is
        called once the stream is subscribed (what it publishes reaches this stream
        too), ``detached`` once it is not any more.  Event types in ``only_if_asked``
        reach only streams whose ``types`` name them.
        """
        wanted = frozenset(types) if types else None
        sub = _Subscriber(wanted, self._queue_size, frozenset(only_if_asked))
        # Register and snapshot the buffer without awaiting in between, so no event
        # falls between the replay and the live queue.
        self._subscribers.add(sub)
        replay, gap = self.replay_since(request.headers.get("Last-Event-ID"))
        if attached is not None:
            attached()
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"})
        try:
            await response.prepare(request)
            if gap is not None:
                reset = {"eventType": RESET_EVENT, "reason": gap}
                await response.write(b"event: %s\ndata: %s\n\n" % (
                    RESET_EVENT.encode(), _enc.encode(reset)))
            for event in replay:
                if sub.wants(event.type):
                    await response.write(event.encode())
            await self._pump(sub, response)
        except ConnectionResetError:
            return response  # the client went away
        finally:
            self._subscribers.discard(sub)
            if detached is not None:
                detached()
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response

    async def _pump(self, sub: _Subscriber, response: web.StreamResponse) -> None:
        while not self._closed:
            try:
                # asyncio.timeout: Python 3.11's wait_for can swallow the cancellation
                # that closes this stream when an event arrives at the same moment.
                async with asyncio.timeout(self.keepalive):
                    event = await sub.queue.get()
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if event is None or sub.overflowed:
                return
            await response.write(event.encode())
