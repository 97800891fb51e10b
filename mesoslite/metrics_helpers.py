"""Small helpers for Prometheus metrics in mesoslite's components and frameworks.

Conventions (Prometheus'): one prefix per component (``mesoslite_master_``,
``mesoslite_agent_``, ``mesoslite_services_``, ``mesoslite_batch_``); counters end
in ``_total`` (``prometheus_client`` adds it to a ``Counter`` named without it);
times are histograms in ``_seconds``, sizes in ``_bytes``; labels have few values
(a state, a role; never a task id).  Every server keeps its own registry, so
several can share a process (tests, ``mesoslite up``).

Typical use in a framework::

    registry = CollectorRegistry()
    deployments = Counter("mesoslite_services_deployments", "Deployments started",
                          ["kind"], registry=registry)
    registry.register(ScrapeGauge("mesoslite_batch_queue_depth", "Tasks waiting",
                                  lambda: {(): len(scheduler.queue)}))
    wait = Histogram("mesoslite_batch_queue_wait_seconds", "Time tasks waited",
                     buckets=WAIT_BUCKETS, registry=registry)
    add_metrics_route(app, registry)

``ScrapeGauge`` reads its values when Prometheus scrapes, so the code that changes
them does nothing extra.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Buckets (seconds) for short operations (a commit, an allocation round, a launch)
# and for waits of queued work (up to an hour).
FAST_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
WAIT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)


class ScrapeGauge(Collector):
    """A gauge whose samples come from ``read()`` at scrape time: a mapping from the
    label values (a tuple, ``()`` without labels) to the value."""

    def __init__(self, name: str, documentation: str,
                 read: Callable[[], Mapping[tuple[str, ...], float]],
                 labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.read = read
        self.labels = list(labels)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for label_values, value in self.read().items():
            family.add_metric(list(label_values), value)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """Registration checks names without calling ``read`` (which may not work yet)."""
        yield GaugeMetricFamily(self.name, self.documentation, labels=self.labels)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def metrics_handler(registry: CollectorRegistry
                    ) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler answering the registry in Prometheus' text format."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=render(registry), headers={"Content-Type": CONTENT_TYPE})

    return handle


def add_metrics_route(app: web.Application, registry: CollectorRegistry,
                      path: str = "/metrics") -> None:
    app.router.add_get(path, metrics_handler(registry))
