"""Master and framework failover on real processes, with nothing acknowledged lost.

* ``kill -9`` of the leading master during a 1,000-task launch: three ``mesoslite
  master`` processes on one PostgreSQL schema, 50 simulated agents in their own
  process (``mesoslite.testing.sim_agent``, all master URLs), a framework in the test
  with all master URLs and explicit acknowledgements.  A follower takes over; the
  framework re-subscribes, reconciles, and relaunches (same task id) only what the
  master reports unknown, dropped or gone.  0 acknowledged tasks lost, 0 task ids
  launched twice on the agents, a higher leader epoch.
* PostgreSQL restarted under load: two masters on a private PostgreSQL server, two
  real agents running process tasks (``true`` and ``sleep``).  The restart ends every
  session: the leader's commits fail and are retried, its lock's session is gone so
  it steps down (exit status 1), and the other master takes over once the database
  is back.  Nothing acknowledged is lost and the launch completes.
Framework failover is in test_framework_failover.py.  Each test prints its figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mesoslite.messages.mesos import (
    CapabilityType,
    Filters,
    FrameworkCapability,
    FrameworkInfo,
    MasterInfo,
    Offer,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import Driver, DriverError, Scheduler, offer_resources, task_info
from mesoslite.testing.ha import ha_masters
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.postgres import PrivatePostgres
from mesoslite.testing.processes import agent_process
from tests.conftest import require

pytestmark = pytest.mark.faults
RESOURCES = "cpus:2;mem:1024;disk:1024;ports:[31100-31199]"
RUNNING, FINISHED = TaskState.TASK_RUNNING, TaskState.TASK_FINISHED
# What the master answers for a task it cannot vouch for: launch it again.
RELAUNCH = {TaskState.TASK_DROPPED, TaskState.TASK_GONE, TaskState.TASK_UNKNOWN,
            TaskState.TASK_LOST}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -------------------------------------------------------------------- masters


def running_tasks(state: dict[str, Any]) -> set[str]:
    return {t["id"] for fw in state["frameworks"] for t in fw["tasks"]
            if t["state"] == RUNNING.value}


# -------------------------------------------------------------------- child processes


class JsonLinesProcess:
    """A child process that prints one JSON object per line on stdout; the lines
    are collected in ``events`` as they come.  stderr goes to ``log``."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.argv = argv
        self.log = log
        self.events: list[dict[str, Any]] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def spawn(self) -> JsonLinesProcess:
        err = self._open_log()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=err, start_new_session=True)
        finally:
            err.close()  # the child has its own copy
        self._reader = asyncio.create_task(self._read())
        return self

    def _open_log(self) -> Any:
        return open(self.log, "ab")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    async def event(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0,
                    message: str = "") -> dict[str, Any]:
        """The first event matching ``predicate``, waiting for it (fails if the
        process exits first)."""
        def seen() -> dict[str, Any] | None:
            found = next((e for e in self.events if predicate(e)), None)
            if found is None and self.proc is not None and self.proc.returncode is not None:
                raise AssertionError(f"{self.argv[1:3]} exited {self.proc.returncode} "
                                     f"before {message}: {self.log.read_text()[-2000:]}")
            return found

        return await wait_for(seen, timeout, message=message)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)

    async def wait(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def stop(self) -> None:
        """SIGTERM (the simulated agents print their stats on it; a framework script
        just ends), then SIGKILL after 20 s; always reaps the process."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


class SimAgents(JsonLinesProcess):
    """``python -m mesoslite.testing.sim_agent`` with every master URL."""

    def __init__(self, masters: list[str], count: int, log: Path, *extra: str) -> None:
        super().__init__([sys.executable, "-m", "mesoslite.testing.sim_agent",
                          "--master", ",".join(masters), "--agents", str(count), *extra], log)

    async def start(self, timeout: float = 60.0) -> SimAgents:
        await self.spawn()
        await self.event(lambda e: e["event"] == "registered", timeout,
                         message="the simulated agents to register")
        return self

    async def finish(self) -> dict[str, Any]:
        """Stop the pool and return its final stats."""
        await self.stop()
        return next((e for e in self.events if e["event"] == "stats"), {})


# -------------------------------------------------------------------- the framework


class FailoverScheduler(Scheduler):
    """Launches ``tasks`` (task id -> shell command), each until it reaches its goal
    (``goals``: RUNNING, or FINISHED for a task that ends) with that update
    acknowledged, and behaves as a correct framework through a failover:

    * acknowledgements are explicit; a task counts as acknowledged RUNNING (or
      FINISHED) once the ACKNOWLEDGE call of that update answered 202;
    * at most ``window`` tasks are launched and not yet at their goal at once (a
      steady stream of ACCEPTs rather than one burst); offers it cannot use now are
      declined for a moment;
    * an ACCEPT that fails leaves its tasks in doubt, not relaunched;
    * every ``reconcile_interval`` s it reconciles, with their agent ids, the tasks
      launched more than that long ago that have not reached their goal (Mesos'
      advice: reconcile until every task has a known state);
    * a task is launched again, under the same id, only when the master reports it
      DROPPED, GONE, UNKNOWN or LOST in an update generated after its last launch.
      Such an update for a task already acknowledged RUNNING is recorded in
      ``lost_after_ack`` (an acknowledged task lost) and nothing is relaunched.
    """

    def __init__(self, tasks: dict[str, str], goals: dict[str, TaskState], per_offer: int,
                 window: int | None = None, cpus: float = 0.1, mem: float = 32.0,
                 reconcile_interval: float = 1.0) -> None:
        self.cmds = tasks
        self.goals = goals
        self.per_offer = per_offer
        self.window = window or len(tasks)
        self.need = Resources.of(cpus=cpus, mem=mem)
        self.cpus, self.mem = cpus, mem
        self.reconcile_interval = reconcile_interval
        self.todo: dict[str, None] = dict.fromkeys(tasks)  # waiting for an offer, in order
        self.launched_at: dict[str, float] = {}  # time.time() of the last launch
        self.agent_of: dict[str, str] = {}
        self.accept_done: set[str] = set()  # the last launch's ACCEPT answered or failed
        self.latest: dict[str, TaskState] = {}
        self.acked: dict[str, dict[TaskState, float]] = {}  # task -> state -> monotonic
        self.relaunched: Counter[str] = Counter()
        self.relaunch_reasons: Counter[str] = Counter()
        self.lost_after_ack: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.subscribed_at: list[float] = []  # monotonic
        self.accept_failures = 0
        self._spawned: set[asyncio.Task[None]] = set()

    # -- progress ---------------------------------------------------------------

    def reached(self, task_id: str) -> bool:
        return self.goals[task_id] in self.acked.get(task_id, {})

    def acked_running(self) -> set[str]:
        return {t for t, states in self.acked.items() if RUNNING in states}

    def done(self) -> bool:
        return all(self.reached(t) for t in self.cmds)

    def in_flight(self) -> int:
        """Tasks launched (or to be launched again) and not at their goal."""
        return sum(1 for t in self.launched_at if not self.reached(t))

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)

    # -- callbacks --------------------------------------------------------------

    async def subscribed(self, driver: Driver, framework_id: str,
                         master_info: MasterInfo | None) -> None:
        self.subscribed_at.append(time.monotonic())

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        room = self.window - self.in_flight()
        for offer in offers:
            free, chosen = offer_resources(offer), []
            while (self.todo and len(chosen) < min(self.per_offer, room)
                   and self.need <= free):
                task_id = next(iter(self.todo))
                del self.todo[task_id]
                if task_id not in self.launched_at:
                    room -= 1  # (a relaunch is in flight already)
                chosen.append(task_id)
                free -= self.need
            if chosen:
                self._spawn(self._accept(driver, offer, chosen))
            else:
                refuse = 0.2 if self.todo else 1.0
                self._spawn(self._quietly(driver.decline([offer], refuse_seconds=refuse)))

    async def _accept(self, driver: Driver, offer: Offer, task_ids: list[str]) -> None:
        infos = [task_info(t, t, offer.agent_id, cmd=self.cmds[t], cpus=self.cpus, mem=self.mem)
                 for t in task_ids]
        for t in task_ids:
            self.launched_at[t] = time.time()
            self.agent_of[t] = offer.agent_id.value
            self.accept_done.discard(t)
        try:
            await driver.launch([offer], infos, Filters(refuse_seconds=0.0))
        except DriverError:
            self.accept_failures += 1  # in doubt: reconciliation settles these
        finally:
            self.accept_done.update(task_ids)

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        task_id, state = status.task_id.value, status.state
        if task_id not in self.cmds:
            return
        self.latest[task_id] = state
        if status.uuid and status.agent_id is not None:
            self._spawn(self._acknowledge(driver, status))
        fresh = (status.timestamp or float("inf")) >= self.launched_at.get(task_id, 0.0)
        if state in RELAUNCH and fresh and task_id not in self.todo:
            if RUNNING in self.acked.get(task_id, {}):
                self.lost_after_ack.append((task_id, state.value))
                return
            self.relaunched[task_id] += 1
            reason = status.reason.value if status.reason else "-"
            self.relaunch_reasons[f"{state.value}/{reason}"] += 1
            self.todo[task_id] = None
        elif state.terminal and state not in RELAUNCH and state != self.goals[task_id]:
            self.errors.append(f"{task_id}: {state.value}: {status.message}")

    async def _acknowledge(self, driver: Driver, status: TaskStatus) -> None:
        assert status.agent_id is not None and status.uuid is not None
        try:
            await driver.acknowledge(status.agent_id, status.task_id, status.uuid)
        except DriverError:
            return  # the agent resends it
        self.acked.setdefault(status.task_id.value, {}).setdefault(status.state,
                                                                   time.monotonic())

    async def _quietly(self, call: Awaitable[None]) -> None:
        with contextlib.suppress(DriverError):
            await call

    # -- periodic reconciliation -----------------------------------------------

    async def reconcile_loop(self, driver: Driver) -> None:
        while True:
            await asyncio.sleep(self.reconcile_interval)
            if not driver.subscribed:
                continue
            due = time.time() - self.reconcile_interval
            doubtful = [(t, self.agent_of[t]) for t in self.launched_at
                        if t not in self.todo and t in self.accept_done
                        and self.launched_at[t] < due and not self.reached(t)]
            for i in range(0, len(doubtful), 500):
                with contextlib.suppress(DriverError):
                    await driver.reconcile(doubtful[i:i + 500])


class FailoverFramework:
    """A ``FailoverScheduler`` behind a ``Driver`` given every master URL."""

    def __init__(self, masters: list[str], sched: FailoverScheduler) -> None:
        info = FrameworkInfo(user=getpass.getuser(), name="failover", failover_timeout=3600.0,
                             capabilities=[FrameworkCapability(
                                 type=CapabilityType.PARTITION_AWARE)])
        self.sched = sched
        self.driver = Driver(sched, info, masters, implicit_acknowledgements=False,
                             backoff_initial=0.2, backoff_max=1.0)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> FailoverFramework:
        self._tasks = [asyncio.create_task(self.driver.run()),
                       asyncio.create_task(self.sched.reconcile_loop(self.driver))]
        await wait_for(lambda: self.sched.subscribed_at or self._tasks[0].done(),
                       message="SUBSCRIBED")
        if self._tasks[0].done():
            self._tasks[0].result()
        return self

    async def stop(self) -> None:
        self.driver.stop()
        self._tasks[1].cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.gather(*self._tasks), 10)


@pytest.fixture
async def stoppers() -> AsyncIterator[list[Callable[[], Awaitable[None]]]]:
    """Cleanups to run at the end of the test, last registered first."""
    cleanups: list[Callable[[], Awaitable[None]]] = []
    yield cleanups
    for cleanup in reversed(cleanups):
        with contextlib.suppress(Exception):
            await cleanup()


# -------------------------------------------------------------------- kill -9 the leader


async def test_leader_kill9_during_a_1000_task_launch(tmp_path, pg_url, stoppers):
    total, agents = 1000, 50
    masters = ha_masters(tmp_path, pg_url, 3)
    stoppers.append(masters.stop)
    await masters.start()
    leader, state = await masters.leader()
    old_epoch = state["epoch"]
    sims = SimAgents(masters.urls, agents, tmp_path / "sim_agents.log",
                     "--running-delay", "0.2", "--retry", "1", "--reconnect-max", "1")
    stoppers.append(sims.stop)
    await sims.start()
    tasks = {f"t{i:04d}": "sleep 3600" for i in range(total)}
    sched = FailoverScheduler(tasks, dict.fromkeys(tasks, RUNNING), per_offer=4, window=100)
    fw = FailoverFramework(masters.urls, sched)
    stoppers.append(fw.stop)
    await fw.start()

    await wait_for(lambda: len(sched.acked_running()) >= total // 2, timeout=120,
                   interval=0.005, message="half of the tasks RUNNING and acknowledged")
    acked_before = sched.acked_running()
    launched_before = len(sched.launched_at)
    killed_at, killed_wall = time.monotonic(), time.time()
    leader.kill9()
    followers = [p for p in masters.procs if p is not leader]
    new_leader, state = await masters.leader(followers, timeout=60)
    failover = time.monotonic() - killed_at
    assert state["epoch"] > old_epoch

    await wait_for(lambda: len(sched.subscribed_at) >= 2, timeout=60,
                   message="the framework to re-subscribe")
    resubscribed = sched.subscribed_at[1] - killed_at
    reregistered = await sims.event(lambda e: e["event"] == "reregistered"
                                    and e["epoch"] > old_epoch, timeout=60,
                                    message="every agent re-registered")
    await wait_for(sched.done, timeout=120, message="every task RUNNING and acknowledged")
    all_running = time.monotonic() - killed_at

    final = await get_json(new_leader.url + "/master/state")
    acked = sched.acked_running()
    lost = acked - running_tasks(final)
    stats = await sims.finish()
    duplicates = stats["duplicate_task_ids"]
    print(f"\nleader kill -9 during a {total}-task launch ({agents} simulated agents, 3 masters):"
          f" {len(acked_before)} tasks acknowledged RUNNING and {launched_before} launched"
          f" before the kill; lost {len(lost)}, duplicate launches {len(duplicates)};"
          f" failover {failover:.2f} s (epoch {old_epoch} -> {state['epoch']}), agents"
          f" re-registered {reregistered['at'] - killed_wall:.2f} s, framework re-subscribed"
          f" {resubscribed:.2f} s, all {total} RUNNING {all_running:.2f} s after the kill;"
          f" {sum(sched.relaunched.values())} relaunched"
          f" ({dict(sched.relaunch_reasons) or 'none'}), {sched.accept_failures} ACCEPTs"
          " failed in flight")
    assert not lost, sorted(lost)[:10]
    assert not sched.lost_after_ack, sched.lost_after_ack[:10]
    assert not duplicates, duplicates
    assert not sched.errors, sched.errors[:10]
    assert stats["distinct_tasks_launched"] == total
    assert stats["tasks_held"] == {RUNNING.value: total}
    assert running_tasks(final) == set(tasks)
    assert leader.proc is not None and leader.proc.returncode == -signal.SIGKILL


# -------------------------------------------------------------------- PostgreSQL restart


async def test_postgresql_restart_under_load(tmp_path, stoppers):
    why = PrivatePostgres.unavailable()
    require(why is None, why or "")
    pg = PrivatePostgres()
    stoppers.append(pg.stop)
    await pg.start()
    masters = ha_masters(tmp_path, pg.url, 2)
    stoppers.append(masters.stop)
    await masters.start()
    leader, state = await masters.leader()
    old_epoch = state["epoch"]
    for i in range(2):
        agent = agent_process(",".join(masters.urls), tmp_path / f"agent{i}", RESOURCES)
        stoppers.append(agent.stop)
        await agent.start()
    await wait_for(lambda: _activated(leader.url, 2), message="both agents registered")

    launches = tmp_path / "launches"  # one line per process started: task id, pid
    launches.touch()
    stoppers.append(lambda: _kill_recorded(launches))
    record = f'echo "$MESOS_TASK_ID $$" >> {launches}; '
    tasks: dict[str, str] = {}
    goals: dict[str, TaskState] = {}
    for i in range(60):
        long = i % 3 == 0
        tasks[f"p{i:02d}"] = record + ("exec sleep 300" if long else "true")
        goals[f"p{i:02d}"] = RUNNING if long else FINISHED
    sched = FailoverScheduler(tasks, goals, per_offer=2, window=12)
    fw = FailoverFramework(masters.urls, sched)
    stoppers.append(fw.stop)
    await fw.start()

    await wait_for(lambda: sum(map(sched.reached, tasks)) >= 15, timeout=60,
                   message="a quarter of the tasks at their goal")
    reached_before = sum(map(sched.reached, tasks))
    acked_before = sched.acked_running()
    restarted_at = time.monotonic()
    outage = await pg.restart()
    back_at = time.monotonic()
    assert leader.proc is not None
    code = await asyncio.to_thread(leader.proc.wait, 30)  # lost its lock's session
    new_leader, state = await masters.leader(timeout=60)
    serving = time.monotonic() - back_at
    await wait_for(lambda: _activated(new_leader.url, 2), timeout=60,
                   message="both agents re-registered with the new leader")
    agents_back = time.monotonic() - back_at
    await wait_for(sched.done, timeout=120, message="every task at its goal, acknowledged")
    completed = time.monotonic() - restarted_at

    final = await get_json(new_leader.url + "/master/state")
    acked = sched.acked_running()
    long_tasks = {t for t, g in goals.items() if g == RUNNING}
    lost = (acked & long_tasks) - running_tasks(final)
    started = Counter(line.split()[0] for line in launches.read_text().splitlines())
    duplicates = {t: n for t, n in started.items() if n > 1}
    log = (leader.log.read_text(errors="replace"))
    retried = log.count("store commit failed")
    print(f"\nPostgreSQL restart under load: down {outage:.2f} s; the leader retried"
          f" {retried} commits and stepped down (exit {code}); the other master served as"
          f" leader {serving:.2f} s after the database was back (epoch {old_epoch} ->"
          f" {state['epoch']}), agents re-registered after {agents_back:.2f} s, all"
          f" {len(tasks)} tasks at their goal {completed:.2f} s after the restart began;"
          f" {reached_before} at their goal and {len(acked_before)} acknowledged RUNNING"
          f" before it; lost {len(lost)}, duplicate launches {len(duplicates)}, relaunched"
          f" {sum(sched.relaunched.values())} ({dict(sched.relaunch_reasons) or 'none'})")
    assert code == 1, f"the old leader exited {code}"
    assert state["epoch"] > old_epoch
    assert not lost, sorted(lost)
    assert not sched.lost_after_ack, sched.lost_after_ack
    assert not duplicates, duplicates
    assert not sched.errors, sched.errors
    assert set(started) == set(tasks)
    assert running_tasks(final) == long_tasks


async def _kill_recorded(launches: Path) -> None:
    """Tasks outlive their agent: end the ones this test started."""
    for line in launches.read_text().splitlines():
        with contextlib.suppress(ProcessLookupError, ValueError, IndexError):
            os.kill(int(line.split()[1]), signal.SIGKILL)


async def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _activated(url: str, count: int) -> bool:
    try:
        state = await get_json(url + "/master/state")
    except aiohttp.ClientError:
        return False
    return state["activated_slaves"] == count
