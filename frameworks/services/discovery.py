"""Service discovery, as the services framework hosts it: the endpoints API, the
``endpoints_changed_event`` stream and the DNS responder.

``refresh()`` runs after every commit of the framework's state (the kit runner's
``on_commit`` hook, ``ServicesServer._publish``), so what ``/v2/endpoints``, the events and DNS say is always a
committed state, and changes as soon as one is committed.

* ``GET /v2/endpoints`` -> ``{"epoch", "generation", "domain", "dns", "apps": [...]}``;
  each app ``{"id", "generation", "strategy", "hosts", "servicePorts": [{"index",
  "servicePort", "protocol", "name", "endpoints": [{"taskId", "host", "hostname",
  "port", "healthy", "state", "routable"}]}]}``.  Only routable endpoints (running,
  healthy, not being killed; see ``endpoints``) unless ``?all=true``.
* ``GET /v2/endpoints/{app}`` -> ``{"epoch", "generation", "app": {...}}``; 404 for an
  unknown app.
* ``GET /v2/events?event_type=endpoints_changed_event``: one event per change of an
  app's routable endpoints: ``{"eventType", "timestamp", "appId", "epoch",
  "generation", "app": {...} | null (deleted), "added": [task ids], "removed": [...]}``.
  A follower reads the list, then applies events whose generation is newer than the
  app's; ``event_stream_reset``, or an event of another epoch, means: read the list again.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from frameworks.common.sse import SseBroadcaster
from frameworks.services.apiutil import flag
from frameworks.services.dns import DnsResponder
from frameworks.services.dnszone import DEFAULT_DOMAIN, DEFAULT_TTL, Zone, build_zone
from frameworks.services.endpoints import (
    EVENT_TYPE,
    AppEndpoints,
    EndpointsTracker,
    all_endpoints,
)
from frameworks.services.model import timestamp
from frameworks.services.state import NotFound, ServicesState
from frameworks.services.validation import normalize_id
from mesoslite.clock import Clock, SystemClock
from mesoslite.httpapi import json_response

log = logging.getLogger(__name__)


class Discovery:
    """Endpoints tracker + HTTP routes + DNS responder for one services framework.

    ``dns_port`` None: no DNS responder.  A responder that cannot bind is logged and
    reported as ``dns: null`` in ``/v2/endpoints``; the framework runs on without it.
    """

    def __init__(self, state: ServicesState, bus: SseBroadcaster, clock: Clock | None = None,
                 dns_host: str = "127.0.0.1", dns_port: int | None = None,
                 domain: str = DEFAULT_DOMAIN, ttl: int = DEFAULT_TTL) -> None:
        self.state = state
        self.bus = bus
        self.clock = clock or SystemClock()
        self.domain = domain
        self.ttl = ttl
        self.tracker = EndpointsTracker(bus.epoch)
        self.dns: DnsResponder | None = (
            DnsResponder(self.zone, dns_host, dns_port) if dns_port is not None else None)
        self.dns_error: str | None = None
        self._zone: tuple[int, Zone] | None = None

    def current(self, include_all: bool = False) -> dict[str, AppEndpoints]:
        deploying = {d.app_id for d in self.state.deployments.values()}
        return all_endpoints(self.state.apps, self.state.tasks.values(), deploying,
                             include_all)

    def refresh(self) -> None:
        """Compare with the last view; publish one event per app that changed."""
        changes = self.tracker.update(self.current())
        if not changes:
            return
        stamp = timestamp(self.clock.now())
        for change in changes:
            self.bus.publish(EVENT_TYPE, {"eventType": EVENT_TYPE, "timestamp": stamp,
                                          **self.tracker.event(change)})

    def zone(self) -> Zone:
        """The DNS zone of the current view (rebuilt only when it changed)."""
        generation = self.tracker.generation
        if self._zone is None or self._zone[0] != generation:
            self._zone = (generation, build_zone(self.tracker.apps, self.domain, self.ttl,
                                                 serial=generation + 1))
        return self._zone[1]

    async def start(self) -> None:
        self.refresh()
        if self.dns is None:
            return
        try:
            await self.dns.start()
            log.info("DNS for %s answering on %s (UDP and TCP)", self.domain, self.dns.address)
        except OSError as exc:
            self.dns_error = str(exc)
            log.error("DNS responder not started on %s: %s", self.dns.address, exc)
            self.dns = None

    async def stop(self) -> None:
        if self.dns is not None:
            await self.dns.stop()

    # ---------------------------------------------------------------- HTTP

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/v2/endpoints", self.list_endpoints),
                web.get("/v2/endpoints/{path:.+}", self.app_endpoints)]

    def _head(self) -> dict[str, Any]:
        return {"epoch": self.tracker.epoch, "generation": self.tracker.generation}

    async def list_endpoints(self, request: web.Request) -> web.Response:
        if flag(request, "all"):
            apps = [a.to_json(self.tracker.generations.get(a.app_id, 0))
                    for a in self.current(include_all=True).values()]
        else:
            apps = [a.to_json(self.tracker.generations.get(a.app_id, 0))
                    for a in self.tracker.apps.values()]
        return json_response({**self._head(), "domain": self.domain,
                              "dns": self.dns.address if self.dns is not None else None,
                              "apps": sorted(apps, key=lambda a: a["id"])})

    async def app_endpoints(self, request: web.Request) -> web.Response:
        app_id = normalize_id(request.match_info["path"])
        if app_id not in self.state.apps:
            raise NotFound(f"App '{app_id}' does not exist")
        if flag(request, "all"):
            found = self.current(include_all=True).get(app_id)
            app = found.to_json(self.tracker.generations.get(app_id, 0)) if found else None
        else:
            app = self.tracker.app_json(app_id)
        return json_response({**self._head(), "app": app})
