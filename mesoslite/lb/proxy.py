"""The TCP proxy: one listener per (address, service port), connections spread over
the route's backends, per-endpoint counts.

* A new connection goes to the first backend its app's strategy names that accepts
  within ``connect_timeout``; a backend that refuses (or times out) is skipped for
  ``eject_s`` seconds and the next is tried, so a backend that died before the
  framework noticed costs its clients nothing but a retry.  With no backend left the
  client is closed (counted as rejected).
* Bytes are copied both ways until both sides are done; a half-close (EOF) on one
  side is passed on to the other, an error on either side closes both.  The copy is
  done by protocols on the two transports (``splice.py``): no task per connection
  beyond the backend connect, and a side that cannot keep up pauses the other.
* **Draining**: when a backend leaves its route (unhealthy, killed, replaced by a
  deployment) it gets no new connections, but connections already open are left to
  finish; its entry goes ``active`` -> ``draining`` -> ``removed`` (when the last one
  closes).  A service port that leaves the table stops listening; its open
  connections, too, run to their end.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mesoslite.lb.splice import Joint, Side
from mesoslite.lb.strategies import Strategy, make_strategy
from mesoslite.lb.table import Backend, Route, diff_routes

log = logging.getLogger(__name__)



@dataclass
class EndpointStats:
    """Counts for one backend of one service port."""

    app_id: str
    service_port: int
    key: str  # host:port
    task_id: str
    state: str = "active"  # active | draining | removed
    active: int = 0  # open connections
    connections: int = 0  # connections made to it (since the proxy started)
    failures: int = 0  # connection attempts it refused or did not answer
    bytes_in: int = 0  # client -> backend
    bytes_out: int = 0  # backend -> client
    ejected_until: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"appId": self.app_id, "servicePort": self.service_port,
                "endpoint": self.key, "taskId": self.task_id, "state": self.state,
                "active": self.active, "connections": self.connections,
                "failures": self.failures, "bytesIn": self.bytes_in,
                "bytesOut": self.bytes_out}


class Proxy:
    """Listeners and connections for a routing table (see the module docstring).

    ``addresses``: where to listen, each with every service port.  ``keep_removed``:
    how many removed endpoints stay in the statistics (their final counts).
    """

    def __init__(self, addresses: list[str], connect_timeout: float = 2.0,
                 eject_s: float = 2.0, keep_removed: int = 256,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.addresses = list(dict.fromkeys(addresses))
        self.connect_timeout = connect_timeout
        self.eject_s = eject_s
        self.keep_removed = keep_removed
        self.clock = clock
        self.routes: dict[int, Route] = {}
        self.stats: dict[tuple[int, str], EndpointStats] = {}
        self._removed: OrderedDict[tuple[int, str], None] = OrderedDict()
        self.rejected: Counter[int] = Counter()
        self.listeners: dict[tuple[str, int], asyncio.Server] = {}
        self.listen_errors: dict[tuple[str, int], str] = {}
        self._strategies: dict[tuple[str, int], Strategy] = {}
        self._joints: set[Joint] = set()  # every open client connection
        self._joint_stats: dict[Joint, tuple[int, str, EndpointStats]] = {}
        self._connecting: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------ table

    async def update(self, routes: dict[int, Route]) -> None:
        """Route by ``routes`` from now on (see the module docstring)."""
        change = diff_routes(self.routes, routes)
        self.routes = dict(routes)
        for port, key in change.dropped:
            stats = self.stats.get((port, key))
            if stats is not None and stats.state == "active":
                stats.state = "draining" if stats.active else "removed"
                if stats.state == "removed":
                    self._retire((port, key))
        for port, route in routes.items():
            for backend in route.backends:
                stats = self.stats.get((port, backend.key))
                if stats is None or stats.app_id != route.app_id:
                    stats = EndpointStats(route.app_id, port, backend.key, backend.task_id)
                    self.stats[(port, backend.key)] = stats
                stats.state, stats.task_id = "active", backend.task_id
                self._removed.pop((port, backend.key), None)
        for key in [k for k in self._strategies if self.routes.get(k[1]) is None
                    or self.routes[k[1]].app_id != k[0]]:
            del self._strategies[key]
        await self.listen()

    async def listen(self) -> None:
        """Open the listeners the table needs (retrying ones that failed), close the
        ones it no longer needs."""
        wanted = {(a, p) for a in self.addresses for p in self.routes}
        for key in [k for k in self.listeners if k not in wanted]:
            # close() stops accepting; connections already open are left to finish.
            self.listeners.pop(key).close()
        for key in [k for k in self.listen_errors if k not in wanted]:
            del self.listen_errors[key]
        for address, port in sorted(wanted - set(self.listeners)):
            try:
                self.listeners[(address, port)] = await asyncio.get_running_loop(
                ).create_server(lambda p=port: self._accepted(p), address, port,
                                reuse_address=True)
                self.listen_errors.pop((address, port), None)
            except OSError as exc:
                if self.listen_errors.get((address, port)) != str(exc):
                    log.error("cannot listen on %s:%d for %s: %s", address, port,
                              self.routes[port].app_id, exc)
                self.listen_errors[(address, port)] = str(exc)

    def _retire(self, key: tuple[int, str]) -> None:
        self._removed[key] = None
        while len(self._removed) > self.keep_removed:
            old, _ = self._removed.popitem(last=False)
            stats = self.stats.get(old)
            if stats is not None and stats.state == "removed":
                del self.stats[old]

    def _strategy(self, route: Route) -> Strategy:
        key = (route.app_id, route.service_port)
        strategy = self._strategies.get(key)
        if strategy is None or strategy.name != route.strategy:
            strategy = self._strategies[key] = make_strategy(route.strategy)
        return strategy

    # ------------------------------------------------------------ connections

    def choose(self, route: Route) -> list[Backend]:
        """The route's backends in the order to try them for one new connection:
        ejected ones left out (unless every one is ejected)."""
        now = self.clock()
        port = route.service_port
        usable = [b for b in route.backends
                  if self.stats[(port, b.key)].ejected_until <= now] or list(route.backends)
        by_key = {b.key: b for b in usable}
        active = {k: self.stats[(port, k)].active for k in by_key}
        return [by_key[k] for k in self._strategy(route).order(list(by_key), active)]

    def _accepted(self, port: int) -> Side:
        """Protocol of a new client connection: it reads nothing until its backend is
        connected (``_connect``)."""
        joint = Joint(self._closed)
        client = _ClientSide(joint, self, port)
        return client

    async def _connect(self, client: _ClientSide, port: int) -> None:
        joint = client.joint
        route = self.routes.get(port)
        loop = asyncio.get_running_loop()
        for backend in self.choose(route) if route is not None else []:
            stats = self.stats[(port, backend.key)]
            upstream = Side(joint, client=False)
            try:
                async with asyncio.timeout(self.connect_timeout):  # no extra task
                    await loop.create_connection(lambda side=upstream: side, backend.host,
                                                 backend.port)
            except (OSError, TimeoutError):
                stats.failures += 1
                stats.ejected_until = self.clock() + self.eject_s
                continue
            if client.lost or joint.closed:  # the client left while we connected
                assert upstream.transport is not None
                upstream.transport.close()
                return
            stats.connections += 1
            stats.active += 1
            stats.ejected_until = 0.0
            self._joint_stats[joint] = (port, backend.key, stats)
            joint.on_bytes = _counter(stats)
            joint.join(client, upstream)
            return
        self.rejected[port] += 1
        joint.close()

    def _closed(self, joint: Joint) -> None:
        self._joints.discard(joint)
        entry = self._joint_stats.pop(joint, None)
        if entry is None:
            return
        port, key, stats = entry
        stats.active -= 1
        if stats.state == "draining" and stats.active == 0:
            stats.state = "removed"
            self._retire((port, key))

    async def close(self) -> None:
        """Stop listening and cut every open connection (the proxy is shutting down)."""
        for server in self.listeners.values():
            server.close()
        self.listeners.clear()
        for joint in list(self._joints):
            joint.abort()

    # ------------------------------------------------------------ reporting

    def endpoint_stats(self) -> list[EndpointStats]:
        return sorted(self.stats.values(), key=lambda s: (s.service_port, s.key))

    def listener_report(self) -> list[dict[str, Any]]:
        out = []
        for address, port in sorted(set(self.listeners) | set(self.listen_errors)):
            route = self.routes.get(port)
            out.append({"address": address, "port": port,
                        "appId": route.app_id if route else None,
                        "error": self.listen_errors.get((address, port))})
        return out


def _counter(stats: EndpointStats) -> Callable[[bool, int], None]:
    def count(from_client: bool, n: int) -> None:
        if from_client:
            stats.bytes_in += n
        else:
            stats.bytes_out += n
    return count


class _ClientSide(Side):
    """The accepted side: paused until ``Proxy._connect`` has joined it to a backend."""

    def __init__(self, joint: Joint, proxy: Proxy, port: int) -> None:
        super().__init__(joint, client=True)
        self.proxy = proxy
        self.port = port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # paused: no peer yet
        self.joint.client = self
        self.proxy._joints.add(self.joint)
        task = asyncio.get_running_loop().create_task(self.proxy._connect(self, self.port))
        self.proxy._connecting.add(task)
        task.add_done_callback(self.proxy._connecting.discard)
