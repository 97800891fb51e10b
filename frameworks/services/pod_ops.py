"""Pod operations with Marathon's semantics: create, update (PUT creates when the pod
is missing), scale, delete, kill instances, and the revert of a cancelled pod
deployment.  Pure state changes, as ``operations.py`` for apps, sharing its
deployment records and rules: every change is a deployment (rolling replacement by
``scheduling.upgrade``); a deployment holding the pod answers 409 unless ``force``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import msgspec

from frameworks.services.deployments import Deployment, deployment_json
from frameworks.services.model import VersionInfo, next_version
from frameworks.services.operations import _locked, plan_json
from frameworks.services.pod_model import (
    FixedScaling,
    Pod,
    decode_pod,
    encode_pod,
    same_config,
)
from frameworks.services.state import Conflict, NotFound, ServicesState
from frameworks.services.tasks import TaskRecord


def pod_of(state: ServicesState, pod_id: str) -> Pod:
    pod = state.pods.get(pod_id)
    if pod is None:
        raise NotFound(f"Pod '{pod_id}' does not exist")
    return pod


def instances_of(state: ServicesState, pod_id: str) -> list[TaskRecord]:
    return [t for t in state.tasks.values() if t.app_id == pod_id and t.containers]


def _start(state: ServicesState, pod: Pod, kind: str, previous: Pod | None, now: float,
           rollback_of: str | None = None) -> Deployment:
    assert pod.version is not None
    d = Deployment(id=str(uuid.uuid4()), app_id=pod.id, version=pod.version, kind=kind,
                   started_at=now, timeout=None,
                   previous=encode_pod(previous) if previous is not None else None,
                   rollback_of=rollback_of, pod=True)
    state.put_deployment(d)
    state.emit("deployment_info", {"plan": plan_json(d),
                                   "currentStep": deployment_json(d)["steps"][-1]}, now,
               subject=d)
    return d


def _stamp(pod: Pod, now: float, previous: Pod | None, config_change: bool) -> None:
    pod.version = next_version(now, previous.version if previous else None)
    config_at = pod.version if config_change or previous is None else previous.config_version
    pod.version_info = VersionInfo(last_scaling_at=pod.version, last_config_change_at=config_at)


def create_pod(state: ServicesState, pod: Pod, now: float, force: bool = False) -> Deployment:
    """POST /v2/pods: 409 when the id is taken (by a pod or an app)."""
    if pod.id in state.pods:
        raise Conflict(f"A pod with id [{pod.id}] already exists.")
    if pod.id in state.targets():
        raise Conflict(f"An app with id [{pod.id}] already exists.")
    if pod.id in state.removing_pods:
        _locked(state, pod.id, force, now)
        state.removing_pods.pop(pod.id, None)
    _stamp(pod, now, None, True)
    state.put_pod(pod)
    return _start(state, pod, "start", None, now)


def update_pod(state: ServicesState, pod: Pod, now: float, force: bool = False
               ) -> tuple[Deployment, bool]:
    """PUT /v2/pods/{id}: a configuration change is a rolling upgrade, a change of
    ``scaling.instances`` alone a scale; creates the pod when missing (``created``)."""
    current = state.pods.get(pod.id)
    if current is None:
        return create_pod(state, pod, now, force), True
    _locked(state, pod.id, force, now)
    upgrade = not same_config(pod, current)
    _stamp(pod, now, current, upgrade)
    state.put_pod(pod)
    return _start(state, pod, "upgrade" if upgrade else "scale", current, now), False


def scale_pod(state: ServicesState, pod_id: str, instances: int, now: float,
              force: bool = False) -> Deployment:
    pod = msgspec.structs.replace(pod_of(state, pod_id),
                                  scaling=FixedScaling(instances=max(0, instances)))
    return update_pod(state, pod, now, force)[0]


def delete_pod(state: ServicesState, pod_id: str, now: float, force: bool = False
               ) -> Deployment:
    """DELETE /v2/pods/{id}: gone at once; a stop deployment kills its instances."""
    current = pod_of(state, pod_id)
    _locked(state, pod_id, force, now)
    state.drop_pod(pod_id)
    state.removing_pods[pod_id] = msgspec.structs.replace(
        current, scaling=FixedScaling(instances=0))
    d = Deployment(id=str(uuid.uuid4()), app_id=pod_id,
                   version=next_version(now, current.version), kind="stop", started_at=now,
                   previous=encode_pod(current), pod=True)
    state.put_deployment(d)
    state.emit("deployment_info", {"plan": plan_json(d),
                                   "currentStep": deployment_json(d)["steps"][-1]}, now,
               subject=d)
    return d


def kill_instances(state: ServicesState, pod_id: str, instance_ids: Iterable[str] | None,
                   now: float) -> list[TaskRecord]:
    """DELETE /v2/pods/{id}::instances[/{iid}]: kill them (they are replaced); None
    means every instance.  Unknown ids are skipped."""
    pod_of(state, pod_id)
    wanted = None if instance_ids is None else set(instance_ids)
    found = [t for t in instances_of(state, pod_id) if wanted is None or t.id in wanted]
    for instance in found:
        if instance.kill_requested_at is None:
            state.mark_kill(instance.id, "killed through the API", now)
    return found


def revert(state: ServicesState, d: Deployment, now: float) -> Deployment:
    """A cancelled pod deployment: back to the definition before it (a created pod is
    removed again, a deleted one comes back)."""
    if d.previous is None:
        rollback = delete_pod(state, d.app_id, now, force=True)
        rollback.rollback_of = d.id
        state.put_deployment(rollback)
        return rollback
    previous = decode_pod(d.previous)
    current = state.pods.get(d.app_id)
    state.removing_pods.pop(d.app_id, None)
    pod = decode_pod(d.previous)
    pod.version = next_version(now, d.version)
    pod.version_info = VersionInfo(last_scaling_at=pod.version,
                                   last_config_change_at=previous.config_version)
    state.put_pod(pod)
    return _start(state, pod, "rollback", current, now, rollback_of=d.id)
