"""The event stream over HTTP, two ways.

* ``GET /master/events``: Server-Sent Events.  Each event is
  ``id: <stream>-<seq>`` / ``event: <TYPE>`` / ``data: <Mesos Event JSON>``.  A client
  resumes with the ``Last-Event-ID`` header (browsers send it when they reconnect) or
  ``?last_event_id=``; without one it gets the events from now on (with
  ``?backlog=N``, the N newest held events first).  ``data`` carries Mesos' JSON
  plus ``"at"``, when the event was published (Unix seconds).  When the events
  since the given id are gone (too old, another master, a restarted one) the stream
  starts with ``event: event_stream_reset`` (``{"type": "event_stream_reset",
  "reason": ...}``, carrying the id to resume from): re-read ``/master/state``.
  A comment line every heartbeat interval keeps proxies from closing it.
* ``POST /api/v1`` with ``{"type": "SUBSCRIBE"}`` (dispatched by ``operator_api``).  The answer
  is a RecordIO stream (``<length>\\n<json>``, or protobuf by ``Accept``: then
  without mesoslite's own event types) of ``Event``: ``SUBSCRIBED`` carrying ``get_state`` (a snapshot) and ``heartbeat_interval_seconds``, then the events,
  with ``HEARTBEAT`` between them.  A subscriber that falls more than the replay
  buffer behind is disconnected; it resubscribes and gets a new snapshot.

Both follow the leader (followers redirect) and end when the master stops.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec
from aiohttp import web

from mesoslite.httpapi import HTTPError, answer_media_type
from mesoslite.master import operator_views as views
from mesoslite.master.events import EventLog, MasterEvent
from mesoslite.master.operator_api import OperatorAPI
from mesoslite.messages import wire

if TYPE_CHECKING:
    from mesoslite.master.server import MasterServer

log = logging.getLogger(__name__)

_encoder = msgspec.json.Encoder()
RESET_EVENT = "event_stream_reset"


def sse_frame(event_id: str | None, event: str, data: bytes) -> bytes:
    """One SSE message (``data`` is JSON: it has no newlines)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\n".encode() + b"data: " + data + b"\n\n"


def record(data: bytes) -> bytes:
    """RecordIO framing: byte length, newline, bytes."""
    return str(len(data)).encode() + b"\n" + data


class EventsHTTP:
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    @property
    def log(self) -> EventLog:
        return self.server.events.log

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/master/events", self.sse)
        OperatorAPI(self.server, self.subscribe).add_routes(app)
        app.on_shutdown.append(self._on_shutdown)

    async def _on_shutdown(self, app: web.Application) -> None:
        self.log.close()

    def _heartbeat(self) -> float:
        return max(0.05, min(15.0, self.server.config.heartbeat_interval))

    # ---------------------------------------------------------------- SSE

    async def sse(self, request: web.Request) -> web.StreamResponse:
        await self.server.check_leader(request)
        last = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
        try:
            backlog = int(request.query.get("backlog", "0"))
        except ValueError:
            raise HTTPError(400, "'backlog' must be an integer",
                            [("backlog", ["must be an integer"])]) from None
        cursor, reset = self.log.resume(last, backlog)
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"})
        await response.prepare(request)
        self.log.readers += 1
        try:
            await response.write(b"retry: 1000\n: mesoslite master events\n\n")
            if reset is not None:
                await response.write(self._reset_frame(reset))
            while not self.log.closed:
                events = await self.log.wait(cursor, self._heartbeat())
                if events is None:
                    cursor = self.log.last_seq
                    await response.write(self._reset_frame("the stream fell behind"))
                elif events:
                    cursor = events[-1].seq
                    await response.write(b"".join(
                        sse_frame(self.log.event_id(e.seq), e.type.value, e.body_with_time())
                        for e in events))
                else:
                    await response.write(b": heartbeat\n\n")
        except ConnectionResetError:
            pass
        finally:
            self.log.readers -= 1
        return response

    def _reset_frame(self, reason: str) -> bytes:
        body = _encoder.encode({"type": RESET_EVENT, "reason": reason})
        return sse_frame(self.log.event_id(self.log.last_seq), RESET_EVENT, body)

    # ---------------------------------------------------------------- operator API

    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        """The operator API's SUBSCRIBE stream.  It carries Mesos' own event types
        only, so a strict Mesos client never meets a type it does not know; a JSON
        subscriber opts in to mesoslite's own (AGENT_UPDATED) with the query
        ``?mesoslite_events=1`` (master.proto's Subscribe has no field for it)."""
        media_type = answer_media_type(request)
        own = media_type == wire.JSON and request.query.get("mesoslite_events") in (
            "1", "true")
        heartbeat = self._heartbeat()
        # The snapshot and the cursor are taken together, with no await between them.
        snapshot = {"type": "SUBSCRIBED", "subscribed": {
            "get_state": views.get_state(self.server.state, self.server.start_time),
            "heartbeat_interval_seconds": heartbeat}}
        cursor = self.log.last_seq
        response = web.StreamResponse(headers={"Content-Type": media_type,
                                               "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self.log.readers += 1
        beat = wire.MASTER_EVENT.record({"type": "HEARTBEAT"}, media_type)
        try:
            await response.write(wire.MASTER_EVENT.record(snapshot, media_type))
            await response.write(beat)
            while not self.log.closed:
                events = await self.log.wait(cursor, heartbeat)
                if events is None:
                    log.warning("operator API subscriber fell behind the event buffer;"
                                " closing its stream")
                    break
                if events:
                    cursor = events[-1].seq
                    await response.write(_records(events, media_type, own))
                else:
                    await response.write(beat)
        except ConnectionResetError:
            pass
        finally:
            self.log.readers -= 1
        return response


def _records(events: list[MasterEvent], media_type: str, own: bool) -> bytes:
    """The events as RecordIO records.  mesoslite's own event types (AGENT_UPDATED)
    have no number in master.proto's Event.Type: they go only to a JSON subscriber
    that asked for them."""
    if media_type == wire.JSON:
        return b"".join(record(e.body()) for e in events
                        if own or e.type.value in _PROTO_EVENT_TYPES)
    return b"".join(wire.MASTER_EVENT.record(e.to_dict(), media_type) for e in events
                    if e.type.value in _PROTO_EVENT_TYPES)


_PROTO_EVENT_TYPES = frozenset(
    wire.MASTER_EVENT.message_class.DESCRIPTOR.enum_types_by_name["Type"].values_by_name)
