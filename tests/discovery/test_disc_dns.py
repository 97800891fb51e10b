"""The services framework's DNS responder on a real cluster, queried over UDP and TCP
with dnslib as a resolver would: A and SRV answers follow scaling and failures, and
name only healthy tasks, with a short TTL."""

from __future__ import annotations

import asyncio

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from frameworks.services.dnszone import DEFAULT_TTL
from mesoslite.testing.poll import wait_for
from tests.discovery.conftest import backend_app
from tests.services.conftest import Api

pytestmark = pytest.mark.asyncio

A_NAME = "web.prod.mesoslite."
SRV_NAME = "_web._tcp.prod.mesoslite."


async def query(services, name: str, qtype: str, tcp: bool = False) -> DNSRecord:
    """One query to the framework's responder, as a stub resolver sends it."""
    port = services.discovery.dns.port
    packet = await asyncio.to_thread(DNSRecord.question(name, qtype).send, "127.0.0.1",
                                     port, tcp, 5)
    return DNSRecord.parse(packet)


async def a_records(services) -> set[str]:
    reply = await query(services, A_NAME, "A")
    assert reply.header.rcode == RCODE.NOERROR
    return {str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A}


async def srv_records(services) -> set[tuple[str, int]]:
    """(address the SRV target resolves to, port) per SRV answer."""
    reply = await query(services, SRV_NAME, "SRV")
    assert reply.header.rcode == RCODE.NOERROR
    glue = {str(rr.rname): str(rr.rdata) for rr in reply.ar if rr.rtype == QTYPE.A}
    return {(glue[str(rr.rdata.target)], rr.rdata.port)
            for rr in reply.rr if rr.rtype == QTYPE.SRV}


async def healthy_tasks(api: Api, n: int) -> list[dict]:
    return await api.running("/prod/web", n, healthy=True, timeout=60)


def expected(tasks: list[dict]) -> tuple[set[str], set[tuple[str, int]]]:
    addresses = {t["ipAddresses"][0]["ipAddress"] for t in tasks}
    return addresses, {(t["ipAddresses"][0]["ipAddress"], t["ports"][0]) for t in tasks}


async def wait_answers(services, tasks: list[dict], timeout: float = 30.0) -> None:
    want_a, want_srv = expected(tasks)

    async def check() -> bool:
        return (await a_records(services) == want_a
                and await srv_records(services) == want_srv)

    await wait_for(check, timeout, interval=0.05,
                   message=f"DNS to answer {sorted(want_srv)}")


async def test_a_and_srv_answers_follow_scaling_and_failures(api: Api, services) -> None:
    app = backend_app("/prod/web", 18201, 1, constraints=[["hostname", "UNIQUE"]])
    await api.ok("POST", "/v2/apps", app)
    await wait_answers(services, await healthy_tasks(api, 1))

    reply = await query(services, A_NAME, "A")
    assert reply.header.aa == 1
    assert {rr.ttl for rr in reply.rr} == {DEFAULT_TTL}  # short: clients re-ask soon

    await api.ok("PUT", "/v2/apps/prod/web", {"instances": 3})
    tasks = await healthy_tasks(api, 3)
    await wait_answers(services, tasks)
    assert await a_records(services) == {"127.0.0.11", "127.0.0.12", "127.0.0.13"}
    # The same answers over TCP (what a client retries with after a truncated answer).
    over_tcp = await query(services, SRV_NAME, "SRV", tcp=True)
    assert len([rr for rr in over_tcp.rr if rr.rtype == QTYPE.SRV]) == 3
    # The port's own names answer too: by its name and by its index.
    named = await query(services, "_echo._web._tcp.prod.mesoslite.", "SRV")
    assert {rr.rdata.port for rr in named.rr} == {t["ports"][0] for t in tasks}

    # A task that fails its health check leaves the answers before it is replaced.
    sick = tasks[0]
    reader, writer = await asyncio.open_connection(sick["ipAddresses"][0]["ipAddress"],
                                                   sick["ports"][0])
    await reader.readline()
    writer.write(b"SICK\n")
    await writer.drain()
    writer.close()
    sick_address, sick_port = next(iter(expected([sick])[1]))

    async def dropped() -> bool:
        return (sick_address, sick_port) not in await srv_records(services) \
            and sick_address not in await a_records(services)

    await wait_for(dropped, 30, interval=0.02, message="the unhealthy task out of DNS")
    # ... and its replacement comes in once healthy.
    async def replaced() -> list[dict] | None:
        now = await api.running("/prod/web", 3, healthy=True, timeout=60)
        return now if sick["id"] not in {t["id"] for t in now} else None

    tasks = await wait_for(replaced, 60, interval=0.1, message="a healthy replacement")
    await wait_answers(services, tasks)

    await api.ok("PUT", "/v2/apps/prod/web", {"instances": 1}, force=True)
    await wait_answers(services, await healthy_tasks(api, 1))


async def test_unknown_names_and_other_domains(api: Api, services) -> None:
    await api.ok("POST", "/v2/apps", backend_app("/prod/web", 18202, 1))
    await healthy_tasks(api, 1)
    missing = await query(services, "nothing.prod.mesoslite.", "A")
    assert missing.header.rcode == RCODE.NXDOMAIN
    assert [rr.rtype for rr in missing.auth] == [QTYPE.SOA]
    # Not a recursive resolver: names outside its domain are refused.
    assert (await query(services, "example.com.", "A")).header.rcode == RCODE.REFUSED
    # The app exists while it has no healthy task: no records, but no NXDOMAIN either.
    await api.ok("PUT", "/v2/apps/prod/web", {"instances": 0}, force=True)

    async def empty() -> bool:
        reply = await query(services, A_NAME, "A")
        return reply.header.rcode == RCODE.NOERROR and not reply.rr

    await wait_for(empty, 30, interval=0.05, message="no A records for a scaled-down app")
    data = await api.ok("GET", "/v2/endpoints")
    assert data["dns"] == f"127.0.0.1:{services.discovery.dns.port}"
    assert data["domain"] == "mesoslite."
