"""Prometheus metrics of the master (``GET /metrics``).

Gauges are read from the state at scrape time (a custom collector), so nothing on
the hot path updates them; counters come from ``MasterState.counters``; the
allocation round time is a histogram observed by the allocation loop.  Each master
has its own registry, so several masters can live in one process (tests).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mesoslite.master.model import AgentState, FrameworkState
from mesoslite.master.state import MasterState
from mesoslite.messages.mesos import TaskState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StateCollector(Collector):
    def __init__(self, state: MasterState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        s = self.state
        agents = GaugeMetricFamily("mesoslite_master_agents", "Agents by state", labels=["state"])
        for st in AgentState:
            agents.add_metric([st.value], sum(a.state == st for a in s.agents.values()))
        yield agents
        fws = GaugeMetricFamily("mesoslite_master_frameworks", "Frameworks by state",
                                labels=["state"])
        for st in FrameworkState:
            fws.add_metric([st.value], sum(f.state == st for f in s.frameworks.values()))
        yield fws
        tasks = GaugeMetricFamily("mesoslite_master_tasks", "Tasks known to the master by state",
                                  labels=["state"])
        counts = s.tasks_by_state()
        for st in TaskState:
            tasks.add_metric([st.value], counts.get(st.value, 0))
        yield tasks
        yield GaugeMetricFamily("mesoslite_master_outstanding_offers", "Offers not yet answered",
                                value=len(s.offers))
        for name in ("cpus", "mem", "disk", "gpus"):
            total = sum(a.total.scalar(name) for a in s.agents.values()
                        if a.state == AgentState.ACTIVE)
            used = sum(t.resources.scalar(name) for t in s.tasks.values() if not t.released)
            g = GaugeMetricFamily(f"mesoslite_master_{name}", f"{name}: total and used",
                                  labels=["kind"])
            g.add_metric(["total"], total)
            g.add_metric(["used"], used)
            yield g
        for key, value in sorted(s.counters.items()):
            yield CounterMetricFamily(f"mesoslite_master_{key}", key.replace("_", " "),
                                      value=value)


class MasterMetrics:
    def __init__(self, state: MasterState) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StateCollector(state))
        self.allocation_seconds = Histogram(
            "mesoslite_master_allocation_seconds", "Time of one allocation round",
            buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=self.registry,
        )
        self.store_commit_seconds = Histogram(
            "mesoslite_master_store_commit_seconds", "Time of one group commit",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
