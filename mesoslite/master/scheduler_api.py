"""``POST /api/v1/scheduler``: the Mesos v1 scheduler HTTP API (JSON encoding).

SUBSCRIBE answers 200 with a chunked RecordIO stream and a ``Mesos-Stream-Id``
header; every other call answers 202 once validated.  Status codes and messages
follow Mesos: 400 malformed or mismatched stream id, 403 not subscribed, 406/415
for media types, 307 to the leader on a follower (see server.py).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from aiohttp import web

from mesoslite.httpapi import HTTPError
from mesoslite.master.frameworks import SubscribeRefused
from mesoslite.messages.scheduler import Call, CallError, CallType, decode_call

if TYPE_CHECKING:
    from mesoslite.master.server import MasterServer

log = logging.getLogger(__name__)

STREAM_HEADER = "Mesos-Stream-Id"
_JSON = "application/json"


class FrameworkStream:
    """One subscription's outgoing RecordIO stream, fed through a queue."""

    def __init__(self, framework_id: str, stream_id: str) -> None:
        self.framework_id = framework_id
        self.stream_id = stream_id
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.closed = False
        # SUBSCRIBED must be the stream's first event: it leaves the master only after
        # the framework is durable, so heartbeats wait for it.
        self.subscribed_sent = False

    def send(self, record: bytes) -> None:
        if not self.closed:
            self.queue.put_nowait(record)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)


class SchedulerAPI:
    def __init__(self, server: MasterServer) -> None:
        self.server = server

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await self.server.check_leader(request)
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type != _JSON:
            raise HTTPError(415, "Expecting 'Content-Type' of application/json"
                            " (mesoslite speaks the JSON encoding only)")
        body = await request.read()
        try:
            call = decode_call(body)
        except CallError as exc:
            self.server.state.counters["calls_invalid"] += 1
            raise HTTPError(400, str(exc), [(exc.path, [str(exc)])] if exc.path else []) from None
        if call.type == CallType.SUBSCRIBE:
            return await self._subscribe(request, call)
        self._check_caller(request, call)
        self._dispatch(call)
        self.server.kick()
        return web.Response(status=202)

    # ---------------------------------------------------------------- subscribe

    async def _subscribe(self, request: web.Request, call: Call) -> web.StreamResponse:
        if STREAM_HEADER in request.headers:
            raise HTTPError(400, "Subscribe calls should not include the 'Mesos-Stream-Id' header")
        accept = request.headers.get("Accept", "*/*")
        if not any(a.split(";")[0].strip() in (_JSON, "*/*", "application/*")
                   for a in accept.split(",")):
            raise HTTPError(406, "Expecting 'Accept' to allow application/json")
        self.server.authorize_subscribe(request, call)
        stream_id = str(uuid.uuid4())
        clock = self.server.clock
        try:
            framework_id = self.server.state.subscribe(
                call.subscribe, stream_id, clock.now(), clock.monotonic()  # type: ignore[arg-type]
            )
        except SubscribeRefused as exc:
            raise HTTPError(exc.status, str(exc)) from None
        stream = FrameworkStream(framework_id, stream_id)
        old = self.server.streams.get(framework_id)
        self.server.streams[framework_id] = stream
        if old is not None:
            # Its ERROR event and close were queued by the state machine; the old
            # stream object is now only reachable through the close command.
            self.server.retired_streams[old.stream_id] = old
        response = web.StreamResponse(status=200, headers={
            "Content-Type": _JSON, STREAM_HEADER: stream_id, "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self.server.kick()
        log.info("framework %s subscribed (stream %s)", framework_id, stream_id,
                 extra={"framework_id": framework_id})
        try:
            while True:
                record = await stream.queue.get()
                if record is None:
                    break
                await response.write(record)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            stream.closed = True
            if self.server.streams.get(framework_id) is stream:
                del self.server.streams[framework_id]
            self.server.retired_streams.pop(stream_id, None)
            self.server.state.stream_closed(framework_id, stream_id, clock.monotonic())
            self.server.kick()
            log.info("framework %s stream %s closed", framework_id, stream_id,
                     extra={"framework_id": framework_id})
        return response

    # ---------------------------------------------------------------- other calls

    def _check_caller(self, request: web.Request, call: Call) -> None:
        framework_id = call.framework_id.value  # type: ignore[union-attr]
        fw = self.server.state.frameworks.get(framework_id)
        if fw is None or not fw.connected:
            raise HTTPError(403, "Framework is not subscribed")
        stream_id = request.headers.get(STREAM_HEADER)
        if stream_id is None:
            raise HTTPError(400, "All non-subscribe calls should include the"
                            " 'Mesos-Stream-Id' header")
        if stream_id != fw.stream_id:
            raise HTTPError(400, f"The stream ID '{stream_id}' included in this request didn't"
                            f" match the stream ID currently associated with framework ID"
                            f" {framework_id}")
        self.server.authorize_call(request, call)

    def _dispatch(self, call: Call) -> None:
        state = self.server.state
        clock = self.server.clock
        now, mono = clock.now(), clock.monotonic()
        fid = call.framework_id.value  # type: ignore[union-attr]
        t = call.type
        if t == CallType.TEARDOWN:
            state.teardown(fid, now, mono)
        elif t == CallType.ACCEPT:
            state.accept(fid, call.accept, now, mono)  # type: ignore[arg-type]
        elif t == CallType.DECLINE:
            state.decline(fid, call.decline, mono)  # type: ignore[arg-type]
        elif t == CallType.REVIVE:
            state.revive(fid, call.revive.roles if call.revive else [])
        elif t == CallType.SUPPRESS:
            state.suppress(fid, call.suppress.roles if call.suppress else [])
        elif t == CallType.KILL:
            state.kill(fid, call.kill, now)  # type: ignore[arg-type]
        elif t == CallType.SHUTDOWN:
            state.shutdown(fid, call.shutdown, now)  # type: ignore[arg-type]
        elif t == CallType.ACKNOWLEDGE:
            ack = call.acknowledge
            if ack is None or len(ack.uuid) != 16:
                raise HTTPError(400, "'acknowledge.uuid' is not a valid UUID")
            state.acknowledge(fid, ack.agent_id.value, ack.task_id.value, ack.uuid)
        elif t == CallType.RECONCILE:
            state.reconcile(fid, call.reconcile, now)  # type: ignore[arg-type]
        elif t == CallType.MESSAGE:
            state.message(fid, call.message)  # type: ignore[arg-type]
        elif t == CallType.UPDATE_FRAMEWORK:
            try:
                state.update_framework(fid, call.update_framework, mono)  # type: ignore[arg-type]
            except SubscribeRefused as exc:
                raise HTTPError(400, str(exc)) from None
        # REQUEST, inverse offers and operation calls are accepted and ignored, as
        # Mesos' built-in allocator ignores REQUEST.
