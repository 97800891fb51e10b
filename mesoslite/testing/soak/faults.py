"""Faults: a seeded schedule (pure) and what carries each fault out on the cluster.

``schedule(seed, duration, kinds)`` lays faults out in time: they overlap, but never
two on one component at once (a component is a process, an agent's network, the
database, the Docker engine or a disk).  The same seed gives the same schedule, so a
failing run can be replayed (the timing of the cluster itself is not replayed).

``FaultRunner`` starts each fault at its time and heals it at its end, each as a step
of its own (steps on one component in order); ``heal_all`` ends whatever is active
(at the end of the fault phase, or on an error).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mesoslite.testing.netns import Direction, flap_schedule
from mesoslite.testing.soak.cluster import DISK_AGENT, NETNS_AGENTS, ROOT_AGENTS, SoakCluster
from mesoslite.testing.soak.report import History


class Kind(enum.Enum):
    KILL_LEADER = "kill-leader"
    KILL_FOLLOWER = "kill-follower"
    KILL_AGENT = "kill-agent"
    KILL_SERVICES = "kill-services"
    KILL_BATCH = "kill-batch"
    KILL_LB = "kill-lb"
    RESTART_POSTGRES = "restart-postgres"
    PARTITION = "partition"  # full: both directions
    PARTITION_ONE_WAY = "partition-one-way"
    FLAP = "flap"
    RESTART_DOCKER = "restart-docker"
    DISK_FULL = "disk-full"


ALL_KINDS = tuple(Kind)


@dataclass(frozen=True)
class Fault:
    """``kind`` on ``target`` from ``start`` (seconds into the fault phase) for
    ``duration`` seconds; ``seed`` drives what is random inside it (a flap's rhythm,
    a one-way cut's direction)."""

    start: float
    kind: Kind
    target: str
    duration: float
    seed: int

    @property
    def end(self) -> float:
        return self.start + self.duration

    def describe(self) -> str:
        return f"{self.kind.value} {self.target} at {self.start:.1f} s for {self.duration:.1f} s"


def _targets(kind: Kind) -> Sequence[str]:
    """The components a fault of ``kind`` may hit.  Masters are chosen when the
    fault starts (leader or follower), so their target names the role."""
    return {
        Kind.KILL_LEADER: ["leader"], Kind.KILL_FOLLOWER: ["follower"],
        Kind.KILL_AGENT: [*NETNS_AGENTS, *ROOT_AGENTS],
        Kind.KILL_SERVICES: ["services"], Kind.KILL_BATCH: ["batch"], Kind.KILL_LB: ["lb"],
        Kind.RESTART_POSTGRES: ["postgres"],
        Kind.PARTITION: NETNS_AGENTS, Kind.PARTITION_ONE_WAY: NETNS_AGENTS,
        Kind.FLAP: NETNS_AGENTS, Kind.RESTART_DOCKER: ["docker"],
        Kind.DISK_FULL: [DISK_AGENT],
    }[kind]


def _busy_keys(kind: Kind, target: str) -> set[str]:
    """What a fault occupies: no other fault may touch it meanwhile."""
    keys = {target}
    if kind in (Kind.KILL_LEADER, Kind.KILL_FOLLOWER, Kind.RESTART_POSTGRES):
        keys = {"masters"}  # one master fault at a time keeps a quorum-free lead possible
    if kind in (Kind.PARTITION, Kind.PARTITION_ONE_WAY, Kind.FLAP):
        keys = {f"net:{target}"}
    if kind is Kind.KILL_AGENT:
        keys = {target, f"net:{target}"}  # a dead agent's network cut would mean nothing
    if kind is Kind.DISK_FULL:
        # an agent killed during its full disk may lose update checkpoints it could
        # not write (a legitimate loss, not a bug): never both at once
        keys = {target, "disk"}
    if kind is Kind.RESTART_DOCKER:
        keys = {"docker"}
    return keys


def schedule(seed: int, duration: float, kinds: Sequence[Kind] = ALL_KINDS,
             mean_gap: float = 6.0, shortest: float = 3.0, longest: float = 15.0,
             start_after: float = 3.0) -> list[Fault]:
    """Faults in ``[start_after, duration)``, a new one every ``mean_gap`` s on average
    (exponential gaps: they overlap), each lasting ``shortest``-``longest`` s and ending
    before ``duration``; none on a component already hit by an active fault."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    t = start_after
    while True:
        t += rng.expovariate(1.0 / mean_gap)
        if t >= duration - shortest:
            break
        busy: set[str] = set()
        for f in faults:
            if f.start <= t < f.end:
                busy |= _busy_keys(f.kind, f.target)
        options = [(k, target) for k in kinds for target in _targets(k)
                   if not (_busy_keys(k, target) & busy)]
        if not options:
            continue
        kind, target = rng.choice(options)
        start = round(t, 3)
        length = math.floor(min(rng.uniform(shortest, longest), duration - start) * 1000) / 1000
        faults.append(Fault(start, kind, target, length, rng.randrange(2**31)))
    return faults


@dataclass
class Active:
    fault: Fault
    name: str  # the process or host actually hit
    heal: Callable[[], object]  # sync or async
    task: asyncio.Task[None] | None = None  # a flap running


@dataclass
class FaultRunner:
    """Carries faults out on ``cluster`` and records them in ``history``;
    ``windows`` collects (start, end, component) for the checkers, ``kinds`` (start,
    end, kind) for the figures (``time.time()``)."""

    cluster: SoakCluster
    history: History
    clock: Callable[[], float]
    active: dict[Fault, Active] = field(default_factory=dict)
    windows: list[tuple[float, float, str]] = field(default_factory=list)
    kinds: list[tuple[float, float, str]] = field(default_factory=list)
    cut: set[str] = field(default_factory=set)  # agents whose network is cut now
    healed: dict[str, float] = field(default_factory=dict)  # agent -> when its cut ended
    errors: list[str] = field(default_factory=list)
    _steps: set[asyncio.Task[None]] = field(default_factory=set)  # starts and heals under way
    _last: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # busy key -> its last step

    async def run(self, faults: list[Fault], began: float) -> None:
        """Start and heal every fault at its time (``began``: the loop time the
        phase started); returns once the last one is healed.

        Each start and heal runs as a step of its own, so a slow one never holds up
        the schedule: a load balancer revived while another fault holds the services
        framework down waits for that framework, and the framework's own revival must
        come at its time, not after that wait.  Steps on one component (the busy keys
        the schedule keeps apart) still run in order: a fault's heal after its start,
        and a new fault on a component after the previous one's heal."""
        loop = asyncio.get_running_loop()
        events = sorted([(f.start, 1, f) for f in faults] + [(f.end, 0, f) for f in faults],
                        key=lambda e: (e[0], e[1]))
        for at, starting, fault in events:
            delay = began + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule's own clock, not a test wait
            self._spawn(fault, bool(starting))
        await self.settle()

    def _spawn(self, fault: Fault, starting: bool) -> None:
        keys = _busy_keys(fault.kind, fault.target)
        before = {self._last[k] for k in keys if k in self._last}
        step = asyncio.create_task(self._step(fault, starting, before))
        for key in keys:
            self._last[key] = step
        self._steps.add(step)
        step.add_done_callback(self._steps.discard)

    async def _step(self, fault: Fault, starting: bool, before: set[asyncio.Task[None]]) -> None:
        if before:
            await asyncio.wait(before)  # the component's earlier steps first
        try:
            if starting:
                await self.start(fault)
            else:
                await self.end(fault)
        except Exception as exc:  # noqa: BLE001 - recorded; the soak goes on
            what = fault.describe() if starting else f"healing {fault.describe()}"
            self.errors.append(f"{what}: {exc!r}")
            self.history.add(self.clock(), "error", f"{what}: {exc!r}")

    async def settle(self) -> None:
        """Until every step begun has finished (each is bounded by its own waits)."""
        while self._steps:
            await asyncio.wait(set(self._steps))

    async def start(self, fault: Fault) -> None:
        c = self.cluster
        kind, target = fault.kind, fault.target
        name = target
        heal: Callable[[], object]
        if kind in (Kind.KILL_LEADER, Kind.KILL_FOLLOWER):
            leader = await c.leader()
            if kind is Kind.KILL_LEADER:
                if leader is None:
                    self.history.add(self.clock(), "fault", "kill-leader skipped: no leader")
                    return
                name = next(n for n, p in c.procs.items() if p is leader)
            else:
                followers = [n for n in c.procs if n.startswith("master") and c.procs[n]
                             is not leader and n not in c.held]
                if not followers:
                    return
                name = random.Random(fault.seed).choice(sorted(followers))
            c.kill(name)
            heal = _reviver(c, name)
        elif kind is Kind.KILL_AGENT:
            # its tasks run on unwatched: the framework replaces them once the master
            # gives the agent up, so its copies count as cut off until it is back
            c.kill(name)
            self.cut.add(name)
            heal = self._reviving_healer(name)
        elif kind in (Kind.KILL_SERVICES, Kind.KILL_BATCH, Kind.KILL_LB):
            c.kill(name)
            heal = _reviver(c, name)
        elif kind is Kind.RESTART_POSTGRES:
            assert c.pg is not None
            await c.pg.restart()
            heal = _nothing
        elif kind in (Kind.PARTITION, Kind.PARTITION_ONE_WAY):
            assert c.lab is not None
            host = c.host(target)
            direction = Direction.BOTH if kind is Kind.PARTITION else random.Random(
                fault.seed).choice([Direction.TO_HOST, Direction.FROM_HOST])
            c.lab.partition(host, direction)
            self.cut.add(target)
            heal = self._healer(target)
        elif kind is Kind.FLAP:
            assert c.lab is not None
            host = c.host(target)
            rhythm = flap_schedule(fault.duration, seed=fault.seed)
            self.cut.add(target)
            job = asyncio.create_task(self._flap(host, rhythm))
            self.active[fault] = Active(fault, name, self._healer(target), job)
            self._record(fault, name)
            return
        elif kind is Kind.RESTART_DOCKER:
            await c.restart_docker()
            heal = _nothing
        elif kind is Kind.DISK_FULL:
            filler = await asyncio.to_thread(c.fill_disk)
            heal = _unlinker(filler)
        else:  # pragma: no cover - every Kind is handled above
            raise AssertionError(kind)
        self.active[fault] = Active(fault, name, heal)
        self._record(fault, name)

    async def _flap(self, host: object, rhythm: list[tuple[float, float]]) -> None:
        assert self.cluster.lab is not None
        await self.cluster.lab.flap(host, rhythm, how="drop")  # type: ignore[arg-type]

    def _record(self, fault: Fault, name: str) -> None:
        now = self.clock()
        self.history.add(now, "fault", fault.describe(), fault=fault.kind.value, target=name)
        component = {Kind.KILL_LEADER: "master", Kind.KILL_FOLLOWER: "master",
                     Kind.RESTART_POSTGRES: "postgres"}.get(fault.kind, name)
        self.windows.append((now, now + fault.duration, component))
        self.kinds.append((now, now + fault.duration, fault.kind.value))

    def _healer(self, agent: str) -> Callable[[], None]:
        def heal() -> None:
            assert self.cluster.lab is not None
            self.cluster.lab.heal(self.cluster.host(agent))
            self.cut.discard(agent)
            self.healed[agent] = self.clock()
        return heal

    def _reviving_healer(self, agent: str) -> Callable[[], object]:
        async def heal() -> None:
            await self.cluster.revive(agent)
            self.cut.discard(agent)
            self.healed[agent] = self.clock()
        return heal

    async def end(self, fault: Fault) -> None:
        active = self.active.pop(fault, None)
        if active is None:
            return
        if active.task is not None:
            active.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await active.task
        result = active.heal()
        if asyncio.iscoroutine(result):
            await result
        self.history.add(self.clock(), "heal", fault.describe(), target=active.name)

    async def heal_all(self) -> None:
        """Let the steps under way finish, then heal whatever is still active."""
        await self.settle()
        for fault in list(self.active):
            try:
                await self.end(fault)
            except Exception as exc:  # noqa: BLE001 - keep healing the rest
                self.errors.append(f"healing {fault.describe()}: {exc!r}")


def _reviver(cluster: SoakCluster, name: str) -> Callable[[], object]:
    return lambda: cluster.revive(name)


def _nothing() -> None:
    return None


def _unlinker(path: Path) -> Callable[[], None]:
    return lambda: path.unlink(missing_ok=True)
