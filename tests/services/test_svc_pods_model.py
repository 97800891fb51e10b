"""Pods without a cluster: the rendered definition parses back to itself, and the
containers' status updates fold into the instance as the docs say (all running, health
of every checked container, the instance ends once no container is left, failure vs
a requested kill)."""

from __future__ import annotations

from frameworks.services import pod_ops
from frameworks.services.pod_instances import apply_container_status, pod_status
from frameworks.services.pod_launch import instance_record, launch_group
from frameworks.services.pod_model import pod_json
from frameworks.services.pod_validation import parse_pod
from frameworks.services.state import ServicesState
from mesoslite.framework import AgentOffers
from mesoslite.messages.mesos import ID, OperationType, TaskState, TaskStatus

POD = {
    "id": "/shop/cart", "networks": [{"mode": "container/bridge"}],
    "volumes": [{"name": "shared"}, {"name": "logs", "host": "/var/log/cart"}],
    "containers": [
        {"name": "web", "resources": {"cpus": 0.2, "mem": 64},
         "image": {"kind": "DOCKER", "id": "nginx"},
         "endpoints": [{"name": "http", "containerPort": 80, "hostPort": 0}],
         "volumeMounts": [{"name": "shared", "mountPath": "/usr/share/nginx/html"}],
         "healthCheck": {"http": {"endpoint": "http", "path": "/"}}},
        {"name": "sidecar", "resources": {"cpus": 0.1, "mem": 32},
         "image": {"kind": "DOCKER", "id": "busybox"},
         "exec": {"command": {"shell": "sleep 100"}},
         "volumeMounts": [{"name": "shared", "mountPath": "/data", "readOnly": True},
                          {"name": "logs", "mountPath": "/logs"}]},
    ],
}


def created(state: ServicesState):
    pod, warnings = parse_pod(POD)
    assert warnings == []
    pod_ops.create_pod(state, pod, 1000.0)
    return pod


def test_a_rendered_pod_parses_back_to_the_same_definition() -> None:
    state = ServicesState()
    pod = created(state)
    again, _ = parse_pod(pod_json(pod))
    assert pod_json(again) | {"version": pod.version} == pod_json(pod)


def test_the_launch_group_shares_one_namespace_and_the_volume() -> None:
    state = ServicesState()
    pod = created(state)
    op = launch_group(pod, "shop_cart.instance-1", "agent-1", [31005])
    assert op.type == OperationType.LAUNCH_GROUP
    assert op.launch_group is not None
    web, sidecar = op.launch_group.task_group.tasks
    assert [t.task_id.value for t in (web, sidecar)] == [
        "shop_cart.instance-1.web", "shop_cart.instance-1.sidecar"]
    assert web.container.docker.port_mappings[0].host_port == 31005  # the holder maps
    assert sidecar.container.docker.port_mappings == []
    shared = [v for t in (web, sidecar) for v in t.container.volumes
              if v.source is not None and v.source.sandbox_path is not None]
    assert {v.source.sandbox_path.path for v in shared} == {"volumes/shared"}
    assert [v.host_path for v in sidecar.container.volumes if v.host_path] == ["/var/log/cart"]
    assert web.health_check.http.port == 31005
    assert op.launch_group.executor.executor_id.value == "shop_cart.instance-1"


def _status(task_id: str, state: TaskState, healthy: bool | None = None) -> TaskStatus:
    return TaskStatus(task_id=ID(task_id), state=state, healthy=healthy)


def test_container_updates_fold_into_the_instance() -> None:
    state = ServicesState()
    pod = created(state)
    group = AgentOffers("agent-1", "host1", "127.0.0.1")
    record = instance_record(pod, "shop_cart.instance-1", group, [31005], 1000.0)
    state.put_task(record)
    web, sidecar = (c.task_id for c in record.containers)
    apply_container_status(state, record.id, _status(web, TaskState.TASK_RUNNING), 1001.0)
    assert state.tasks[record.id].state == "TASK_STARTING"  # not every container runs yet
    apply_container_status(state, record.id, _status(sidecar, TaskState.TASK_RUNNING), 1001.0)
    assert state.tasks[record.id].state == "TASK_RUNNING"
    assert state.tasks[record.id].healthy is None
    out = apply_container_status(state, record.id, _status(web, TaskState.TASK_RUNNING, True),
                                 1002.0)
    assert out.health_changed and state.tasks[record.id].healthy is True
    status = pod_status(pod, [state.tasks[record.id]], 1003.0)
    assert status["status"] == "STABLE"
    assert status["instances"][0]["containers"][0]["endpoints"] == [
        {"name": "http", "allocatedHostPort": 31005, "healthy": True}]
    # web fails: the agent kills the sidecar; the instance ends once both are gone
    out = apply_container_status(state, record.id, _status(web, TaskState.TASK_FAILED), 1004.0)
    assert not out.terminal and state.tasks[record.id].state == "TASK_KILLING"
    out = apply_container_status(state, record.id, _status(sidecar, TaskState.TASK_KILLED),
                                 1005.0)
    assert out.terminal and out.failed and record.id not in state.tasks
    assert state.last_failure["/shop/cart"]["taskId"] == web
    assert state.container_tasks == {}


def test_a_requested_kill_is_no_failure() -> None:
    state = ServicesState()
    pod = created(state)
    group = AgentOffers("agent-1", "host1", "127.0.0.1")
    record = instance_record(pod, "shop_cart.instance-2", group, [31006], 1000.0)
    state.put_task(record)
    pod_ops.kill_instances(state, pod.id, [record.id], 1001.0)
    for c in record.containers:
        out = apply_container_status(state, record.id, _status(c.task_id,
                                                               TaskState.TASK_KILLED), 1002.0)
    assert out.terminal and not out.failed
