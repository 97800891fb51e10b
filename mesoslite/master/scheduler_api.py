"""``POST /api/v1/scheduler``: the Mesos v1 scheduler HTTP API (JSON or protobuf).

SUBSCRIBE answers 200 with a chunked RecordIO stream and a ``Mesos-Stream-Id``
header; every other call answers 202 once validated.  Status codes and messages
follow Mesos: 400 malformed or mismatched stream id, 403 not subscribed, 406/415
for media types, 307 to the leader on a follower (see server.py).  A call is read by
its ``Content-Type``; the SUBSCRIBE stream is written by ``Accept`` (``wire``).  Calls become
stimuli for the state machine (``FrameworkSubscribes``, ``FrameworkCalls``...); its
refusals become the error answers.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from mesoslite.httpapi import HTTPError, answer_media_type, body_media_type
from mesoslite.master.stimuli import (
    Admitted,
    FrameworkCalls,
    FrameworkStreamClosed,
    FrameworkSubscribes,
    MalformedCall,
    Refusal,
)
from mesoslite.messages import wire
from mesoslite.messages.scheduler import Call, CallError, CallType, Event, decode_call

if TYPE_CHECKING:
    from mesoslite.master.server import MasterServer

log = logging.getLogger(__name__)

STREAM_HEADER = "Mesos-Stream-Id"


class FrameworkStream:
    """One subscription's outgoing RecordIO stream of events, fed through a queue and
    encoded by its writer in the subscriber's ``media_type``."""

    def __init__(self, framework_id: str, stream_id: str,
                 media_type: str = wire.JSON) -> None:
        self.framework_id = framework_id
        self.stream_id = stream_id
        self.media_type = media_type
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.closed = False
        # SUBSCRIBED must be the stream's first event: it leaves the master only after
        # the framework is durable, so heartbeats wait for it.
        self.subscribed_sent = False

    def send(self, event: Event) -> None:
        if not self.closed:
            self.queue.put_nowait(event)

    def record(self, event: Event) -> bytes:
        return wire.SCHEDULER_EVENT.record(event, self.media_type)

    async def next_batch(self) -> bytes | None:
        """Every event queued now, as one write (one chunk for the whole flush rather
        than one per update); None once the stream is closed and drained."""
        event = await self.queue.get()
        if event is None:
            return None
        records = [self.record(event)]
        while not self.queue.empty():
            event = self.queue.get_nowait()
            if event is None:
                self.queue.put_nowait(None)  # end the stream after this batch
                break
            records.append(self.record(event))
        return b"".join(records)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class SchedulerAPI:
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await self.server.check_leader(request)
        media_type = body_media_type(request)
        body = await request.read()
        try:
            call = decode_call(wire.SCHEDULER_CALL.json_body(body, media_type))
        except CallError as exc:
            self.server.handle(MalformedCall(str(exc)))
            raise HTTPError(400, str(exc), [(exc.path, [str(exc)])] if exc.path else []) from None
        if call.type == CallType.SUBSCRIBE:
            return await self._subscribe(request, call)
        stream_id = request.headers.get(STREAM_HEADER)
        _raise(self.server.state.caller_refusal(call, stream_id))
        self.server.authorize_call(request, call)
        _raise(self.server.handle(FrameworkCalls(call, stream_id)))
        return web.Response(status=202)

    # ---------------------------------------------------------------- subscribe

    async def _subscribe(self, request: web.Request, call: Call) -> web.StreamResponse:
        if STREAM_HEADER in request.headers:
            raise HTTPError(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
        media_type = answer_media_type(request)
        self.server.authorize_subscribe(request, call)
        stream_id = str(uuid.uuid4())
        answer = self.server.handle(
            FrameworkSubscribes(call.subscribe, stream_id))  # type: ignore[arg-type]
        _raise(answer)
        assert isinstance(answer, Admitted)
        framework_id = answer.id
        stream = FrameworkStream(framework_id, stream_id, media_type)
        old = self.server.streams.get(framework_id)
        self.server.streams[framework_id] = stream
        if old is not None:
            # Its ERROR event and close were queued by the state machine; the old
            # stream object is now only reachable through the close command.
            self.server.retired_streams[old.stream_id] = old
        response = web.StreamResponse(status=200, headers={
            "Content-Type": media_type, STREAM_HEADER: stream_id, "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        log.info("framework %s subscribed (stream %s)", framework_id, stream_id,
                 extra={"framework_id": framework_id})
        try:
            while (batch := await stream.next_batch()) is not None:
                await response.write(batch)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            stream.closed = True
            if self.server.streams.get(framework_id) is stream:
                del self.server.streams[framework_id]
            self.server.retired_streams.pop(stream_id, None)
            self.server.handle(FrameworkStreamClosed(framework_id, stream_id))
            log.info("framework %s stream %s closed", framework_id, stream_id,
                     extra={"framework_id": framework_id})
        return response


def _raise(answer: object) -> None:
    """A refusal of the state machine as the HTTP error it maps to."""
    if isinstance(answer, Refusal):
        raise HTTPError(answer.status, answer.message,
                        [(answer.path, [answer.message])] if answer.path else [])
