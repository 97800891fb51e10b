"""The controller: runs the reconciler and carries out its plan through the driver.

One loop (``run``) wakes on ``kick()`` (an API change, a status update) or every
``tick_s``, and under one lock:

1. computes the plan (``reconcile``) from the state;
2. finishes deployments that reached their target, rolls back those past their
   timeout, marks the tasks to kill;
3. commits (group commit), then acknowledges the status updates that commit covered
   (explicit acknowledgements: an update is acknowledged only once durable), sends
   the kills, and revives or suppresses offers depending on whether anything waits.

Nothing is decided before the first reconciliation after a subscription has been
answered (or ``reconcile_wait_s`` has passed): a restarted framework must not kill
or launch on the strength of what its store says before the master has confirmed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from mesoslite.framework.backoff import BackoffPolicy, LaunchBackoff
from frameworks.services import operations, volume_ops
from frameworks.services.events import status_event
from frameworks.services.health import HealthProber
from frameworks.services.queue import QueueStats
from frameworks.services.readiness import ReadinessProber
from frameworks.services.reconcile import Plan, Settings, reconcile
from frameworks.services.state import ServicesState, app_view
from frameworks.services.store import Committer
from frameworks.services.views import is_ready
from mesoslite.clock import Clock, SystemClock
from mesoslite.messages.mesos import TaskStatus
from mesoslite.scheduler import Driver, DriverError

log = logging.getLogger(__name__)


@dataclass
class ControllerSettings:
    tick_s: float = 0.5
    reconcile_interval_s: float = 30.0
    reconcile_wait_s: float = 10.0
    kill_retry_s: float = 10.0
    staging_timeout_s: float = 300.0
    backoff_reset_s: float = 30.0  # a task healthy this long after a failure resets the delay


@dataclass
class _Acks:
    items: list[tuple[str, str, bytes]] = field(default_factory=list)


class Controller:
    def __init__(self, state: ServicesState, committer: Committer,
                 settings: ControllerSettings | None = None, clock: Clock | None = None
                 ) -> None:
        self.state = state
        self.committer = committer
        self.settings = settings or ControllerSettings()
        self.clock = clock or SystemClock()
        self.driver: Driver | None = None
        self.backoff = LaunchBackoff()
        self.failed_at: dict[str, float] = {}
        self.queue = QueueStats()
        self.readiness = ReadinessProber()
        self.health = HealthProber(self.now)
        self.lock = asyncio.Lock()
        self.reconciled = False
        self.awaiting: set[str] = set()
        self.last_plan = Plan()
        self._kick = asyncio.Event()
        self._acks = _Acks()
        self._reconcile_deadline = 0.0
        self._next_reconcile = 0.0
        self._suppressed = False
        self._last_want = 0
        self._unknown_killed: dict[str, float] = {}

    # ---------------------------------------------------------------- planning

    def now(self) -> float:
        return self.clock.now()

    def plan(self) -> Plan:
        apps, tasks, deployments = self.state.views(self.backoff.due())
        knobs = Settings(kill_retry_s=self.settings.kill_retry_s,
                         staging_timeout_s=self.settings.staging_timeout_s)
        return reconcile(apps, tasks, deployments, self.now(), knobs)

    def kick(self) -> None:
        """Ask the loop to run a step soon (after an API change or an update)."""
        self._kick.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), self.settings.tick_s)
            self._kick.clear()
            try:
                await self.step()
            except Exception:
                log.exception("controller step failed; retrying on the next tick")

    async def step(self) -> Plan:
        async with self.lock:
            self._check_reconciled()
            now = self.now()
            plan = self.plan()
            self.last_plan = plan
            self.queue.waiting(set(plan.launches) | set(plan.waiting), now)
            if self.reconciled:
                self._end_deployments(plan, now)
                for kill in plan.kills:
                    self.state.mark_kill(kill.task_id, kill.reason, now)
                self._reset_backoff(now)
                self.readiness.schedule(self.state, self.last_plan, now, self.kick)
                self.health.schedule(self.state, now, self.kick, self._send_kill)
            await self.committer.commit()
            await self._send_acks()
            if self.reconciled:
                # Independent calls on one kept-alive session: send them together.
                await asyncio.gather(*(self._send_kill(k.task_id, k.reason) for k in plan.kills))
                await self._offers_wanted(plan)
            await self._periodic_reconcile()
            return plan

    def _end_deployments(self, plan: Plan, now: float) -> None:
        for deployment_id in plan.finished:
            operations.finish_deployment(self.state, deployment_id, now)
        for deployment_id in plan.timed_out:
            log.warning("deployment %s timed out; rolling back", deployment_id)
            operations.time_out_deployment(self.state, deployment_id, now)
        if plan.finished or plan.timed_out:
            self.kick()  # the next plan sees the new targets

    def _reset_backoff(self, now: float) -> None:
        """A task started after the last failure and healthy for ``backoff_reset_s``
        ends the run of consecutive failures."""
        for app_id, failed_at in list(self.failed_at.items()):
            app = self.state.apps.get(app_id)
            if app is None:
                self.failed_at.pop(app_id)
                self.backoff.reset(app_id)
                continue
            view = app_view(app)
            for task in self.state.app_tasks(app_id):
                since = task.first_healthy_at if app.has_health_checks else task.started_at
                if (task.staged_at > failed_at and since is not None
                        and now - since >= self.settings.backoff_reset_s
                        and is_ready(task.view(), view)):
                    self.backoff.reset(app_id)
                    self.failed_at.pop(app_id)
                    break

    def reset_delay(self, app_id: str) -> None:
        """DELETE /v2/queue/{id}/delay."""
        self.backoff.reset(app_id)
        self.failed_at.pop(app_id, None)
        self.kick()

    # ---------------------------------------------------------------- driver calls

    async def _send_kill(self, task_id: str, reason: str) -> None:
        task = self.state.tasks.get(task_id)
        if self.driver is None or task is None:
            return
        log.info("killing %s: %s", task_id, reason)
        try:
            await self.driver.kill(task_id, task.agent_id)
        except DriverError as exc:
            log.info("kill of %s not sent (%s); it is retried", task_id, exc)

    async def _send_acks(self) -> None:
        acks, self._acks = self._acks, _Acks()
        if self.driver is None:
            return
        driver = self.driver

        async def ack(agent_id: str, task_id: str, uuid: bytes) -> None:
            try:
                await driver.acknowledge(agent_id, task_id, uuid)
            except DriverError as exc:  # the agent resends the update
                log.debug("acknowledgement of %s not sent: %s", task_id, exc)

        await asyncio.gather(*(ack(*item) for item in acks.items))

    async def _offers_wanted(self, plan: Plan) -> None:
        """Revive when launches wait (and whenever that demand grows: reviving clears the
        decline filters); suppress when nothing waits."""
        if self.driver is None or not self.driver.subscribed:
            return
        # wiped persistent volumes need an offer of their agent to be destroyed
        want = sum(plan.launches.values()) + volume_ops.destroys_waiting(self.state)
        try:
            if want and (self._suppressed or want > self._last_want):
                await self.driver.revive()
                self._suppressed = False
            elif not want and not self._suppressed and not plan.waiting:
                await self.driver.suppress()
                self._suppressed = True
        except DriverError as exc:
            log.debug("revive/suppress not sent: %s", exc)
            return
        self._last_want = want

    # ---------------------------------------------------------------- subscription

    async def subscribed(self, driver: Driver, framework_id: str) -> None:
        self.driver = driver
        if self.state.framework_id != framework_id:
            self.state.set_framework_id(framework_id)
            await self.committer.commit()
        self.reconciled = False
        known = [(t.id, t.agent_id) for t in self.state.tasks.values()]
        self.awaiting = {tid for tid, _ in known}
        self._reconcile_deadline = time.monotonic() + self.settings.reconcile_wait_s
        self._next_reconcile = time.monotonic() + self.settings.reconcile_interval_s
        self._suppressed, self._last_want = False, 0
        try:
            if known:
                await driver.reconcile(known)
            await driver.reconcile()
        except DriverError as exc:
            log.warning("reconciliation request failed (%s); the next subscription retries",
                        exc)
        self._check_reconciled()
        self.kick()

    def disconnected(self) -> None:
        self.reconciled = False

    def _check_reconciled(self) -> None:
        if self.reconciled or self.driver is None or not self.driver.subscribed:
            return
        if not self.awaiting or time.monotonic() >= self._reconcile_deadline:
            if self.awaiting:
                log.warning("no reconciliation answer for %d task(s); going ahead",
                            len(self.awaiting))
            self.awaiting.clear()
            self.reconciled = True
            log.info("reconciled %d task(s) with the master", len(self.state.tasks))

    async def _periodic_reconcile(self) -> None:
        if (self.driver is None or not self.driver.subscribed or not self.reconciled
                or time.monotonic() < self._next_reconcile):
            return
        self._next_reconcile = time.monotonic() + self.settings.reconcile_interval_s
        known = [(t.id, t.agent_id) for t in self.state.tasks.values()]
        try:
            if known:
                await self.driver.reconcile(known)
            await self.driver.reconcile()
        except DriverError as exc:
            log.debug("periodic reconciliation not sent: %s", exc)

    # ---------------------------------------------------------------- updates

    async def update(self, status: TaskStatus) -> None:
        """A status update: fold it in; the next step commits it, then acknowledges."""
        now = self.now()
        outcome = self.state.apply_status(status, now)
        self.awaiting.discard(status.task_id.value)
        if status.uuid and status.agent_id is not None:
            self._acks.items.append((status.agent_id.value, status.task_id.value, status.uuid))
        if outcome.unknown:
            await self._kill_unknown(status)
        task = outcome.task
        if task is not None:
            self.state.emit("status_update_event", status_event(task, status), now)
            if outcome.health_changed:
                self.state.emit("health_status_changed_event", {
                    "appId": task.app_id, "taskId": task.id, "instanceId": task.id,
                    "version": task.version, "alive": task.healthy}, now)
            if outcome.failed:
                app = self.state.apps.get(task.app_id)
                if app is not None:
                    policy = BackoffPolicy(app.backoff_seconds, app.backoff_factor,
                                           app.max_launch_delay_seconds)
                    self.backoff.failed(app.id, now, policy)
                    self.failed_at[app.id] = now
        self.kick()

    async def _kill_unknown(self, status: TaskStatus) -> None:
        """Marathon kills tasks it does not know (e.g. of an app deleted meanwhile)."""
        tid = status.task_id.value
        last = self._unknown_killed.get(tid, 0.0)
        # Safe before reconciliation too: every task we launch is stored first.
        if self.driver is None or time.monotonic() - last < self.settings.kill_retry_s:
            return
        self._unknown_killed[tid] = time.monotonic()
        log.info("killing unknown task %s", tid)
        try:
            await self.driver.kill(tid, status.agent_id.value if status.agent_id else None)
        except DriverError as exc:
            log.debug("kill of unknown task %s not sent: %s", tid, exc)
