"""The load balancer's TCP proxy against direct connections to the same backends.

Three processes, as on a real host: the **backends** (three asyncio servers on
loopback), the **proxy** (``mesoslite.lb.proxy.Proxy``, the data path ``mesoslite lb``
runs, given a static route over the three backends, round-robin) and the **client**
(this process).  Each measurement runs twice, direct (the client itself spreads over
the three backends round-robin) and through the proxy, alternated over ``--rounds``
rounds; the best round of each is kept, then compared:

* **connections/s** -- ``--connections`` short connections, ``--concurrency`` at a
  time: connect, send one line, read the one-line answer, close;
* **MB/s** -- ``--streams`` connections at once each read ``--megabytes`` MB the
  backend sends as fast as it can;
* **request latency** -- one kept-open connection, ``--requests`` one-line
  request/answer round trips one after the other: p50 and p99, and the proxy's added
  latency (proxy minus direct) at each;
* **connect latency** -- connect + first answer of a fresh connection, one at a time:
  p50 and p99.

Prints the figures and the ratios proxy/direct (throughput: < 1 means the proxy is
slower; latency: > 1).  ``--proxy-loop uvloop`` runs the proxy on uvloop instead of
asyncio's own loop (measured: no faster, see docs/performance.md).

    .venv/bin/python benchmarks/lb.py [--connections 3000] [--rounds 2]
    .venv/bin/python benchmarks/lb.py --proxy-loop uvloop
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesoslite.lb.proxy import Proxy
from mesoslite.lb.table import Backend, Route

BULK_CHUNK = b"x" * (256 * 1024)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# ------------------------------------------------------------------ the backends

async def _serve_backend(port: int) -> asyncio.Server:
    """A line ``BULK n`` -> n bytes then close; any other line -> ``ok`` line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if line.startswith(b"BULK "):
                    left = int(line.split()[1])
                    while left > 0:
                        chunk = BULK_CHUNK[:left]
                        writer.write(chunk)
                        left -= len(chunk)
                        await writer.drain()
                    break
                writer.write(b"ok\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)


def run_backends(ports: list[int], ready: mp.Event) -> None:  # type: ignore[valid-type]
    async def main() -> None:
        for port in ports:
            await _serve_backend(port)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def run_proxy(listen: int, backends: list[int], ready: mp.Event,  # type: ignore[valid-type]
              loop: str = "asyncio") -> None:
    async def main() -> None:
        proxy = Proxy(["127.0.0.1"])
        route = Route("/bench", listen, 0, "round-robin",
                      tuple(Backend(f"bench.{i}", "127.0.0.1", p)
                            for i, p in enumerate(backends)))
        await proxy.update({listen: route})
        ready.set()
        await asyncio.Event().wait()

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


# ------------------------------------------------------------------ the client

@dataclass
class Target:
    name: str
    ports: list[int]
    _next: int = 0

    def port(self) -> int:
        self._next += 1
        return self.ports[self._next % len(self.ports)]


async def one_request(port: int) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"ping\n")
    await writer.drain()
    answer = await reader.readline()
    elapsed = time.perf_counter() - start
    writer.close()
    if answer != b"ok\n":
        raise RuntimeError(f"bad answer {answer!r} on port {port}")
    return elapsed


async def connections_per_s(target: Target, total: int, concurrency: int) -> float:
    left = total

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one_request(target.port())

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


async def megabytes_per_s(target: Target, streams: int, megabytes: int) -> float:
    size = megabytes * 1024 * 1024

    async def stream() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", target.port())
        writer.write(f"BULK {size}\n".encode())
        await writer.drain()
        got = 0
        while chunk := await reader.read(1024 * 1024):
            got += len(chunk)
        writer.close()
        return got

    start = time.perf_counter()
    got = sum(await asyncio.gather(*(stream() for _ in range(streams))))
    elapsed = time.perf_counter() - start
    if got != size * streams:
        raise RuntimeError(f"short read: {got} of {size * streams} bytes")
    return got / elapsed / 1e6


async def request_latencies(target: Target, requests: int) -> list[float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port())
    out = []
    for _ in range(requests):
        start = time.perf_counter()
        writer.write(b"ping\n")
        await writer.drain()
        await reader.readline()
        out.append(time.perf_counter() - start)
    writer.close()
    return out


async def connect_latencies(target: Target, count: int) -> list[float]:
    return [await one_request(target.port()) for _ in range(count)]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Figures:
    conns_per_s: float
    mb_per_s: float
    req_p50_ms: float
    req_p99_ms: float
    conn_p50_ms: float
    conn_p99_ms: float


async def measure(target: Target, args: argparse.Namespace) -> Figures:
    cps = await connections_per_s(target, args.connections, args.concurrency)
    mbs = await megabytes_per_s(target, args.streams, args.megabytes)
    req = await request_latencies(target, args.requests)
    conn = await connect_latencies(target, args.requests // 4)
    return Figures(cps, mbs, pct(req, 0.5) * 1e3, pct(req, 0.99) * 1e3,
                   pct(conn, 0.5) * 1e3, pct(conn, 0.99) * 1e3)


def best(rounds: list[Figures]) -> Figures:
    """Per figure, the best round (highest throughput, lowest latency): the least
    disturbed by whatever else shares the machine."""
    return Figures(max(r.conns_per_s for r in rounds), max(r.mb_per_s for r in rounds),
                   min(r.req_p50_ms for r in rounds), min(r.req_p99_ms for r in rounds),
                   min(r.conn_p50_ms for r in rounds), min(r.conn_p99_ms for r in rounds))


def report(direct: Figures, proxied: Figures, args: argparse.Namespace) -> str:
    rows = [
        ("connections/s", "conns_per_s", "{:10.0f}"),
        ("MB/s", "mb_per_s", "{:10.1f}"),
        ("request p50 (ms)", "req_p50_ms", "{:10.3f}"),
        ("request p99 (ms)", "req_p99_ms", "{:10.3f}"),
        ("connect+answer p50 (ms)", "conn_p50_ms", "{:10.3f}"),
        ("connect+answer p99 (ms)", "conn_p99_ms", "{:10.3f}"),
    ]
    title = (f"load balancer proxy vs direct, 3 backends, best of {args.rounds} rounds "
             f"({args.connections} connections x{args.concurrency}, {args.streams} streams "
             f"x {args.megabytes} MB, {args.requests} requests)")
    lines = [title, f"{'':26}{'direct':>10}{'proxy':>10}{'proxy/direct':>14}"]
    for label, attr, fmt in rows:
        d, p = getattr(direct, attr), getattr(proxied, attr)
        lines.append(f"{label:26}{fmt.format(d)}{fmt.format(p)}{p / d:14.2f}")
    lines.append(f"added latency per request: p50 {proxied.req_p50_ms - direct.req_p50_ms:.3f} ms"
                 f", p99 {proxied.req_p99_ms - direct.req_p99_ms:.3f} ms")
    return "\n".join(lines)


async def run(args: argparse.Namespace, direct: Target, proxied: Target) -> str:
    rounds: dict[str, list[Figures]] = {"direct": [], "proxy": []}
    for _ in range(args.rounds):
        for target in (direct, proxied):
            rounds[target.name].append(await measure(target, args))
    return report(best(rounds["direct"]), best(rounds["proxy"]), args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--proxy-loop", choices=["asyncio", "uvloop"], default="asyncio",
                        help="the proxy's event loop")
    args = parser.parse_args()

    *backend_ports, proxy_port = free_ports(4)
    ctx = mp.get_context("spawn")
    backends_ready, proxy_ready = ctx.Event(), ctx.Event()
    procs = [ctx.Process(target=run_backends, args=(backend_ports, backends_ready),
                         daemon=True),
             ctx.Process(target=run_proxy,
                         args=(proxy_port, backend_ports, proxy_ready, args.proxy_loop),
                         daemon=True)]
    for proc in procs:
        proc.start()
    try:
        if not (backends_ready.wait(30) and proxy_ready.wait(30)):
            raise SystemExit("the backends or the proxy did not start")
        print(asyncio.run(run(args, Target("direct", backend_ports),
                              Target("proxy", [proxy_port]))))
    finally:
        for proc in procs:
            with contextlib.suppress(Exception):
                proc.terminate()
                proc.join(5)


if __name__ == "__main__":
    main()
