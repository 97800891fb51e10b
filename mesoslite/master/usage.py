"""Task and volume usage as the agents report it: the ``usage`` part of
``/master/state`` and the usage series of ``/metrics``.

The master keeps each agent's latest ``Usage`` message (``MasterState.usage``,
replaced whole every ``--usage-interval``), so tasks that ended drop out with the
next report.  Only agents the master still knows are shown.

Metrics (gauges read at scrape time, one series per running task):

* ``mesoslite_task_cpus_used`` (cores, rate over the agent's last interval),
  ``mesoslite_task_cpus_limit``, ``mesoslite_task_cpu_seconds_total`` (counter),
  ``mesoslite_task_mem_bytes``, ``mesoslite_task_mem_limit_bytes``: labels
  ``framework_id``, ``task_id``;
* ``mesoslite_framework_cpus_used``, ``mesoslite_framework_mem_bytes``: per framework;
* ``mesoslite_volume_disk_bytes``: labels ``agent_id``, ``volume_id``.

Per-task series are bounded by the tasks running now, and capped at
``max_task_series`` (the per-framework sums are always exported), so a large
cluster cannot explode a scraper's cardinality.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mesoslite.master.state import MasterState
from mesoslite.messages.agent import Usage

MB = 2**20
DEFAULT_MAX_TASK_SERIES = 2000


def usage_view(state: MasterState, usage: Mapping[str, Usage]) -> dict[str, Any]:
    """``/master/state``'s ``usage``: per agent id, its latest report: ``interval``,
    ``tasks`` (framework_id, task_id, cpus_used, cpus_limit, mem_used_mb,
    mem_limit_mb, cpu_seconds, timestamp) and ``volumes`` (volume_id, disk_used_mb,
    size_mb, role, task_id, timestamp)."""
    out: dict[str, Any] = {}
    for agent_id, report in sorted(usage.items()):
        if agent_id not in state.agents:
            continue
        out[agent_id] = {"interval": report.interval,
                         "tasks": msgspec.to_builtins(report.tasks),
                         "volumes": msgspec.to_builtins(report.volumes)}
    return out


def attach_statistics(view: dict[str, Any], usage: Mapping[str, Usage]) -> None:
    """Give each task of ``/master/state``'s frameworks its latest sample as
    ``statistics`` (Mesos' ``ResourceStatistics`` names, ``TaskUsage.statistics``);
    tasks without a sample (not running, or not sampled yet) get none."""
    samples = {(t.framework_id, t.task_id, agent_id): t
               for agent_id, report in usage.items() for t in report.tasks}
    for framework in view.get("frameworks", []):
        for task in framework.get("tasks", []):
            sample = samples.get((task["framework_id"], task["id"], task["agent_id"]))
            if sample is not None:
                task["statistics"] = sample.statistics()


class UsageCollector(Collector):
    """The usage series of ``/metrics`` (see the module docstring)."""

    def __init__(self, state: MasterState, usage: Mapping[str, Usage],
                 max_task_series: int = DEFAULT_MAX_TASK_SERIES) -> None:
        self.state = state
        self.usage = usage
        self.max_task_series = max_task_series

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["framework_id", "task_id"]
        cpus = GaugeMetricFamily("mesoslite_task_cpus_used",
                                 "CPU cores a task used over the agent's last usage interval",
                                 labels=labels)
        cpus_limit = GaugeMetricFamily("mesoslite_task_cpus_limit", "A task's cpus resource",
                                       labels=labels)
        cpu_total = CounterMetricFamily("mesoslite_task_cpu_seconds",
                                        "CPU time a task used (user + system)", labels=labels)
        mem = GaugeMetricFamily("mesoslite_task_mem_bytes", "Memory a task uses",
                                labels=labels)
        mem_limit = GaugeMetricFamily("mesoslite_task_mem_limit_bytes",
                                      "A task's mem resource", labels=labels)
        fw_cpus: dict[str, float] = {}
        fw_mem: dict[str, float] = {}
        volumes = GaugeMetricFamily("mesoslite_volume_disk_bytes",
                                    "Disk used by a local persistent volume",
                                    labels=["agent_id", "volume_id"])
        series = 0
        for agent_id, report in sorted(self.usage.items()):
            if agent_id not in self.state.agents:
                continue
            for t in report.tasks:
                fw_cpus[t.framework_id] = fw_cpus.get(t.framework_id, 0.0) + (t.cpus_used or 0.0)
                fw_mem[t.framework_id] = fw_mem.get(t.framework_id, 0.0) + t.mem_used_mb * MB
                if series >= self.max_task_series:
                    continue
                series += 1
                key = [t.framework_id, t.task_id]
                if t.cpus_used is not None:
                    cpus.add_metric(key, t.cpus_used)
                cpus_limit.add_metric(key, t.cpus_limit)
                cpu_total.add_metric(key, t.cpu_seconds)
                mem.add_metric(key, t.mem_used_mb * MB)
                mem_limit.add_metric(key, t.mem_limit_mb * MB)
            for v in report.volumes:
                volumes.add_metric([agent_id, v.volume_id], v.disk_used_mb * MB)
        yield from (cpus, cpus_limit, cpu_total, mem, mem_limit, volumes)
        fw_c = GaugeMetricFamily("mesoslite_framework_cpus_used",
                                 "CPU cores a framework's tasks used (last interval)",
                                 labels=["framework_id"])
        fw_m = GaugeMetricFamily("mesoslite_framework_mem_bytes",
                                 "Memory a framework's tasks use", labels=["framework_id"])
        for fid in sorted(fw_cpus):
            fw_c.add_metric([fid], fw_cpus[fid])
            fw_m.add_metric([fid], fw_mem[fid])
        yield fw_c
        yield fw_m
