"""Pod instances: their containers' status updates folded into one instance record,
and Marathon's ``::status`` shapes.  Pure (``now`` is a parameter).

An instance record (a ``TaskRecord`` whose ``containers`` are set) is what the
reconciler, deployments and backoff see, like an app's task:

* it is RUNNING once every container runs (the agent reports a group's tasks RUNNING
  together) and stays so while its containers run or finished;
* it is healthy when every container with a health check is, unhealthy when one is
  not, unknown while one has no result yet;
* it ends (the record is dropped) once no container is left running: a container
  that fails or is killed takes the group down on the agent, so the others follow
  at once.  It ended in failure (launch backoff, ``lastTaskFailure``) unless a kill
  was asked for, or every container finished with success.
"""

from __future__ import annotations

from typing import Any

from frameworks.services.events import status_event
from frameworks.services.model import timestamp
from frameworks.services.pod_model import Pod, pod_json
from frameworks.services.state import ServicesState, StatusOutcome
from frameworks.services.tasks import FAILURE_STATES, ContainerRecord, TaskRecord
from mesoslite.framework import BackoffPolicy, Outcome
from mesoslite.messages.mesos import TaskState, TaskStatus

RUNNING = TaskState.TASK_RUNNING.value
FINISHED = TaskState.TASK_FINISHED.value
_TERMINAL = {s.value for s in TaskState if s.terminal} | {TaskState.TASK_UNREACHABLE.value}


def apply_container_status(state: ServicesState, instance_id: str, status: TaskStatus,
                           now: float) -> StatusOutcome:
    """Fold one container's status update into its instance."""
    instance = state.tasks[instance_id]
    out = StatusOutcome(task=instance)
    container = next(c for c in instance.containers if c.task_id == status.task_id.value)
    if container.state != status.state.value:
        container.since = now
    container.state = status.state.value
    container.updated_at = now
    container.message = status.message or container.message
    if status.healthy is not None and container.has_check:
        container.healthy = status.healthy
    previous_health = instance.healthy
    states = [c.state for c in instance.containers]
    instance.state = _instance_task_state(states)
    if instance.state == RUNNING and instance.started_at is None:
        instance.started_at = now
    _note_health(instance, now)
    out.health_changed = instance.healthy != previous_health
    if _all_settled(instance):
        return _ended(state, instance, status, out, now)
    state.put_task(instance)  # always: the container's own status changed
    return out


def _instance_task_state(states: list[str]) -> str:
    """RUNNING when every container runs (or finished); KILLING once one ended
    otherwise (the group is going down); else the launch's progress."""
    if any(s in _TERMINAL and s != FINISHED for s in states):
        return TaskState.TASK_KILLING.value
    if all(s in (RUNNING, FINISHED) for s in states) and RUNNING in states:
        return RUNNING
    if any(s in (RUNNING, TaskState.TASK_STARTING.value) for s in states):
        return TaskState.TASK_STARTING.value
    return TaskState.TASK_STAGING.value


def _all_settled(instance: TaskRecord) -> bool:
    return all(c.state in _TERMINAL for c in instance.containers)


def _note_health(instance: TaskRecord, now: float) -> None:
    checked = [c.healthy for c in instance.containers if c.has_check]
    if not checked:
        return
    healthy = False if False in checked else (None if None in checked else True)
    instance.healthy = healthy
    if healthy:
        instance.last_healthy_at = now
        if instance.first_healthy_at is None:
            instance.first_healthy_at = now
    elif healthy is False:
        instance.last_unhealthy_at = now


def _ended(state: ServicesState, instance: TaskRecord, status: TaskStatus,
           out: StatusOutcome, now: float) -> StatusOutcome:
    state.drop_task(instance.id)
    out.terminal = True
    unrequested = instance.kill_requested_at is None or instance.kill_is_failure
    states = {c.state for c in instance.containers}
    failed = bool(states & {s.value for s in FAILURE_STATES}) and states != {FINISHED}
    out.failed = unrequested and (failed or states == {FINISHED})
    if unrequested:
        why = next((c for c in instance.containers if c.state not in (FINISHED,)
                    and c.state != TaskState.TASK_KILLED.value), instance.containers[0])
        state.last_failure[instance.app_id] = {
            "appId": instance.app_id, "host": instance.hostname,
            "message": why.message or status.message or "", "state": why.state,
            "taskId": why.task_id, "instanceId": instance.id, "slaveId": instance.agent_id,
            "timestamp": timestamp(now), "version": instance.version}
    return out


# ---------------------------------------------------------------- ::status


def instance_status(pod: Pod | None, instance: TaskRecord, role: str = "*") -> dict[str, Any]:
    """Marathon's ``PodInstanceStatus`` for one instance."""
    stamp = timestamp(instance.started_at or instance.staged_at)
    status = _instance_state(instance)
    host_ports = _endpoint_ports(pod, instance) if pod is not None else {}
    out: dict[str, Any] = {
        "id": instance.id, "status": status, "statusSince": stamp,
        "conditions": [], "agentHostname": instance.hostname, "agentId": instance.agent_id,
        "resources": _resources(pod) if pod is not None else {},
        "networks": ([{"addresses": [instance.address]}] if instance.address else []),
        "containers": [_container_status(pod, instance, c, host_ports)
                       for c in instance.containers],
        "specReference": f"/v2/pods{instance.app_id}::versions/{instance.version}",
        "localVolumes": [], "lastUpdated": timestamp(_updated(instance)),
        "lastChanged": timestamp(_updated(instance)), "role": role,
    }
    if instance.message:
        out["message"] = instance.message
    return out


def _instance_state(instance: TaskRecord) -> str:
    if instance.kill_requested_at is not None or instance.state == "TASK_KILLING":
        return "TERMINAL"
    if instance.state != RUNNING:
        return "STAGING"
    return "DEGRADED" if instance.healthy is False or (
        instance.healthy is None and any(c.has_check for c in instance.containers)) \
        else "STABLE"


def _updated(instance: TaskRecord) -> float:
    return max([instance.staged_at, *(c.updated_at for c in instance.containers)])


def _endpoint_ports(pod: Pod, instance: TaskRecord) -> dict[str, int]:
    with_port = [e for _, e in pod.endpoints() if e.host_port is not None]
    return {e.name: p for e, p in zip(with_port, instance.ports, strict=False)}


def _resources(pod: Pod) -> dict[str, float]:
    return {k: v for k, v in pod.resources().items()}


def _container_status(pod: Pod | None, instance: TaskRecord, c: ContainerRecord,
                      host_ports: dict[str, int]) -> dict[str, Any]:
    spec = next((x for x in pod.containers if x.name == c.name), None) if pod else None
    endpoints = []
    for e in spec.endpoints if spec is not None else []:
        item: dict[str, Any] = {"name": e.name}
        if e.name in host_ports:
            item["allocatedHostPort"] = host_ports[e.name]
        if spec is not None and spec.health_check is not None and c.healthy is not None:
            probe = spec.health_check.http or spec.health_check.tcp
            if probe is not None and probe.endpoint == e.name:
                item["healthy"] = c.healthy
        endpoints.append(item)
    conditions = []
    if c.has_check:
        conditions.append({"name": "healthy", "value": _healthy_word(c.healthy),
                           "lastChanged": timestamp(c.since),
                           "lastUpdated": timestamp(c.updated_at)})
    out: dict[str, Any] = {
        "name": c.name, "status": c.state, "statusSince": timestamp(c.since),
        "conditions": conditions, "containerId": c.task_id, "endpoints": endpoints,
        "lastUpdated": timestamp(c.updated_at), "lastChanged": timestamp(c.since),
    }
    if spec is not None:
        out["resources"] = {"cpus": spec.resources.cpus, "mem": spec.resources.mem,
                            "disk": spec.resources.disk, "gpus": spec.resources.gpus}
    if c.message:
        out["message"] = c.message
    return out


def _healthy_word(healthy: bool | None) -> str:
    return "unknown" if healthy is None else str(healthy).lower()


def pod_status(pod: Pod, instances: list[TaskRecord], now: float, role: str = "*",
               removing: bool = False) -> dict[str, Any]:
    """Marathon's ``PodStatus``: the pod's spec, state and every instance's status."""
    items = [instance_status(pod, t, role) for t in sorted(instances, key=lambda t: t.id)]
    stable = sum(1 for i in items if i["status"] == "STABLE")
    state = "TERMINAL" if removing else ("STABLE" if stable >= pod.instances
                                         and len(items) == pod.instances else "DEGRADED")
    stamp = timestamp(now)
    since = max([t.staged_at for t in instances], default=now)
    return {"id": pod.id, "spec": pod_json(pod), "status": state,
            "statusSince": timestamp(since), "instances": items, "terminationHistory": [],
            "lastUpdated": stamp, "lastChanged": timestamp(since)}


def pod_update(state: ServicesState, instance_id: str, status: TaskStatus, now: float,
               failed_at: dict[str, float]) -> Outcome:
    """The workload's ``on_update`` for a pod container: the instance updated, its
    events, and the pod's launch backoff after a failure (``failed_at`` noted)."""
    outcome = apply_container_status(state, instance_id, status, now)
    instance = outcome.task
    assert instance is not None
    state.emit("status_update_event", {**status_event(instance, status),
                                       "taskId": status.task_id.value,
                                       "instanceId": instance.id}, now)
    if outcome.health_changed:
        state.emit("health_status_changed_event", {
            "appId": instance.app_id, "taskId": status.task_id.value,
            "instanceId": instance.id, "version": instance.version,
            "alive": instance.healthy}, now)
    pod = state.pods.get(instance.app_id)
    failure = None
    if outcome.failed and pod is not None:
        b = pod.scheduling.backoff
        failure = (pod.id, BackoffPolicy(b.backoff, b.backoff_factor, b.max_launch_delay))
        failed_at[pod.id] = now
    return Outcome(known=True, failure=failure)
