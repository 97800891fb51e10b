"""Short tasks through a custom executor against command tasks, on one cluster.

A real ``mesoslite master`` process and ``--agents`` (2) real ``mesoslite agent``
processes (process containerizer) on loopback; the framework runs in this process
(``mesoslite.scheduler.Driver``, acknowledging concurrently) and launches
``--tasks`` (1,000) tasks of ``--seconds`` (0.1 s) each by two paths in one run:

1. **command tasks**: ``sleep 0.1`` as ordinary command tasks, each its own process
   (supervisor, shell, cgroup) started by the agent;
2. **executor tasks**: the same tasks handed to one long-lived custom executor per
   agent (``benchmarks/sleep_executor.py``, written with ``mesoslite.executor``),
   which runs each as a 0.1 s sleep inside its own process and reports RUNNING and
   FINISHED over the v1 executor API.

Both use the same offers (agents of ``cpus:8;mem:16384``): every task asks
``cpus:0.1;mem:16`` and the framework puts as many tasks into each ACCEPT as the offer
holds.  Each path runs its tasks in two halves, in the order command, executor,
executor, command, and every phase waits for the agents to be idle (no task, no
unacknowledged update) before the next starts: a cluster that has run thousands of
tasks is slower, and one phase's clean-up must not slow the next.  The first executor
phase pays for starting the executors.

Per task: ACCEPT -> TASK_RUNNING received (launch latency) and TASK_RUNNING ->
TASK_FINISHED received; per path: the sum of its phases' first ACCEPT -> last
TASK_FINISHED (throughput).  Printed: tasks/s of each path and their ratio
(executor/command, > 1: the executor path is faster), p50/p99 launch latency, each
phase's rate, and the CPU seconds of the master, the agents, the executors (or
supervisors) and the framework.

    .venv/bin/python benchmarks/executors.py                  # 1,000 tasks of 0.1 s
    .venv/bin/python benchmarks/executors.py --tasks 200      # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    Environment,
    EnvironmentVariable,
    ExecutorInfo,
    Filters,
    FrameworkInfo,
    Offer,
    TaskInfo,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import Driver, Scheduler, offer_resources
from mesoslite.scheduler.helpers import resource_list
from mesoslite.testing.processes import Process, agent_process, master_process

REPO = Path(__file__).resolve().parent.parent
TASK = Resources.of(cpus=0.1, mem=16.0)
EXECUTOR = Resources.of(cpus=0.1, mem=64.0)
AGENT_RESOURCES = "cpus:8;mem:16384;disk:4096;ports:[22000-22099]"
BAD = {TaskState.TASK_FAILED, TaskState.TASK_ERROR, TaskState.TASK_LOST,
       TaskState.TASK_DROPPED, TaskState.TASK_KILLED}


@dataclass
class Run:
    name: str
    tasks: int
    accepted: dict[str, float] = field(default_factory=dict)  # task id -> ACCEPT time
    latency: list[float] = field(default_factory=list)  # ACCEPT -> RUNNING
    finished: int = 0
    running_at: dict[str, float] = field(default_factory=dict)
    run_time: list[float] = field(default_factory=list)  # RUNNING -> FINISHED received
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process kind
    failed: list[str] = field(default_factory=list)
    first: float = 0.0
    last: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def seconds(self) -> float:
        return self.last - self.first

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class ShortTasks(Scheduler):
    """Launches the tasks of the current ``Run`` into every offer, as many as fit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.run: Run | None = None
        self.pending: list[str] = []
        self.use_executor = False
        self.acks: set[asyncio.Task[None]] = set()

    def start(self, run: Run, use_executor: bool) -> None:
        self.run = run
        self.pending = [f"{run.name}-{i}" for i in range(run.tasks)]
        self.use_executor = use_executor

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        for offer in offers:
            free = offer_resources(offer)
            tasks: list[TaskInfo] = []
            if self.use_executor and not offer.executor_ids:
                free = free - EXECUTOR  # the executor's first task brings it
            while self.pending and TASK <= free:
                task_id = self.pending.pop()
                tasks.append(self._task(task_id, offer))
                free = free - TASK
            if not tasks:
                await driver.decline([offer.id.value], refuse_seconds=0.05)
                continue
            now = time.monotonic()
            assert self.run is not None
            self.run.first = self.run.first or now
            for task in tasks:
                self.run.accepted[task.task_id.value] = now
            await driver.launch([offer.id.value], tasks, Filters(refuse_seconds=0.0))

    def _task(self, task_id: str, offer: Offer) -> TaskInfo:
        if not self.use_executor:
            return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=offer.agent_id,
                            resources=resource_list(TASK),
                            command=CommandInfo(value=f"sleep {self.seconds}"))
        executor = ExecutorInfo(
            executor_id=ID(f"sleeper-{offer.agent_id.value}"), name="sleep executor",
            command=CommandInfo(
                value=f"exec {sys.executable} -m benchmarks.sleep_executor",
                environment=Environment(variables=[
                    EnvironmentVariable(name="PYTHONPATH", value=str(REPO))])),
            resources=resource_list(EXECUTOR))
        return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=offer.agent_id,
                        resources=resource_list(TASK), executor=executor,
                        data=str(self.seconds).encode())

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        if status.uuid is not None and status.agent_id is not None:
            # acknowledged concurrently: the framework is not the bottleneck measured
            job = asyncio.create_task(driver.acknowledge(status.agent_id.value,
                                                         status.task_id.value, status.uuid))
            self.acks.add(job)
            job.add_done_callback(self.acks.discard)
        run = self.run
        if run is None or status.task_id.value not in run.accepted:
            return
        now = time.monotonic()
        if status.state == TaskState.TASK_RUNNING:
            run.latency.append(now - run.accepted[status.task_id.value])
            run.running_at[status.task_id.value] = now
        elif status.state == TaskState.TASK_FINISHED:
            run.finished += 1
            started = run.running_at.get(status.task_id.value)
            if started is not None:
                run.run_time.append(now - started)
        elif status.state in BAD:
            run.failed.append(f"{status.task_id.value}: {status.state.value} {status.message}")
            self.pending.append(status.task_id.value)  # try again
        if run.finished == run.tasks:
            run.last = now
            run.done.set()


async def measure(args: argparse.Namespace, work: Path) -> list[Run]:
    master = master_process(work / "master")
    agents = [agent_process(master.url, work / f"agent{i}", AGENT_RESOURCES)
              for i in range(args.agents)]
    procs = [master, *agents]
    scheduler = ShortTasks(args.seconds)
    driver = Driver(scheduler, FrameworkInfo(user=getpass.getuser(), name="executors-benchmark"),
                    [master.url], implicit_acknowledgements=False)
    runs = []
    try:
        await master.start()
        for agent in agents:
            await agent.start()
        driver_task = asyncio.create_task(driver.run())
        async with asyncio.timeout(30):  # the framework's SUBSCRIBE
            while not driver.subscribed:
                await asyncio.sleep(0.05)
        for name, count in schedule(args):
            use_executor = name == "executor"
            run = Run(name, count)
            before = cpu_seconds(master, agents)
            scheduler.start(run, use_executor)
            await driver.revive()
            try:
                async with asyncio.timeout(args.timeout):
                    await run.done.wait()
            except TimeoutError:
                raise SystemExit(f"{name} tasks: {run.finished} of {run.tasks} finished "
                                 f"in {args.timeout}s; failures: {run.failed[:3]}") from None
            after = cpu_seconds(master, agents)
            run.cpu = {k: after[k] - before.get(k, 0.0) for k in after}
            runs.append(run)
            await settled(agents)
        await driver.teardown()  # the executors are shut down with it
        await asyncio.wait([driver_task], timeout=10)
    finally:
        driver.stop()
        for proc in reversed(procs):
            await proc.stop()
    return runs


async def settled(agents: list[Process], timeout: float = 120.0) -> None:
    """Wait until every agent holds no task and no unacknowledged update: the next
    phase must not pay for this one's clean-up (terminal acknowledgements, removed
    checkpoints, reaped containers)."""
    async with aiohttp.ClientSession() as session, asyncio.timeout(timeout):
        for agent in agents:
            while True:
                async with session.get(agent.url + "/state") as response:
                    state = await response.json()
                if not state["tasks"] and not state["unacknowledged_updates"]:
                    break
                await asyncio.sleep(0.1)


def schedule(args: argparse.Namespace) -> list[tuple[str, int]]:
    """The phases: each path's tasks in two halves, in the order command, executor,
    executor, command, so that neither path gains from running first (a cluster
    that has already run thousands of tasks is slower: see the module docstring)."""
    half = args.tasks // 2
    order = ["command", "executor", "executor", "command"]
    return [(name, half if i < 2 else args.tasks - half) for i, name in enumerate(order)
            if args.only in (None, name)]


def merged(runs: list[Run], name: str) -> Run | None:
    """One path's phases as one run: tasks and seconds summed, latencies pooled."""
    mine = [r for r in runs if r.name == name]
    if not mine:
        return None
    out = Run(name, sum(r.tasks for r in mine))
    out.first, out.last = 0.0, sum(r.seconds for r in mine)
    for r in mine:
        out.latency += r.latency
        out.run_time += r.run_time
        out.failed += r.failed
        for key, value in r.cpu.items():
            out.cpu[key] = out.cpu.get(key, 0.0) + value
    return out


def cpu_seconds(master: Process, agents: list[Process]) -> dict[str, float]:
    """CPU seconds so far: the master, the agents, the executors, and this process
    (the framework)."""
    out = {"master": _cpu(master.proc.pid if master.proc else None),
           "agents": 0.0, "framework": _cpu(os.getpid())}
    for agent in agents:
        if agent.proc is None:
            continue
        out["agents"] += _cpu(agent.proc.pid)
    out["executors"] = _executors_cpu()
    return out


def _cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system


def _executors_cpu() -> float:
    """CPU seconds of the executors (long-lived: found by their command line).  A
    command task's processes are reaped before they can be measured: not counted."""
    total = 0.0
    for proc in psutil.process_iter(["cmdline", "cpu_times"]):
        if "sleep_executor" in " ".join(proc.info["cmdline"] or []):
            times = proc.info["cpu_times"]
            total += times.user + times.system + times.children_user + times.children_system
    return total


def report(phases: list[Run], args: argparse.Namespace) -> str:
    runs = [r for r in (merged(phases, "command"), merged(phases, "executor")) if r]
    lines = [(f"{args.tasks} tasks of {args.seconds}s on {args.agents} agents "
              "(one executor per agent)"),
             (f"{'path':<10} {'seconds':>8} {'tasks/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'retried':>8}")]
    for run in runs:
        lines.append(f"{run.name:<10} {run.seconds:8.2f} {run.rate:9.1f} "
                     f"{1000 * statistics.median(run.latency):8.1f} "
                     f"{1000 * percentile(run.latency, 0.99):8.1f} {len(run.failed):8d}")
    if len(runs) == 2:
        command, executor = runs
        lines.append(f"throughput executor/command: {executor.rate / command.rate:.2f}x")
    lines.append("phases (tasks/s, in order): " + ", ".join(
        f"{r.name} {r.rate:.1f}" for r in phases))
    lines.append("first RUNNING after the phase's first ACCEPT (ms): " + ", ".join(
        f"{r.name} {1000 * min(r.latency):.0f}" for r in phases))
    for run in runs:
        lines.append(f"{run.name}: RUNNING -> FINISHED received p50 "
                     f"{1000 * statistics.median(run.run_time):.0f} ms, p99 "
                     f"{1000 * percentile(run.run_time, 0.99):.0f} ms")
    for run in runs:
        lines.append(f"CPU seconds, {run.name}: " + ", ".join(
            f"{k} {v:.2f}" for k, v in run.cpu.items()))
    for run in runs:
        for failure in run.failed[:5]:
            lines.append(f"  {run.name} retried {failure}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--only", choices=["command", "executor"], default=None,
                        help="run one path only (for profiling; no ratio)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mesoslite-bench-") as tmp:
        runs = asyncio.run(measure(args, Path(tmp)))
    print(report(runs, args))


if __name__ == "__main__":
    main()
