"""Following the services framework's endpoints: its event stream, else polling.

The watcher subscribes to ``/v2/events?event_type=endpoints_changed_event`` first
and only then reads ``/v2/endpoints``, so no change can fall between the snapshot
and the stream (``table.RouteTable`` drops events the snapshot already holds).  When
the stream cannot be had or breaks (framework down, restarting, an intermediary
that buffers SSE), it reads ``/v2/endpoints`` every ``poll_interval`` seconds and
tries the stream again each time.  While streaming it still re-reads the snapshot
every ``resync_interval`` seconds, as insurance.  ``mode`` says which it is doing:
``starting``, ``events``, ``polling`` (the last read worked) or ``unreachable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from mesoslite.lb.table import RouteTable, TableError

log = logging.getLogger(__name__)

EVENT_TYPE = "endpoints_changed_event"
RESET_EVENT = "event_stream_reset"


@dataclass
class SseMessage:
    event: str
    data: str
    id: str | None = None


@dataclass
class SseParser:
    """Incremental Server-Sent Events parser (no line-length limit: one event holds a
    whole app's endpoints)."""

    _buffer: bytes = b""
    _event: str = "message"
    _id: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed(self, chunk: bytes) -> list[SseMessage]:
        """The messages ``chunk`` completes (a partial line waits for the next chunk)."""
        buffer = self._buffer + chunk
        out: list[SseMessage] = []
        start = 0
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                self._buffer = buffer[start:]
                return out
            line = buffer[start:end].decode("utf-8", "replace").rstrip("\r")
            start = end + 1
            if not line:
                if self._data:
                    out.append(SseMessage(self._event, "\n".join(self._data), self._id))
                self._event, self._id, self._data = "message", None, []
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    self._event = value
                elif name == "data":
                    self._data.append(value)
                elif name == "id":
                    self._id = value


class EndpointsWatcher:
    """Keeps ``table`` current and calls ``changed()`` after every change to it."""

    def __init__(self, services_url: str, changed: Callable[[], Awaitable[None]],
                 poll_interval: float = 2.0, resync_interval: float = 60.0,
                 read_timeout: float = 60.0, authorization: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.url = services_url.rstrip("/")
        self.changed = changed
        self.poll_interval = poll_interval
        self.resync_interval = resync_interval
        self.read_timeout = read_timeout  # the framework sends keepalives every 15 s
        self.headers = {"Authorization": authorization} if authorization else {}
        self.ssl_context = ssl_context
        self.table = RouteTable()
        self.mode = "starting"
        self.last_error: str | None = None
        self.snapshots = 0
        self.events = 0
        self.synced = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._last_snapshot = 0.0

    async def run(self) -> None:
        """Until cancelled."""
        connector = aiohttp.TCPConnector(ssl=self.ssl_context) if self.ssl_context else None
        self._session = aiohttp.ClientSession(headers=self.headers, connector=connector)
        try:
            while True:
                try:
                    await self._follow()
                    self.last_error = "the event stream ended"
                except (aiohttp.ClientError, TimeoutError, TableError, ValueError) as exc:
                    self.last_error = f"{exc.__class__.__name__}: {exc}"
                log.debug("endpoint events unavailable (%s); polling", self.last_error)
                try:
                    await self.snapshot()
                    self.mode = "polling"
                except (aiohttp.ClientError, TimeoutError, TableError, ValueError) as exc:
                    self.mode = "unreachable"
                    self.last_error = f"{exc.__class__.__name__}: {exc}"
                await asyncio.sleep(self.poll_interval)
        finally:
            await self._session.close()

    async def snapshot(self) -> None:
        """Read ``/v2/endpoints`` and replace the table with it."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=10)
        async with self._session.get(self.url + "/v2/endpoints", timeout=timeout) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                  message=f"GET /v2/endpoints: {resp.status}")
            document = await resp.json(content_type=None)
        self.table.load(document)
        self.snapshots += 1
        self._last_snapshot = time.monotonic()
        self.synced.set()
        await self.changed()

    async def _follow(self) -> None:
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10,
                                        sock_read=self.read_timeout)
        async with self._session.get(self.url + "/v2/events",
                                     params={"event_type": EVENT_TYPE}, timeout=timeout,
                                     headers={"Accept": "text/event-stream"}) as resp:
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                  message=f"GET /v2/events: {resp.status}")
            await self.snapshot()  # subscribed first: nothing falls in between
            self.mode = "events"
            parser = SseParser()
            resync = asyncio.create_task(self._resync_while_streaming())
            try:
                async for chunk in resp.content.iter_any():
                    for message in parser.feed(chunk):
                        await self._on_message(message)
            finally:
                resync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await resync

    async def _on_message(self, message: SseMessage) -> None:
        if message.event == RESET_EVENT:
            await self.snapshot()
            return
        if message.event != EVENT_TYPE:
            return
        applied = self.table.apply(json.loads(message.data))
        self.events += 1
        if applied is None:  # another epoch: the framework restarted
            await self.snapshot()
        elif applied:
            await self.changed()

    async def _resync_while_streaming(self) -> None:
        while True:
            await asyncio.sleep(self.resync_interval)
            try:
                await self.snapshot()
            except (aiohttp.ClientError, TimeoutError, TableError, ValueError) as exc:
                log.debug("periodic endpoints snapshot failed: %s", exc)
