"""App operations with Marathon's semantics: create, update (replace, patch, scale),
restart, roll back to a version, delete, kill tasks, and deployment cancel / rollback /
timeout / completion.  Pure state changes (no I/O): each records its writes and
events in ``ServicesState`` for the caller to commit, then acknowledge.

Every change to an app is a deployment (as in Marathon).  While a deployment holds an
app, another change answers 409 unless ``force`` is given, which cancels the holding
deployment where it stands (no rollback: Marathon's behaviour).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import msgspec

from frameworks.services import group_plans, volume_ops
from frameworks.services.deployments import Deployment, deployment_json
from frameworks.services.groups import parent_of
from frameworks.services.model import (
    App,
    VersionInfo,
    decode_app,
    encode_app,
    next_version,
    same_config,
)
from frameworks.services.pod_model import is_pod_json
from frameworks.services.state import (
    Conflict,
    NotFound,
    ServicesState,
)
from frameworks.services.tasks import TaskRecord


def _locked(state: ServicesState, app_id: str, force: bool, now: float) -> None:
    """409 if a deployment holds ``app_id``; with ``force`` cancel it instead."""
    holding = state.deployments_of(app_id)
    if not holding:
        return
    if not force:
        ids = list(dict.fromkeys(group_plans.holding(state, d) for d in holding))
        raise Conflict(
            "App is locked by one or more deployments. Override with the option "
            f"'?force=true'. View details at '/v2/deployments/{ids[0]}'.", ids)
    for d in holding:
        state.drop_deployment(d.id)
        if d.kind == "stop":
            state.removing.pop(d.app_id, None)
            state.removing_pods.pop(d.app_id, None)
        _failed(state, d, now, "cancelled by a forced change")


def _start(state: ServicesState, app: App, kind: str, previous: App | None, now: float,
           timeout: float | None = None, rollback_of: str | None = None,
           plan_id: str | None = None) -> Deployment:
    assert app.version is not None
    d = Deployment(
        id=str(uuid.uuid4()), app_id=app.id, version=app.version, kind=kind, started_at=now,
        timeout=app.deployment_timeout if timeout is None and kind not in ("stop", "rollback")
        else timeout,
        previous=encode_app(previous) if previous is not None else None,
        rollback_of=rollback_of, plan_id=plan_id,
    )
    state.put_deployment(d)
    _announce_start(state, d, now)
    return d


def _announce_start(state: ServicesState, d: Deployment, now: float) -> None:
    """A deployment of its own (not part of a group's plan, which announces itself):
    its group changed, its first step begins."""
    if d.plan_id is not None:
        return
    state.emit("group_change_success", {"groupId": parent_of(d.app_id),
                                        "version": d.version}, now)
    state.emit("deployment_info", {"plan": plan_json(d),
                                   "currentStep": deployment_json(d)["steps"][-1]}, now,
               subject=d)


def _failed(state: ServicesState, d: Deployment, now: float, reason: str) -> None:
    if d.plan_id is not None:
        group_plans.member_ended(state, d, now, ok=False, reason=reason)
        return
    state.emit("deployment_step_failure", {"plan": plan_json(d),
                                           "currentStep": deployment_json(d)["steps"][-1]}, now)
    state.emit("deployment_failed", {"id": d.id, "plan": plan_json(d), "reason": reason}, now)


def plan_json(d: Deployment) -> dict[str, Any]:
    """The ``plan`` object of deployment events (Marathon's DeploymentPlan, abridged)."""
    body = deployment_json(d)
    return {"id": d.id, "version": d.version, "steps": body["steps"],
            "original": {"id": "/", "apps": [], "groups": [], "dependencies": [],
                         "version": d.version},
            "target": {"id": "/", "apps": [], "groups": [], "dependencies": [],
                       "version": d.version}}


def _stamp(app: App, now: float, previous: App | None, config_change: bool) -> None:
    app.version = next_version(now, previous.version if previous else None)
    config_at = app.version if config_change or previous is None else previous.config_version
    app.version_info = VersionInfo(last_scaling_at=app.version, last_config_change_at=config_at)


# ---------------------------------------------------------------- apps


def create_app(state: ServicesState, app: App, now: float, force: bool = False,
               plan_id: str | None = None) -> Deployment:
    """POST /v2/apps: 409 when the id exists (or is still being removed, unless forced).
    ``plan_id``: the group deployment this is part of (group_plans.py)."""
    if app.id in state.apps:
        raise Conflict(f"An app with id [{app.id}] already exists.")
    if app.id in state.pods or app.id in state.removing_pods:
        raise Conflict(f"A pod with id [{app.id}] already exists.")
    if app.id in state.removing:
        _locked(state, app.id, force, now)
        state.removing.pop(app.id, None)
    _stamp(app, now, None, True)
    state.assign_service_ports(app, None)
    state.put_app(app)
    return _start(state, app, "start", None, now, plan_id=plan_id)


def update_app(state: ServicesState, app: App, now: float, force: bool = False,
               plan_id: str | None = None) -> tuple[Deployment, bool]:
    """PUT/PATCH /v2/apps/{id} with the merged definition; creates the app when it does
    not exist (returns ``created``).  A change of configuration is a rolling upgrade;
    a change of ``instances`` alone is a scale."""
    current = state.apps.get(app.id)
    if current is None:
        return create_app(state, app, now, force, plan_id), True
    _locked(state, app.id, force, now)
    state.assign_service_ports(app, current)
    upgrade = not same_config(app, current)
    _stamp(app, now, current, upgrade)
    state.put_app(app)
    return _start(state, app, "upgrade" if upgrade else "scale", current, now,
                  plan_id=plan_id), False


def scale_app(state: ServicesState, app_id: str, instances: int, now: float,
              force: bool = False) -> Deployment:
    app = msgspec.structs.replace(state.app(app_id), instances=max(0, instances))
    return update_app(state, app, now, force)[0]


def restart_app(state: ServicesState, app_id: str, now: float, force: bool = False
                ) -> Deployment:
    """POST /v2/apps/{id}/restart: same definition, new configuration version, so every
    task is replaced by the rolling rule."""
    current = state.app(app_id)
    _locked(state, app_id, force, now)
    app = msgspec.structs.replace(current)
    _stamp(app, now, current, True)
    state.put_app(app)
    return _start(state, app, "restart", current, now)


def rollback_to_version(state: ServicesState, app_id: str, version: str, now: float,
                        force: bool = False) -> Deployment:
    """PUT {"version": V}: the definition of version V again.  Its configuration version
    is restored too, so tasks still running V are kept rather than replaced."""
    current = state.app(app_id)
    old = state.versions.get(app_id, {}).get(version)
    if old is None:
        raise NotFound(f"App '{app_id}' does not exist in version '{version}'")
    _locked(state, app_id, force, now)
    app = decode_app(encode_app(old))
    app.version = next_version(now, current.version)
    app.version_info = VersionInfo(last_scaling_at=app.version,
                                   last_config_change_at=old.config_version)
    state.put_app(app)
    kind = "scale" if same_config(app, current) else "upgrade"
    return _start(state, app, kind, current, now)


def delete_app(state: ServicesState, app_id: str, now: float, force: bool = False,
               plan_id: str | None = None) -> Deployment:
    """DELETE /v2/apps/{id}: the app is gone at once; its tasks are killed by a stop
    deployment (which a rollback can undo)."""
    current = state.app(app_id)
    _locked(state, app_id, force, now)
    state.drop_app(app_id)
    state.removing[app_id] = msgspec.structs.replace(current, instances=0)
    d = Deployment(id=str(uuid.uuid4()), app_id=app_id, version=next_version(now, current.version),
                   kind="stop", started_at=now, previous=encode_app(current), plan_id=plan_id)
    state.put_deployment(d)
    _announce_start(state, d, now)
    return d


# ---------------------------------------------------------------- tasks


def kill_tasks(state: ServicesState, task_ids: Iterable[str], now: float, scale: bool = False,
               force: bool = False, wipe: bool = False
               ) -> tuple[list[TaskRecord], list[Deployment]]:
    """Kill tasks; with ``scale`` also lower each app's ``instances`` by its killed
    tasks (a scale deployment), else they are replaced (with ``wipe``, on new
    reservations: the old instances' persistent volumes are destroyed).  Unknown ids
    are skipped.  Returns the tasks found and the scale deployments."""
    found = [state.tasks[t] for t in task_ids if t in state.tasks]
    if wipe:
        volume_ops.wipe_instances(state, {t.id for t in found})
    by_app: dict[str, list[TaskRecord]] = defaultdict(list)
    for task in found:
        by_app[task.app_id].append(task)
    deployments = []
    if scale:
        for app_id in by_app:
            if app_id in state.apps:
                _locked(state, app_id, force, now)
        for app_id, tasks in by_app.items():
            if app_id in state.apps:
                app = state.apps[app_id]
                alive = [t for t in tasks if t.kill_requested_at is None]
                deployments.append(scale_app(state, app_id, app.instances - len(alive), now,
                                             force=True))
    for task in found:
        if task.kill_requested_at is None:
            state.mark_kill(task.id, "killed through the API" + (" (scaled down)" if scale
                                                                 else ""), now)
    return found, deployments


# ---------------------------------------------------------------- deployment ends


def finish_deployment(state: ServicesState, deployment_id: str, now: float) -> None:
    d = state.drop_deployment(deployment_id)
    if d is None:
        return
    if d.kind == "stop" and state.removing_pods.pop(d.app_id, None) is not None:
        pass  # a pod's instances are gone (Marathon sends no app_terminated_event)
    elif d.kind == "stop":
        state.removing.pop(d.app_id, None)
        state.emit("app_terminated_event", {"appId": d.app_id}, now)
    if d.plan_id is not None:
        group_plans.member_ended(state, d, now, ok=True)
        return
    state.emit("deployment_step_success", {"plan": plan_json(d),
                                           "currentStep": deployment_json(d)["steps"][-1]}, now)
    state.emit("deployment_success", {"id": d.id, "plan": plan_json(d)}, now)


def cancel_deployment(state: ServicesState, deployment_id: str, now: float,
                      force: bool = False, reason: str = "cancelled") -> Deployment | None:
    """DELETE /v2/deployments/{id}: without ``force`` a new deployment reverts the app
    to its definition before ``deployment_id`` (returned); with ``force`` the deployment
    just stops where it stands (returns None)."""
    d = state.deployments.get(deployment_id)
    if d is None:
        raise NotFound(f"DeploymentPlan {deployment_id} does not exist")
    state.drop_deployment(d.id)
    _failed(state, d, now, reason)
    if force:
        if d.kind == "stop":
            state.removing.pop(d.app_id, None)
            state.removing_pods.pop(d.app_id, None)
        return None
    return _revert(state, d, now)


def _revert(state: ServicesState, d: Deployment, now: float) -> Deployment:
    if d.pod or (d.previous is not None and is_pod_json(d.previous)):
        from frameworks.services import pod_ops  # pod_ops builds on this module

        return pod_ops.revert(state, d, now)
    if d.previous is None:  # the app was created: remove it again
        rollback = delete_app(state, d.app_id, now, force=True)
        rollback.rollback_of = d.id
        state.put_deployment(rollback)
        return rollback
    previous = decode_app(d.previous)
    current = state.apps.get(d.app_id)
    if current is None:  # the app was deleted: bring it back
        state.removing.pop(d.app_id, None)
    app = decode_app(d.previous)
    app.version = next_version(now, d.version)
    app.version_info = VersionInfo(last_scaling_at=app.version,
                                   last_config_change_at=previous.config_version)
    state.put_app(app)
    return _start(state, app, "rollback", current, now, timeout=None, rollback_of=d.id)


def time_out_deployment(state: ServicesState, deployment_id: str, now: float
                        ) -> Deployment | None:
    """A deployment past its timeout: roll it back (capacity-safe: the same rule)."""
    d = state.deployments.get(deployment_id)
    if d is None:
        return None
    return cancel_deployment(state, deployment_id, now, reason=(
        f"not finished within its timeout of {d.timeout:g}s; rolled back"))
