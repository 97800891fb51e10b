"""The metrics helpers frameworks reuse: scrape-time gauges and the /metrics route."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from mesoslite.metrics_helpers import CONTENT_TYPE, ScrapeGauge, add_metrics_route, render


def test_scrape_gauge_reads_at_scrape_time() -> None:
    queue: list[str] = []
    registry = CollectorRegistry()
    registry.register(ScrapeGauge("demo_queue_depth", "Waiting items",
                                  lambda: {("a",): len(queue), ("b",): 0}, ["user"]))
    assert 'demo_queue_depth{user="a"} 0.0' in render(registry).decode()
    queue.extend(["x", "y"])
    assert 'demo_queue_depth{user="a"} 2.0' in render(registry).decode()


async def test_metrics_route_serves_prometheus_text() -> None:
    registry = CollectorRegistry()
    Counter("demo_things", "Things done", registry=registry).inc(3)
    app = web.Application()
    add_metrics_route(app, registry)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.headers["Content-Type"] == CONTENT_TYPE
        assert "demo_things_total 3.0" in await response.text()
