"""Launch throughput: simulated agents over the real protocol, a real master process.

The master runs as its own process (``python -m mesoslite.cli.main master``, SQLite
store in a temporary directory), the simulated agents as a second process
(``python -m mesoslite.testing.sim_agent``, all on one event loop), and the framework
in this process: a ``mesoslite.scheduler.Driver`` with explicit acknowledgements that
launches ``--tasks`` tasks as fast as offers allow, many tasks per ACCEPT (at most
``--per-offer``, by default an even spread over the agents).

Per task it measures the time from its ACCEPT call to the moment its TASK_RUNNING
update has been received *and* acknowledged (the ACKNOWLEDGE call returned 202); the
agents send TASK_STARTING first and TASK_RUNNING only after STARTING is acknowledged,
as the real agent does.  Printed per size: tasks/s over the run (first ACCEPT to last
RUNNING acknowledged), p50/p99/max latency, offers/s, the CPU seconds of the master
(psutil) and of the agents' and framework's processes, and agent resends.

    .venv/bin/python benchmarks/launch.py                    # 100 x 2,000 and 1,000 x 10,000
    .venv/bin/python benchmarks/launch.py --quick            # 20 agents x 200 tasks
    .venv/bin/python benchmarks/launch.py --agents 1000 --tasks 10000 --profile py-spy

``--profile py-spy`` attaches ``py-spy record`` to the master for the measured part
and prints its hottest functions (self and inclusive samples).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import math
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesoslite.messages.mesos import ID, Filters, FrameworkInfo, Offer, TaskState, TaskStatus
from mesoslite.scheduler import Driver, DriverError, Scheduler, offer_resources, task_info
from mesoslite.testing.sim_agent import DEFAULT_RESOURCES, SimAgentConfig, SimAgentPool

SIZES = [(100, 2000), (1000, 10000)]
QUICK = [(20, 200)]
FAILED_STATES = {TaskState.TASK_ERROR, TaskState.TASK_DROPPED, TaskState.TASK_LOST,
                 TaskState.TASK_FAILED, TaskState.TASK_KILLED, TaskState.TASK_GONE}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu(proc: psutil.Process | None) -> float:
    if proc is None:
        return 0.0
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


# -------------------------------------------------------------------- processes


class MasterProcess:
    """``mesoslite master`` as a child process, SQLite store in ``work_dir``."""

    def __init__(self, work_dir: Path, allocation_interval: float) -> None:
        self.work_dir = work_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.allocation_interval = allocation_interval
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self.log_path = work_dir / "master.log"

    async def start(self, timeout: float = 30.0) -> None:
        """Start it and wait until ``/health`` answers; raise RuntimeError if not."""
        self.log = self._open_log()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mesoslite.cli.main", "master",
            "--port", str(self.port), "--work-dir", str(self.work_dir / "master"),
            "--allocation-interval", str(self.allocation_interval), "--log-level", "warning",
            stdin=asyncio.subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.returncode is not None:
                    break
                try:
                    async with session.get(self.url + "/health") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"master did not start; see {self.log_path}:\n{self.tail()}")

    def _open_log(self) -> Any:
        return open(self.log_path, "wb")  # closed in stop()

    def cpu_seconds(self) -> float:
        return _cpu(self.ps)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        await _terminate(self.proc)
        self.log.close()


class AgentsProcess:
    """``python -m mesoslite.testing.sim_agent`` as a child process."""

    def __init__(self, master_url: str, agents: int, retry: float) -> None:
        self.args = ["--master", master_url, "--agents", str(agents), "--retry", str(retry),
                     "--resources", DEFAULT_RESOURCES]
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self.stats: dict[str, Any] = {}

    async def start(self, timeout: float = 180.0) -> float:
        """Start the agents; return the seconds until all were registered."""
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mesoslite.testing.sim_agent", *self.args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self.ps = psutil.Process(self.proc.pid)
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        event = json.loads(line or b"{}")
        if event.get("event") != "registered":
            raise RuntimeError(f"simulated agents failed: {event or 'no output'}")
        return float(event["seconds"])

    def cpu_seconds(self) -> float:
        return _cpu(self.ps)

    async def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()  # end of input: the pool prints its stats and exits
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 15)
            self.stats = json.loads(line or b"{}")
        except (TimeoutError, ValueError):
            pass
        await _terminate(proc)


class InProcessAgents:
    """The same pool on this process's event loop (``--agents-in-process``)."""

    def __init__(self, master_url: str, agents: int, retry: float) -> None:
        self.pool = SimAgentPool(master_url, agents, SimAgentConfig(retry_base=retry))
        self.stats: dict[str, Any] = {}

    async def start(self) -> float:
        start = time.monotonic()
        await self.pool.start()
        await self.pool.wait_registered(180)
        return time.monotonic() - start

    def cpu_seconds(self) -> float:
        return 0.0  # counted in the framework's process

    async def stop(self) -> None:
        self.stats = dict(vars(self.pool.stats), unacknowledged=self.pool.unacknowledged())
        await self.pool.stop()


async def _terminate(proc: asyncio.subprocess.Process | None) -> None:
    if proc is None or proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()


class PySpy:
    """``py-spy record`` attached to a pid; ``stop`` returns the collapsed stacks."""

    def __init__(self, pid: int, out: Path, rate: int = 250) -> None:
        self.pid, self.out, self.rate = pid, out, rate
        self.proc: asyncio.subprocess.Process | None = None

    @staticmethod
    def available() -> str | None:
        here = Path(sys.executable).parent / "py-spy"
        return str(here) if here.exists() else shutil.which("py-spy")

    async def start(self) -> None:
        exe = self.available()
        assert exe is not None
        self.proc = await asyncio.create_subprocess_exec(
            exe, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw",
            "--nonblocking", "--output", str(self.out),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await asyncio.sleep(1.0)  # let it attach before the measured part

    async def stop(self) -> str:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except TimeoutError:
                self.proc.kill()
        try:
            return self.out.read_text()
        except OSError:
            return ""


def summarize_profile(collapsed: str, top: int = 15) -> str:
    """Sample shares from py-spy's raw (collapsed) output: self time per function
    and per line, and inclusive time per mesoslite function (where fixes go)."""
    own: Counter[str] = Counter()
    own_lines: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in (_frame(text) for text in stack.split(";")) if f is not None]
        if not frames:
            continue
        total += count
        func, where = frames[-1]
        own[func] += count
        own_lines[where] += count
        for name in {f for f, w in frames if "mesoslite/" in w}:
            incl[name] += count
    if not total:
        return "        (no samples)"

    def block(title: str, counter: Counter[str]) -> list[str]:
        rows = [f"    {title}:"]
        rows += [f"      {100 * n / total:5.1f}%  {name}" for name, n in counter.most_common(top)]
        return rows

    return "\n".join([f"    {total} samples (all threads)"]
                     + block("self time by function", own)
                     + block("self time by line", own_lines)
                     + block("inclusive time, mesoslite functions", incl))


def _frame(text: str) -> tuple[str, str] | None:
    """``func (/x/site-packages/pkg/mod.py:12)`` -> (``func (pkg/mod.py)``, ``pkg/mod.py:12``)."""
    func, _, where = text.partition(" (")
    if not where:
        return None  # a process or thread header
    path, _, lineno = where.rstrip(")").rpartition(":")
    for marker in ("site-packages/", "/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{func} ({path})", f"{path}:{lineno}"


# -------------------------------------------------------------------- framework


@dataclass
class LaunchScheduler(Scheduler):
    """Launches ``total`` tasks into offers and times each one to RUNNING-acked."""

    total: int
    per_offer: int
    cpus: float = 0.1
    mem: float = 32.0
    launched: int = 0
    offers_received: int = 0
    accepts: int = 0
    first_offer_at: float = 0.0
    accept_at: dict[str, float] = field(default_factory=dict)
    running_at: dict[str, float] = field(default_factory=dict)
    # first time per task each step happened, for the phase breakdown
    accepted_at: dict[str, float] = field(default_factory=dict)
    seen: dict[tuple[str, TaskState], float] = field(default_factory=dict)
    acked: dict[tuple[str, TaskState], float] = field(default_factory=dict)
    accept_seconds: list[float] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    duplicate_updates: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _suppressed: bool = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        self.offers_received += len(offers)
        if not self.first_offer_at:
            self.first_offer_at = time.perf_counter()
        for offer in offers:
            n = self._fits(offer)
            if n == 0:
                self._spawn(self._decline(driver, offer))
                continue
            tasks = [task_info(f"bench-{i}", f"t{i}", offer.agent_id, cmd="sleep 3600",
                               cpus=self.cpus, mem=self.mem)
                     for i in range(self.launched, self.launched + n)]
            self.launched += n
            # Leftovers come straight back while tasks remain; then stay away.
            refuse = 0.0 if self.launched < self.total else 3600.0
            self._spawn(self._accept(driver, offer, tasks, Filters(refuse_seconds=refuse)))

    def _fits(self, offer: Offer) -> int:
        free = offer_resources(offer)
        room = min(math.floor(free.scalar("cpus") / self.cpus + 1e-9),
                   math.floor(free.scalar("mem") / self.mem + 1e-9))
        return max(0, min(self.per_offer, self.total - self.launched, room))

    async def _accept(self, driver: Driver, offer: Offer, tasks: list[Any],
                      filters: Filters) -> None:
        start = time.perf_counter()
        for task in tasks:
            self.accept_at[task.task_id.value] = start
        self.accepts += 1
        try:
            await driver.launch([offer.id], tasks, filters)
        except DriverError as exc:
            self.errors.append(f"ACCEPT: {exc}")
        end = time.perf_counter()
        self.accept_seconds.append(end - start)
        for task in tasks:
            self.accepted_at[task.task_id.value] = end

    async def _decline(self, driver: Driver, offer: Offer) -> None:
        try:
            await driver.decline([offer.id], refuse_seconds=3600.0)
            if self.launched >= self.total and not self._suppressed:
                self._suppressed = True
                await driver.suppress()
        except DriverError as exc:
            self.errors.append(f"DECLINE: {exc}")

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        tid = status.task_id.value
        if (tid, status.state) in self.seen:
            self.duplicate_updates += 1  # a resend: acknowledged again, as Mesos asks
        else:
            self.seen[(tid, status.state)] = time.perf_counter()
        if status.state in FAILED_STATES and tid not in self.failed:
            self.failed[tid] = f"{status.state.value}: {status.message}"
            self._check_done()
        if status.uuid and status.agent_id is not None:
            self._spawn(self._acknowledge(driver, status, status.agent_id))

    async def _acknowledge(self, driver: Driver, status: TaskStatus, agent_id: ID) -> None:
        assert status.uuid is not None
        try:
            await driver.acknowledge(agent_id, status.task_id, status.uuid)
        except DriverError as exc:
            if not self.done.is_set():  # later ones are late duplicates' acks
                self.errors.append(f"ACKNOWLEDGE: {exc}")
            return
        tid = status.task_id.value
        self.acked.setdefault((tid, status.state), time.perf_counter())
        if status.state == TaskState.TASK_RUNNING and tid not in self.running_at:
            self.running_at[tid] = time.perf_counter()
            self._check_done()

    async def settle(self, timeout: float = 10.0) -> None:
        """Let the calls in flight (acks of late duplicates) finish."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def _check_done(self) -> None:
        if len(self.running_at) + len(self.failed) >= self.total:
            self.done.set()


# -------------------------------------------------------------------- one run


@dataclass
class Result:
    agents: int
    tasks: int
    running: int = 0
    failed: int = 0
    seconds: float = 0.0
    tasks_per_second: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    accept_p50: float = 0.0
    duplicates: int = 0
    phases: dict[str, float] = field(default_factory=dict)  # step -> median seconds
    accepts: int = 0
    offers: int = 0
    offers_per_second: float = 0.0
    register_seconds: float = 0.0
    first_offer_seconds: float = 0.0
    master_cpu: float = 0.0
    agents_cpu: float = 0.0
    framework_cpu: float = 0.0
    agent_stats: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    profile: str = ""


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_once(agents: int, tasks: int, opts: argparse.Namespace) -> Result:
    """Start master and agents, launch ``tasks`` tasks, measure, tear everything down."""
    result = Result(agents, tasks)
    per_offer = opts.per_offer or max(1, math.ceil(tasks / agents))
    with tempfile.TemporaryDirectory(prefix="mesoslite-launch-") as tmp:
        master = MasterProcess(Path(tmp), opts.allocation_interval)
        await master.start()
        sims: AgentsProcess | InProcessAgents = (
            InProcessAgents(master.url, agents, opts.agent_retry) if opts.agents_in_process
            else AgentsProcess(master.url, agents, opts.agent_retry))
        spy: PySpy | None = None
        try:
            result.register_seconds = await sims.start()
            if opts.profile == "py-spy":
                if PySpy.available() is None:
                    result.errors.append("py-spy not found: pip install py-spy")
                else:
                    assert master.ps is not None
                    spy = PySpy(master.ps.pid, Path(opts.profile_out))
                    await spy.start()
            sched = LaunchScheduler(tasks, per_offer, opts.task_cpus, opts.task_mem)
            info = FrameworkInfo(user=getpass.getuser(), name="launch-benchmark", failover_timeout=0.0)
            driver = Driver(sched, info, master.url, implicit_acknowledgements=False)
            me = psutil.Process(os.getpid())
            cpu0 = (master.cpu_seconds(), sims.cpu_seconds(), _cpu(me))
            subscribe_at = time.perf_counter()
            run = asyncio.create_task(driver.run())
            done = asyncio.create_task(sched.done.wait())
            await asyncio.wait({run, done}, timeout=opts.timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            cpu1 = (master.cpu_seconds(), sims.cpu_seconds(), _cpu(me))
            if spy is not None:
                result.profile = summarize_profile(await spy.stop())
            done.cancel()
            await sched.settle()
            driver.stop()
            try:
                await asyncio.wait_for(run, 30)
            except Exception as exc:  # noqa: BLE001 - reported, not fatal
                result.errors.append(f"driver: {exc!r}")
            _fill(result, sched, subscribe_at)
            result.master_cpu = cpu1[0] - cpu0[0]
            result.agents_cpu = cpu1[1] - cpu0[1]
            result.framework_cpu = cpu1[2] - cpu0[2]
        finally:
            await sims.stop()
            await master.stop()
        result.agent_stats = sims.stats
        if master.proc is not None and master.proc.returncode not in (0, -signal.SIGTERM):
            result.errors.append(f"master exited {master.proc.returncode}: {master.tail()}")
    return result


def _fill(result: Result, sched: LaunchScheduler, subscribe_at: float) -> None:
    latencies = [sched.running_at[t] - sched.accept_at[t] for t in sched.running_at]
    result.running = len(sched.running_at)
    result.failed = len(sched.failed)
    result.accepts = sched.accepts
    result.offers = sched.offers_received
    result.duplicates = sched.duplicate_updates
    if sched.errors:
        result.errors.append(f"{len(sched.errors)} calls failed; the first ones:")
        result.errors += sched.errors[:3]
    if sched.failed:
        result.errors += [f"{t}: {why}" for t, why in list(sched.failed.items())[:3]]
    if sched.first_offer_at:
        result.first_offer_seconds = sched.first_offer_at - subscribe_at
    if latencies:
        start = min(sched.accept_at.values())
        end = max(sched.running_at.values())
        result.seconds = end - start
        result.tasks_per_second = result.running / result.seconds if result.seconds else 0.0
        result.p50 = statistics.median(latencies)
        result.p99 = _quantile(latencies, 0.99)
        result.max = max(latencies)
        result.offers_per_second = result.offers / (end - subscribe_at)
    result.accept_p50 = statistics.median(sched.accept_seconds) if sched.accept_seconds else 0.0
    result.phases = _phases(sched)


def _phases(sched: LaunchScheduler) -> dict[str, float]:
    """Median seconds of each step of a task's path, over the tasks that made it."""
    starting, running = TaskState.TASK_STARTING, TaskState.TASK_RUNNING
    steps = {
        "ACCEPT 202": (sched.accept_at, sched.accepted_at),
        "-> STARTING received": (sched.accepted_at, _by_task(sched.seen, starting)),
        "-> STARTING ack 202": (_by_task(sched.seen, starting), _by_task(sched.acked, starting)),
        "-> RUNNING received": (_by_task(sched.acked, starting), _by_task(sched.seen, running)),
        "-> RUNNING ack 202": (_by_task(sched.seen, running), _by_task(sched.acked, running)),
    }
    out: dict[str, float] = {}
    for name, (before, after) in steps.items():
        deltas = [after[t] - before[t] for t in after if t in before]
        if deltas:
            out[name] = statistics.median(deltas)
    return out


def _by_task(times: dict[tuple[str, TaskState], float], state: TaskState) -> dict[str, float]:
    return {tid: t for (tid, s), t in times.items() if s == state}


def report(r: Result) -> str:
    s = r.agent_stats
    lines = [
        (f"{r.agents:>5} agents x {r.tasks:>6} tasks: {r.tasks_per_second:8.1f} tasks/s "
         f"({r.running} RUNNING-acked, {r.failed} failed, in {r.seconds:.2f} s)"),
        (f"      latency ACCEPT -> RUNNING acked: p50 {r.p50 * 1000:.0f} ms, "
         f"p99 {r.p99 * 1000:.0f} ms, max {r.max * 1000:.0f} ms; "
         f"ACCEPT call p50 {r.accept_p50 * 1000:.1f} ms"),
        "      median steps: " + ", ".join(
            f"{name} {sec * 1000:.0f} ms" for name, sec in r.phases.items()),
        (f"      {r.accepts} ACCEPTs ({r.tasks / max(r.accepts, 1):.1f} tasks each), "
         f"{r.offers} offers ({r.offers_per_second:.1f} offers/s), first offer after "
         f"{r.first_offer_seconds * 1000:.0f} ms; agents registered in "
         f"{r.register_seconds:.2f} s"),
        (f"      CPU seconds: master {r.master_cpu:.2f} "
         f"({r.master_cpu / max(r.tasks, 1) * 1e6:.0f} us/task), "
         f"agents {r.agents_cpu:.2f}, framework {r.framework_cpu:.2f}"),
    ]
    if s:
        lines.append(
            f"      agents: {s.get('update_frames', 0)} update frames, "
            f"{s.get('updates_sent', 0)} updates ({s.get('updates_resent', 0)} resends), "
            f"{s.get('run_tasks_frames', 0)} RunTasks frames, {s.get('acks', 0)} acks, "
            f"{s.get('unacknowledged', 0)} left unacknowledged; the framework got "
            f"{r.duplicates} duplicate updates")
    lines += [f"      ! {e}" for e in r.errors]
    if r.profile:
        lines.append("      master profile (py-spy):\n" + r.profile)
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, help="agents (default: 100 and 1,000)")
    p.add_argument("--tasks", type=int, help="tasks (default: 2,000 and 10,000)")
    p.add_argument("--quick", action="store_true", help="20 agents x 200 tasks")
    p.add_argument("--per-offer", type=int, default=0,
                   help="most tasks per ACCEPT (default: tasks / agents, rounded up)")
    p.add_argument("--task-cpus", type=float, default=0.1)
    p.add_argument("--task-mem", type=float, default=32.0)
    p.add_argument("--allocation-interval", type=float, default=1.0)
    p.add_argument("--agent-retry", type=float, default=10.0,
                   help="agents' first resend of an unacknowledged update (s)")
    p.add_argument("--agents-in-process", action="store_true",
                   help="run the simulated agents on this process's event loop")
    p.add_argument("--profile", choices=["py-spy"], help="profile the master")
    p.add_argument("--profile-out", default=str(Path(tempfile.gettempdir()) / "master.pyspy"),
                   help="where py-spy's raw (collapsed) stacks are kept")
    p.add_argument("--timeout", type=float, default=600.0, help="per run (s)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark sizes; exit code 1 if any run left tasks short."""
    opts = _parse_args(argv)
    if opts.agents or opts.tasks:
        sizes = [(opts.agents or 100, opts.tasks or 2000)]
    else:
        sizes = QUICK if opts.quick else SIZES
    ok = True
    for agents, tasks in sizes:
        result = asyncio.run(run_once(agents, tasks, opts))
        print(report(result), flush=True)
        ok = ok and result.running == tasks
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
