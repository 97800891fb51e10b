"""The proxy's own HTTP endpoint: ``/status`` (JSON), ``/metrics`` (Prometheus),
``/health``.

``/status``: where the table comes from and how current it is, the listeners (with
the error of any that could not bind), and per endpoint its state and counts::

    {"services": URL, "mode": "events", "generation": 12, "epoch": "...",
     "lastError": null, "listeners": [{"address", "port", "appId", "error"}],
     "routes": [{"appId", "servicePort", "strategy", "backends": ["host:port"]}],
     "endpoints": [{"appId", "servicePort", "endpoint", "taskId", "state",
                    "active", "connections", "failures", "bytesIn", "bytesOut"}],
     "rejected": {"6379": 0}, "clashes": []}

Metrics (``mesoslite_lb_`` prefix; endpoint labels are ``host:port``, bounded by the
endpoints the table holds plus the removed ones kept for their final counts).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mesoslite.httpapi import json_response
from mesoslite.metrics_helpers import metrics_handler

if TYPE_CHECKING:
    from mesoslite.lb.server import LoadBalancer

LABELS = ["app", "service_port", "endpoint"]


class LbCollector(Collector):
    """Reads the proxy's counters at scrape time."""

    def __init__(self, lb: LoadBalancer) -> None:
        self.lb = lb

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        proxy = self.lb.proxy
        conns = CounterMetricFamily("mesoslite_lb_endpoint_connections",
                                    "Connections proxied to an endpoint", labels=LABELS)
        fails = CounterMetricFamily("mesoslite_lb_endpoint_connect_failures",
                                    "Connection attempts an endpoint refused or did not "
                                    "answer (retried on another)", labels=LABELS)
        active = GaugeMetricFamily("mesoslite_lb_endpoint_active_connections",
                                   "Open connections to an endpoint", labels=LABELS)
        traffic = CounterMetricFamily("mesoslite_lb_endpoint_bytes",
                                      "Bytes proxied (in: client to endpoint)",
                                      labels=[*LABELS, "direction"])
        routable = GaugeMetricFamily("mesoslite_lb_endpoint_routable",
                                     "1 while the endpoint takes new connections",
                                     labels=LABELS)
        for s in proxy.endpoint_stats():
            labels = [s.app_id, str(s.service_port), s.key]
            conns.add_metric(labels, s.connections)
            fails.add_metric(labels, s.failures)
            active.add_metric(labels, s.active)
            traffic.add_metric([*labels, "in"], s.bytes_in)
            traffic.add_metric([*labels, "out"], s.bytes_out)
            routable.add_metric(labels, 1 if s.state == "active" else 0)
        rejected = CounterMetricFamily("mesoslite_lb_rejected_connections",
                                       "Connections closed for want of a backend",
                                       labels=["service_port"])
        for port, n in sorted(proxy.rejected.items()):
            rejected.add_metric([str(port)], n)
        listeners = GaugeMetricFamily("mesoslite_lb_listeners", "Listening sockets",
                                      labels=["state"])
        listeners.add_metric(["ok"], len(proxy.listeners))
        listeners.add_metric(["error"], len(proxy.listen_errors))
        generation = GaugeMetricFamily("mesoslite_lb_table_generation",
                                       "Endpoints generation the table is at")
        generation.add_metric([], self.lb.watcher.table.generation)
        yield from (conns, fails, active, traffic, routable, rejected, listeners, generation)

    def describe(self) -> Iterator[Any]:
        return iter(())


def status_json(lb: LoadBalancer) -> dict[str, Any]:
    proxy, watcher = lb.proxy, lb.watcher
    _, clashes = watcher.table.by_port()
    return {
        "services": watcher.url, "mode": watcher.mode, "epoch": watcher.table.epoch,
        "generation": watcher.table.generation, "lastError": watcher.last_error,
        "listeners": proxy.listener_report(),
        "routes": [{"appId": r.app_id, "servicePort": r.service_port, "strategy": r.strategy,
                    "backends": [b.key for b in r.backends]}
                   for _, r in sorted(proxy.routes.items())],
        "endpoints": [s.to_json() for s in proxy.endpoint_stats()],
        "rejected": {str(p): n for p, n in sorted(proxy.rejected.items())},
        "clashes": clashes,
    }


def status_app(lb: LoadBalancer) -> web.Application:
    registry = CollectorRegistry()
    registry.register(LbCollector(lb))

    async def status(request: web.Request) -> web.Response:
        return json_response(status_json(lb))

    async def health(request: web.Request) -> web.Response:
        ok = lb.watcher.synced.is_set()
        return json_response({"synced": ok, "mode": lb.watcher.mode}, 200 if ok else 503)

    app = web.Application()
    app.add_routes([web.get("/status", status), web.get("/health", health),
                    web.get("/metrics", metrics_handler(registry))])
    return app
