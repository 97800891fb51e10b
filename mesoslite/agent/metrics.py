"""Prometheus metrics of the agent (``GET /metrics``).

Gauges (tasks by state, updates waiting for an acknowledgement, tasks per
containerizer) are read from the agent at scrape time.  Counters and histograms come
through the ``AgentObserver`` interface (``observer.py``), which ``AgentMetrics``
implements: the task manager reports container launches (count, failures, time the
containerizer took) and the status updates it generates (by state; the launch
latency, from the agent receiving the task to TASK_RUNNING); the status update
manager reports the updates it sends and resends (the same update again because no
acknowledgement came).

Each agent has its own registry (several agents share a process in tests).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mesoslite.messages.mesos import TaskState, TaskStatus
from mesoslite.metrics_helpers import CONTENT_TYPE, LATENCY_BUCKETS

if TYPE_CHECKING:
    from mesoslite.agent.server import Agent


class _AgentCollector(Collector):
    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[GaugeMetricFamily]:
        tasks = self.agent.tasks.tasks.values()
        by_state = Counter(t.state.value for t in tasks)
        gauge = GaugeMetricFamily("mesoslite_agent_tasks", "Tasks on this agent by state",
                                  labels=["state"])
        for st in TaskState:
            gauge.add_metric([st.value], by_state.get(st.value, 0))
        yield gauge
        per_kind = Counter(t.cp.containerizer for t in tasks)
        containers = GaugeMetricFamily("mesoslite_agent_containers",
                                       "Tasks on this agent by containerizer",
                                       labels=["containerizer"])
        for kind in sorted(set(self.agent.containerizers) | set(per_kind)):
            containers.add_metric([kind], per_kind.get(kind, 0))
        yield containers
        yield GaugeMetricFamily("mesoslite_agent_status_updates_pending",
                                "Status updates waiting for the framework's acknowledgement",
                                value=self.agent.updates.unacknowledged())
        yield GaugeMetricFamily("mesoslite_agent_registered",
                                "1 while the agent is registered with a master",
                                value=1 if self.agent.registered.is_set() else 0)


class AgentMetrics:
    """The agent's registry and its ``AgentObserver``: pass it to the task manager and
    the status update manager, then ``collect_from(agent)`` for the gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.launches = PromCounter("mesoslite_agent_container_launches",
                                    "Container launches started", ["containerizer"], registry=r)
        self.launch_failures = PromCounter("mesoslite_agent_container_launch_failures",
                                           "Container launches that failed", ["containerizer"],
                                           registry=r)
        self.container_launch_seconds = Histogram(
            "mesoslite_agent_container_launch_seconds",
            "Time a containerizer took to start a task", ["containerizer"],
            buckets=LATENCY_BUCKETS, registry=r)
        self.task_launch_seconds = Histogram(
            "mesoslite_agent_task_launch_seconds",
            "From the agent receiving a task to TASK_RUNNING", buckets=LATENCY_BUCKETS,
            registry=r)
        self.updates = PromCounter("mesoslite_agent_status_updates",
                                   "Status updates generated, by state", ["state"], registry=r)
        self.updates_sent = PromCounter("mesoslite_agent_status_updates_sent",
                                        "Status updates sent to the master (first time)",
                                        registry=r)
        self.updates_retried = PromCounter("mesoslite_agent_status_updates_retried",
                                           "Status updates sent again (no acknowledgement yet)",
                                           registry=r)
        self._collecting = False

    def collect_from(self, agent: Agent) -> None:
        """Register the scrape-time gauges of ``agent`` (once)."""
        if not self._collecting:
            self._collecting = True
            self.registry.register(_AgentCollector(agent))

    # ---------------------------------------------------------------- AgentObserver

    def on_launch_started(self, containerizer: str) -> None:
        self.launches.labels(containerizer).inc()

    def on_launch_finished(self, containerizer: str, seconds: float, failed: bool) -> None:
        if failed:
            self.launch_failures.labels(containerizer).inc()
        self.container_launch_seconds.labels(containerizer).observe(seconds)

    def on_update(self, status: TaskStatus, launch_seconds: float | None) -> None:
        self.updates.labels(status.state.value).inc()
        if launch_seconds is not None:
            self.task_launch_seconds.observe(launch_seconds)

    def on_sent(self, first: int, resent: int) -> None:
        self.updates_sent.inc(first)
        self.updates_retried.inc(resent)

    # ---------------------------------------------------------------- HTTP

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /metrics``."""
        return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE})

