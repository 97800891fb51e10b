"""From a pod definition to the LAUNCH_GROUP of one instance.

An instance is one task group under the agent's default executor (executor id = the
instance id), with one Mesos task per container (``<instance id>.<container name>``):

* **network**: ``host`` puts every container on the agent's network; ``container/bridge``
  gives the group one namespace held by its first container, which carries every
  endpoint's port mapping (only the holder may map ports), so the containers reach
  each other on ``127.0.0.1`` and the mapped host ports reach whichever listens;
* **ports**: the endpoints' host ports (0: chosen from the offer) in definition order;
  each container's task holds its own endpoints' ports (bridge: the holder all);
* **volumes**: ``{name}`` is a directory of the group's shared sandbox
  (``SANDBOX_PATH`` ``PARENT``), so every container mounting it sees the same files;
  ``{name, host}`` a host path (relative: inside the group's sandbox too);
* **health checks** run by the agent on each container's task, probing the endpoint's
  host port (HTTP/TCP) or running the command inside the container.

Placement treats an instance as one task of the pod's group with the sum of its
containers' and the executor's resources.
"""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Sequence

from frameworks.common.secret_refs import Ref
from frameworks.common.secret_refs import volume as secret_volume
from frameworks.common.taskinfo import CheckSpec, DockerSpec, TaskSpec, build_task
from frameworks.services.app_secrets import entry_ref
from frameworks.services.pod_model import (
    INSTANCE_MARK,
    Endpoint,
    Pod,
    PodContainer,
    SecretValue,
)
from frameworks.services.tasks import ContainerRecord, TaskRecord
from mesoslite.framework import AgentOffers
from mesoslite.framework.offers import fixed_port_resource
from mesoslite.messages.mesos import (
    ID,
    CommandURI,
    ExecutorInfo,
    ExecutorType,
    Operation,
    SandboxPathSource,
    SandboxPathType,
    TaskInfo,
    Volume,
    VolumeMode,
    VolumeSource,
)
from mesoslite.placement import Running, Task
from mesoslite.resources import Resources
from mesoslite.scheduler import calls
from mesoslite.scheduler.helpers import resource_list

EPHEMERAL_DIR = "volumes"  # ephemeral volumes live in <group sandbox>/volumes/<name>


def new_instance_id(pod_id: str) -> str:
    """Marathon's form: the pod id with ``/`` as ``_``, ``.instance-``, a unique suffix."""
    return f"{pod_id.strip('/').replace('/', '_')}{INSTANCE_MARK}{uuid.uuid4().hex}"


def container_task_id(instance_id: str, container: str) -> str:
    return f"{instance_id}.{container}"


def placement_task(pod: Pod, slot: str) -> Task:
    """One waiting instance as a placement task in the pod's group."""
    demand = {k: v for k, v in pod.resources().items() if v}
    requested = pod.host_ports_requested()
    demand.update({fixed_port_resource(p): 1.0 for p in requested if p})
    return Task(slot, demand, ports=requested.count(0), group=pod.id,
                constraints=tuple(tuple(c) for c in pod.scheduling.placement.constraints))


def running_instances(pod: Pod, instances: Sequence[TaskRecord]) -> list[Running]:
    return [Running(pod.id, t.agent_id, t.attributes or {"hostname": t.hostname})
            for t in instances if t.kill_requested_at is None]


def instance_record(pod: Pod, instance_id: str, group: AgentOffers, ports: list[int],
                    now: float) -> TaskRecord:
    """The instance's record, stored before its LAUNCH_GROUP goes out."""
    assert pod.version is not None
    return TaskRecord(
        id=instance_id, app_id=pod.id, version=pod.version,
        config_version=pod.config_version, agent_id=group.agent_id,
        hostname=group.hostname, staged_at=now, address=group.address,
        attributes=dict(group.attributes), ports=ports,
        containers=[ContainerRecord(name=c.name, task_id=container_task_id(instance_id, c.name),
                                    has_check=c.health_check is not None, since=now,
                                    updated_at=now)
                    for c in pod.containers])


def launch_group(pod: Pod, instance_id: str, agent_id: str, ports: list[int]) -> Operation:
    """The LAUNCH_GROUP of one instance with the host ``ports`` chosen for it (one per
    ``pod.host_ports_requested()`` entry, in order)."""
    host_port = _host_ports(pod, ports)
    tasks = [_container_task(pod, c, i, instance_id, agent_id, host_port)
             for i, c in enumerate(pod.containers)]
    r = pod.executor_resources
    executor = ExecutorInfo(
        type=ExecutorType.DEFAULT, executor_id=ID(instance_id), name=f"pod {pod.id}",
        resources=resource_list(Resources(scalars={k: v for k, v in (
            ("cpus", r.cpus), ("mem", r.mem), ("disk", r.disk)) if v})))
    return calls.launch_group_operation(executor, tasks)


def _host_ports(pod: Pod, ports: list[int]) -> dict[str, int]:
    """Endpoint name -> its host port in this instance."""
    with_port = [e for _, e in pod.endpoints() if e.host_port is not None]
    return {e.name: p for e, p in zip(with_port, ports, strict=True)}


def _container_task(pod: Pod, c: PodContainer, index: int, instance_id: str, agent_id: str,
                    host_port: dict[str, int]) -> TaskInfo:
    # Bridge: the first container holds the namespace and so every port mapping.
    if pod.bridged:
        own = [e for _, e in pod.endpoints()] if index == 0 else []
    else:
        own = list(c.endpoints)
    mapped = [e for e in own if e.name in host_port]
    ports = [host_port[e.name] for e in mapped]
    docker = None
    if c.image is not None:
        docker = DockerSpec(
            image=c.image.id, network="BRIDGE" if pod.bridged else "HOST",
            port_mappings=[(host_port[e.name], e.container_port or host_port[e.name],
                            ",".join(e.protocol)) for e in mapped] if pod.bridged else (),
            force_pull=c.image.force_pull)
    cmd, argv = _command(c)
    spec = TaskSpec(
        name=f"{pod.id.strip('/').replace('/', '.')}.{c.name}", cmd=cmd, argv=argv,
        cpus=c.resources.cpus, mem=c.resources.mem, disk=c.resources.disk,
        gpus=c.resources.gpus, env=_env(pod, c, host_port), labels=dict(c.labels),
        docker=docker, check=_check(c, host_port),
        kill_grace_s=c.lifecycle.kill_grace_period_seconds if c.lifecycle else None,
        discovery_name=pod.id.strip("/").replace("/", "."),
        port_names=[e.name for e in mapped], volumes=_volumes(pod, c),
        secret_env=_secret_env(pod, c),
        uris=[CommandURI(value=a.uri, extract=a.extract, executable=a.executable,
                         cache=a.cache, output_file=a.dest_path) for a in c.artifacts])
    return build_task(spec, container_task_id(instance_id, c.name), agent_id, ports)


def _command(c: PodContainer) -> tuple[str | None, list[str] | None]:
    if c.exec is None:
        return None, None
    command = c.exec.command
    if command.shell is not None:
        return command.shell, None
    argv = list(command.argv or [])
    if c.image is not None and c.exec.override_entrypoint:
        return shlex.join(argv), None  # argv[0] replaces the image's entrypoint
    return None, argv


def _env(pod: Pod, c: PodContainer, host_port: dict[str, int]) -> dict[str, str]:
    """Marathon's variables for pod containers, the pod's ``environment``, then the
    container's own on top."""
    env = {
        "MARATHON_APP_ID": pod.id, "MARATHON_APP_VERSION": pod.version or "",
        "MARATHON_CONTAINER_ID": c.name,
        "MARATHON_CONTAINER_RESOURCE_CPUS": _fmt(c.resources.cpus),
        "MARATHON_CONTAINER_RESOURCE_MEM": _fmt(c.resources.mem),
        "MARATHON_CONTAINER_RESOURCE_DISK": _fmt(c.resources.disk),
        "MARATHON_CONTAINER_RESOURCE_GPUS": str(c.resources.gpus),
        "MARATHON_APP_LABELS": " ".join(_env_name(k) for k in sorted(pod.labels)),
    }
    for key, value in pod.labels.items():
        env[f"MARATHON_APP_LABEL_{_env_name(key)}"] = value
    for _, e in pod.endpoints():
        env.update(_endpoint_env(pod, e, host_port.get(e.name)))
    for source in (pod.environment, c.environment):
        for var, value in source.items():
            if isinstance(value, str):
                env[var] = value
            else:
                env.pop(var, None)  # a secret variable (``_secret_env``) wins
    return env


def _ref(pod: Pod, sid: str) -> Ref:
    entry = pod.secrets[sid]
    return entry_ref(entry.source, entry.key)


def _secret_env(pod: Pod, c: PodContainer) -> dict[str, Ref]:
    """The ``{"secret": ID}`` variables of the pod and the container (the container's
    win), as references the master resolves for the agent (assumes it validated)."""
    merged = {**pod.environment, **c.environment}
    return {var: _ref(pod, value.secret) for var, value in merged.items()
            if isinstance(value, SecretValue)}


def _endpoint_env(pod: Pod, e: Endpoint, host: int | None) -> dict[str, str]:
    name = _env_name(e.name)
    out = {}
    if host is not None:
        out[f"EP_HOST_{name}"] = str(host)
    if e.container_port is not None:
        out[f"EP_CONTAINER_{name}"] = str(e.container_port)
    # What a container listens on: the container port behind the bridge, else the host's.
    port = e.container_port if pod.bridged else host
    if port is not None:
        out[f"ENDPOINT_{name}"] = str(port)
    return out


def _check(c: PodContainer, host_port: dict[str, int]) -> CheckSpec | None:
    hc = c.health_check
    if hc is None:
        return None
    common = {"delay_s": float(hc.delay_seconds), "interval_s": float(hc.interval_seconds),
              "timeout_s": float(hc.timeout_seconds),
              "consecutive_failures": hc.max_consecutive_failures,
              "grace_period_s": float(hc.grace_period_seconds)}
    if hc.http is not None:
        return CheckSpec(kind=hc.http.scheme, port=host_port[hc.http.endpoint],
                         path=hc.http.path or "/", **common)
    if hc.tcp is not None:
        return CheckSpec(kind="TCP", port=host_port[hc.tcp.endpoint], **common)
    assert hc.exec is not None
    command = hc.exec.command
    text = command.shell if command.shell is not None else shlex.join(command.argv or [])
    return CheckSpec(kind="COMMAND", command=text, **common)


def _volumes(pod: Pod, c: PodContainer) -> list[Volume]:
    by_name = {v.name: v for v in pod.volumes}
    out = []
    for m in c.volume_mounts:
        v = by_name[m.name]
        if v.secret is not None:  # always read-only
            out.append(secret_volume(m.mount_path, _ref(pod, v.secret)))
            continue
        mode = VolumeMode.RO if m.read_only else VolumeMode.RW
        if v.host is not None and v.host.startswith("/"):
            out.append(Volume(container_path=m.mount_path, mode=mode, host_path=v.host))
            continue
        path = v.host if v.host is not None else f"{EPHEMERAL_DIR}/{v.name}"
        out.append(Volume(container_path=m.mount_path, mode=mode, source=VolumeSource(
            type="SANDBOX_PATH",
            sandbox_path=SandboxPathSource(type=SandboxPathType.PARENT, path=path))))
    return out


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _env_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text).upper()
