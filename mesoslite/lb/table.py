"""The proxy's routing table, built from the services framework's endpoints.  Pure.

Input is the JSON of ``GET /v2/endpoints`` (a snapshot) and of
``endpoints_changed_event`` events (one app each); see docs/discovery.md.  Output is
one ``Route`` per TCP service port: the app, its strategy and its backends.

Consistency: a snapshot is taken at a global generation G and holds every change up
to G; events arrive in order after it.  So an event is applied only when its
generation is above G (older ones are already in the snapshot), and an event from
another epoch (the framework restarted) means the snapshot must be read again.

Two apps may ask for the same service port (fixed ports are not checked for clashes
across apps); the app with the smaller id gets it and the other is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Backend:
    task_id: str
    host: str
    port: int

    @property
    def key(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class Route:
    app_id: str
    service_port: int
    index: int
    strategy: str
    backends: tuple[Backend, ...] = ()


class TableError(ValueError):
    """The framework sent something that is not an endpoints document."""


def routes_of_app(app: dict[str, Any]) -> list[Route]:
    """The TCP service ports of one app object (``/v2/endpoints`` shape)."""
    try:
        routes = []
        for port in app.get("servicePorts", []):
            protocols = str(port.get("protocol") or "tcp").lower().split(",")
            number = int(port["servicePort"])
            if "tcp" not in protocols or not 0 < number < 65536:
                continue
            backends = tuple(Backend(str(e["taskId"]), str(e["host"]), int(e["port"]))
                             for e in port.get("endpoints", []) if e.get("routable", True))
            routes.append(Route(str(app["id"]), number, int(port.get("index", 0)),
                                str(app.get("strategy") or "round-robin"), backends))
        return routes
    except (KeyError, TypeError, ValueError) as exc:
        raise TableError(f"malformed app endpoints: {exc!r}") from None


@dataclass
class RouteTable:
    """Routes per app, as of ``generation`` within ``epoch``."""

    epoch: str | None = None
    generation: int = -1
    apps: dict[str, list[Route]] = field(default_factory=dict)

    def load(self, snapshot: dict[str, Any]) -> None:
        """Replace everything with a ``GET /v2/endpoints`` document."""
        try:
            apps = {str(a["id"]): routes_of_app(a) for a in snapshot["apps"]}
            epoch, generation = str(snapshot["epoch"]), int(snapshot["generation"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TableError(f"malformed endpoints document: {exc!r}") from None
        self.apps, self.epoch, self.generation = apps, epoch, generation

    def apply(self, event: dict[str, Any]) -> bool | None:
        """Fold one ``endpoints_changed_event`` in.  True: applied; False: already in
        the table (stale); None: from another epoch -- read the snapshot again."""
        if self.epoch is None or str(event.get("epoch")) != self.epoch:
            return None
        try:
            generation, app_id = int(event["generation"]), str(event["appId"])
        except (KeyError, TypeError, ValueError) as exc:
            raise TableError(f"malformed endpoints event: {exc!r}") from None
        if generation <= self.generation:
            return False
        app = event.get("app")
        if app is None:
            self.apps.pop(app_id, None)
        else:
            self.apps[app_id] = routes_of_app(app)
        self.generation = generation
        return True

    def by_port(self) -> tuple[dict[int, Route], list[str]]:
        """One route per service port, and a sentence per clash."""
        ports: dict[int, Route] = {}
        clashes = []
        for app_id in sorted(self.apps):
            for route in self.apps[app_id]:
                holder = ports.get(route.service_port)
                if holder is None:
                    ports[route.service_port] = route
                elif holder.app_id != app_id:
                    clashes.append(f"service port {route.service_port}: {app_id} clashes "
                                   f"with {holder.app_id}, which keeps it")
        return ports, clashes


@dataclass(frozen=True)
class RouteDiff:
    """What changes between two ``by_port`` results."""

    opened: tuple[int, ...]  # service ports to listen on
    closed: tuple[int, ...]  # service ports to stop listening on
    dropped: tuple[tuple[int, str], ...]  # (service port, backend key) no longer routed
    added: tuple[tuple[int, str], ...]  # (service port, backend key) newly routed


def diff_routes(old: dict[int, Route], new: dict[int, Route]) -> RouteDiff:
    opened = tuple(sorted(set(new) - set(old)))
    closed = tuple(sorted(set(old) - set(new)))
    dropped, added = [], []
    for port in sorted(set(old) | set(new)):
        before = {b.key for b in old[port].backends} if port in old else set()
        after = {b.key for b in new[port].backends} if port in new else set()
        dropped += [(port, k) for k in sorted(before - after)]
        added += [(port, k) for k in sorted(after - before)]
    return RouteDiff(opened, closed, tuple(dropped), tuple(added))
