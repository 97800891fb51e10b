"""Health checks run by the agent, with Mesos/Marathon semantics.

Three parts:

* ``HealthState`` - the pure decision logic: check results (and the time, a parameter)
  in, actions out (``SendHealth``, ``KillTask``), plus when the next check is due.
* ``Prober`` - one probe of a target (``HttpTarget``, ``TcpTarget``, ``CommandTarget``:
  an address, a port, a path or a command; nothing of the agent).  The services
  framework's own checks use it and ``HealthState`` too.
* ``HealthMonitor`` - the agent's I/O loop, one asyncio task per RUNNING task with a
  ``health_check``, hooked to ``TaskManager.on_running`` / ``on_ended``; it hands each
  change to the task lifecycle as a ``HealthVerdict``.

Semantics (``mesos.HealthCheck``):

* the first check runs ``delay_seconds`` after the task is RUNNING, then one every
  ``interval_seconds`` (at least ``MIN_INTERVAL``) after the previous one finished;
* a check that takes longer than ``timeout_seconds`` fails (0: no limit);
* failures before the first success and within ``grace_period_seconds`` of the start
  are ignored (neither counted nor reported); the first success ends the grace period;
* a status update (TASK_RUNNING, ``healthy`` set, reason
  REASON_TASK_HEALTH_CHECK_STATUS_UPDATED) goes out for the first counted result and
  for every change between healthy and unhealthy - not for every check;
* after ``consecutive_failures`` counted failures in a row (0: never) the task is
  killed (its kill policy's grace period) and reported TASK_FAILED with reason
  REASON_TASK_HEALTH_CHECK_STATUS_UPDATED (Mesos has no dedicated "killed by its
  health check" reason; this is the one its health checker uses) and a message
  saying the health check failed.

Check kinds:

* COMMAND - through ``Container.exec``: inside the container for docker tasks, in
  the task's environment and sandbox for process tasks.  ``shell`` (default) runs
  ``/bin/sh -c value``; variables in ``command.environment`` are passed with ``env``.
* HTTP - ``GET <scheme>://<agent address>:<port><path>`` from the agent, no redirects
  followed; healthy on 2xx/3xx, or on one of ``statuses`` when given.  For a docker
  BRIDGE task, ``port`` may name a *container* port of one of its port mappings: it
  is translated to the mapped host port (a host port is used as is).
* TCP - a connection to ``<agent address>:<port>`` (same port translation).

After an agent restart the last ``healthy`` reported for the task is the starting
point: no repeated update when nothing changed, and no new grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from mesoslite.agent.lifecycle import AgentTaskState, Phase
from mesoslite.clock import Clock, SystemClock
from mesoslite.messages.mesos import (
    CommandInfo,
    ContainerType,
    DockerNetwork,
    HealthCheck,
    HealthCheckType,
    TaskInfo,
)

if TYPE_CHECKING:
    from mesoslite.agent.tasks import TaskManager

log = logging.getLogger(__name__)

DETAIL_LIMIT = 200  # characters of a failed check's output kept in messages
MIN_INTERVAL = 0.1  # seconds; an interval of 0 would run checks back to back


# ---------------------------------------------------------------- pure state machine


@dataclass(frozen=True)
class HealthPolicy:
    delay: float = 15.0
    interval: float = 10.0
    timeout: float = 20.0  # 0: no limit
    grace: float = 10.0
    max_failures: int = 3  # 0: never kill

    @classmethod
    def from_check(cls, check: HealthCheck) -> HealthPolicy:
        return cls(delay=max(0.0, check.delay_seconds),
                   interval=max(MIN_INTERVAL, check.interval_seconds),
                   timeout=max(0.0, check.timeout_seconds),
                   grace=max(0.0, check.grace_period_seconds),
                   max_failures=max(0, check.consecutive_failures))


@dataclass(frozen=True)
class SendHealth:
    healthy: bool


@dataclass(frozen=True)
class KillTask:
    message: str


Action = SendHealth | KillTask


class HealthState:
    """The decisions of one task's health checker (see the module docstring).

    ``started_at`` is when the task became RUNNING; ``reported`` the last ``healthy``
    already sent for it (None: nothing yet).  Feed every result to ``record`` with the
    time it completed; run the next check at ``next_check_at``.  Once a ``KillTask``
    was returned, ``done`` is True and further results are ignored.
    """

    def __init__(self, policy: HealthPolicy, started_at: float,
                 reported: bool | None = None) -> None:
        self.policy = policy
        self.started_at = started_at
        self.reported = reported
        self.grace_over = reported is not None  # it was counted before a restart
        self.failures = 0
        self.done = False
        self.next_check_at = started_at + policy.delay

    def in_grace(self, now: float) -> bool:
        return not self.grace_over and now < self.started_at + self.policy.grace

    def record(self, healthy: bool, now: float, detail: str = "") -> list[Action]:
        """The actions a result completed at ``now`` calls for."""
        if self.done:
            return []
        self.next_check_at = now + self.policy.interval
        if healthy:
            self.grace_over = True
            self.failures = 0
            return self._report(True)
        if self.in_grace(now):
            return []
        self.failures += 1
        actions = self._report(False)
        limit = self.policy.max_failures
        if limit and self.failures >= limit:
            self.done = True
            why = f": {detail}" if detail else ""
            actions.append(KillTask(
                f"Health check failed {self.failures} consecutive times{why}; task killed"))
        return actions

    def _report(self, healthy: bool) -> list[Action]:
        if self.reported == healthy:
            return []
        self.reported = healthy
        return [SendHealth(healthy)]


# ---------------------------------------------------------------- probes (I/O)


@dataclass(frozen=True)
class HttpTarget:
    """``GET <scheme>://<host>:<port><path>``, no redirects followed; healthy on one of
    ``statuses`` when given, else on 2xx/3xx (and 1xx with ``ignore_1xx``)."""

    host: str
    port: int
    path: str = "/"
    scheme: str = "http"
    statuses: tuple[int, ...] = ()
    ignore_1xx: bool = False


@dataclass(frozen=True)
class TcpTarget:
    """Healthy when a TCP connection to ``host:port`` opens."""

    host: str
    port: int


@dataclass(frozen=True)
class CommandTarget:
    """Healthy when ``argv`` exits 0; ``run(argv, timeout)`` runs it where the task
    runs and returns (exit status, output) - ``Container.exec`` on the agent; None
    when there is nothing to run it in."""

    argv: tuple[str, ...]
    run: Callable[[list[str], float], Awaitable[tuple[int, str]]] | None


ProbeTarget = HttpTarget | TcpTarget | CommandTarget


class Prober:
    """Probes targets; returns (healthy, detail) - the detail says why not.  Used by
    the agent's checks and by the services framework's own."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def probe(self, target: ProbeTarget, timeout: float) -> tuple[bool, str]:
        """One probe; it fails when it takes longer than ``timeout`` seconds (0: no
        limit; a COMMAND target's ``run`` enforces it itself)."""
        limit = timeout if timeout > 0 else None
        try:
            if isinstance(target, CommandTarget):
                return await self._command(target, limit)
            coro = self._http(target) if isinstance(target, HttpTarget) else self._tcp(target)
            return await asyncio.wait_for(coro, limit)
        except TimeoutError:
            return False, f"timed out after {timeout:g}s"
        except (OSError, aiohttp.ClientError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}"[:DETAIL_LIMIT]

    async def _command(self, target: CommandTarget, limit: float | None) -> tuple[bool, str]:
        if target.run is None:
            return False, "the task has no container"
        try:
            code, output = await target.run(list(target.argv), limit or 1e9)
        except NotImplementedError:
            return False, "this containerizer cannot run COMMAND checks"
        if code == 0:
            return True, ""
        tail = output.strip()[-DETAIL_LIMIT:]
        return False, f"command exited with status {code}" + (f" ({tail})" if tail else "")

    async def http_status(self, target: HttpTarget, timeout: float) -> int | None:
        """The status code ``target`` answers with; None when it did not answer within
        ``timeout`` seconds (0: no limit) or the connection failed (generic checks)."""
        try:
            return (await asyncio.wait_for(self._get(target), timeout or None))[0]
        except (TimeoutError, OSError, aiohttp.ClientError, ValueError):
            return None

    async def tcp_open(self, target: TcpTarget, timeout: float) -> bool:
        """Whether a connection to ``target`` opens within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._tcp(target), timeout or None)
        except (TimeoutError, OSError):
            return False
        return True

    async def _get(self, target: HttpTarget) -> tuple[int, str]:
        path = target.path if target.path.startswith("/") else "/" + target.path
        url = f"{target.scheme}://{_host(target.host)}:{target.port}{path}"
        if self._session is None:
            # A fresh connection per check (no keep-alive): it proves the server accepts.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, ssl=False))
        async with self._session.get(url, allow_redirects=False) as resp:
            return resp.status, url

    async def _http(self, target: HttpTarget) -> tuple[bool, str]:
        status, url = await self._get(target)
        if target.statuses:
            ok = status in target.statuses
        else:
            ok = 200 <= status < 400 or (target.ignore_1xx and 100 <= status < 200)
        return ok, "" if ok else f"GET {url} answered {status}"

    async def _tcp(self, target: TcpTarget) -> tuple[bool, str]:
        _, writer = await asyncio.open_connection(_host(target.host), target.port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True, ""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _host(address: str) -> str:
    # Tasks listening on every interface answer on loopback, too.
    return "127.0.0.1" if address in ("", "0.0.0.0") else address


# ---------------------------------------------------------------- the agent's checks


def check_port(task: TaskInfo, port: int) -> int:
    """The host port to probe for ``port`` (see the module docstring)."""
    container = task.container
    if container is None or container.type != ContainerType.DOCKER or container.docker is None:
        return port
    docker = container.docker
    if docker.network != DockerNetwork.BRIDGE:
        return port
    if any(pm.host_port == port for pm in docker.port_mappings):
        return port
    for pm in docker.port_mappings:
        if pm.container_port == port:
            return pm.host_port
    return port


def command_argv(check: HealthCheck) -> list[str]:
    return check_command_argv(check.command, "health check")


def check_command_argv(command: CommandInfo | None, what: str) -> list[str]:
    """The argv of a COMMAND check's ``command`` (``what``: the kind of check)."""
    if command is None or not (command.value or command.arguments):
        raise ValueError(f"the COMMAND {what} has no command")
    if command.shell:
        argv = ["/bin/sh", "-c", command.value or ""]
    else:
        argv = list(command.arguments) or [command.value or ""]
    variables = command.environment.variables if command.environment else []
    pairs = [f"{v.name}={v.value}" for v in variables if v.value is not None]
    return ["env", *pairs, *argv] if pairs else argv


def probe_target(check: HealthCheck, task: AgentTaskState, address: str) -> ProbeTarget:
    """What to probe for ``task``'s ``check`` from an agent at ``address``; ValueError
    (its text the detail) when the check cannot be run."""
    if check.type == HealthCheckType.COMMAND:
        run = task.container.exec if task.container is not None else None
        return CommandTarget(tuple(command_argv(check)), run)
    if check.type == HealthCheckType.HTTP and check.http is not None:
        http = check.http
        return HttpTarget(address, check_port(task.info, http.port), http.path or "/",
                          http.scheme or "http", tuple(http.statuses))
    if check.type == HealthCheckType.TCP and check.tcp is not None:
        return TcpTarget(address, check_port(task.info, check.tcp.port))
    raise ValueError(f"unsupported health check {check.type.value}")


class TaskLoops:
    """One asyncio loop per task (its health checks, its generic checks): started
    with ``_spawn``, cancelled by ``stop``, all cancelled by ``_cancel_all``."""

    what = "checks"  # for the log line of a loop that failed

    def __init__(self) -> None:
        self._loops: dict[tuple[str, str], asyncio.Task[None]] = {}

    def _spawn(self, key: tuple[str, str], coro: Coroutine[Any, Any, None]) -> None:
        loop_task = asyncio.create_task(coro)
        self._loops[key] = loop_task
        loop_task.add_done_callback(lambda t: self._forget(key, t))

    def stop(self, task: AgentTaskState) -> None:
        loop_task = self._loops.pop(task.key, None)
        if loop_task is not None and loop_task is not asyncio.current_task():
            loop_task.cancel()

    def _forget(self, key: tuple[str, str], loop_task: asyncio.Task[None]) -> None:
        if self._loops.get(key) is loop_task:
            del self._loops[key]
        if not loop_task.cancelled() and loop_task.exception() is not None:
            log.error("%s of %s stopped", self.what, key[1], exc_info=loop_task.exception())

    def _cancel_all(self) -> list[asyncio.Task[None]]:
        loops = list(self._loops.values())
        self._loops.clear()
        for loop_task in loops:
            loop_task.cancel()
        return loops


class HealthMonitor(TaskLoops):
    """Runs the health checks of RUNNING tasks; hook ``start`` to
    ``TaskManager.on_running`` and ``stop`` to ``on_ended``; ``close`` on shutdown."""

    what = "health checks"

    def __init__(self, tasks: TaskManager, clock: Clock | None = None) -> None:
        super().__init__()
        self.tasks = tasks
        self.clock = clock or SystemClock()
        self.prober = Prober()
        self._verdicts: set[asyncio.Future[None]] = set()

    def start(self, task: AgentTaskState) -> None:
        check = task.info.health_check
        key = task.key
        if check is None or key in self._loops:
            return
        if check.type not in (HealthCheckType.COMMAND, HealthCheckType.HTTP,
                              HealthCheckType.TCP):
            log.warning("task %s: ignoring health check of type %s", task.task_id,
                        check.type.value)
            return
        latest = self.tasks.updates.latest(*key)
        state = HealthState(HealthPolicy.from_check(check), self.clock.monotonic(),
                            latest.healthy if latest is not None else None)
        self._spawn(key, self._run(task, check, state))

    async def _run(self, task: AgentTaskState, check: HealthCheck, state: HealthState) -> None:
        address = self.tasks.identity.address
        while not state.done:
            while (wait := state.next_check_at - self.clock.monotonic()) > 0:
                await asyncio.sleep(wait)
            if task.phase != Phase.RUNNING:
                return
            try:
                target = probe_target(check, task, address)
            except ValueError as exc:
                healthy, detail = False, str(exc)
            else:
                healthy, detail = await self.prober.probe(target, state.policy.timeout)
            actions = state.record(healthy, self.clock.monotonic(), detail)
            if actions:
                await self._act(task, actions)

    async def _act(self, task: AgentTaskState, actions: list[Action]) -> None:
        changed = next((a.healthy for a in actions if isinstance(a, SendHealth)), None)
        kill = next((a.message for a in actions if isinstance(a, KillTask)), None)
        if changed is not None:
            log.info("task %s is %s", task.task_id, "healthy" if changed else "unhealthy")
        if kill is not None:
            log.warning("task %s: %s", task.task_id, kill)
        # Shielded: the verdict must be carried out whole even if the task ends (and
        # this loop is cancelled) meanwhile; ``close`` waits for it.
        verdict = asyncio.ensure_future(self.tasks.health_verdict(task.key, changed, kill))
        self._verdicts.add(verdict)
        verdict.add_done_callback(self._verdicts.discard)
        await asyncio.shield(verdict)

    async def close(self) -> None:
        """Stop every check loop (tasks keep running) and wait for verdicts under way."""
        loops = self._cancel_all()
        await asyncio.gather(*loops, *self._verdicts, return_exceptions=True)
        await self.prober.close()
