"""From a ``LaunchSpec`` to the arguments of ``docker create`` (pure: no engine calls).

Everything the docker containerizer decides about a container is here, so it can be
read (and tested) in one place:

* **name** ``mesoslite-<container_id>``; **labels** ``mesoslite.runtime_id`` (the
  agent's runtime id: the only label cleanup trusts), ``mesoslite.agent_id``,
  ``mesoslite.framework_id``, ``mesoslite.task_id``, ``mesoslite.container_id``, plus
  the task's own labels (keys starting with ``mesoslite.`` are reserved).
* **command** (Mesos' docker semantics): ``shell`` -> entrypoint ``/bin/sh -c`` with
  ``value``; otherwise the image's entrypoint with ``arguments`` as its command (the
  full argv, as for process tasks) or ``[value]``, or the image's own command when
  neither is given.
* **env**: ``LaunchSpec.env`` without the agent-side ``PATH``, ``HOME`` and ``LANG``
  (the image's own values win unless the task set them in ``command.environment``),
  ``MESOS_SANDBOX`` pointing at the sandbox as mounted in the container
  (``/mnt/mesos/sandbox``, also the working directory, as in Mesos) and
  ``MESOS_CONTAINER_NAME``.
* **network** BRIDGE (with ``port_mappings``: host ports must come from the task's
  ``ports`` resource), HOST or NONE; USER networks are not supported.  A task group's
  Docker task other than the one owning the group's network namespace joins it
  (``container:<owner>``; no port mappings or hostname of its own).
* **task groups**: the group's shared sandbox is mounted at ``/mnt/mesos/group``
  (``MESOSLITE_GROUP_SANDBOX``).
* **limits**: CFS quota ``cpus`` x 100 ms per 100 ms period plus cpu shares
  (1024 per cpu); memory ``mem`` MB with memory+swap equal (no swap).  With
  ``TaskInfo.limits`` the quota and the memory limit follow the limits (none for
  "Infinity") and the shares and a memory reservation the request.
* **volumes**: host paths (relative ones are inside the sandbox, as in Mesos) and named
  docker volumes, RO or RW.
* **parameters**: only the keys in ``PARAMETER_ALLOW_LIST``; anything else is a
  ``LaunchError``.
* **hardening** (``agent/container_policy.py``): capabilities dropped but a small
  default set, ``no-new-privileges``, no privileged container and no host network
  unless the agent's policy allows the task's principal; ``cap-add`` only what the
  principal was granted.  A refused request is a ``PolicyError`` (the task fails).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from mesoslite.agent.container_policy import ContainerPolicy, Request, capability, harden
from mesoslite.agent.containerizers.base import LaunchError, LaunchSpec
from mesoslite.agent.task_env import GROUP_SANDBOX_ENV
from mesoslite.messages.mesos import (
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    Volume,
    VolumeMode,
)

LABEL_PREFIX = "mesoslite."
LABEL_RUNTIME_ID = "mesoslite.runtime_id"
LABEL_AGENT_ID = "mesoslite.agent_id"
LABEL_FRAMEWORK_ID = "mesoslite.framework_id"
LABEL_TASK_ID = "mesoslite.task_id"
LABEL_CONTAINER_ID = "mesoslite.container_id"
NAME_PREFIX = "mesoslite-"
SANDBOX_MOUNT = "/mnt/mesos/sandbox"  # where Mesos mounts the sandbox, too
GROUP_SANDBOX_MOUNT = "/mnt/mesos/group"  # a task group's shared sandbox
CPU_PERIOD_US = 100_000
MIN_CPU_QUOTA_US = 1_000  # the kernel's lower bound for cfs_quota_us
# Agent-side variables that would shadow the image's own unless the task sets them.
HOST_ONLY_ENV = ("PATH", "HOME", "LANG")
# Engine-side logs: json-file so the logs API can replay them after an agent restart;
# bounded so a chatty task cannot fill the engine's disk.
LOG_CONFIG = {"type": "json-file", "config": {"max-size": "50m", "max-file": "3"}}

# `docker run` options a task may pass in DockerInfo.parameters (with or without
# the leading dashes).  Everything here only restricts the container or changes what
# runs inside it, but ``cap-add``, which the container policy checks against the
# principal's grants; options that widen its privileges (device, privileged,
# pid/ipc/network namespaces, security-opt, volumes-from, log-driver ...) are refused.
PARAMETER_ALLOW_LIST = (
    "add-host",
    "cap-add",
    "cap-drop",
    "dns",
    "dns-search",
    "env",
    "hostname",
    "init",
    "label",
    "read-only",
    "shm-size",
    "stop-signal",
    "tmpfs",
    "ulimit",
    "user",
    "workdir",
)


@dataclass
class CreateArgs:
    """What ``docker create`` gets: keyword arguments of the SDK's low-level
    ``APIClient.create_container`` and ``create_host_config``."""

    image: str
    name: str
    labels: dict[str, str]
    environment: dict[str, str]
    command: list[str] | None
    entrypoint: list[str] | None
    working_dir: str
    user: str | None
    hostname: str | None
    stop_signal: str | None
    ports: list[tuple[int, str]]
    host_config: dict[str, Any]
    named_volumes: list[tuple[str, str]] = field(default_factory=list)  # (name, driver)

    def create_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``create_container`` (host_config added by the caller)."""
        return {
            "image": self.image, "name": self.name, "labels": self.labels,
            "environment": self.environment, "command": self.command,
            "entrypoint": self.entrypoint, "working_dir": self.working_dir,
            "user": self.user, "hostname": self.hostname, "stop_signal": self.stop_signal,
            "ports": self.ports or None, "detach": True, "tty": False, "stdin_open": False,
        }


def container_name(container_id: str) -> str:
    return NAME_PREFIX + container_id


def docker_info(spec: LaunchSpec) -> tuple[ContainerInfo, DockerInfo]:
    """The task's container and how Docker runs it: its DockerInfo, or for a MESOS
    container with an image the same as a DOCKER container of that image on the
    host's network (a MESOS container has no network of its own without CNI)."""
    container = spec.task.container
    image = container.mesos.image if container is not None and container.mesos else None
    if container is not None and container.type == ContainerType.MESOS and image is not None:
        if image.docker is None or not image.docker.name:
            raise LaunchError("A MESOS container's image needs "
                              "'container.mesos.image.docker.name'")
        return container, DockerInfo(image=image.docker.name, network=DockerNetwork.HOST,
                                     force_pull_image=not image.cached)
    if container is None or container.docker is None or not container.docker.image:
        raise LaunchError("A DOCKER container needs 'container.docker.image'")
    return container, container.docker


def build_create_args(spec: LaunchSpec, runtime_id: str,
                      policy: ContainerPolicy | None = None) -> CreateArgs:
    """The container for ``spec`` hardened by ``policy`` (default: ``ContainerPolicy()``,
    fully hardened); LaunchError names what the task asked for wrongly, PolicyError
    what the policy does not allow its principal."""
    container, docker = docker_info(spec)
    params = parse_parameters(docker)
    hardening = harden(policy or ContainerPolicy(), spec.principal, Request(
        privileged=docker.privileged, host_network=docker.network == DockerNetwork.HOST,
        cap_add=params.cap_add, cap_drop=params.cap_drop, read_only=params.read_only))
    args = CreateArgs(
        image=docker.image,
        name=container_name(spec.container_id),
        labels={**task_labels(spec), **params.labels, **mesoslite_labels(spec, runtime_id)},
        environment={**container_env(spec), **params.env},
        command=None, entrypoint=None,
        working_dir=params.workdir or SANDBOX_MOUNT,
        user=params.user or _command_user(spec),
        hostname=params.hostname or container.hostname,
        stop_signal=params.stop_signal,
        ports=[],
        host_config={},
    )
    args.command, args.entrypoint = command_and_entrypoint(spec)
    if spec.network_owner is not None:
        network_mode, args.ports, bindings = joined_network(spec, args.hostname), [], {}
    else:
        network_mode, args.ports, bindings = network(docker, spec.ports)
    binds, args.named_volumes = volume_binds(container.volumes, spec)
    if spec.group_sandbox is not None:
        binds.insert(0, f"{spec.group_sandbox}:{GROUP_SANDBOX_MOUNT}:rw")
    args.host_config = {
        "network_mode": network_mode,
        "port_bindings": bindings or None,
        "binds": [f"{spec.sandbox}:{SANDBOX_MOUNT}:rw", *binds],
        "log_config": LOG_CONFIG,
        **limits(spec.cpus, spec.mem_mb, spec.cpu_limit, spec.mem_limit_mb),
        **params.host_config,
        **hardening,
    }
    return args


def mesoslite_labels(spec: LaunchSpec, runtime_id: str) -> dict[str, str]:
    return {
        LABEL_RUNTIME_ID: runtime_id,
        LABEL_AGENT_ID: spec.agent_id,
        LABEL_FRAMEWORK_ID: spec.framework_id,
        LABEL_TASK_ID: spec.task_id,
        LABEL_CONTAINER_ID: spec.container_id,
    }


def task_labels(spec: LaunchSpec) -> dict[str, str]:
    labels = spec.task.labels.labels if spec.task.labels is not None else []
    out = {}
    for label in labels:
        if label.key.startswith(LABEL_PREFIX):
            raise LaunchError(f"Task label '{label.key}': keys starting with "
                              f"'{LABEL_PREFIX}' are reserved for the agent")
        out[label.key] = label.value or ""
    return out


def container_env(spec: LaunchSpec) -> dict[str, str]:
    """The task's environment as the container should see it (see module docstring)."""
    command = spec.task.command
    task_set = set()
    if command is not None and command.environment is not None:
        task_set = {v.name for v in command.environment.variables if v.value is not None}
    env = {k: v for k, v in spec.env.items() if k not in HOST_ONLY_ENV or k in task_set}
    env["MESOS_SANDBOX"] = SANDBOX_MOUNT
    env["MESOS_CONTAINER_NAME"] = container_name(spec.container_id)
    if spec.group_sandbox is not None:
        env[GROUP_SANDBOX_ENV] = GROUP_SANDBOX_MOUNT
    return env


def command_and_entrypoint(spec: LaunchSpec) -> tuple[list[str] | None, list[str] | None]:
    command = spec.task.command
    if command is None:
        return None, None
    if command.shell:
        if not command.value:
            raise LaunchError("A shell command needs 'command.value'")
        return [command.value], ["/bin/sh", "-c"]
    if command.arguments:
        return list(command.arguments), None
    return ([command.value] if command.value else None), None


def _command_user(spec: LaunchSpec) -> str | None:
    return spec.task.command.user if spec.task.command is not None else None


def network(docker: DockerInfo, task_ports: tuple[int, ...]
            ) -> tuple[str, list[tuple[int, str]], dict[str, list[int]]]:
    """(network_mode, exposed container ports, port bindings) for the task."""
    mode = {DockerNetwork.BRIDGE: "bridge", DockerNetwork.HOST: "host",
            DockerNetwork.NONE: "none"}.get(docker.network)
    if mode is None:
        raise LaunchError(f"Docker network {docker.network.value} is not supported "
                          "(use BRIDGE, HOST or NONE)")
    if docker.port_mappings and mode != "bridge":
        raise LaunchError(f"Port mappings need BRIDGE networking, not {docker.network.value}")
    exposed: list[tuple[int, str]] = []
    bindings: dict[str, list[int]] = {}
    for pm in docker.port_mappings:
        if pm.host_port not in task_ports:
            raise LaunchError(
                f"Port mapping {pm.host_port}->{pm.container_port}: host port {pm.host_port} "
                f"is not among the task's ports resource ({_port_text(task_ports)})")
        if not 0 < pm.container_port < 65536:
            raise LaunchError(f"Port mapping: container port {pm.container_port} is invalid")
        for proto in (pm.protocol or "tcp").lower().split(","):
            if proto not in ("tcp", "udp"):
                raise LaunchError(f"Port mapping {pm.host_port}->{pm.container_port}: "
                                  f"protocol '{proto}' is not tcp or udp")
            if (pm.container_port, proto) not in exposed:
                exposed.append((pm.container_port, proto))
            bindings.setdefault(f"{pm.container_port}/{proto}", []).append(pm.host_port)
    return mode, exposed, bindings


def joined_network(spec: LaunchSpec, hostname: str | None) -> str:
    """The network mode of a task joining its group's network namespace: it has the
    owner's network, so none of its own settings (Docker would refuse them too)."""
    docker = docker_info(spec)[1]
    if docker.port_mappings:
        raise LaunchError("Port mappings: only the task group's first Docker task, which "
                          "holds the group's network, may map ports")
    if hostname:
        raise LaunchError("Hostname: a task in its group's network namespace has the "
                          "hostname of the group's first Docker task")
    return f"container:{container_name(spec.network_owner or '')}"


def _port_text(ports: tuple[int, ...]) -> str:
    return ",".join(str(p) for p in ports) if ports else "none"


def limits(cpus: float, mem_mb: float, cpu_limit: float | None = None,
           mem_limit_mb: float | None = None) -> dict[str, Any]:
    """Host-config limits from the task's resources (none when a resource is 0).

    With ``TaskInfo.limits`` (``cpu_limit`` / ``mem_limit_mb``, as Mesos' Docker
    containerizer does): cpu shares and the memory reservation follow the request, the
    CFS quota and the memory limit the limit; an infinite limit sets none."""
    out: dict[str, Any] = {}
    quota_cpus = cpus if cpu_limit is None else cpu_limit
    if cpus > 0:
        out["cpu_shares"] = max(2, round(cpus * 1024))
    if 0 < quota_cpus < math.inf:
        out["cpu_period"] = CPU_PERIOD_US
        out["cpu_quota"] = max(MIN_CPU_QUOTA_US, round(quota_cpus * CPU_PERIOD_US))
    hard_mb = mem_mb if mem_limit_mb is None else mem_limit_mb
    if 0 < hard_mb < math.inf:
        mem = int(hard_mb * 2**20)
        out["mem_limit"] = mem
        out["memswap_limit"] = mem  # memory+swap == memory: no swap
    if mem_limit_mb is not None and mem_mb > 0:
        out["mem_reservation"] = int(mem_mb * 2**20)
    return out


def volume_binds(volumes: list[Volume], spec: LaunchSpec
                 ) -> tuple[list[str], list[tuple[str, str]]]:
    """``binds`` entries (``source:target:mode``) and named volumes with a driver."""
    binds: list[str] = []
    named: list[tuple[str, str]] = []
    for vol in volumes:
        target = vol.container_path
        if not target.startswith("/"):
            raise LaunchError(f"Volume container_path '{target}' must be absolute")
        mode = "ro" if vol.mode == VolumeMode.RO else "rw"
        source = vol.source
        if source is not None and source.docker_volume is not None:
            name = source.docker_volume.name
            if not name or "/" in name or ":" in name:
                raise LaunchError(f"Volume for {target}: docker volume name '{name}' is invalid")
            if source.docker_volume.driver and source.docker_volume.driver != "local":
                named.append((name, source.docker_volume.driver))
            binds.append(f"{name}:{target}:{mode}")
            continue
        host = vol.host_path or (source.host_path.path if source and source.host_path else None)
        if not host:
            raise LaunchError(f"Volume for {target} needs a host_path or a docker_volume source")
        if not host.startswith("/"):
            sandbox = os.path.normpath(str(spec.sandbox))
            host = os.path.normpath(os.path.join(sandbox, host))
            if os.path.commonpath([sandbox, host]) != sandbox:
                raise LaunchError(f"Volume host_path '{vol.host_path}' leaves the sandbox")
        if ":" in host or ":" in target:
            raise LaunchError(f"Volume paths may not contain ':' ({host} -> {target})")
        binds.append(f"{host}:{target}:{mode}")
    return binds, named


@dataclass
class Parameters:
    """DockerInfo.parameters, checked against the allow-list and sorted by target."""

    labels: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    workdir: str | None = None
    hostname: str | None = None
    stop_signal: str | None = None
    cap_add: list[str] = field(default_factory=list)  # decided by the container policy
    cap_drop: list[str] = field(default_factory=list)
    read_only: bool | None = None
    host_config: dict[str, Any] = field(default_factory=dict)


def parse_parameters(docker: DockerInfo) -> Parameters:
    out = Parameters()
    for param in docker.parameters:
        key = param.key.lstrip("-")
        if key not in PARAMETER_ALLOW_LIST:
            raise LaunchError(
                f"Docker parameter '{param.key}' is not allowed on this agent; "
                f"allowed: {', '.join(PARAMETER_ALLOW_LIST)}")
        try:
            _apply_parameter(out, key, param.value)
        except (ValueError, IndexError):
            raise LaunchError(
                f"Docker parameter '{param.key}': cannot use value '{param.value}'") from None
    return out


def _apply_parameter(out: Parameters, key: str, value: str) -> None:
    hc = out.host_config
    if key in ("label", "env"):
        name, _, val = value.partition("=")
        if not name:
            raise ValueError(value)
        if key == "label" and name.startswith(LABEL_PREFIX):
            raise LaunchError(f"Docker parameter label '{name}': keys starting with "
                              f"'{LABEL_PREFIX}' are reserved for the agent")
        (out.labels if key == "label" else out.env)[name] = val
    elif key in ("user", "workdir", "hostname"):
        setattr(out, key, value)
    elif key == "stop-signal":
        out.stop_signal = value
    elif key == "add-host":
        host, _, ip = value.partition(":")
        if not host or not ip:
            raise ValueError(value)
        hc.setdefault("extra_hosts", {})[host] = ip
    elif key in ("cap-add", "cap-drop"):
        caps = out.cap_add if key == "cap-add" else out.cap_drop
        caps.extend(capability(c) for c in value.split(",") if c.strip())
    elif key in ("dns", "dns-search"):
        hc.setdefault(key.replace("-", "_"), []).append(value)
    elif key == "read-only":
        out.read_only = _boolean(value)
    elif key == "init":
        hc["init"] = _boolean(value)
    elif key == "tmpfs":
        path, _, options = value.partition(":")
        if not path.startswith("/"):
            raise ValueError(value)
        hc.setdefault("tmpfs", {})[path] = options
    elif key == "ulimit":
        name, _, limit = value.partition("=")
        soft, _, hard = limit.partition(":")
        if not name:
            raise ValueError(value)
        hc.setdefault("ulimits", []).append(
            {"name": name, "soft": int(soft), "hard": int(hard or soft)})
    elif key == "shm-size":
        hc["shm_size"] = value


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("", "true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(value)
