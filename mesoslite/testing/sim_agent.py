"""Simulated agents for scale benchmarks: the real agent protocol, no real tasks.

A ``SimAgentPool`` runs many ``SimAgent`` objects on one event loop; each keeps its
own WebSocket to the master at ``GET /agent/v1/link`` (a minimal client,
``ws_link.WsLink``: aiohttp's cost as much CPU as the master being measured) and
behaves, on the wire, like ``mesoslite.agent.server.Agent``:

* it registers with its resources (re-registering with its id and the tasks it
  holds after a dropped link) and answers every ``Ping`` with a ``Pong``;
* on ``RunTasks`` each task gets ``TASK_STARTING`` then ``TASK_RUNNING`` (after
  ``launch_delay`` and ``running_delay`` seconds, 0 by default), then
  ``TASK_FINISHED`` after ``task_duration`` seconds if that is set;
* a task's updates form an ordered stream: only the head is in flight, each with a
  fresh 16-byte uuid, and it is resent with exponential backoff (``retry_base``
  doubling up to ``retry_max``) until an ``AckUpdates`` names its uuid; every head
  due in one event-loop tick travels in one ``StatusUpdates`` frame per agent;
* ``KillTask`` and ``ShutdownFramework`` end tasks with ``TASK_KILLED``; a task is
  forgotten once its terminal update is acknowledged;
* it follows the leader as the real agent does: the pool takes a list of master
  URLs, each agent tries them in turn (after a dropped link too), follows a
  follower's 307 to the leader at once, backs off (jittered, doubling up to
  ``reconnect_max``) when a master is unreachable or has no leader yet (503), and
  drops a link on which the master has been silent for the ``link_timeout_seconds``
  its ``Registered`` named.  Commands from an older leader epoch are ignored.

Every launch is counted per (framework id, task id) over the whole pool, also after
the task is forgotten, so a test can assert that no task was launched twice
(``SimAgentPool.duplicate_launches``).  The pool records, per leader epoch, when
every agent had registered with that epoch's leader (``complete_epochs``): the end
of a failover as the agents see it.

Nothing is checkpointed: a simulated agent lives as long as its process.  Run a
pool as its own process (so it does not compete with the code being measured)::

    python -m mesoslite.testing.sim_agent --master http://127.0.0.1:5050 --agents 1000
    python -m mesoslite.testing.sim_agent --master http://m1:5050,http://m2:5050 ...

It prints one JSON line ``{"event": "registered", ...}`` once every agent is
registered, then ``{"event": "reregistered", "epoch": E, "at": T, ...}`` each time
every agent has registered with a leader of a newer epoch ``E`` (``T`` from
``time.time()``; also ``first`` and ``median``: when the first and the median agent
registered with it), and ``{"event": "stats", ...}`` when it exits (SIGTERM, SIGINT or
the end of its standard input).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import random
import signal
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin

from mesoslite import __version__
from mesoslite.messages.agent import (
    AckUpdates,
    AgentTask,
    KillTask,
    Ping,
    Pong,
    ProtocolError,
    Refused,
    Register,
    Registered,
    RunTasks,
    ShutdownFramework,
    StatusUpdate,
    StatusUpdates,
    decode_from_master,
    encode,
)
from mesoslite.messages.mesos import (
    ID,
    CapabilityType,
    ContainerStatus,
    FrameworkInfo,
    Reason,
    Source,
    TaskInfo,
    TaskState,
    TaskStatus,
    from_resources,
)
from mesoslite.resources import Resources
from mesoslite.testing.poll import within
from mesoslite.testing.ws_link import HandshakeRefused, WsLink

log = logging.getLogger(__name__)

DEFAULT_RESOURCES = "cpus:8;mem:32768;disk:100000;ports:[31000-32000]"
MAX_FRAME = 64 * 2**20
_AGENT_STATES = {TaskState.TASK_STARTING, TaskState.TASK_LOST, TaskState.TASK_DROPPED}
LINK_PATH = "/agent/v1/link"

Key = tuple[str, str]


@dataclass
class SimAgentConfig:
    """How every agent of a pool behaves (times in seconds)."""

    resources: Resources = field(default_factory=lambda: Resources.parse(DEFAULT_RESOURCES))
    attributes: dict[str, str] = field(default_factory=dict)
    launch_delay: float = 0.0  # RunTasks -> TASK_STARTING
    running_delay: float = 0.0  # TASK_STARTING -> TASK_RUNNING
    task_duration: float | None = None  # TASK_RUNNING -> TASK_FINISHED; None: until killed
    retry_base: float = 2.0  # first resend of an unacknowledged update
    retry_max: float = 60.0
    reconnect_max: float = 5.0
    register_timeout: float = 30.0  # for the master's answer to a registration
    connect_concurrency: int = 64  # WebSocket handshakes in flight at once, per pool
    secret: str | None = None
    hostname_prefix: str = "sim"
    address: str = "127.0.0.1"
    port: int = 5051


@dataclass
class SimStats:
    """Counters over all agents of a pool."""

    registrations: int = 0
    refusals: int = 0
    disconnects: int = 0
    redirects: int = 0  # followers' 307s, followed to the leader (see run)
    connect_failures: int = 0  # a master unreachable, or answering without a leader
    silent_links: int = 0  # links dropped after link_timeout_seconds of silence
    run_tasks_frames: int = 0
    tasks_launched: int = 0
    duplicate_launches: int = 0
    kills: int = 0
    update_frames: int = 0
    updates_sent: int = 0
    updates_resent: int = 0
    acks: int = 0
    stale_acks: int = 0
    pings: int = 0


@dataclass
class SimTask:
    """A task a simulated agent holds, with its update stream."""

    framework_id: str
    info: TaskInfo
    state: TaskState = TaskState.TASK_STAGING
    latest: TaskStatus | None = None
    pending: deque[TaskStatus] = field(default_factory=deque)
    backoff: float = 0.0
    next_retry: float = 0.0
    timer: asyncio.TimerHandle | None = None


class SimAgent:
    """One simulated agent; see the module docstring.  Created by ``SimAgentPool``."""

    def __init__(self, pool: SimAgentPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.config = pool.config
        self.hostname = f"{self.config.hostname_prefix}-{index}"
        self.agent_id: str | None = None
        self.max_epoch = 0
        self.registered = asyncio.Event()
        self.registered_epoch: int | None = None  # the leader epoch of the current link
        self.master: str | None = None  # URL of the master of the current link
        self.tasks: dict[Key, SimTask] = {}
        self.frameworks: dict[str, FrameworkInfo] = {}
        self._ws: WsLink | None = None
        self._due: set[Key] = set()
        self._flush_scheduled = False

    # ---------------------------------------------------------------- link

    async def run(self) -> None:
        """Keep a registered link to the leading master until cancelled.

        The configured masters are tried in turn, starting with the first and moving
        on after every failure or dropped link (as ``mesoslite.agent.server.Agent``).
        A follower's 307 is followed to the leader at once, without a pause, unless
        redirects go round in a loop (more in a row than there are masters)."""
        masters = self.pool.masters
        delay = 0.1
        attempt = 0
        redirects_in_row = 0
        leader: str | None = None
        stats = self.pool.stats
        while True:
            master = leader or masters[attempt % len(masters)]
            leader = None
            attempt += 1
            try:
                await self._connect(master)
                delay = 0.1
            except HandshakeRefused as exc:
                location = exc.location
                if exc.status == 307 and location and redirects_in_row < len(masters):
                    leader = _master_base(urljoin(master + LINK_PATH, location))
                    redirects_in_row += 1
                    stats.redirects += 1
                    log.debug("%s: %s is not the leader; following it to %s",
                              self.hostname, master, leader)
                    continue
                stats.connect_failures += 1
                log.debug("%s: master %s refused the link: %s", self.hostname, master,
                          exc.status)
            except (TimeoutError, OSError) as exc:
                stats.connect_failures += 1
                log.debug("%s: master %s unreachable: %s", self.hostname, master, exc)
            except ProtocolError as exc:
                log.error("%s: master %s sent a bad frame: %s", self.hostname, master, exc)
            redirects_in_row = 0
            if self.registered.is_set():
                stats.disconnects += 1
            self._unregistered()
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.config.reconnect_max)

    def _unregistered(self) -> None:
        self.registered.clear()
        self._ws = None
        self.master = None
        if self.registered_epoch is not None:
            self.pool.note_registration(self.registered_epoch, None)
            self.registered_epoch = None

    async def _connect(self, master: str) -> None:
        pool = self.pool
        async with pool.connect_slots:
            ws = await WsLink.connect(master + LINK_PATH, self.config.register_timeout,
                                      MAX_FRAME)
            ws.send_bytes(encode(self.register_message()))
        silence = self.config.register_timeout
        async with ws:
            while True:
                try:
                    frame = await ws.receive(timeout=silence)
                except TimeoutError:
                    # the master pings every interval: this much silence means a dead
                    # (perhaps half-open) link; register again
                    self.pool.stats.silent_links += 1
                    return
                if frame is None:
                    return  # closed
                message = decode_from_master(frame)
                if message.epoch < self.max_epoch:
                    continue  # a deposed master
                self.max_epoch = message.epoch
                if isinstance(message, Registered):
                    if message.link_timeout_seconds > 0:
                        silence = message.link_timeout_seconds
                    self.master = master
                    self._on_registered(ws, message)
                elif isinstance(message, Refused):
                    pool.stats.refusals += 1
                    log.error("%s: registration refused: %s", self.hostname, message.message)
                    return
                else:
                    self._on_command(ws, message)

    def register_message(self) -> Register:
        """What this agent sends first on every link (its tasks, after a drop)."""
        cfg = self.config
        tasks = [AgentTask(framework_id=t.framework_id, task=t.info,
                           status=t.latest or TaskStatus(task_id=t.info.task_id, state=t.state))
                 for t in self.tasks.values()]
        return Register(
            agent_id=self.agent_id, hostname=self.hostname, address=cfg.address,
            port=cfg.port, resources=from_resources(cfg.resources), attributes=cfg.attributes,
            tasks=tasks, frameworks=list(self.frameworks.values()), version=__version__,
            secret=cfg.secret,
        )

    def _on_registered(self, ws: WsLink, msg: Registered) -> None:
        self.agent_id = msg.agent_id
        self._ws = ws
        self.pool.stats.registrations += 1
        self.pool.note_registration(self.registered_epoch, msg.epoch)
        self.registered_epoch = msg.epoch
        self.registered.set()
        for key, task in list(self.tasks.items()):
            if task.info.task_id.value in msg.kill_task_ids:
                self.kill(*key)
        for key, task in self.tasks.items():
            if task.pending:
                task.backoff = 0.0
                self._due.add(key)
        self._schedule_flush()

    def _on_command(self, ws: WsLink, message: Any) -> None:
        if isinstance(message, Ping):
            self.pool.stats.pings += 1
            self._send(ws, encode(Pong(seq=message.seq)))
        elif isinstance(message, AckUpdates):
            for ack in message.acks:
                self.acknowledge(ack.framework_id, ack.task_id, ack.uuid)
        elif isinstance(message, RunTasks):
            self.pool.stats.run_tasks_frames += 1
            for launch in message.launches:
                for info in launch.tasks:
                    self.launch(launch.framework, info)
        elif isinstance(message, KillTask):
            self.kill(message.framework_id, message.task_id)
        elif isinstance(message, ShutdownFramework):
            for fid, tid in list(self.tasks):
                if fid == message.framework_id:
                    self.kill(fid, tid, Reason.REASON_FRAMEWORK_REMOVED, "Framework shut down")

    def _send(self, ws: WsLink, data: bytes) -> None:
        ws.send_text(data)  # dropped on a closed link: the retry timer resends

    # ---------------------------------------------------------------- tasks

    def launch(self, framework: FrameworkInfo, info: TaskInfo) -> None:
        """Start the simulated task: STARTING, RUNNING and maybe FINISHED, on time."""
        assert framework.id is not None
        fid = framework.id.value
        key = (fid, info.task_id.value)
        self.pool.launch_counts[key] += 1
        if key in self.tasks:
            self.pool.stats.duplicate_launches += 1
            return
        self.pool.stats.tasks_launched += 1
        self.frameworks[fid] = framework
        task = self.tasks[key] = SimTask(fid, info)
        self._after(task, self.config.launch_delay, self._starting, task)

    def _after(self, task: SimTask, delay: float, step: Any, *args: Any) -> None:
        if delay <= 0:
            step(*args)
        else:
            task.timer = asyncio.get_running_loop().call_later(delay, step, *args)

    def _starting(self, task: SimTask) -> None:
        self.update(task, TaskState.TASK_STARTING)
        self._after(task, self.config.running_delay, self._running, task)

    def _running(self, task: SimTask) -> None:
        self.update(task, TaskState.TASK_RUNNING)
        if self.config.task_duration is not None:
            self._after(task, self.config.task_duration, self.update, task,
                        TaskState.TASK_FINISHED, None, "Command exited with status 0")

    def kill(self, framework_id: str, task_id: str, reason: Reason | None = None,
             message: str = "Task killed") -> None:
        """Kill a task (TASK_KILLING first if its framework asked for that state)."""
        task = self.tasks.get((framework_id, task_id))
        if task is None or task.state.terminal or task.state == TaskState.TASK_KILLING:
            return
        self.pool.stats.kills += 1
        if task.timer is not None:
            task.timer.cancel()
            task.timer = None
        fw = self.frameworks.get(framework_id)
        if fw is not None and fw.has_capability(CapabilityType.TASK_KILLING_STATE):
            self.update(task, TaskState.TASK_KILLING)
        self.update(task, TaskState.TASK_KILLED, reason, message)

    def update(self, task: SimTask, state: TaskState, reason: Reason | None = None,
               message: str | None = None) -> None:
        """Append a new update (fresh uuid) to the task's stream."""
        if task.state.terminal:
            return
        task.state = state
        tid = task.info.task_id.value
        status = TaskStatus(
            task_id=task.info.task_id, state=state, message=message,
            source=Source.SOURCE_AGENT if state in _AGENT_STATES else Source.SOURCE_EXECUTOR,
            reason=reason, agent_id=ID(self.agent_id or ""), executor_id=ID(tid),
            timestamp=time.time(), uuid=uuid.uuid4().bytes,
            container_status=ContainerStatus(container_id=ID(f"{self.hostname}-{tid}")),
        )
        task.latest = status
        task.pending.append(status)
        if len(task.pending) == 1:
            self._make_due((task.framework_id, tid))

    def acknowledge(self, framework_id: str, task_id: str, uuid_: bytes) -> None:
        """Apply an ack: drop the head it names, send the next, forget a done task."""
        key = (framework_id, task_id)
        task = self.tasks.get(key)
        stats = self.pool.stats
        if task is None or not task.pending or task.pending[0].uuid != uuid_:
            stats.stale_acks += 1
            return
        stats.acks += 1
        task.pending.popleft()
        task.backoff = 0.0
        task.next_retry = 0.0
        if task.pending:
            self._make_due(key)
        elif task.state.terminal:
            del self.tasks[key]
            self._due.discard(key)

    def unacknowledged(self) -> int:
        return sum(len(t.pending) for t in self.tasks.values())

    # ---------------------------------------------------------------- sending

    def _make_due(self, key: Key) -> None:
        self._due.add(key)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Send every due head in one frame and schedule its resend."""
        self._flush_scheduled = False
        ws = self._ws
        if ws is None or ws.closed or not self.registered.is_set():
            return  # kept in _due: sent after the next registration
        now = time.monotonic()
        cfg = self.config
        batch: list[StatusUpdate] = []
        resent = 0
        for key in self._due:
            task = self.tasks.get(key)
            if task is None or not task.pending:
                continue
            head = task.pending[0]
            batch.append(StatusUpdate(framework_id=task.framework_id, status=head,
                                      latest_state=task.state))
            if task.backoff:
                resent += 1
            task.backoff = min(cfg.retry_max, (task.backoff * 2) or cfg.retry_base)
            task.next_retry = now + task.backoff
            self.pool.schedule_retry(task.next_retry, self, key)
        self._due.clear()
        if batch:
            stats = self.pool.stats
            stats.update_frames += 1
            stats.updates_sent += len(batch)
            stats.updates_resent += resent
            self._send(ws, encode(StatusUpdates(updates=batch)))

    def retry(self, key: Key, when: float) -> None:
        """A resend timer fired: resend the head if it is still the one it was for."""
        task = self.tasks.get(key)
        if task is not None and task.pending and task.next_retry == when:
            self._make_due(key)


class SimAgentPool:
    """``count`` simulated agents on the running event loop.

    ``masters`` is one master URL, a comma-separated list of them, or a sequence;
    the agents follow whichever of them leads (see ``SimAgent.run``).  ``start``
    opens the links (at most ``config.connect_concurrency`` handshakes at once, so
    the master's listen backlog never overflows); ``wait_registered`` waits for all
    of them; ``stop`` closes everything.

    ``on_complete(epoch, at)``, if set, is called the first time every agent is
    registered with the leader of ``epoch`` (``at`` from ``time.time()``).
    """

    def __init__(self, masters: str | Sequence[str], count: int,
                 config: SimAgentConfig | None = None) -> None:
        self.masters = parse_masters(masters)
        self.master_url = self.masters[0]
        self.link_url = self.master_url + LINK_PATH
        self.config = config or SimAgentConfig()
        self.stats = SimStats()
        self.agents = [SimAgent(self, i) for i in range(count)]
        # launches per (framework id, task id), kept after a task is forgotten
        self.launch_counts: Counter[Key] = Counter()
        # registered agents per leader epoch; epoch -> time.time() all were registered
        self._epoch_counts: Counter[int] = Counter()
        self.complete_epochs: dict[int, float] = {}
        # epoch -> time.time() of each registration with that epoch's leader
        self.registration_times: dict[int, list[float]] = {}
        self.on_complete: Callable[[int, float], None] | None = None
        self.connect_slots = asyncio.Semaphore(max(1, self.config.connect_concurrency))
        self._retries: list[tuple[float, int, SimAgent, Key]] = []
        self._seq = itertools.count()
        self._runs: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Open every agent's link (returns at once; see ``wait_registered``)."""
        self._runs = [asyncio.create_task(a.run(), name=f"sim-agent-{a.index}")
                      for a in self.agents]
        self._runs.append(asyncio.create_task(self._retry_loop(), name="sim-agent-retries"))

    def registered_count(self) -> int:
        return sum(1 for a in self.agents if a.registered.is_set())

    async def wait_registered(self, timeout: float = 60.0) -> None:
        """Return once every agent is registered; raise ``WaitTimeout`` (saying how
        many had not) after ``timeout``."""
        async def all_registered() -> None:
            await asyncio.gather(*(a.registered.wait() for a in self.agents))

        missing = len(self.agents) - self.registered_count()
        await within(timeout, f"{missing} of {len(self.agents)} simulated agents to register",
                     all_registered())

    def note_registration(self, old_epoch: int | None, new_epoch: int | None) -> None:
        """An agent's link moved from ``old_epoch``'s leader to ``new_epoch``'s (None:
        no link); records when all agents first were on one epoch's leader."""
        if old_epoch is not None:
            self._epoch_counts[old_epoch] -= 1
        if new_epoch is None:
            return
        self._epoch_counts[new_epoch] += 1
        self.registration_times.setdefault(new_epoch, []).append(time.time())
        if (self._epoch_counts[new_epoch] == len(self.agents)
                and new_epoch not in self.complete_epochs):
            at = self.complete_epochs[new_epoch] = time.time()
            if self.on_complete is not None:
                self.on_complete(new_epoch, at)

    def registered_epochs(self) -> dict[int, int]:
        """Leader epoch -> agents registered with that epoch's leader now."""
        return {e: n for e, n in sorted(self._epoch_counts.items()) if n}

    def duplicate_launches(self) -> dict[Key, int]:
        """(framework id, task id) -> launches, for every task launched more than once
        (on one agent or on several)."""
        return {key: n for key, n in self.launch_counts.items() if n > 1}

    def unacknowledged(self) -> int:
        return sum(a.unacknowledged() for a in self.agents)

    def tasks(self) -> Iterable[SimTask]:
        for agent in self.agents:
            yield from agent.tasks.values()

    def schedule_retry(self, when: float, agent: SimAgent, key: Key) -> None:
        heapq.heappush(self._retries, (when, next(self._seq), agent, key))

    async def _retry_loop(self) -> None:
        tick = max(0.01, min(0.5, self.config.retry_base / 4))
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            heap = self._retries
            while heap and heap[0][0] <= now:
                when, _, agent, key = heapq.heappop(heap)
                agent.retry(key, when)

    async def stop(self) -> None:
        """Close every link."""
        for run in self._runs:
            run.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)
        self._runs = []


def parse_masters(masters: str | Sequence[str]) -> list[str]:
    """``"http://a:5050, http://b:5050/"`` or a sequence -> base URLs without a
    trailing slash; raises ValueError when none is given."""
    items = masters.split(",") if isinstance(masters, str) else list(masters)
    out = [m.strip().rstrip("/") for m in items if m.strip()]
    if not out:
        raise ValueError("at least one master URL is needed")
    return out


def _master_base(url: str) -> str:
    """A redirect target of the link -> the master's base URL."""
    base, _, _ = url.partition(LINK_PATH)
    return base.rstrip("/")


# -------------------------------------------------------------------- command line


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mesoslite.testing.sim_agent",
                                description="Run simulated agents against a master.")
    p.add_argument("--master", required=True,
                   help="master URL(s), comma-separated, e.g. http://127.0.0.1:5050")
    p.add_argument("--agents", type=int, default=100)
    p.add_argument("--hostname-prefix", default="sim",
                   help="agents are named PREFIX-0, PREFIX-1, ...")
    p.add_argument("--reconnect-max", type=float, default=5.0,
                   help="longest pause between attempts to reach a master (s)")
    p.add_argument("--resources", default=DEFAULT_RESOURCES)
    p.add_argument("--launch-delay", type=float, default=0.0)
    p.add_argument("--running-delay", type=float, default=0.0)
    p.add_argument("--task-duration", type=float, default=None)
    p.add_argument("--retry", type=float, default=2.0, help="first resend after (s)")
    p.add_argument("--register-timeout", type=float, default=120.0)
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


async def _main(args: argparse.Namespace) -> int:
    config = SimAgentConfig(
        resources=Resources.parse(args.resources), launch_delay=args.launch_delay,
        running_delay=args.running_delay, task_duration=args.task_duration,
        retry_base=args.retry, hostname_prefix=args.hostname_prefix,
        reconnect_max=args.reconnect_max)
    pool = SimAgentPool(args.master, args.agents, config)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    with contextlib.suppress(ValueError, OSError):  # no usable stdin: signals only
        loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1() or done.set())
    start = time.monotonic()
    await pool.start()
    try:
        await pool.wait_registered(args.register_timeout)
    except TimeoutError:
        _emit({"event": "error", "message": "agents did not register",
               "registered": pool.registered_count()})
        await pool.stop()
        return 1
    first = max(pool.complete_epochs, default=0)
    _emit({"event": "registered", "agents": len(pool.agents), "epoch": first,
           "seconds": round(time.monotonic() - start, 3)})

    def complete(epoch: int, at: float) -> None:
        if epoch > first:
            times = sorted(pool.registration_times[epoch])
            _emit({"event": "reregistered", "agents": len(pool.agents), "epoch": epoch,
                   "at": at, "first": times[0], "median": times[len(times) // 2]})

    pool.on_complete = complete
    await done.wait()
    await pool.stop()
    _emit({"event": "stats", **pool_stats(pool)})
    return 0


def pool_stats(pool: SimAgentPool) -> dict[str, Any]:
    """The pool's counters as JSON-ready data, with the tasks it holds (by state) and
    the task ids launched more than once (``"framework/task": launches``)."""
    states = Counter(t.state.value for t in pool.tasks())
    return asdict(pool.stats) | {
        "unacknowledged": pool.unacknowledged(),
        "tasks_held": dict(sorted(states.items())),
        "distinct_tasks_launched": len(pool.launch_counts),
        "duplicate_task_ids": {f"{f}/{t}": n for (f, t), n in pool.duplicate_launches().items()},
        "registered_epochs": {str(e): n for e, n in pool.registered_epochs().items()},
    }


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m mesoslite.testing.sim_agent``; returns the exit code."""
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
