"""The framework's in-memory state: apps, versions, deployments, tasks.  No I/O.

Every mutation puts what changed into the framework kit's ``journal`` (written in
one transaction with everything else of its generation) and notes what to announce
(``emit``: published on ``/v2/events`` only once that write is durable).  Methods
take ``now`` (wall-clock seconds) instead of reading a clock.  App operations with Marathon's semantics (create, update, delete, restart,
rollback, kill) live in ``operations.py``; this module holds the records, their
indexes, status-update handling and service-port allocation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec

from frameworks.services.deployments import Deployment
from frameworks.services.groups import (
    GroupPlan,
    GroupRecord,
    GroupVersion,
    effective_dependencies,
)
from frameworks.services.model import App, decode_app, timestamp
from frameworks.services.pod_model import FixedScaling, Pod, decode_pod, is_pod_json
from frameworks.services.store import (
    APPS,
    DEPLOYMENTS,
    GROUP_VERSIONS,
    GROUPS,
    PLANS,
    POD_VERSIONS,
    PODS,
    RESERVATIONS,
    TASKS,
    VERSIONS,
    services_journal,
)
from frameworks.services.tasks import FAILURE_STATES, TaskRecord
from frameworks.services.views import AppView, DeploymentView
from frameworks.services.volumes import Reservation, effective_strategy
from mesoslite.framework import Journal
from mesoslite.messages.mesos import TaskState, TaskStatus

SERVICE_PORTS = (10000, 20000)  # Marathon's --local_port_min / --local_port_max


class NotFound(Exception):
    """404 with Marathon's message."""


class Conflict(Exception):
    """409: ``deployments`` are the ids holding the app."""

    def __init__(self, message: str, deployments: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.deployments = list(deployments)


@dataclass
class StatusOutcome:
    """What a status update meant: ``unknown`` (a task we did not launch: kill it),
    ``failed`` (an unrequested failure: back off), ``health_changed``, ``terminal``."""

    task: TaskRecord | None = None
    unknown: bool = False
    terminal: bool = False
    failed: bool = False
    health_changed: bool = False


class ServicesState:
    def __init__(self, max_versions: int = 50,
                 service_ports: tuple[int, int] = SERVICE_PORTS,
                 journal: Journal | None = None) -> None:
        self.journal = journal or services_journal()
        self.max_versions = max_versions
        self.service_port_range = service_ports
        self.apps: dict[str, App] = {}
        self.removing: dict[str, App] = {}  # deleted; their tasks are being stopped
        self.versions: dict[str, dict[str, App]] = {}
        self.deployments: dict[str, Deployment] = {}
        self.tasks: dict[str, TaskRecord] = {}
        self.reservations: dict[str, Reservation] = {}  # persistent volumes (volumes.py)
        self.last_failure: dict[str, dict[str, Any]] = {}
        # Marathon groups (groups.py): explicit groups, their stored versions and the
        # deployments over several apps that group changes start.
        self.groups: dict[str, GroupRecord] = {}
        self.group_versions: dict[str, dict[str, GroupVersion]] = {}
        self.plans: dict[str, GroupPlan] = {}
        self.pods: dict[str, Pod] = {}  # pods (pod_ops.py); their instances are in tasks
        self.removing_pods: dict[str, Pod] = {}
        self.pod_versions: dict[str, dict[str, Pod]] = {}
        self.container_tasks: dict[str, str] = {}  # a pod container's task id -> instance

    # ---------------------------------------------------------------- loading

    def load(self, apps: Iterable[App], versions: Iterable[App],
             deployments: Iterable[Deployment], tasks: Iterable[TaskRecord],
             reservations: Iterable[Reservation] = (), pods: Iterable[Pod] = (),
             pod_versions: Iterable[Pod] = ()) -> None:
        """Restore from the store (no changes recorded)."""
        self.reservations.update({r.id: r for r in reservations})
        self.pods.update({p.id: p for p in pods})
        for pod in pod_versions:
            assert pod.version is not None
            self.pod_versions.setdefault(pod.id, {})[pod.version] = pod
        for app in apps:
            self.apps[app.id] = app
        for version in versions:
            assert version.version is not None
            self.versions.setdefault(version.id, {})[version.version] = version
        for d in deployments:
            self.deployments[d.id] = d
            if d.kind == "stop" and d.previous is not None and is_pod_json(d.previous):
                if d.app_id not in self.pods:
                    self.removing_pods[d.app_id] = msgspec.structs.replace(
                        decode_pod(d.previous), scaling=FixedScaling(instances=0))
            elif d.kind == "stop" and d.app_id not in self.apps and d.previous is not None:
                self.removing[d.app_id] = msgspec.structs.replace(
                    decode_app(d.previous), instances=0)
        for task in tasks:
            self.tasks[task.id] = task
            self.container_tasks.update({c.task_id: task.id for c in task.containers})

    def load_groups(self, groups: Iterable[GroupRecord], versions: Iterable[GroupVersion],
                    plans: Iterable[GroupPlan]) -> None:
        """Restore the groups from the store (no changes recorded)."""
        self.groups.update({g.id: g for g in groups})
        for version in versions:
            self.group_versions.setdefault(version.id, {})[version.version] = version
        self.plans.update({p.id: p for p in plans})

    # ---------------------------------------------------------------- queries

    def app(self, app_id: str) -> App:
        app = self.apps.get(app_id)
        if app is None:
            raise NotFound(f"App '{app_id}' does not exist")
        return app

    def app_tasks(self, app_id: str) -> list[TaskRecord]:
        return [t for t in self.tasks.values() if t.app_id == app_id]

    def deployments_of(self, app_id: str) -> list[Deployment]:
        return [d for d in self.deployments.values() if d.app_id == app_id]

    def targets(self) -> dict[str, App]:
        """Every app the reconciler manages: current ones and ones being removed."""
        return {**self.removing, **self.apps}

    def views(self, ready_at: dict[str, float]) -> tuple[dict[str, AppView], list, list]:
        targets = self.targets()
        deps = effective_dependencies(targets, self.groups)
        apps = {app_id: app_view(app, ready_at.get(app_id, 0.0), deps[app_id])
                for app_id, app in targets.items()}
        apps.update({pod_id: pod_view(pod, ready_at.get(pod_id, 0.0))
                     for pod_id, pod in {**self.removing_pods, **self.pods}.items()})
        # A replaced unreachable task (unreachable.py) is not an instance any more;
        # once it is being killed it holds resources again, as every killed task.
        tasks = [t.view() for t in self.tasks.values()
                 if not t.inactive or t.kill_requested_at is not None]
        deployments = [DeploymentView(d.id, d.app_id, d.started_at, d.timeout)
                       for d in self.deployments.values()]
        return apps, tasks, deployments

    # ---------------------------------------------------------------- records

    def put_app(self, app: App) -> None:
        self.apps[app.id] = app
        self.journal.put(APPS, app.id, app)
        assert app.version is not None
        versions = self.versions.setdefault(app.id, {})
        versions[app.version] = app
        self.journal.put(VERSIONS, (app.id, app.version), app)
        for old in sorted(versions)[:-self.max_versions]:
            del versions[old]
            self.journal.delete(VERSIONS, (app.id, old))

    def drop_app(self, app_id: str) -> None:
        self.apps.pop(app_id, None)
        self.journal.delete(APPS, app_id)
        for version in self.versions.pop(app_id, {}):
            self.journal.delete(VERSIONS, (app_id, version))

    def put_deployment(self, d: Deployment) -> None:
        self.deployments[d.id] = d
        self.journal.put(DEPLOYMENTS, d.id, d)

    def drop_deployment(self, deployment_id: str) -> Deployment | None:
        d = self.deployments.pop(deployment_id, None)
        if d is not None:
            self.journal.delete(DEPLOYMENTS, deployment_id)
        return d

    def put_task(self, task: TaskRecord) -> None:
        """Add ``task``, or record that it changed."""
        self.tasks[task.id] = task
        self.journal.put(TASKS, task.id, task)
        self.container_tasks.update({c.task_id: task.id for c in task.containers})

    def drop_task(self, task_id: str) -> TaskRecord | None:
        task = self.tasks.pop(task_id, None)
        if task is not None:
            self.journal.delete(TASKS, task_id)
            for c in task.containers:
                self.container_tasks.pop(c.task_id, None)
        return task

    def put_pod(self, pod: Pod) -> None:
        self.pods[pod.id] = pod
        self.journal.put(PODS, pod.id, pod)
        assert pod.version is not None
        versions = self.pod_versions.setdefault(pod.id, {})
        versions[pod.version] = pod
        self.journal.put(POD_VERSIONS, (pod.id, pod.version), pod)
        for old in sorted(versions)[:-self.max_versions]:
            del versions[old]
            self.journal.delete(POD_VERSIONS, (pod.id, old))

    def drop_pod(self, pod_id: str) -> None:
        self.pods.pop(pod_id, None)
        self.journal.delete(PODS, pod_id)
        for version in self.pod_versions.pop(pod_id, {}):
            self.journal.delete(POD_VERSIONS, (pod_id, version))

    def mark_kill(self, task_id: str, reason: str, now: float) -> TaskRecord | None:
        task = self.tasks.get(task_id)
        if task is not None:
            task.kill_requested_at = now
            task.kill_reason = reason
            self.put_task(task)
        return task

    def put_reservation(self, reservation: Reservation) -> None:
        self.reservations[reservation.id] = reservation
        self.journal.put(RESERVATIONS, reservation.id, reservation)

    def drop_reservation(self, reservation_id: str) -> None:
        if self.reservations.pop(reservation_id, None) is not None:
            self.journal.delete(RESERVATIONS, reservation_id)

    def put_group(self, group: GroupRecord) -> None:
        self.groups[group.id] = group
        self.journal.put(GROUPS, group.id, group)

    def drop_group(self, group_id: str) -> None:
        if self.groups.pop(group_id, None) is not None:
            self.journal.delete(GROUPS, group_id)
        for version in self.group_versions.pop(group_id, {}):
            self.journal.delete(GROUP_VERSIONS, (group_id, version))

    def put_group_version(self, version: GroupVersion) -> None:
        versions = self.group_versions.setdefault(version.id, {})
        versions[version.version] = version
        self.journal.put(GROUP_VERSIONS, (version.id, version.version), version)
        for old in sorted(versions)[:-self.max_versions]:
            del versions[old]
            self.journal.delete(GROUP_VERSIONS, (version.id, old))

    def put_plan(self, plan: GroupPlan) -> None:
        self.plans[plan.id] = plan
        self.journal.put(PLANS, plan.id, plan)

    def drop_plan(self, plan_id: str) -> GroupPlan | None:
        plan = self.plans.pop(plan_id, None)
        if plan is not None:
            self.journal.delete(PLANS, plan_id)
        return plan

    def emit(self, event_type: str, payload: dict[str, Any], now: float,
             subject: Any = None) -> None:
        """Announce an event once the changes made so far are durable; ``subject`` (the
        record it is about) goes to the observers with it, not onto the stream."""
        self.journal.note((event_type, {"eventType": event_type,
                                        "timestamp": timestamp(now), **payload}, subject))

    # ---------------------------------------------------------------- status updates

    def apply_status(self, status: TaskStatus, now: float) -> StatusOutcome:
        """Fold one status update into the task records."""
        task = self.tasks.get(status.task_id.value)
        if task is None:
            return StatusOutcome(unknown=not status.state.terminal)
        out = StatusOutcome(task=task)
        previous = task.state
        task.state = status.state.value
        task.message = status.message or task.message
        if status.state == TaskState.TASK_RUNNING and task.started_at is None:
            task.started_at = now
        if status.healthy is not None:
            app = self.targets().get(task.app_id)
            out.health_changed = task.note_health(
                app is not None and app.agent_check is not None,
                len(app.framework_checks) if app else 0, now, agent=status.healthy)
        if status.state == TaskState.TASK_UNREACHABLE and self._keep_unreachable(task, now):
            return out
        if not task.inactive:
            task.unreachable_since = None  # back before it was replaced: as before
        # UNREACHABLE (partition-aware) under Marathon's default unreachableStrategy
        # (0/0): the instance is replaced at once; if its agent returns, the task is
        # unknown and killed, the replacement kept.
        if status.state.terminal or status.state == TaskState.TASK_UNREACHABLE:
            self.drop_task(task.id)
            out.terminal = True
            unrequested = task.kill_requested_at is None or task.kill_is_failure
            out.failed = unrequested and status.state in FAILURE_STATES
            if unrequested:
                self.last_failure[task.app_id] = _failure_json(task, status, now)
        elif previous != task.state or out.health_changed:
            self.put_task(task)
        return out

    def _keep_unreachable(self, task: TaskRecord, now: float) -> bool:
        """Keep an unreachable task's record when its app's unreachableStrategy waits
        before expunging it (unreachable.py decides what follows); the first report
        starts its clock."""
        app = self.targets().get(task.app_id)
        strategy = app.unreachable if app is not None else None
        if app is None or (strategy is not None and strategy.expunge_after_seconds == 0):
            return False
        if task.unreachable_since is None:
            task.unreachable_since = now
        self.put_task(task)
        return True

    # ---------------------------------------------------------------- service ports

    def assign_service_ports(self, app: App, previous: App | None) -> None:
        """Give every port-0 service port a cluster-unique one (Marathon's behaviour),
        keeping ``previous``'s assignment at the same index so re-applying a
        definition with port 0 does not count as a change."""
        used = {p for other in self.targets().values() if other.id != app.id
                for p in service_ports(other)}
        old = service_ports(previous) if previous is not None else []
        low, high = self.service_port_range
        candidates = (p for p in range(low, high + 1) if p not in used)

        def pick(index: int) -> int:
            if index < len(old) and old[index] and old[index] not in used:
                used.add(old[index])
                return old[index]
            port = next(candidates)
            used.add(port)
            return port

        if app.network == "host":
            for i, pd in enumerate(app.port_definitions or []):
                if pd.port == 0:
                    pd.port = pick(i)
        else:
            for i, pm in enumerate(app.port_mappings):
                if pm.service_port == 0:
                    pm.service_port = pick(i)


def service_ports(app: App) -> list[int]:
    if app.network == "host":
        return [pd.port for pd in app.port_definitions or []]
    return [pm.service_port for pm in app.port_mappings]


def app_view(app: App, ready_at: float = 0.0,
             dependencies: tuple[str, ...] | None = None) -> AppView:
    """``dependencies``: as resolved through groups (default: the app's own)."""
    min_health, max_over = effective_strategy(app)
    return AppView(
        id=app.id, instances=app.instances, config_version=app.config_version,
        min_health_capacity=min_health, max_over_capacity=max_over,
        kill_selection=app.kill_selection, has_health_checks=app.has_health_checks,
        has_readiness_checks=bool(app.readiness_checks),
        dependencies=tuple(app.dependencies) if dependencies is None else dependencies,
        launch_ready_at=ready_at,
    )


def pod_view(pod: Pod, ready_at: float = 0.0) -> AppView:
    upgrade = pod.scheduling.upgrade
    return AppView(
        id=pod.id, instances=pod.instances, config_version=pod.config_version,
        min_health_capacity=upgrade.minimum_health_capacity,
        max_over_capacity=upgrade.maximum_over_capacity,
        kill_selection=pod.scheduling.kill_selection,
        has_health_checks=pod.has_health_checks, launch_ready_at=ready_at)


def _failure_json(task: TaskRecord, status: TaskStatus, now: float) -> dict[str, Any]:
    return {
        "appId": task.app_id, "host": task.hostname, "message": status.message or "",
        "state": status.state.value, "taskId": task.id, "instanceId": task.id,
        "slaveId": task.agent_id, "timestamp": timestamp(now), "version": task.version,
    }


