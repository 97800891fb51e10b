"""``GET /agent/v1/link``: the WebSocket each agent keeps open to the master.

The first frame must be ``register``; after that the agent sends status updates,
pongs and usage, and the master pushes commands through ``AgentLink.send`` (queued,
so one slow agent never blocks the others).  Malformed frames close the link with
a message naming the field.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from mesoslite.master.agents import AgentRefused
from mesoslite.messages.agent import (
    MasterMessage,
    Pong,
    ProtocolError,
    Refused,
    Register,
    StatusUpdates,
    Usage,
    decode_from_agent,
    encode,
)

if TYPE_CHECKING:
    from mesoslite.master.server import MasterServer

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 30.0
MAX_FRAME = 64 * 1024 * 1024


class AgentLink:
    def __init__(self, ws: web.WebSocketResponse, agent_id: str, connection: int) -> None:
        self.ws = ws
        self.agent_id = agent_id
        self.connection = connection
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.writer = asyncio.create_task(self._write())

    def send(self, message: MasterMessage) -> None:
        self.queue.put_nowait(encode(message))

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def _write(self) -> None:
        try:
            while (data := await self.queue.get()) is not None:
                await self.ws.send_str(data.decode())
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            await self.ws.close()


class AgentLinkHandler:
    def __init__(self, server: MasterServer) -> None:
        self.server = server
        self._connections = itertools.count(1)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await self.server.check_leader(request)
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        connection = next(self._connections)
        link = await self._register(ws, connection)
        if link is None:
            await ws.close()
            return ws
        try:
            async for frame in ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                try:
                    message = decode_from_agent(frame.data)
                except ProtocolError as exc:
                    log.warning("agent %s sent a bad frame: %s", link.agent_id, exc)
                    await ws.close(code=1003, message=str(exc)[:120].encode())
                    break
                self._on_message(link, message)
        finally:
            link.close()
            state = self.server.state
            state.agent_disconnected(link.agent_id, connection, self.server.clock.monotonic())
            if self.server.links.get(link.agent_id) is link:
                del self.server.links[link.agent_id]
            self.server.kick()
        return ws

    async def _register(self, ws: web.WebSocketResponse, connection: int) -> AgentLink | None:
        try:
            frame = await ws.receive(timeout=REGISTER_TIMEOUT)
        except TimeoutError:
            return None
        if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return None
        try:
            message = decode_from_agent(frame.data)
        except ProtocolError as exc:
            await ws.send_str(encode(Refused(message=f"bad register frame: {exc}")).decode())
            return None
        if not isinstance(message, Register):
            await ws.send_str(encode(Refused(message="the first frame must be 'register'"))
                              .decode())
            return None
        clock = self.server.clock
        try:
            agent_id = self.server.state.register_agent(
                message, connection, clock.now(), clock.monotonic())
        except AgentRefused as exc:
            await ws.send_str(encode(Refused(message=str(exc))).decode())
            return None
        old = self.server.links.get(agent_id)
        if old is not None:
            old.close()
        link = AgentLink(ws, agent_id, connection)
        self.server.links[agent_id] = link
        self.server.kick()
        log.info("agent %s registered from %s", agent_id, message.address,
                 extra={"agent_id": agent_id})
        return link

    def _on_message(self, link: AgentLink, message: object) -> None:
        state = self.server.state
        clock = self.server.clock
        if not state.agent_seen(link.agent_id, link.connection, clock.monotonic()):
            return
        if isinstance(message, StatusUpdates):
            state.status_updates(link.agent_id, message.updates, clock.now(), clock.monotonic())
            self.server.kick()
        elif isinstance(message, Usage):
            self.server.usage[link.agent_id] = message
        elif isinstance(message, Pong):
            pass
        elif isinstance(message, Register):
            log.warning("agent %s sent register twice on one link", link.agent_id)
