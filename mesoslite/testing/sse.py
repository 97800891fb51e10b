"""A Server-Sent Events reader for tests (async: the servers share the loop)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from mesoslite.testing.poll import within


@dataclass
class SseMessage:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


async def next_message(stream: aiohttp.StreamReader, timeout: float = 30.0) -> SseMessage:
    """The next message (comments and ``retry:`` lines skipped); EOFError at the end,
    ``WaitTimeout`` when none came within ``timeout`` s."""
    return await within(timeout, "the next server-sent event", _read_message(stream))


async def _read_message(stream: aiohttp.StreamReader) -> SseMessage:
    event_id: str | None = None
    event, data = "message", []
    while True:
        raw = await stream.readline()
        if not raw:
            raise EOFError("the event stream ended")
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                return SseMessage(event_id, event, "\n".join(data))
            event_id, event = None, "message"
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)
