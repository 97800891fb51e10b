"""Prometheus metrics of the master (``GET /metrics``).

Gauges are read from the state at scrape time (a custom collector), so nothing on
the hot path updates them; counters come from ``MasterState.counters`` and from the
event stream (task state transitions, events published); the allocation round and
group commit times are histograms observed by the server's loops.  Each master has
its own registry, so several masters can live in one process (tests).

Names follow Prometheus' conventions: a ``mesoslite_master_`` prefix, counters end
in ``_total``, times are ``_seconds`` and sizes ``_bytes`` (Mesos' MB converted).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mesoslite.master.events import EventType, MasterEvents
from mesoslite.master.model import AgentState, FrameworkState
from mesoslite.master.state import MasterState
from mesoslite.messages.mesos import TaskState
from mesoslite.metrics_helpers import CONTENT_TYPE, FAST_BUCKETS

__all__ = ["CONTENT_TYPE", "MasterMetrics"]

MB = 1024 * 1024

# MasterState.counters key -> help text (the metric is mesoslite_master_<key>_total)
COUNTER_HELP = {
    "offers_sent": "Offers sent to frameworks",
    "offers_declined": "Offers declined by frameworks",
    "offers_rescinded": "Offers rescinded by the master",
    "offers_accepted": "Offers accepted by frameworks",
    "tasks_launched": "Tasks accepted for launch",
    "tasks_dropped": "Launches dropped because their offers were invalid",
    "tasks_error": "Launches refused as invalid (TASK_ERROR)",
    "status_updates": "Status updates received from agents",
    "calls_invalid": "Scheduler calls refused as invalid",
    "allocation_rounds": "Allocation rounds run",
}


class _StateCollector(Collector):
    def __init__(self, state: MasterState, events: MasterEvents | None) -> None:
        self.state = state
        self.events = events

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from self._records()
        yield from self._resources()
        yield from self._shares()
        for key, value in sorted(self.state.counters.items()):
            yield CounterMetricFamily(f"mesoslite_master_{key}",
                                      COUNTER_HELP.get(key, key.replace("_", " ")), value=value)
        if self.events is not None:
            yield from self._event_metrics(self.events)

    def _records(self) -> Iterator[GaugeMetricFamily]:
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

    def _resources(self) -> Iterator[GaugeMetricFamily]:
        s = self.state
        for name, metric, scale in (("cpus", "cpus", 1), ("gpus", "gpus", 1),
                                    ("mem", "mem_bytes", MB), ("disk", "disk_bytes", MB)):
            total = sum(a.total.scalar(name) for a in s.agents.values()
                        if a.state == AgentState.ACTIVE)
            used = sum(t.resources.scalar(name) for t in s.tasks.values() if not t.released)
            g = GaugeMetricFamily(f"mesoslite_master_{metric}",
                                  f"{name} of active agents: total, and used by tasks",
                                  labels=["kind"])
            g.add_metric(["total"], total * scale)
            g.add_metric(["used"], used * scale)
            yield g

    def _shares(self) -> Iterator[GaugeMetricFamily]:
        shares = self.state.allocator.shares()
        fw = GaugeMetricFamily("mesoslite_master_framework_dominant_share",
                               "DRF dominant share of each framework (0-1)",
                               labels=["framework_id", "framework_name"])
        for fid, entry in sorted(shares["frameworks"].items()):
            record = self.state.frameworks.get(fid)
            fw.add_metric([fid, record.info.name if record else ""], entry["share"])
        yield fw
        roles = GaugeMetricFamily("mesoslite_master_role_dominant_share",
                                  "DRF dominant share of each role (0-1)", labels=["role"])
        for role, entry in sorted(shares["roles"].items()):
            roles.add_metric([role], entry["share"])
        yield roles

    def _event_metrics(self, events: MasterEvents
                       ) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        transitions = CounterMetricFamily(
            "mesoslite_master_task_state_transitions",
            "Tasks that entered each state (as the agents report it)", labels=["state"])
        for st in TaskState:
            transitions.add_metric([st.value], events.source.task_transitions.get(st, 0))
        yield transitions
        published = CounterMetricFamily("mesoslite_master_events",
                                        "Events published on the event stream", labels=["type"])
        for kind in EventType:
            if kind not in (EventType.SUBSCRIBED, EventType.HEARTBEAT):
                published.add_metric([kind.value], events.log.published.get(kind.value, 0))
        yield published
        yield GaugeMetricFamily("mesoslite_master_event_subscribers",
                                "Open event streams (SSE and operator API)",
                                value=events.log.readers)


class MasterMetrics:
    def __init__(self, state: MasterState, events: MasterEvents | None = None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StateCollector(state, events))
        self.allocation_seconds = Histogram(
            "mesoslite_master_allocation_seconds", "Time of one allocation round",
            buckets=FAST_BUCKETS, registry=self.registry,
        )
        self.store_commit_seconds = Histogram(
            "mesoslite_master_store_commit_seconds", "Time of one group commit",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
