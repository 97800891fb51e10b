"""Network partitions between real processes: a master in the root namespace, two
agents each in its own network namespace (``mesoslite.testing.netns``), and two
frameworks in the test process, one PARTITION_AWARE and one not.

* full partition of an agent: UNREACHABLE / LOST after the timeout, tasks keep
  running; healed, the agent re-registers, partition-aware tasks come back RUNNING,
  the others are killed, and a replacement launched meanwhile leaves exactly one copy
  once the framework kills the extra;
* a kill sent and a task exit happening while an agent is cut off are settled once
  it is back (the kill done, the exit reported);
* a partition outliving the master's TCP connection: the agent notices the silence
  (no ping for the master's total ping timeout) and registers again;
* one-way partitions (master -> agent dropped, then agent -> master dropped): the
  agent is still marked unreachable, and everything converges after healing;
* a flapping link (outages shorter than the unreachable timeout) with launches in
  flight: no task lost or duplicated, every task RUNNING once, one process per task.

Each test prints its figure: time to UNREACHABLE, time to re-register after healing,
tasks lost, duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from mesoslite.messages.mesos import Offer, Reason, TaskState, TaskStatus
from mesoslite.resources import Resources
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json
from mesoslite.testing.netns import (
    Direction,
    Host,
    HostedProcess,
    NetLab,
    flap_schedule,
    hosted,
    net_lab,
    unavailable_reason,
)
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import agent_process, master_process
from tests.conftest import require

pytestmark = pytest.mark.faults
RESOURCES = "cpus:2;mem:1024;disk:1024;ports:[31100-31199]"
AGENT_PORT = 5051  # inside each namespace: no clash between agents
TASK_CMD = "exec sleep 3600"
RUNNING = TaskState.TASK_RUNNING


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class AgentWatch:
    """Polls the master's /master/state and records when each agent's state or
    re-registration time changes (monotonic times), for the figures.  What is
    recorded: the new state ("active", "disconnected", "unreachable"...) or
    "reregistered"."""

    def __init__(self, master_url: str) -> None:
        self.url = master_url + "/master/state"
        self.events: list[tuple[float, str, str]] = []  # (mono, agent id, what)
        self._last: dict[str, tuple[str, float | None]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                self._note(await get_json(self.url))
            await asyncio.sleep(0.05)

    def _note(self, state: dict) -> None:
        now = time.monotonic()
        for agent in state["slaves"]:
            current = (agent["state"], agent["reregistered_time"])
            before = self._last.get(agent["id"])
            self._last[agent["id"]] = current
            if before is None:
                continue
            if current[0] != before[0]:
                self.events.append((now, agent["id"], current[0]))
            if current[1] != before[1]:
                self.events.append((now, agent["id"], "reregistered"))

    def first(self, agent_id: str, what: str, after: float) -> float | None:
        return next((t for t, a, w in self.events if a == agent_id and w == what and t >= after),
                    None)

    async def when(self, agent_id: str, what: str, after: float, timeout: float = 10.0
                   ) -> float:
        """When ``what`` was first seen for ``agent_id`` at or after ``after``."""
        return await wait_for(lambda: self.first(agent_id, what, after), timeout,
                              message=f"{agent_id} {what} in /master/state")

    def count(self, agent_id: str, what: str, after: float = 0.0) -> int:
        return sum(1 for t, a, w in self.events if a == agent_id and w == what and t >= after)


@dataclass
class Cluster:
    lab: NetLab
    master: HostedProcess
    agents: dict[str, HostedProcess]  # by host name
    ids: dict[str, str]  # agent id by host name
    pa: RecordingFramework  # PARTITION_AWARE
    npa: RecordingFramework  # not partition-aware
    watch: AgentWatch
    procs: list[HostedProcess] = field(default_factory=list)

    def host(self, name: str) -> Host:
        return self.lab.hosts[name]


@contextlib.asynccontextmanager
async def partition_cluster(tmp_path: Path, ping_timeout: float, max_pings: int
                            ) -> AsyncIterator[Cluster]:
    """Master on the lab's gateway, agents on hosts a1 and a2, both frameworks
    subscribed.  On exit (also on failure): hosts healed, frameworks torn down (their
    tasks killed by the agents), processes stopped, the lab removed."""
    require(unavailable_reason() is None, f"network namespaces ({unavailable_reason()})")
    with net_lab() as lab:
        hosts = [lab.add_host("a1"), lab.add_host("a2")]
        master = hosted(master_process(
            tmp_path / "master", None, "--host", lab.gateway, "--insecure",
            "--agent-ping-timeout", str(ping_timeout),
            "--max-agent-ping-timeouts", str(max_pings)), lab.gateway)
        procs = [master]
        frameworks: list[RecordingFramework] = []
        watch = AgentWatch(master.url)
        agents: dict[str, HostedProcess] = {}
        try:
            await master.start()
            for host in hosts:
                agent = hosted(agent_process(
                    master.url, tmp_path / host.name, RESOURCES, AGENT_PORT,
                    "--host", host.address, "--insecure", "--hostname", host.name), host.address,
                    host)
                procs.append(agent)
                agents[host.name] = await agent.start()

            async def registered() -> dict[str, str] | None:
                state = await get_json(master.url + "/master/state")
                ids = {a["hostname"]: a["id"] for a in state["slaves"] if a["active"]}
                return ids if len(ids) == len(hosts) else None

            ids = await wait_for(registered, 20, message="both agents registered")
            pa = RecordingFramework(master.url, name="partition-aware", partition_aware=True)
            npa = RecordingFramework(master.url, name="not-partition-aware",
                                     partition_aware=False)
            for fw in (pa, npa):
                frameworks.append(fw)
                await fw.start()
            watch.start()
            yield Cluster(lab, master, agents, ids, pa, npa, watch, procs)
        finally:
            await watch.stop()
            for host in hosts:
                lab.heal(host)
            await _tear_down(frameworks, agents, hosts)
            for proc in reversed(procs):
                await proc.stop()


async def _tear_down(frameworks: list[RecordingFramework], agents: dict[str, HostedProcess],
                     hosts: list[Host]) -> None:
    """TEARDOWN each framework so the agents kill (and clean up) its tasks.  An agent
    still holding tasks after a while (cut off from the master for good) is restarted:
    it re-registers on a fresh link and is told to kill them.  The lab SIGKILLs
    whatever is left once the agents are stopped."""
    for fw in frameworks:
        if fw.sched.framework_ids and fw.driver.subscribed:
            with contextlib.suppress(Exception):
                await fw.driver.teardown()
        await fw.stop()
    try:
        await wait_for(lambda: not task_copies(hosts), 5, interval=0.1)
    except AssertionError:
        for name in {name for places in task_copies(hosts).values() for name, _ in places}:
            if name in agents and agents[name].proc is not None:
                agents[name].kill9()
                with contextlib.suppress(AssertionError):
                    await agents[name].start()
        with contextlib.suppress(AssertionError):
            await wait_for(lambda: not task_copies(hosts), 10, interval=0.1)


def task_copies(hosts: list[Host] | dict[str, Host]) -> dict[str, list[tuple[str, int]]]:
    """Live task processes in the hosts: task id -> [(host name, pid)], read from the
    sandbox each ``sleep`` runs in."""
    out: dict[str, list[tuple[str, int]]] = {}
    for host in hosts.values() if isinstance(hosts, dict) else hosts:
        for pid in host.pids():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "sleep":
                    continue
                sandbox = Path(os.readlink(f"/proc/{pid}/cwd"))
            except OSError:
                continue  # ended meanwhile
            out.setdefault(sandbox.name, []).append((host.name, pid))
    return out


async def offer_for(fw: RecordingFramework, others: list[RecordingFramework], agent_id: str,
                    count: int = 1) -> Offer:
    """An offer on ``agent_id`` held by ``fw`` with room for ``count`` tasks; the other
    frameworks decline that agent's offers meanwhile (so it comes to ``fw``)."""
    need = Resources.of(cpus=0.1 * count, mem=32.0 * count)

    async def fitting_offer() -> Offer | None:
        for other in others:
            held = [oid for oid, o in other.sched.open_offers.items()
                    if o.agent_id.value == agent_id]
            for oid in held:
                other.sched.open_offers.pop(oid, None)
            if held:
                await other.driver.decline(held, refuse_seconds=1.0)
        return next((o for o in fw.sched.open_offers.values()
                     if o.agent_id.value == agent_id and need <= offer_resources(o)), None)

    return await wait_for(fitting_offer, 20, interval=0.05,
                          message=f"an offer on {agent_id} for {count} tasks")


async def launch_into(fw: RecordingFramework, offer: Offer, task_ids: list[str]) -> None:
    """Launch a ``sleep`` task per id into ``offer``."""
    tasks = [task_info(t, t, offer.agent_id, cmd=TASK_CMD, cpus=0.1, mem=32.0)
             for t in task_ids]
    await fw.launch(offer, tasks, refuse_seconds=0.0)


async def launch(fw: RecordingFramework, others: list[RecordingFramework], agent_id: str,
                 task_ids: list[str]) -> None:
    """Launch a ``sleep`` task per id on ``agent_id`` through ``fw``."""
    await launch_into(fw, await offer_for(fw, others, agent_id, len(task_ids)), task_ids)


async def wait_update(fw: RecordingFramework, task_id: str,
                      match: Callable[[TaskStatus], bool], since: int, timeout: float = 30.0
                      ) -> tuple[float, TaskStatus]:
    """The first update for ``task_id`` at index >= ``since`` that ``match``es, and
    when the poll saw it (monotonic)."""
    def seen() -> TaskStatus | None:
        return next((u for u in fw.sched.updates[since:]
                     if u.task_id.value == task_id and match(u)), None)

    try:
        status = await wait_for(seen, timeout, message=f"an update for {task_id}")
    except AssertionError as exc:
        states = [f"{u.state.value}/{u.reason.value if u.reason else '-'}"
                  for u in fw.sched.updates[since:] if u.task_id.value == task_id]
        raise AssertionError(f"{exc}; updates since: {states}") from None
    return time.monotonic(), status


async def reconciled(fw: RecordingFramework, task_ids: list[str]) -> dict[str, TaskState]:
    """Explicit reconciliation of ``task_ids``: the master's answer for each."""
    before = len(fw.sched.updates)
    await fw.driver.reconcile([(t, None) for t in task_ids])

    def answers() -> dict[str, TaskState] | None:
        got = {u.task_id.value: u.state for u in fw.sched.updates[before:]
               if u.reason == Reason.REASON_RECONCILIATION}
        return got if set(got) >= set(task_ids) else None

    return await wait_for(answers, 15, message=f"reconciliation of {task_ids}")


async def all_running(fw: RecordingFramework, task_ids: list[str], timeout: float = 30.0
                      ) -> None:
    for task_id in task_ids:
        await fw.wait_state(task_id, RUNNING, timeout)


def told(fw: RecordingFramework, task_id: str) -> list[TaskState]:
    """The states ``fw`` was told for ``task_id``, without reconciliation answers and
    with retransmissions (same uuid: delivery is at-least-once) counted once."""
    seen: set[bytes] = set()
    out = []
    for u in fw.sched.updates:
        if u.task_id.value != task_id or u.reason == Reason.REASON_RECONCILIATION:
            continue
        if u.uuid is not None:
            if u.uuid in seen:
                continue
            seen.add(u.uuid)
        out.append(u.state)
    return out


def duplicates(copies: dict[str, list[tuple[str, int]]]) -> int:
    return sum(len(c) - 1 for c in copies.values() if len(c) > 1)


# ------------------------------------------------------------------ full partition


async def test_full_partition_then_heal_leaves_exactly_one_copy(tmp_path):
    async with partition_cluster(tmp_path, ping_timeout=0.5, max_pings=4) as c:
        a1, a1_id, a2_id = c.host("a1"), c.ids["a1"], c.ids["a2"]
        await launch(c.pa, [c.npa], a1_id, ["web-1", "web-2"])
        await launch(c.npa, [c.pa], a1_id, ["legacy-1"])
        await all_running(c.pa, ["web-1", "web-2"])
        await all_running(c.npa, ["legacy-1"])
        copies = await wait_for(lambda: (found := task_copies(c.lab.hosts))
                                and len(found) == 3 and found, message="three task processes")
        pids = {task_id: places[0][1] for task_id, places in copies.items()}

        mark = len(c.pa.sched.updates), len(c.npa.sched.updates)
        cut = time.monotonic()
        c.lab.partition(a1)
        for task_id in ("web-1", "web-2"):
            _, status = await wait_update(c.pa, task_id,
                                          lambda u: u.state == TaskState.TASK_UNREACHABLE,
                                          mark[0])
            assert status.unreachable_time is not None
        await wait_update(c.npa, "legacy-1", lambda u: u.state == TaskState.TASK_LOST, mark[1])
        unreachable_at = await c.watch.when(a1_id, "unreachable", cut)
        # cut off, not dead: the tasks keep running inside the namespace
        assert all(alive(pid) for pid in pids.values())

        # the partition-aware framework replaces web-1 on the other agent
        await launch(c.pa, [c.npa], a2_id, ["web-1-r"])
        await c.pa.wait_state("web-1-r", RUNNING)

        mark = len(c.pa.sched.updates), len(c.npa.sched.updates)
        healed = time.monotonic()
        c.lab.heal(a1)
        back: dict[str, float] = {}
        for task_id in ("web-1", "web-2"):
            back[task_id], status = await wait_update(
                c.pa, task_id, lambda u: u.state == RUNNING, mark[0])
            assert status.reason == Reason.REASON_AGENT_REREGISTERED, status
        reregistered_at = await c.watch.when(a1_id, "reregistered", healed)
        # the non-partition-aware framework was told LOST: its task is killed
        await wait_for(lambda: not alive(pids["legacy-1"]), 20,
                       message="legacy-1 killed after re-registration")
        assert "legacy-1" not in task_copies(c.lab.hosts)
        assert (await reconciled(c.npa, ["legacy-1"]))["legacy-1"] != RUNNING

        # both copies of web-1 are visible; the framework kills the extra one
        states = await reconciled(c.pa, ["web-1", "web-1-r", "web-2"])
        assert states == {"web-1": RUNNING, "web-1-r": RUNNING, "web-2": RUNNING}, states
        assert {t: len(p) for t, p in task_copies(c.lab.hosts).items()} == {
            "web-1": 1, "web-1-r": 1, "web-2": 1}
        await c.pa.driver.kill("web-1")
        await c.pa.wait_state("web-1", TaskState.TASK_KILLED)
        copies = await wait_for(lambda: (found := task_copies(c.lab.hosts))
                                and set(found) == {"web-1-r", "web-2"} and found,
                                message="only web-1-r and web-2 left")
        states = await reconciled(c.pa, ["web-1-r", "web-2"])
        lost = sum(s != RUNNING for s in states.values())
        dups = duplicates(copies)
        assert lost == 0 and dups == 0, (states, copies)
        assert alive(pids["web-2"])  # the same process throughout: re-attached, not restarted
        assert told(c.pa, "web-2") == [
            TaskState.TASK_STARTING, RUNNING, TaskState.TASK_UNREACHABLE, RUNNING]
        print(f"\nfull partition: UNREACHABLE after {unreachable_at - cut:.2f}s "
              f"(timeout {0.5 * 4:.1f}s), re-registered {reregistered_at - healed:.2f}s after "
              f"healing, PA tasks RUNNING again after {max(back.values()) - healed:.2f}s; "
              f"non-PA task killed; extra copy killed; tasks lost = {lost}, "
              f"duplicates = {dups}")


async def test_kills_and_exits_during_a_partition_are_settled_after_healing(tmp_path):
    async with partition_cluster(tmp_path, ping_timeout=0.5, max_pings=4) as c:
        a1, a1_id = c.host("a1"), c.ids["a1"]
        await launch(c.pa, [c.npa], a1_id, ["kill-while-cut", "dies-while-cut", "keeps"])
        await all_running(c.pa, ["kill-while-cut", "dies-while-cut", "keeps"])
        copies = await wait_for(lambda: (found := task_copies(c.lab.hosts))
                                and len(found) == 3 and found, message="three task processes")
        pids = {task_id: places[0][1] for task_id, places in copies.items()}

        mark = len(c.pa.sched.updates)
        cut = time.monotonic()
        c.lab.partition(a1)
        for task_id in pids:
            await wait_update(c.pa, task_id, lambda u: u.state == TaskState.TASK_UNREACHABLE,
                              mark)
        unreachable_at = await c.watch.when(a1_id, "unreachable", cut)
        # while cut off: the framework kills one task, another one dies on its own
        await c.pa.driver.kill("kill-while-cut")
        os.kill(pids["dies-while-cut"], signal.SIGKILL)
        await wait_for(lambda: not alive(pids["dies-while-cut"]))
        assert alive(pids["kill-while-cut"])  # the kill cannot cross the partition

        mark = len(c.pa.sched.updates)
        healed = time.monotonic()
        c.lab.heal(a1)
        killed_at, _ = await wait_update(c.pa, "kill-while-cut",
                                         lambda u: u.state == TaskState.TASK_KILLED, mark)
        _, died = await wait_update(c.pa, "dies-while-cut",
                                    lambda u: u.state == TaskState.TASK_FAILED, mark)
        assert "signal" in died.message, died.message
        back, status = await wait_update(c.pa, "keeps", lambda u: u.state == RUNNING, mark)
        assert status.reason == Reason.REASON_AGENT_REREGISTERED
        reregistered_at = await c.watch.when(a1_id, "reregistered", healed)
        await wait_for(lambda: not alive(pids["kill-while-cut"]), 10)
        await launch(c.pa, [c.npa], a1_id, ["after-heal"])  # offered and launching again
        await c.pa.wait_state("after-heal", RUNNING)
        states = await reconciled(c.pa, ["keeps", "after-heal"])
        copies = task_copies(c.lab.hosts)
        lost = sum(s != RUNNING for s in states.values())
        dups = duplicates(copies)
        assert lost == 0 and dups == 0, (states, copies)
        assert set(copies) == {"keeps", "after-heal"}, copies
        print(f"\nkill and exit during a partition: UNREACHABLE after {unreachable_at - cut:.2f}s,"
              f" re-registered {reregistered_at - healed:.2f}s after healing; pending kill "
              f"done {killed_at - healed:.2f}s after healing, exit while cut reported "
              f"TASK_FAILED, survivor RUNNING again after {back - healed:.2f}s; "
              f"tasks lost = {lost}, duplicates = {dups}")


async def test_agent_reregisters_after_a_partition_outliving_the_masters_tcp(tmp_path):
    async with partition_cluster(tmp_path, ping_timeout=0.5, max_pings=4) as c:
        a1, a1_id = c.host("a1"), c.ids["a1"]
        await launch(c.pa, [c.npa], a1_id, ["long-1"])
        await c.pa.wait_state("long-1", RUNNING)
        mark = len(c.pa.sched.updates)
        cut = time.monotonic()
        c.lab.partition(a1)
        await wait_update(c.pa, "long-1", lambda u: u.state == TaskState.TASK_UNREACHABLE, mark)
        unreachable_at = await c.watch.when(a1_id, "unreachable", cut)
        # fast-forward a ~2 minute partition: the master's kernel abandons the
        # connection it closed when it marked the agent unreachable
        c.lab.forget_connections(a1)
        mark = len(c.pa.sched.updates)
        healed = time.monotonic()
        c.lab.heal(a1)
        # the agent should notice the missing pings (2 s here) and re-register
        back, status = await wait_update(c.pa, "long-1", lambda u: u.state == RUNNING, mark,
                                         timeout=15)
        assert status.reason == Reason.REASON_AGENT_REREGISTERED
        states = await reconciled(c.pa, ["long-1"])
        copies = task_copies(c.lab.hosts)
        lost = sum(s != RUNNING for s in states.values())
        dups = duplicates(copies)
        assert lost == 0 and dups == 0, (states, copies)
        print(f"\npartition outliving the master's TCP: UNREACHABLE after "
              f"{unreachable_at - cut:.2f}s, re-registered {back - healed:.2f}s after "
              f"healing; tasks lost = {lost}, duplicates = {dups}")


# ------------------------------------------------------------------ one-way partitions


@pytest.mark.parametrize("direction", [Direction.TO_HOST, Direction.FROM_HOST],
                         ids=["master-to-agent-dropped", "agent-to-master-dropped"])
async def test_one_way_partition_marks_unreachable_then_converges(tmp_path, direction):
    async with partition_cluster(tmp_path, ping_timeout=0.5, max_pings=4) as c:
        a1, a1_id, a2_id = c.host("a1"), c.ids["a1"], c.ids["a2"]
        await launch(c.pa, [c.npa], a1_id, ["ow-pa"])
        await launch(c.pa, [c.npa], a2_id, ["control"])
        await launch(c.npa, [c.pa], a1_id, ["ow-npa"])
        await all_running(c.pa, ["ow-pa", "control"])
        await all_running(c.npa, ["ow-npa"])
        copies = await wait_for(lambda: (found := task_copies(c.lab.hosts))
                                and len(found) == 3 and found, message="three task processes")
        pids = {task_id: places[0][1] for task_id, places in copies.items()}

        offer = await offer_for(c.pa, [c.npa], a1_id)
        mark = len(c.pa.sched.updates), len(c.npa.sched.updates)
        cut = time.monotonic()
        c.lab.partition(a1, direction)
        # a launch the master sends before it notices: with master -> agent dropped it
        # waits in the master's TCP send queue, with agent -> master dropped it runs but
        # nobody hears of it
        await launch_into(c.pa, offer, ["in-flight"])
        for task_id in ("ow-pa", "in-flight"):
            await wait_update(c.pa, task_id, lambda u: u.state == TaskState.TASK_UNREACHABLE,
                              mark[0])
        await wait_update(c.npa, "ow-npa", lambda u: u.state == TaskState.TASK_LOST, mark[1])
        unreachable_at = await c.watch.when(a1_id, "unreachable", cut)
        assert alive(pids["ow-pa"]) and alive(pids["ow-npa"])

        mark = len(c.pa.sched.updates), len(c.npa.sched.updates)
        healed = time.monotonic()
        c.lab.heal(a1)
        back, status = await wait_update(c.pa, "ow-pa", lambda u: u.state == RUNNING, mark[0])
        assert status.reason == Reason.REASON_AGENT_REREGISTERED, status
        reregistered_at = await c.watch.when(a1_id, "reregistered", healed)
        await wait_for(lambda: not alive(pids["ow-npa"]), 20,
                       message="ow-npa killed after re-registration")

        # the in-flight launch has one clear outcome, and the framework knows it: it
        # runs (the launch got through after healing), or it is DROPPED (it was lost)
        _, outcome = await wait_update(
            c.pa, "in-flight", lambda u: u.state in (RUNNING, TaskState.TASK_DROPPED), mark[0])

        # converged: the link works both ways again and the master's view is right
        await launch(c.pa, [c.npa], a1_id, ["after-heal"])
        await c.pa.wait_state("after-heal", RUNNING)
        running = ["ow-pa", "control", "after-heal"] + (
            ["in-flight"] if outcome.state == RUNNING else [])
        states = await reconciled(c.pa, [*running, "in-flight"])
        copies = await wait_for(lambda: (found := task_copies(c.lab.hosts))
                                and set(found) == set(running) and found, 10,
                                message=f"a process for each of {running} and no other")
        lost = sum(states[t] != RUNNING for t in running)
        dups = duplicates(copies)
        assert lost == 0 and dups == 0, (states, copies)
        assert (states["in-flight"] == RUNNING) == (outcome.state == RUNNING), states
        assert told(c.pa, "control") == [TaskState.TASK_STARTING, RUNNING]  # not disturbed
        print(f"\none-way partition ({direction.value} dropped): UNREACHABLE after "
              f"{unreachable_at - cut:.2f}s, re-registered {reregistered_at - healed:.2f}s "
              f"after healing (PA task RUNNING again after {back - healed:.2f}s); non-PA task "
              f"killed; launch in flight -> {outcome.state.value}; tasks lost = {lost}, "
              f"duplicates = {dups}")


# ------------------------------------------------------------------ flapping link


@pytest.mark.parametrize("how", ["link", "drop"])
async def test_flapping_link_loses_and_duplicates_nothing(tmp_path, how):
    ping, pings = 0.5, 10  # unreachable after 5 s: longer than any outage below
    async with partition_cluster(tmp_path, ping_timeout=ping, max_pings=pings) as c:
        a1, a1_id = c.host("a1"), c.ids["a1"]
        await launch(c.pa, [c.npa], a1_id, ["steady-pa"])
        await launch(c.npa, [c.pa], a1_id, ["steady-npa"])
        await all_running(c.pa, ["steady-pa"])
        await all_running(c.npa, ["steady-npa"])

        schedule = flap_schedule(total=6.0, low=0.3, high=1.0, seed=8)
        assert max(down for down, _ in schedule) < ping * pings
        toggles: asyncio.Queue[bool] = asyncio.Queue()
        started = time.monotonic()
        flapping = asyncio.create_task(c.lab.flap(a1, schedule, how=how,
                                                  on_toggle=toggles.put_nowait))
        # a launch right after every cut and every heal: launches and their status
        # updates cross the link while it flaps
        launched: dict[str, RecordingFramework] = {}
        into_outage = 0
        while not flapping.done():
            next_toggle = asyncio.ensure_future(toggles.get())
            await asyncio.wait({next_toggle, flapping}, return_when=asyncio.FIRST_COMPLETED)
            if not next_toggle.done():
                next_toggle.cancel()
                break
            fw = c.pa if len(launched) % 3 != 2 else c.npa
            task_id = f"flap-{len(launched)}"
            await launch(fw, [c.npa if fw is c.pa else c.pa], a1_id, [task_id])
            launched[task_id] = fw
            into_outage += next_toggle.result() and toggles.empty()
        record = await flapping

        pa_ids = ["steady-pa", *(t for t, fw in launched.items() if fw is c.pa)]
        npa_ids = ["steady-npa", *(t for t, fw in launched.items() if fw is c.npa)]
        await all_running(c.pa, pa_ids)
        await all_running(c.npa, npa_ids)
        states = {**await reconciled(c.pa, pa_ids), **await reconciled(c.npa, npa_ids)}
        copies = await wait_for(lambda: (found := task_copies(c.lab.hosts))
                                and len(found) == len(states) and found,
                                message="one process per task")
        lost = sum(s != RUNNING for s in states.values())
        dups = duplicates(copies)
        bad = [u for fw in (c.pa, c.npa) for u in fw.sched.updates
               if u.state in (TaskState.TASK_UNREACHABLE, TaskState.TASK_LOST,
                              TaskState.TASK_DROPPED, TaskState.TASK_GONE)]
        running_twice = {t: n for fw, ids in ((c.pa, pa_ids), (c.npa, npa_ids)) for t in ids
                         if (n := told(fw, t).count(RUNNING)) != 1}
        assert lost == 0 and dups == 0, (states, copies)
        assert set(copies) == set(states), (copies, states)
        assert not bad, bad
        assert not running_twice, running_twice
        assert c.watch.count(a1_id, "unreachable", started) == 0
        print(f"\nflapping link ({how}): {len(record.outages)} outages over "
              f"{record.outages[-1][1] - record.outages[0][0]:.1f}s (longest "
              f"{record.longest:.2f}s, unreachable timeout {ping * pings:.0f}s), "
              f"{len(launched)} launches during it ({into_outage} into an outage), agent "
              f"re-registrations = {c.watch.count(a1_id, 'reregistered', started)}, "
              f"UNREACHABLE = 0; {len(states)} tasks RUNNING once each, "
              f"tasks lost = {lost}, duplicates = {dups}")
