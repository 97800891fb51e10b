"""``GET /agent/v1/link``: the WebSocket each agent keeps open to the master.

The first frame must be ``register``; after that the agent sends status updates,
pongs and usage, and the master pushes commands through ``AgentLink.send`` (queued,
so one slow agent never blocks the others).  Malformed frames close the link with
a message naming the field.  Registration, frames and the link's end become stimuli
for the state machine (``AgentRegisters``, ``AgentSent``, ``AgentLinkClosed``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from mesoslite.master.stimuli import (
    Admitted,
    AgentLinkClosed,
    AgentRegisters,
    AgentSent,
    Refusal,
)
from mesoslite.messages.agent import (
    MasterMessage,
    ProtocolError,
    Refused,
    Register,
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
                refusal = self.server.handle(AgentSent(link.agent_id, connection, message))
                if isinstance(refusal, Refusal):
                    log.warning("agent %s: %s", link.agent_id, refusal.message)
        finally:
            link.close()
            self.server.handle(AgentLinkClosed(link.agent_id, connection))
            if self.server.links.get(link.agent_id) is link:
                del self.server.links[link.agent_id]
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
            await self._refuse(ws, f"bad register frame: {exc}")
            return None
        if not isinstance(message, Register):
            await self._refuse(ws, "the first frame must be 'register'")
            return None
        answer = self.server.handle(AgentRegisters(message, connection))
        if not isinstance(answer, Admitted):
            await self._refuse(ws, answer.message if answer is not None else "refused")
            return None
        agent_id = answer.id
        old = self.server.links.get(agent_id)
        if old is not None:
            old.close()
        link = AgentLink(ws, agent_id, connection)
        self.server.links[agent_id] = link
        log.info("agent %s registered from %s", agent_id, message.address,
                 extra={"agent_id": agent_id})
        return link

    async def _refuse(self, ws: web.WebSocketResponse, why: str) -> None:
        # With this master's epoch: an agent ignores anything from a master older than
        # the newest it has heard, and would not hear why it is refused.
        refused = Refused(message=why, epoch=self.server.state.epoch)
        await ws.send_str(encode(refused).decode())
