"""Health checks the framework runs itself: the second and further HTTP/HTTPS/TCP
checks of an app (the agent runs one check per task, as Mesos does: the app's
COMMAND check if it has one, else its first).  Marathon, too, runs its HTTP and TCP
checks from the framework.

Semantics match the agent's: the first probe ``delaySeconds`` after the task runs,
then every ``intervalSeconds``; failures within ``gracePeriodSeconds`` of the start
and before the first success are ignored; ``maxConsecutiveFailures`` counted failures
in a row kill the task (reported as a failure, so the launch backoff applies).  A
task is healthy when every one of its checks is.  Probes run in the background,
never under the controller's lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from frameworks.services.model import App, HealthCheck
from frameworks.services.state import ServicesState
from frameworks.services.tasks import TaskRecord

log = logging.getLogger(__name__)

KillFn = Callable[[str, str], Awaitable[None]]


@dataclass
class _Track:
    """One check of one task."""

    started_at: float
    next_at: float
    grace_over: bool
    failures: int = 0


class HealthProber:
    """``now``: the wall clock (the controller's), read when a probe completes."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self._tracks: dict[tuple[str, int], _Track] = {}
        self._inflight: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def schedule(self, state: ServicesState, now: float, on_change: Callable[[], None],
                 kill: KillFn) -> None:
        """Start the probes due at ``now``."""
        for app in state.targets().values():
            if not app.framework_checks:
                continue
            for task in state.app_tasks(app.id):
                if not task.running or task.kill_requested_at is not None:
                    continue
                for slot, index in enumerate(app.framework_checks):
                    self._maybe_probe(state, app, task, slot, index, now, on_change, kill)
        for key in [k for k in self._tracks if k[0] not in state.tasks]:
            self._tracks.pop(key, None)

    def _maybe_probe(self, state: ServicesState, app: App, task: TaskRecord, slot: int,
                     index: int, now: float, on_change: Callable[[], None], kill: KillFn
                     ) -> None:
        key = (task.id, slot)
        check = app.health_checks[index]
        track = self._tracks.get(key)
        if track is None:
            started = task.started_at or now
            known = slot < len(task.probe_healthy) and task.probe_healthy[slot] is not None
            track = self._tracks[key] = _Track(started, started + check.delay_seconds, known)
        if key in self._inflight or now < track.next_at:
            return
        self._inflight[key] = asyncio.create_task(
            self._probe(state, app, task, slot, check, track, on_change, kill))

    async def _probe(self, state: ServicesState, app: App, task: TaskRecord, slot: int,
                     check: HealthCheck, track: _Track, on_change: Callable[[], None],
                     kill: KillFn) -> None:
        try:
            ok, detail = await self._run(task, app, check)
        finally:
            self._inflight.pop((task.id, slot), None)
        current = state.tasks.get(task.id)
        if current is None or current.kill_requested_at is not None:
            return
        now = self.now()
        track.next_at = now + check.interval_seconds
        if ok:
            track.grace_over, track.failures = True, 0
        elif not track.grace_over and now < track.started_at + check.grace_period_seconds:
            return  # failures in the grace period do not count
        else:
            track.failures += 1
        changed = current.note_health(app.agent_check is not None, len(app.framework_checks),
                                      now, probe=(slot, ok))
        if changed:
            state.changes.tasks[current.id] = current
            state.emit("health_status_changed_event", {
                "appId": app.id, "taskId": current.id, "instanceId": current.id,
                "version": current.version, "alive": current.healthy}, now)
        limit = check.max_consecutive_failures
        if not ok and limit and track.failures >= limit:
            reason = f"health check {slot + 1} failed {track.failures} times: {detail}"
            state.mark_kill(current.id, reason, now)
            current.kill_is_failure = True
            await kill(current.id, reason)
        if changed or (not ok and limit and track.failures >= limit):
            on_change()

    async def _run(self, task: TaskRecord, app: App, check: HealthCheck) -> tuple[bool, str]:
        port = check.port
        if port is None and check.port_index is not None and check.port_index < len(task.ports):
            port = task.ports[check.port_index]
        elif port is not None and app.network == "bridge":
            # A fixed port names a container port: probe the host port mapped to it.
            mapped = [pm for pm in app.port_mappings if pm.host_port is not None]
            for pm, host_port in zip(mapped, task.ports, strict=False):
                if pm.container_port == port:
                    port = host_port
                    break
        if port is None:
            return False, "no port to check"
        host = task.address or task.hostname
        timeout = check.timeout_seconds or None
        protocol = check.protocol.removeprefix("MESOS_")
        try:
            if protocol == "TCP":
                _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                writer.close()
                return True, ""
            if self._session is None:
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(force_close=True, ssl=False))
            url = f"{protocol.lower()}://{host}:{port}{check.path or '/'}"
            async with self._session.get(url, allow_redirects=False,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                ok = 200 <= r.status < 400 or (check.ignore_http1xx and 100 <= r.status < 200)
                return ok, "" if ok else f"GET {url} answered {r.status}"
        except (OSError, aiohttp.ClientError, TimeoutError) as exc:
            return False, f"{type(exc).__name__}: {exc}"[:200]

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()

