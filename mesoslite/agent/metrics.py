"""Prometheus metrics of the agent (``GET /metrics``).

Gauges (tasks by state, updates waiting for an acknowledgement, tasks per
containerizer) are read from the agent at scrape time.  Counters and histograms are
kept by thin wrappers installed once, at wiring time, around three seams the agent
already has, so the task and update code is not touched:

* each containerizer's ``launch``: launches, failures and the time the call took;
* the status update manager's ``add``: updates generated, by state, and the launch
  latency (from the agent receiving the task to TASK_RUNNING);
* the send function the status update manager is given: updates sent, and resent
  (the same update again because no acknowledgement came).

Each agent has its own registry (several agents share a process in tests).
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from mesoslite.messages.agent import StatusUpdate
from mesoslite.messages.mesos import TaskState, TaskStatus
from mesoslite.metrics_helpers import CONTENT_TYPE, LATENCY_BUCKETS

if TYPE_CHECKING:
    from mesoslite.agent.containerizers.base import Container, Containerizer, LaunchSpec
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
    """The agent's registry.  Create it before the status update manager (its send
    function is wrapped by ``counting_sends``), then ``instrument(agent)``."""

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
        self._last_sent: dict[tuple[str, str], bytes | None] = {}
        self._agent: Agent | None = None

    # ---------------------------------------------------------------- wiring

    def counting_sends(self, send: Callable[[list[StatusUpdate]], bool]
                       ) -> Callable[[list[StatusUpdate]], bool]:
        """Wrap the status update manager's send function to count sends and resends."""

        @functools.wraps(send)
        def counted(batch: list[StatusUpdate]) -> bool:
            ok = send(batch)
            if ok:
                self._count_sent(batch)
            return ok

        return counted

    def instrument(self, agent: Agent) -> None:
        """Register the scrape-time gauges and wrap the containerizers' ``launch`` and
        the status update manager's ``add`` of ``agent`` (once)."""
        if self._agent is not None:
            return
        self._agent = agent
        self.registry.register(_AgentCollector(agent))
        for kind, containerizer in agent.containerizers.items():
            self._wrap_launch(kind, containerizer)
        add = agent.updates.add

        @functools.wraps(add)
        async def add_counted(framework_id: str, status: TaskStatus) -> None:
            await add(framework_id, status)
            self._on_update(framework_id, status)

        agent.updates.add = add_counted  # type: ignore[method-assign]

    def _wrap_launch(self, kind: str, containerizer: Containerizer) -> None:
        launch = containerizer.launch

        @functools.wraps(launch)
        async def timed(spec: LaunchSpec) -> Container:
            self.launches.labels(kind).inc()
            start = time.monotonic()
            try:
                return await launch(spec)
            except BaseException:
                self.launch_failures.labels(kind).inc()
                raise
            finally:
                self.container_launch_seconds.labels(kind).observe(time.monotonic() - start)

        containerizer.launch = timed  # type: ignore[method-assign]

    # ---------------------------------------------------------------- observations

    def _on_update(self, framework_id: str, status: TaskStatus) -> None:
        self.updates.labels(status.state.value).inc()
        if status.state != TaskState.TASK_RUNNING or self._agent is None:
            return
        task = self._agent.tasks.tasks.get((framework_id, status.task_id.value))
        launched = task.cp.launched_at if task is not None else None
        if launched:
            self.task_launch_seconds.observe(max(0.0, self._agent.clock.now() - launched))

    def _count_sent(self, batch: list[StatusUpdate]) -> None:
        last = self._last_sent
        for update in batch:
            key = (update.framework_id, update.status.task_id.value)
            if update.status.uuid is not None and last.get(key) == update.status.uuid:
                self.updates_retried.inc()
            else:
                self.updates_sent.inc()
                last[key] = update.status.uuid
        if self._agent is not None and len(last) > 2 * len(self._agent.updates.streams) + 256:
            streams = self._agent.updates.streams
            for key in [k for k in last if k not in streams]:
                del last[key]

    # ---------------------------------------------------------------- HTTP

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /metrics``."""
        return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE})

