"""Leader failover: ``kill -9`` of the leading master, with simulated agents.

``--masters`` master processes (``python -m mesoslite.cli.main master``) share a
fresh schema of a PostgreSQL server (``--store``, default ``$MESOSLITE_TEST_PG_URL``)
and elect a leader; the simulated agents run in their own processes
(``python -m mesoslite.testing.sim_agent``, ``--per-process`` agents each, every
master URL given); a framework in this process (``mesoslite.scheduler.Driver``,
every master URL given) first launches ``--tasks-per-agent`` tasks on each agent
(as Mesos' experiment ran tasks on every agent), so that re-registrations carry
tasks.  Then the leader is killed with SIGKILL and measured, from that moment:

* **leader failover**: until a surviving master answers ``GET /master/tasks`` itself
  (200, not the 307/503 of a follower), i.e. it won the election, took a new epoch
  and loaded the state;
* **agents re-registered**: until every simulated agent has received ``Registered``
  from the new leader (the pools report it with ``time.time()``);
* **framework re-subscribed**: until the framework's ``subscribed`` callback ran
  against the new leader;
* **tasks reconciled**: until the new leader has answered the framework's explicit
  reconciliation (sent on re-subscription) with RUNNING for every task;
* **recovered**: the latest of the last three (the Mesos paper measured the
  reconnection of agents and frameworks).  The new leader's ``/master/state`` is
  then checked: every agent active, every task RUNNING.

Printed per size beside Mesos' figure: 4-8 s mean time for agents and frameworks to
reconnect to a new master after a master failure, for 200 to 4,000 agents (Hindman
et al., "Mesos", NSDI 2011, section 6.5, with ZooKeeper's detection included).
Also printed: the new leader's CPU seconds and how it spent them while recovering
(``--profile py-spy`` samples the followers from the kill on; the one that won is
reported).

    .venv/bin/python benchmarks/failover.py                  # 1,000 and 4,000 agents
    .venv/bin/python benchmarks/failover.py --quick          # 100 agents
    .venv/bin/python benchmarks/failover.py --agents 4000 --profile py-spy
    .venv/bin/python benchmarks/failover.py --agents 4000 --master-log-level info --keep /tmp/fo
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from launch import PySpy, _cpu, summarize_profile
from sqlalchemy import create_engine, text

from mesoslite.messages.mesos import (
    FrameworkInfo,
    MasterInfo,
    Offer,
    Reason,
    TaskState,
    TaskStatus,
)
from mesoslite.scheduler import Driver, DriverError, Scheduler, task_info
from mesoslite.testing.processes import free_port

SIZES = [1000, 4000]
QUICK = [100]
MESOS = "Mesos (NSDI 2011, 200-4,000 agents): 4-8 s for agents and frameworks to reconnect"
MESOS_SECONDS = (4.0, 8.0)


# -------------------------------------------------------------------- the store


class Schema:
    """A fresh schema on the PostgreSQL server at ``base``, dropped by ``drop``."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.name = f"bench_{uuid.uuid4().hex[:12]}"
        sep = "&" if "?" in base else "?"
        self.url = f"{base}{sep}options=-csearch_path%3D{self.name}"
        self._engine = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))

    def create(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))

    def drop(self) -> None:
        with self._engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self._engine.dispose()


# -------------------------------------------------------------------- processes


class MasterProcess:
    """``mesoslite master`` on the shared store, as a child process."""

    def __init__(self, index: int, work_dir: Path, store: str, opts: argparse.Namespace) -> None:
        self.index = index
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = work_dir / f"master{index}.log"
        self.args = ["--port", str(self.port), "--work-dir", str(work_dir / f"master{index}"),
                     "--store", store, "--allocation-interval", str(opts.allocation_interval),
                     "--agent-ping-timeout", str(opts.agent_ping_timeout),
                     "--log-level", opts.master_log_level]
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None

    async def start(self, timeout: float = 30.0) -> None:
        """Start it; return once ``/health`` answers (followers answer it too)."""
        log = self._open_log()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mesoslite.cli.main", "master", *self.args,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline and self.proc.returncode is None:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/health") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"master {self.index} did not start; see {self.log_path}")

    def _open_log(self) -> Any:
        return open(self.log_path, "ab")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)

    def cpu_seconds(self) -> float:
        return _cpu(self.ps)

    async def stop(self) -> None:
        await _terminate(self.proc)


class AgentsProcess:
    """One ``python -m mesoslite.testing.sim_agent`` process with every master URL;
    its JSON lines are collected in ``events``."""

    def __init__(self, index: int, masters: list[str], agents: int, opts: argparse.Namespace
                 ) -> None:
        self.index = index
        self.agents = agents
        self.args = ["--master", ",".join(masters), "--agents", str(agents),
                     "--hostname-prefix", f"sim{index}", "--retry", "10",
                     "--reconnect-max", str(opts.reconnect_max),
                     "--register-timeout", str(opts.timeout)]
        self.proc: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mesoslite.testing.sim_agent", *self.args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self.ps = psutil.Process(self.proc.pid)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def event(self, name: str, min_epoch: int = 0) -> dict[str, Any] | None:
        """The first ``name`` event (of an epoch >= ``min_epoch``); raises if the
        pool failed."""
        for e in self.events:
            if e["event"] == "error":
                raise RuntimeError(f"simulated agents {self.index}: {e}")
            if e["event"] == name and e.get("epoch", 0) >= min_epoch:
                return e
        if self.proc is not None and self.proc.returncode is not None:
            raise RuntimeError(f"simulated agents {self.index} exited {self.proc.returncode}")
        return None

    def cpu_seconds(self) -> float:
        return _cpu(self.ps)

    async def stop(self) -> dict[str, Any]:
        """End its input; return its final stats."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                await _terminate(proc)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        return next((e for e in self.events if e["event"] == "stats"), {})


async def _terminate(proc: asyncio.subprocess.Process | None) -> None:
    if proc is None or proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def until(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Poll ``predicate`` (sync or async) until truthy; RuntimeError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


async def serving_leader(session: aiohttp.ClientSession, masters: list[MasterProcess]
                         ) -> MasterProcess | None:
    """The master among ``masters`` that answers a leader-only endpoint itself (200,
    not a follower's 307 or 503), if any.  ``/master/tasks?limit=1`` rather than
    ``/master/state``: with thousands of agents the state document takes long
    enough to build that it would be part of the figure."""
    for master in masters:
        if not master.alive:
            continue
        with contextlib.suppress(aiohttp.ClientError, ValueError):
            async with session.get(master.url + "/master/tasks?limit=1",
                                   allow_redirects=False) as resp:
                if resp.status == 200:
                    return master
    return None


async def master_state(session: aiohttp.ClientSession, master: MasterProcess
                       ) -> dict[str, Any]:
    async with session.get(master.url + "/master/state", allow_redirects=False) as resp:
        resp.raise_for_status()
        return await resp.json()


# -------------------------------------------------------------------- the framework


@dataclass
class SpreadScheduler(Scheduler):
    """Launches ``per_agent`` tasks on every agent that offers (one ACCEPT per
    offer), implicit acknowledgements; then declines everything for long.

    After a re-subscription it reconciles every task it launched (explicitly, with
    its agent id, in batches; again every second for the tasks not answered yet)
    and records in ``reconciled`` when each was reported RUNNING by the new leader."""

    per_agent: int
    total: int
    launched: int = 0
    running: set[str] = field(default_factory=set)
    placed: set[str] = field(default_factory=set)
    agent_of: dict[str, str] = field(default_factory=dict)
    reconciled: dict[str, float] = field(default_factory=dict)  # task -> monotonic
    subscribed_at: list[float] = field(default_factory=list)  # monotonic
    errors: list[str] = field(default_factory=list)
    declines_failed: int = 0  # DECLINE calls in flight to the killed leader: expected
    _calls: set[asyncio.Task[None]] = field(default_factory=set)

    async def subscribed(self, driver: Driver, framework_id: str,
                         master_info: MasterInfo | None) -> None:
        self.subscribed_at.append(time.monotonic())
        if len(self.subscribed_at) >= 2:
            self._call(self._reconcile(driver))

    async def _reconcile(self, driver: Driver) -> None:
        while True:
            missing = [(t, a) for t, a in self.agent_of.items() if t not in self.reconciled]
            if not missing:
                return
            for i in range(0, len(missing), 1000):
                await driver.reconcile(missing[i:i + 1000])
            await asyncio.sleep(1.0)

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        unused = []
        for offer in offers:
            agent = offer.agent_id.value
            if agent in self.placed or self.launched >= self.total:
                unused.append(offer)
                continue
            self.placed.add(agent)
            tasks = [task_info(f"t{self.launched + i}", f"t{self.launched + i}",
                               offer.agent_id, cmd="sleep 3600", cpus=0.1, mem=32)
                     for i in range(self.per_agent)]
            self.launched += len(tasks)
            for task in tasks:
                self.agent_of[task.task_id.value] = agent
            self._call(driver.launch([offer], tasks))
        if unused:  # one DECLINE for the lot: thousands of calls would load the master
            self._call(driver.decline(unused, refuse_seconds=3600.0), decline=True)

    def _call(self, coro: Any, decline: bool = False) -> None:
        task = asyncio.ensure_future(self._quietly(coro, decline))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _quietly(self, coro: Any, decline: bool) -> None:
        try:
            await coro
        except DriverError as exc:
            if decline:
                self.declines_failed += 1
            else:
                self.errors.append(str(exc))

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        task_id = status.task_id.value
        if status.state == TaskState.TASK_RUNNING:
            self.running.add(task_id)
            if (status.reason == Reason.REASON_RECONCILIATION
                    and len(self.subscribed_at) >= 2):
                self.reconciled.setdefault(task_id, time.monotonic())
        elif status.state.terminal:
            self.errors.append(f"{task_id}: {status.state.value}")


# -------------------------------------------------------------------- one run


@dataclass
class Result:
    agents: int
    masters: int
    tasks: int = 0
    register_seconds: float = 0.0
    leader_seconds: float = 0.0
    agents_seconds: float = 0.0
    agents_first_seconds: float = 0.0
    agents_median_seconds: float = 0.0  # the median of the pools' medians
    framework_seconds: float = 0.0
    reconciled_seconds: float = 0.0
    epochs: tuple[int, int] = (0, 0)
    leader_cpu: float = 0.0
    agents_cpu: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)
    declines_failed: int = 0
    errors: list[str] = field(default_factory=list)
    profile: str = ""

    @property
    def recovered_seconds(self) -> float:
        return max(self.agents_seconds, self.framework_seconds, self.reconciled_seconds)


async def run_once(agents: int, opts: argparse.Namespace) -> Result:
    """Masters, agents and a framework up; kill -9 the leader; time the recovery."""
    result = Result(agents, opts.masters)
    schema = Schema(opts.store)
    await asyncio.to_thread(schema.create)
    tmp = tempfile.TemporaryDirectory(prefix="mesoslite-failover-")
    work = Path(tmp.name)
    masters = [MasterProcess(i, work, schema.url, opts) for i in range(opts.masters)]
    urls = [m.url for m in masters]
    per = max(1, opts.per_process)
    sizes = [min(per, agents - i) for i in range(0, agents, per)]
    pools = [AgentsProcess(i, urls, n, opts) for i, n in enumerate(sizes)]
    driver: Driver | None = None
    run: asyncio.Task[None] | None = None
    spies: dict[int, PySpy] = {}
    session = aiohttp.ClientSession()
    try:
        await asyncio.gather(*(m.start() for m in masters))
        leader = await until(lambda: serving_leader(session, masters), 60, "a leader")
        start = time.monotonic()
        for pool in pools:
            await pool.start()
        await until(lambda: all(p.event("registered") for p in pools), opts.timeout,
                    "the agents to register", interval=0.1)
        result.register_seconds = time.monotonic() - start

        sched = SpreadScheduler(opts.tasks_per_agent, opts.tasks_per_agent * agents)
        if sched.total:
            info = FrameworkInfo(user=getpass.getuser(), name="failover-benchmark",
                                 failover_timeout=3600.0)
            driver = Driver(sched, info, urls, backoff_initial=0.2, backoff_max=2.0)
            run = asyncio.create_task(driver.run())
            await until(lambda: len(sched.running) >= sched.total or run.done(),
                        opts.timeout, f"{sched.total} tasks RUNNING", interval=0.1)
            if run.done():
                run.result()
            result.tasks = len(sched.running)
        followers = [m for m in masters if m is not leader]
        if opts.profile == "py-spy":
            if PySpy.available() is None:
                result.errors.append("py-spy not found")
            else:
                for m in followers:
                    assert m.ps is not None
                    spies[m.index] = PySpy(m.ps.pid, work / f"master{m.index}.pyspy")
                    await spies[m.index].start()
        cpu0 = {m.index: m.cpu_seconds() for m in followers}
        agents_cpu0 = sum(p.cpu_seconds() for p in pools)
        old_epoch = (await master_state(session, leader))["epoch"]

        killed_wall, killed = time.time(), time.monotonic()
        leader.kill9()
        new = await until(lambda: serving_leader(session, followers), opts.timeout,
                          "a new leader", interval=0.01)
        result.leader_seconds = time.monotonic() - killed
        done = await until(lambda: [p.event("reregistered", old_epoch + 1) for p in pools]
                           if all(p.event("reregistered", old_epoch + 1) for p in pools)
                           else None, opts.timeout, "every agent to re-register", interval=0.05)
        result.agents_seconds = max(e["at"] for e in done) - killed_wall
        result.agents_first_seconds = min(e["first"] for e in done) - killed_wall
        result.agents_median_seconds = (sorted(e["median"] for e in done)[len(done) // 2]
                                        - killed_wall)
        if driver is not None:
            await until(lambda: len(sched.subscribed_at) >= 2, opts.timeout,
                        "the framework to re-subscribe")
            result.framework_seconds = sched.subscribed_at[1] - killed
            await until(lambda: len(sched.reconciled) >= len(sched.agent_of), opts.timeout,
                        "every task reconciled RUNNING", interval=0.05)
            result.reconciled_seconds = max(sched.reconciled.values()) - killed
        result.leader_cpu = new.cpu_seconds() - cpu0[new.index]
        result.agents_cpu = sum(p.cpu_seconds() for p in pools) - agents_cpu0
        if new.index in spies:  # before the check below: building /master/state is not recovery
            result.profile = summarize_profile(await spies[new.index].stop())
        # the new leader's own view once recovered: every agent active, every task RUNNING
        final = await master_state(session, new)
        result.epochs = (old_epoch, final["epoch"])
        running = sum(1 for fw in final["frameworks"] for t in fw["tasks"]
                      if t["state"] == TaskState.TASK_RUNNING.value)
        if final["activated_slaves"] != agents or running != result.tasks:
            result.errors.append(f"the new leader has {final['activated_slaves']} active agents"
                                 f" and {running} RUNNING tasks, not {agents} and {result.tasks}")
        result.declines_failed = sched.declines_failed
        if sched.errors:
            result.errors.append(f"{len(sched.errors)} framework errors, e.g. {sched.errors[0]}")
    except RuntimeError as exc:
        result.errors.append(str(exc))
    finally:
        for spy in spies.values():
            await spy.stop()
        if driver is not None and run is not None:
            driver.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run, 15)
        for pool in pools:
            stats = await pool.stop()
            for key in ("registrations", "disconnects", "redirects", "connect_failures",
                        "duplicate_launches"):
                result.stats[key] = result.stats.get(key, 0) + int(stats.get(key, 0))
        for master in masters:
            await master.stop()
        await session.close()
        await asyncio.to_thread(schema.drop)
        if opts.keep:
            # the masters' logs and profiles, one directory per size
            shutil.copytree(work, Path(opts.keep) / f"{agents}-agents", dirs_exist_ok=True)
        tmp.cleanup()
    if result.stats.get("duplicate_launches"):
        result.errors.append(f"{result.stats['duplicate_launches']} tasks launched twice")
    return result


def report(r: Result) -> str:
    s = r.stats
    lines = [
        (f"{r.agents:>5} agents, {r.masters} masters, {r.tasks} tasks: leader failover "
         f"{r.leader_seconds:.2f} s (epoch {r.epochs[0]} -> {r.epochs[1]}), every agent "
         f"re-registered {r.agents_seconds:.2f} s (the first {r.agents_first_seconds:.2f} s, "
         f"half {r.agents_median_seconds:.2f} s), framework re-subscribed "
         f"{r.framework_seconds:.2f} s, all tasks reconciled RUNNING "
         f"{r.reconciled_seconds:.2f} s after the kill -> recovered in "
         f"{r.recovered_seconds:.2f} s = {r.recovered_seconds / MESOS_SECONDS[1]:.2f}-"
         f"{r.recovered_seconds / MESOS_SECONDS[0]:.2f}x Mesos'   [{MESOS}]"),
        (f"      agents first registered in {r.register_seconds:.2f} s; new leader "
         f"{r.leader_cpu:.2f} CPU s, agents {r.agents_cpu:.2f} CPU s until recovered; "
         f"agents: {s.get('registrations', 0)} registrations, "
         f"{s.get('connect_failures', 0)} failed attempts (master gone or no leader yet); "
         f"{r.declines_failed} DECLINE calls lost with the killed leader"),
    ]
    lines += [f"      ! {e}" for e in r.errors]
    if r.profile:
        lines.append("      new leader profile (py-spy, from the kill on):\n" + r.profile)
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, action="append",
                   help="agents (repeatable; default: 1,000 and 4,000)")
    p.add_argument("--quick", action="store_true", help="100 agents")
    p.add_argument("--masters", type=int, default=2)
    p.add_argument("--per-process", type=int, default=1000,
                   help="simulated agents per process")
    p.add_argument("--tasks-per-agent", type=int, default=1)
    p.add_argument("--store", default=os.environ.get("MESOSLITE_TEST_PG_URL"),
                   help="PostgreSQL URL (default: $MESOSLITE_TEST_PG_URL); a fresh schema "
                        "is created in it and dropped afterwards")
    p.add_argument("--allocation-interval", type=float, default=1.0)
    p.add_argument("--agent-ping-timeout", type=float, default=15.0)
    p.add_argument("--reconnect-max", type=float, default=5.0,
                   help="the agents' longest pause between attempts (s), as the real agent's")
    p.add_argument("--profile", choices=["py-spy"], help="profile the new leader")
    p.add_argument("--timeout", type=float, default=300.0, help="per step (s)")
    p.add_argument("--master-log-level", default="warning",
                   choices=["debug", "info", "warning", "error"],
                   help="info shows when the new leader was elected and when it led")
    p.add_argument("--keep", metavar="DIR",
                   help="copy the masters' logs (and --profile's raw stacks) to DIR")
    opts = p.parse_args(argv)
    if not opts.store:
        p.error("no PostgreSQL: give --store or set MESOSLITE_TEST_PG_URL "
                "(set -a; . .ci/env; set +a)")
    if opts.masters < 2:
        p.error("--masters must be at least 2: one to kill, one to take over")
    return opts


def main(argv: list[str] | None = None) -> int:
    """Run the sizes; exit code 1 if a run failed."""
    opts = _parse_args(argv)
    # the driver's warnings while the leader is gone are expected; keep the report clean
    logging.basicConfig(level=logging.ERROR)
    sizes = opts.agents or (QUICK if opts.quick else SIZES)
    ok = True
    for agents in sizes:
        result = asyncio.run(run_once(agents, opts))
        print(report(result), flush=True)
        ok = ok and not result.errors and math.isfinite(result.recovered_seconds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
