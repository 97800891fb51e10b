"""Health checks run by the agent, with Mesos/Marathon semantics.

Two parts:

* ``HealthState`` - the pure decision logic: check results (and the time, a parameter)
  in, actions out (``SendHealth``, ``KillTask``), plus when the next check is due.
* ``HealthMonitor`` - the I/O loop, one asyncio task per RUNNING task with a
  ``health_check``, hooked to ``TaskManager.on_running`` / ``on_ended``.

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from mesoslite.clock import Clock, SystemClock
from mesoslite.messages.mesos import (
    ContainerType,
    DockerNetwork,
    HealthCheck,
    HealthCheckType,
    Reason,
    TaskInfo,
    TaskState,
)

if TYPE_CHECKING:
    from mesoslite.agent.tasks import AgentTaskState, TaskManager

log = logging.getLogger(__name__)

HEALTH_KILL_REASON = Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
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


# ---------------------------------------------------------------- checks (I/O)


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
    command = check.command
    if command is None or not (command.value or command.arguments):
        raise ValueError("the COMMAND health check has no command")
    if command.shell:
        argv = ["/bin/sh", "-c", command.value or ""]
    else:
        argv = list(command.arguments) or [command.value or ""]
    variables = command.environment.variables if command.environment else []
    pairs = [f"{v.name}={v.value}" for v in variables if v.value is not None]
    return ["env", *pairs, *argv] if pairs else argv


class Prober:
    """Runs one check of any kind; returns (healthy, detail)."""

    def __init__(self, address: str) -> None:
        # Tasks listening on every interface answer on loopback, too.
        self.address = "127.0.0.1" if address in ("", "0.0.0.0") else address
        self._session: aiohttp.ClientSession | None = None

    async def probe(self, task: AgentTaskState, check: HealthCheck, timeout: float
                    ) -> tuple[bool, str]:
        limit = timeout if timeout > 0 else None
        try:
            if check.type == HealthCheckType.COMMAND:
                return await self._command(task, check, limit)
            if check.type == HealthCheckType.HTTP and check.http is not None:
                coro = self._http(task.info, check)
            elif check.type == HealthCheckType.TCP and check.tcp is not None:
                coro = self._tcp(task.info, check.tcp.port)
            else:
                return False, f"unsupported health check {check.type.value}"
            return await asyncio.wait_for(coro, limit)
        except TimeoutError:
            return False, f"timed out after {timeout:g}s"
        except (OSError, aiohttp.ClientError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}"[:DETAIL_LIMIT]

    async def _command(self, task: AgentTaskState, check: HealthCheck, limit: float | None
                       ) -> tuple[bool, str]:
        if task.container is None:
            return False, "the task has no container"
        try:
            code, output = await task.container.exec(command_argv(check), limit or 1e9)
        except NotImplementedError:
            return False, "this containerizer cannot run COMMAND checks"
        if code == 0:
            return True, ""
        tail = output.strip()[-DETAIL_LIMIT:]
        return False, f"command exited with status {code}" + (f" ({tail})" if tail else "")

    async def _http(self, info: TaskInfo, check: HealthCheck) -> tuple[bool, str]:
        assert check.http is not None
        http = check.http
        path = http.path or "/"
        url = (f"{http.scheme or 'http'}://{self.address}:{check_port(info, http.port)}"
               f"{path if path.startswith('/') else '/' + path}")
        if self._session is None:
            # A fresh connection per check (no keep-alive): it proves the server accepts.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, ssl=False))
        async with self._session.get(url, allow_redirects=False) as resp:
            status = resp.status
        ok = status in http.statuses if http.statuses else 200 <= status < 400
        return ok, "" if ok else f"GET {url} answered {status}"

    async def _tcp(self, info: TaskInfo, port: int) -> tuple[bool, str]:
        _, writer = await asyncio.open_connection(self.address, check_port(info, port))
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True, ""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class HealthMonitor:
    """Runs the health checks of RUNNING tasks; hook ``start`` to
    ``TaskManager.on_running`` and ``stop`` to ``on_ended``; ``close`` on shutdown."""

    def __init__(self, tasks: TaskManager, clock: Clock | None = None) -> None:
        self.tasks = tasks
        self.clock = clock or SystemClock()
        self.prober = Prober(tasks.identity.address)
        self._loops: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._kills: set[asyncio.Task[Any]] = set()

    def start(self, task: AgentTaskState) -> None:
        check = task.info.health_check
        key = (task.framework_id, task.task_id)
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
        loop_task = asyncio.create_task(self._run(task, check, state))
        self._loops[key] = loop_task
        loop_task.add_done_callback(lambda t: self._forget(key, t))

    def stop(self, task: AgentTaskState) -> None:
        loop_task = self._loops.pop((task.framework_id, task.task_id), None)
        if loop_task is not None and loop_task is not asyncio.current_task():
            loop_task.cancel()

    def _forget(self, key: tuple[str, str], loop_task: asyncio.Task[None]) -> None:
        if self._loops.get(key) is loop_task:
            del self._loops[key]
        if not loop_task.cancelled() and loop_task.exception() is not None:
            log.error("health checks of %s stopped", key[1], exc_info=loop_task.exception())

    async def _run(self, task: AgentTaskState, check: HealthCheck, state: HealthState) -> None:
        while not state.done:
            while (wait := state.next_check_at - self.clock.monotonic()) > 0:
                await asyncio.sleep(wait)
            if task.state != TaskState.TASK_RUNNING or task.kill_reason is not None:
                return
            healthy, detail = await self.prober.probe(task, check, state.policy.timeout)
            for action in state.record(healthy, self.clock.monotonic(), detail):
                await self._act(task, action)

    async def _act(self, task: AgentTaskState, action: Action) -> None:
        if isinstance(action, SendHealth):
            log.info("task %s is %s", task.task_id,
                     "healthy" if action.healthy else "unhealthy")
            # Shielded: the update must be queued whole even if the task ends meanwhile.
            await asyncio.shield(self.tasks.send_health(task, action.healthy))
            return
        log.warning("task %s: %s", task.task_id, action.message)
        # Its own task: the kill ends this loop (on_ended), which must not cancel it.
        kill = asyncio.create_task(self.tasks.kill(
            task.framework_id, task.task_id, state=TaskState.TASK_FAILED,
            reason=HEALTH_KILL_REASON, message=action.message))
        self._kills.add(kill)
        kill.add_done_callback(self._kills.discard)

    async def close(self) -> None:
        """Stop every check loop (tasks keep running) and wait for pending kills."""
        loops = list(self._loops.values())
        self._loops.clear()
        for loop_task in loops:
            loop_task.cancel()
        await asyncio.gather(*loops, *self._kills, return_exceptions=True)
        await self.prober.close()
