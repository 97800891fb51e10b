"""A DNS responder for the apps' names, over UDP and TCP (asyncio, dnslib wire format).

Authoritative for one domain (``mesoslite.`` by default) and nothing else: names and
answers are those of ``dnszone.Zone`` (read through ``zone()`` at every query, so an
answer is never older than the framework's last committed change).  UDP answers
larger than the client's buffer (512 bytes, or its EDNS0 size) are sent truncated
(TC set) so the client retries over TCP, as RFC 1035 asks.

Point a resolver at it for the domain, e.g. systemd-resolved or dnsmasq
(``server=/mesoslite/127.0.0.1#8053``), or query it directly:
``dig @127.0.0.1 -p 8053 redis-master.mesoslite``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable

from dnslib import (
    AAAA,
    NS,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    A,
    DNSError,
    DNSHeader,
    DNSRecord,
)

from frameworks.services.dnszone import Answer, Record, Zone

log = logging.getLogger(__name__)

UDP_LIMIT = 512
TCP_IDLE_S = 10.0


def _rdata(record: Record) -> object:
    data = record.data
    if record.rtype == "A":
        return A(str(data))
    if record.rtype == "AAAA":
        return AAAA(str(data))
    if record.rtype == "SRV":
        priority, weight, port, target = data  # type: ignore[misc]
        return SRV(priority, weight, port, target)
    if record.rtype == "SOA":
        mname, rname, *times = data  # type: ignore[misc]
        return SOA(mname, rname, tuple(times))
    if record.rtype == "NS":
        return NS(str(data))
    raise ValueError(f"no wire form for {record.rtype}")


def _rr(record: Record) -> RR:
    return RR(record.name, getattr(QTYPE, record.rtype), ttl=record.ttl, rdata=_rdata(record))


def respond(zone: Zone, packet: bytes, limit: int | None = None) -> bytes | None:
    """The answer to one query packet (None: not even a header to answer to).
    ``limit``: the largest answer the transport carries (UDP), else unlimited."""
    try:
        request = DNSRecord.parse(packet)
    except (DNSError, struct.error, ValueError, IndexError):
        if len(packet) < 2:
            return None
        header = DNSHeader(id=int.from_bytes(packet[:2], "big"), qr=1, rcode=RCODE.FORMERR)
        return DNSRecord(header).pack()
    reply = request.reply(ra=0, aa=1)
    if request.header.opcode != 0 or len(request.questions) != 1:
        reply.header.rcode = RCODE.NOTIMP if request.header.opcode != 0 else RCODE.FORMERR
        return reply.pack()
    question = request.questions[0]
    answer: Answer = zone.lookup(str(question.qname), QTYPE.get(question.qtype))
    reply.header.rcode = getattr(RCODE, answer.rcode)
    if answer.rcode == "REFUSED":
        reply.header.aa = 0
    for record in answer.answers:
        reply.add_answer(_rr(record))
    for record in answer.authority:
        reply.add_auth(_rr(record))
    for record in answer.additional:
        reply.add_ar(_rr(record))
    data = reply.pack()
    if limit is not None:
        edns = [r for r in request.ar if r.rtype == QTYPE.OPT]
        size = max(UDP_LIMIT, edns[0].rclass) if edns else UDP_LIMIT
        if len(data) > min(size, limit):
            truncated = request.reply(ra=0, aa=1)
            truncated.header.tc = 1
            truncated.header.rcode = reply.header.rcode
            data = truncated.pack()
    return data


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, zone: Callable[[], Zone]) -> None:
        self.zone = zone
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            out = respond(self.zone(), data, limit=65535)
        except Exception:  # one bad query must not stop the responder
            log.exception("DNS query from %s failed", addr[0])
            return
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


class DnsResponder:
    """UDP and TCP listeners on ``host:port`` answering from ``zone()``."""

    def __init__(self, zone: Callable[[], Zone], host: str = "127.0.0.1",
                 port: int = 8053) -> None:
        self.zone = zone
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        """Bind both listeners (port 0: one free port, the same for UDP and TCP)."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port,
                                               reuse_address=True)
        self.port = self._tcp.sockets[0].getsockname()[1]
        try:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self.zone), local_addr=(self.host, self.port))
        except OSError:
            self._tcp.close()
            raise

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            with contextlib.suppress(Exception):
                await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = int.from_bytes(
                    await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_S), "big")
                packet = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_S)
                out = respond(self.zone(), packet)
                if out is None:
                    break
                writer.write(len(out).to_bytes(2, "big") + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
