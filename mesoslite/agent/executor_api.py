"""``POST /api/v1/executor``: the Mesos v1 executor HTTP API (docs/executors.md).

SUBSCRIBE answers 200 with a chunked RecordIO stream of events (SUBSCRIBED first,
HEARTBEAT whenever it is idle for the heartbeat interval) and a ``Mesos-Stream-Id``;
UPDATE, MESSAGE and HEARTBEAT answer 202 once the agent holds what they carry (an
UPDATE is checkpointed first).  A call that names a ``Mesos-Stream-Id`` must name the
current subscription's; one without is accepted (Mesos' own agent asks none).  A call
the agent refuses answers 400 with ``{"message", "details"}`` naming the field.  A
call is JSON or protobuf by its ``Content-Type`` (any other type, or none, 415); the
SUBSCRIBE stream is written by ``Accept`` (``messages.wire``).

When the agent's API requires authentication, an executor authenticates with the
token the agent put in its environment (``MESOS_EXECUTOR_AUTHENTICATION_TOKEN``,
sent as ``Authorization: Bearer <token>``); the operator's credentials are not
accepted here, nor is the token anywhere else.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from mesoslite.agent.executors import ExecutorCallError, ExecutorManager
from mesoslite.httpapi import HTTPError, answer_media_type, body_media_type
from mesoslite.messages import executor as ex
from mesoslite.messages import wire
from mesoslite.messages.scheduler import CallError

log = logging.getLogger(__name__)

PATH = "/api/v1/executor"
STREAM_HEADER = "Mesos-Stream-Id"
# An UPDATE may carry data and a MESSAGE up to the limit: base64 grows it by 4/3.
MAX_CALL_BYTES = ex.MAX_MESSAGE_BYTES * 4 // 3 + 64 * 1024


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else None


async def _read_capped(request: web.Request) -> bytes:
    """The body, refused (400) once it grows past MAX_CALL_BYTES."""
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > MAX_CALL_BYTES:
            raise HTTPError(400, f"The call is larger than the limit of {MAX_CALL_BYTES} "
                            "bytes", [("$", ["too large"])])
        chunks.append(chunk)
    return b"".join(chunks)


class ExecutorAPI:
    def __init__(self, manager: ExecutorManager, require_token: bool) -> None:
        self.manager = manager
        self.require_token = require_token

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PATH, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.require_token and not self.manager.known_token(_bearer(request)):
            # before anything is read: nothing but an executor's token gets further
            raise HTTPError(401, "Executor authentication failed: send the token of "
                            "MESOS_EXECUTOR_AUTHENTICATION_TOKEN as a Bearer token")
        media_type = body_media_type(request)
        if request.content_length is not None and request.content_length > MAX_CALL_BYTES:
            raise HTTPError(400, f"The call is larger than the limit of {MAX_CALL_BYTES} "
                            "bytes (a framework message may carry "
                            f"{ex.MAX_MESSAGE_BYTES} bytes)", [("$", ["too large"])])
        body = await _read_capped(request)
        try:
            call = ex.decode_call(wire.EXECUTOR_CALL.json_body(body, media_type))
        except CallError as exc:
            raise HTTPError(400, str(exc), [(exc.path or "$", [str(exc)])]) from None
        try:
            if self.require_token:
                self._authenticate(request, call)
            if call.type == ex.CallType.SUBSCRIBE:
                return await self._subscribe(request, call)
            self.manager.check_stream(call, request.headers.get(STREAM_HEADER))
            if call.type == ex.CallType.UPDATE:
                await self.manager.update(call)
            elif call.type == ex.CallType.MESSAGE:
                self.manager.message(call)
        except ExecutorCallError as exc:
            field = {ex.CallType.UPDATE: "$.update.status", ex.CallType.MESSAGE:
                     "$.message.data"}.get(call.type, "$.executor_id")
            raise HTTPError(400, str(exc), [(field, [str(exc)])]) from None
        return web.Response(status=202)

    def _authenticate(self, request: web.Request, call: ex.Call) -> None:
        try:
            self.manager.check_token(call, _bearer(request))
        except ExecutorCallError as exc:
            raise HTTPError(401, str(exc)) from None

    async def _subscribe(self, request: web.Request, call: ex.Call) -> web.StreamResponse:
        media_type = answer_media_type(request)
        run, outbox = self.manager.subscribe(call)
        response = web.StreamResponse(status=200, headers={
            "Content-Type": media_type, "Cache-Control": "no-cache",
            STREAM_HEADER: run.stream_id})
        response.enable_chunked_encoding()  # Mesos clients insist on it
        interval = self.manager.settings.heartbeat_interval
        try:
            await response.prepare(request)
            while True:
                try:
                    async with asyncio.timeout(interval):
                        event = await outbox.get()
                except TimeoutError:
                    event = ex.HEARTBEAT
                if event is None:
                    break  # replaced by a newer subscription, or the executor ended
                await response.write(wire.EXECUTOR_EVENT.record(event, media_type))
                if event.type == ex.EventType.SHUTDOWN:
                    continue  # the executor closes the stream when it leaves
        except asyncio.CancelledError:
            self.manager.unsubscribed(run, outbox)
            raise
        except (ConnectionResetError, ConnectionError):
            pass  # the executor closed its stream (after SHUTDOWN, or leaving)
        self.manager.unsubscribed(run, outbox)
        return response
