"""The services framework on the framework kit: what should run, and what happened.

``ServicesWorkload`` is what the kit's core calls (``mesoslite.framework``): it holds
no I/O and reads no clock.  The kit brings the offer cycle (reconciliation first,
kill-unknown, revive/suppress, launch backoff, acknowledgements after the write);
this module brings Marathon's semantics:

* ``plan``: the reconciler's plan (``reconcile.py``) over the state: deployments that
  reached their target end, those past their timeout roll back, tasks to kill are
  marked (their reason is durable before the KILL goes out) and the demand is what
  waits to launch plus the volumes waiting to be destroyed;
* ``on_update``: a status update folded into the task records, its Marathon events,
  and the app's launch backoff after a failure;
* ``question`` / ``placed`` (``offer_round.py``): offers -> placement -> task records
  -> LAUNCH.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from frameworks.services import offer_round, operations, unreachable, volume_ops
from frameworks.services.events import (
    failed_health_check_event,
    instance_changed_event,
    status_event,
)
from frameworks.services.linking import HOST_GATEWAY
from frameworks.services.pod_instances import pod_update
from frameworks.services.queue import QueueStats
from frameworks.services.reconcile import Plan, Settings, reconcile
from frameworks.services.state import ServicesState, app_view, pod_view
from frameworks.services.views import is_ready
from mesoslite.framework import (
    AgentLaunch,
    AgentOffers,
    BackoffPolicy,
    KitSettings,
    LaunchBackoff,
    Outcome,
    Round,
    Workload,
)
from mesoslite.framework import Plan as KitPlan
from mesoslite.framework.instructions import Kill
from mesoslite.messages.mesos import TaskState, TaskStatus
from mesoslite.placement import Placement

log = logging.getLogger(__name__)


@dataclass
class ServicesSettings:
    """The services framework's tunables (seconds unless named otherwise)."""

    tick_s: float = 0.5  # longest pause between two plans
    reconcile_interval_s: float = 30.0
    reconcile_wait_s: float = 10.0  # at most this long for the first reconciliation
    kill_retry_s: float = 10.0  # re-send a kill not confirmed within this time
    staging_timeout_s: float = 300.0  # kill a task not running after this long
    backoff_reset_s: float = 30.0  # healthy this long after a failure resets the delay
    time_limit_s: float = 0.2  # the placement engine's per round
    objective: str = "spread"
    refuse_waiting_s: float = 5.0  # decline filter while instances still wait
    refuse_idle_s: float = 60.0  # decline filter when nothing waits
    workers: int = 1  # the placement engine's threads
    # Where Docker tasks reach the agent host's load balancer (host entries naming
    # the apps; docs/discovery.md); None: no host entries.
    lb_address: str | None = HOST_GATEWAY

    def kit(self) -> KitSettings:
        return KitSettings(
            reconcile_wait_s=self.reconcile_wait_s,
            reconcile_interval_s=self.reconcile_interval_s, kill_retry_s=self.kill_retry_s,
            offer_hold_s=0.0, refuse_waiting_s=self.refuse_waiting_s,
            refuse_idle_s=self.refuse_idle_s, accept_refuse_s=self.refuse_waiting_s)


class ServicesWorkload(Workload):
    """See the module docstring.  ``role`` / ``principal``: the framework's, which
    reservations for persistent volumes are made for."""

    def __init__(self, state: ServicesState, settings: ServicesSettings | None = None,
                 role: str = "*", principal: str | None = None) -> None:
        self.state = state
        self.settings = settings or ServicesSettings()
        self.role = role
        self.principal = principal
        self.queue = QueueStats()
        self.last_plan = Plan()
        self.failed_at: dict[str, float] = {}  # app -> its last failure (for the reset)
        self.backoff = LaunchBackoff()  # the kit's, once planning started
        self.launched = 0
        self._kill_sent: dict[str, float] = {}
        self._warned_role = False

    def known_tasks(self) -> Iterable[tuple[str, str | None]]:
        """Every Mesos task: an app's task, or each container of a pod instance."""
        return [(c.task_id, t.agent_id) if t.containers else (t.id, t.agent_id)
                for t in self.state.tasks.values() for c in (t.containers or [None])]

    # ------------------------------------------------------------ updates

    def on_update(self, status: TaskStatus, now: float) -> Outcome:
        state = self.state
        instance_id = state.container_tasks.get(status.task_id.value)
        if instance_id is not None:
            return pod_update(state, instance_id, status, now, self.failed_at)
        outcome = state.apply_status(status, now)
        task = outcome.task
        failure = None
        if task is not None:
            state.emit("status_update_event", status_event(task, status), now)
            state.emit("instance_changed_event", instance_changed_event(task, status), now)
            if outcome.health_changed:
                state.emit("health_status_changed_event", {
                    "appId": task.app_id, "taskId": task.id, "instanceId": task.id,
                    "version": task.version, "alive": task.healthy}, now)
            app = state.apps.get(task.app_id)
            if status.healthy is False and app is not None and app.agent_check is not None:
                state.emit("failed_health_check_event",
                           failed_health_check_event(app, task.id, app.agent_check), now)
            if outcome.failed and app is not None:
                failure = (app.id, BackoffPolicy(app.backoff_seconds, app.backoff_factor,
                                                 app.max_launch_delay_seconds))
                self.failed_at[app.id] = now
        return Outcome(known=not outcome.unknown, failure=failure)

    # ------------------------------------------------------------ planning

    def reconcile(self, now: float) -> Plan:
        """The reconciler's plan for the state as it is (pure)."""
        apps, tasks, deployments = self.state.views(self.backoff.due())
        knobs = Settings(kill_retry_s=self.settings.kill_retry_s,
                         staging_timeout_s=self.settings.staging_timeout_s)
        return reconcile(apps, tasks, deployments, now, knobs)

    def plan(self, now: float, ready: bool, backoff: LaunchBackoff) -> KitPlan:
        self.backoff = backoff
        if ready:  # unreachableStrategy deadlines, before the reconciler counts tasks
            unreachable.apply_due(self.state, now)
        plan = self.last_plan = self.reconcile(now)
        self.queue.waiting(set(plan.launches) | set(plan.waiting), now)
        if not ready:  # nothing is decided before the master confirmed our tasks
            return KitPlan()
        self._end_deployments(plan, now)
        kills = self._kills(plan, now)
        self._reset_backoff(now)
        demand = sum(plan.launches.values()) + volume_ops.destroys_waiting(self.state)
        return KitPlan(kills=kills, demand=demand, pending=bool(plan.waiting))

    def _end_deployments(self, plan: Plan, now: float) -> None:
        for deployment_id in plan.finished:
            operations.finish_deployment(self.state, deployment_id, now)
        for deployment_id in plan.timed_out:
            log.warning("deployment %s timed out; rolling back", deployment_id)
            operations.time_out_deployment(self.state, deployment_id, now)

    def _kills(self, plan: Plan, now: float) -> list[Kill]:
        """The plan's kills (marked, so their reason is durable first) and kills
        requested since the last plan (the API, a failed health check), sent at once."""
        state = self.state
        for kill in plan.kills:
            state.mark_kill(kill.task_id, kill.reason, now)
        chosen = {k.task_id for k in plan.kills}
        fresh = [t.id for t in state.tasks.values()
                 if t.kill_requested_at is not None and t.id not in self._kill_sent]
        out = []
        for task_id in [*chosen, *(t for t in fresh if t not in chosen)]:
            task = state.tasks.get(task_id)
            if task is not None:
                self._kill_sent[task_id] = now
                # A pod instance: killing one task of the group kills the whole group.
                mesos_id = task.containers[0].task_id if task.containers else task_id
                out.append(Kill(mesos_id, task.agent_id, task.kill_reason or "killed"))
                if task.state == TaskState.TASK_UNREACHABLE.value:
                    # Expunged: the master kills it if its agent returns; were it to
                    # come back running first, it is unknown and killed then.
                    state.drop_task(task_id)
        for task_id in [t for t in self._kill_sent if t not in state.tasks]:
            del self._kill_sent[task_id]
        return out

    def _reset_backoff(self, now: float) -> None:
        """A task started after the last failure and healthy for ``backoff_reset_s``
        ends the run of consecutive failures."""
        for app_id, failed_at in list(self.failed_at.items()):
            app = self.state.apps.get(app_id)
            pod = self.state.pods.get(app_id)
            if app is None and pod is None:
                self.failed_at.pop(app_id)
                self.backoff.reset(app_id)
                continue
            view = app_view(app) if app is not None else pod_view(pod)  # type: ignore[arg-type]
            for task in self.state.app_tasks(app_id):
                since = task.first_healthy_at if view.has_health_checks else task.started_at
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

    # ------------------------------------------------------------ offers

    def question(self, offers: Sequence[AgentOffers], now: float) -> Round | None:
        return offer_round.question(self, offers, now)

    def placed(self, round: Round, answer: Placement, now: float) -> Sequence[AgentLaunch]:
        return offer_round.placed(self, round, answer, now)

    def launch_refused(self, launch: AgentLaunch, message: str, now: float) -> None:
        """Refused outright (e.g. a rescinded offer): these tasks never started."""
        log.warning("launch on %s refused (%s); will retry", launch.agent_id, message)
        for task_id in launch.task_ids:
            self.state.drop_task(self.state.container_tasks.get(task_id, task_id))
        volume_ops.restore(self.state, launch)

    def reservation_role(self) -> str | None:
        """The role reservations are made for; None when the framework's role is '*'
        (Mesos reserves for a named role only), which leaves resident apps waiting."""
        if self.role in ("", "*"):
            if not self._warned_role:
                log.error("apps with persistent volumes need the services framework to run"
                          " in a role other than '*' (--role): they wait")
                self._warned_role = True
            return None
        return self.role
