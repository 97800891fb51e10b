"""Health checks the framework runs itself: the second and further HTTP/HTTPS/TCP
checks of an app (the agent runs one check per task, as Mesos does: the app's
COMMAND check if it has one, else its first).  Marathon, too, runs its HTTP and TCP
checks from the framework.

Semantics match the agent's: the first probe ``delaySeconds`` after the task runs,
then every ``intervalSeconds``; failures within ``gracePeriodSeconds`` of the start
and before the first success are ignored; ``maxConsecutiveFailures`` counted failures
in a row kill the task (reported as a failure, so the launch backoff applies).  A
task is healthy when every one of its checks is.  Probes run in the background,
off the offer cycle.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from frameworks.services.events import failed_health_check_event
from frameworks.services.model import App, HealthCheck
from frameworks.services.state import ServicesState
from frameworks.services.tasks import TaskRecord
from mesoslite.agent.health import (
    HealthPolicy,
    HealthState,
    HttpTarget,
    KillTask,
    Prober,
    ProbeTarget,
    TcpTarget,
)

log = logging.getLogger(__name__)

KillFn = Callable[[str, str], Awaitable[None]]


class HealthProber:
    """``now``: the framework's wall clock, read when a probe completes."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self._checks: dict[tuple[str, int], HealthState] = {}  # (task id, slot)
        self._inflight: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._prober = Prober()

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
        for key in [k for k in self._checks if k[0] not in state.tasks]:
            self._checks.pop(key, None)

    def _maybe_probe(self, state: ServicesState, app: App, task: TaskRecord, slot: int,
                     index: int, now: float, on_change: Callable[[], None], kill: KillFn
                     ) -> None:
        key = (task.id, slot)
        check = app.health_checks[index]
        health = self._checks.get(key)
        if health is None:
            # A result known before (the framework restarted): no new grace period.
            known = task.probe_healthy[slot] if slot < len(task.probe_healthy) else None
            health = self._checks[key] = HealthState(_policy(check), task.started_at or now,
                                                     known)
        if key in self._inflight or now < health.next_check_at:
            return
        self._inflight[key] = asyncio.create_task(
            self._probe(state, app, task, slot, check, health, on_change, kill))

    async def _probe(self, state: ServicesState, app: App, task: TaskRecord, slot: int,
                     check: HealthCheck, health: HealthState, on_change: Callable[[], None],
                     kill: KillFn) -> None:
        try:
            target = _target(task, app, check)
            ok, detail = ((False, "no port to check") if target is None
                          else await self._prober.probe(target, check.timeout_seconds))
        finally:
            self._inflight.pop((task.id, slot), None)
        current = state.tasks.get(task.id)
        if current is None or current.kill_requested_at is not None:
            return
        now = self.now()
        counted = ok or not health.in_grace(now)
        killed = any(isinstance(a, KillTask) for a in health.record(ok, now, detail))
        if not counted:
            return  # failures in the grace period do not count
        if not ok:
            state.emit("failed_health_check_event",
                       failed_health_check_event(app, current.id, app.framework_checks[slot]),
                       now)
        changed = current.note_health(app.agent_check is not None, len(app.framework_checks),
                                      now, probe=(slot, ok))
        if changed:
            state.put_task(current)
            state.emit("health_status_changed_event", {
                "appId": app.id, "taskId": current.id, "instanceId": current.id,
                "version": current.version, "alive": current.healthy}, now)
        if killed:
            reason = f"health check {slot + 1} failed {health.failures} times: {detail}"
            state.mark_kill(current.id, reason, now)
            current.kill_is_failure = True
            await kill(current.id, reason)
        if changed or killed or not ok:  # a failure's event goes out with the next write
            on_change()

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        await self._prober.close()


def _policy(check: HealthCheck) -> HealthPolicy:
    return HealthPolicy(delay=check.delay_seconds, interval=check.interval_seconds,
                        timeout=check.timeout_seconds, grace=check.grace_period_seconds,
                        max_failures=check.max_consecutive_failures)


def _target(task: TaskRecord, app: App, check: HealthCheck) -> ProbeTarget | None:
    """What to probe (None: the check names no port the task has)."""
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
        return None
    host = task.address or task.hostname
    protocol = check.protocol.removeprefix("MESOS_")
    if protocol == "TCP":
        return TcpTarget(host, port)
    return HttpTarget(host, port, check.path or "/", protocol.lower(),
                      ignore_1xx=check.ignore_http1xx)
