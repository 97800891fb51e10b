"""TaskInfo builders for command and Docker tasks with health checks.

Thin, typed wrappers over ``mesoslite.scheduler.task_info`` and the Mesos message
types, so a framework states *what* it wants (an image, a port mapping, an HTTP
check on a port) and gets the Mesos shape right: field names as in ``mesos.proto``,
durations in the units Mesos expects, ports in the order they were requested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from frameworks.common.secret_refs import Ref, env_variable
from mesoslite.messages.mesos import (
    CommandInfo,
    CommandURI,
    ContainerInfo,
    ContainerType,
    DiscoveryInfo,
    DiscoveryPort,
    DiscoveryPorts,
    DockerInfo,
    DockerNetwork,
    DurationInfo,
    Environment,
    HealthCheck,
    HealthCheckType,
    HTTPCheckInfo,
    KillPolicy,
    Parameter,
    PortMapping,
    TaskInfo,
    TCPCheckInfo,
    Volume,
    VolumeMode,
)
from mesoslite.scheduler import task_info


@dataclass(frozen=True)
class CheckSpec:
    """A health check the agent runs.  ``kind``: HTTP, HTTPS, TCP or COMMAND.

    ``port`` is the port the agent probes (HTTP/HTTPS/TCP); ``statuses`` the HTTP
    codes counted healthy (empty: any 2xx/3xx, Mesos' default).
    """

    kind: str
    port: int | None = None
    path: str = "/"
    command: str | None = None
    statuses: tuple[int, ...] = ()
    delay_s: float = 15.0
    interval_s: float = 10.0
    timeout_s: float = 20.0
    consecutive_failures: int = 3
    grace_period_s: float = 10.0

    def to_mesos(self) -> HealthCheck:
        common = {
            "delay_seconds": self.delay_s, "interval_seconds": self.interval_s,
            "timeout_seconds": self.timeout_s,
            "consecutive_failures": self.consecutive_failures,
            "grace_period_seconds": self.grace_period_s,
        }
        kind = self.kind.upper()
        if kind in ("HTTP", "HTTPS"):
            if self.port is None:
                raise ValueError("an HTTP check needs a port")
            http = HTTPCheckInfo(port=self.port, path=self.path or "/",
                                 scheme="https" if kind == "HTTPS" else None,
                                 statuses=list(self.statuses))
            return HealthCheck(type=HealthCheckType.HTTP, http=http, **common)
        if kind == "TCP":
            if self.port is None:
                raise ValueError("a TCP check needs a port")
            return HealthCheck(type=HealthCheckType.TCP, tcp=TCPCheckInfo(port=self.port),
                               **common)
        if kind == "COMMAND":
            if not self.command:
                raise ValueError("a COMMAND check needs a command")
            return HealthCheck(type=HealthCheckType.COMMAND,
                               command=CommandInfo(value=self.command, shell=True), **common)
        raise ValueError(f"unknown health check kind {self.kind!r}")


@dataclass(frozen=True)
class DockerSpec:
    """A Docker container: image, network mode and (host, container, protocol) ports."""

    image: str
    network: str = "HOST"
    port_mappings: Sequence[tuple[int, int, str]] = ()
    privileged: bool = False
    parameters: Sequence[tuple[str, str]] = ()
    force_pull: bool = False
    volumes: Sequence[tuple[str, str, str]] = ()  # (container path, host path, RW|RO)

    def to_mesos(self) -> ContainerInfo:
        docker = DockerInfo(
            image=self.image, network=DockerNetwork(self.network.upper()),
            port_mappings=[PortMapping(host_port=h, container_port=c, protocol=p or "tcp")
                           for h, c, p in self.port_mappings],
            privileged=self.privileged,
            parameters=[Parameter(key=k, value=v) for k, v in self.parameters],
            force_pull_image=self.force_pull,
        )
        volumes = [Volume(container_path=c, host_path=h, mode=VolumeMode(m.upper()))
                   for c, h, m in self.volumes]
        return ContainerInfo(type=ContainerType.DOCKER, docker=docker, volumes=volumes)


@dataclass(frozen=True)
class TaskSpec:
    """Everything about one task but where it runs.

    Give ``cmd`` (shell), ``argv`` (exec), or neither with a ``docker`` image (its
    entrypoint runs; ``argv`` then becomes the container's arguments).
    """

    name: str
    cmd: str | None = None
    argv: Sequence[str] | None = None
    cpus: float = 0.1
    mem: float = 32.0
    disk: float = 0.0
    gpus: float = 0.0
    env: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    docker: DockerSpec | None = None
    check: CheckSpec | None = None
    kill_grace_s: float | None = None
    discovery_name: str | None = None
    port_names: Sequence[str | None] = ()
    # Mesos volumes (host paths, named Docker volumes, persistent volumes): added to
    # the Docker container, or to a MESOS container for a command task.
    volumes: Sequence[Volume] = ()
    # Variables whose values the master resolves from stored secrets / config maps
    # (never a value here; see frameworks/common/secret_refs.py, docs/secrets.md).
    secret_env: Mapping[str, Ref] = field(default_factory=dict)
    # Fetched into the sandbox before the task starts (docs/fetcher.md).
    uris: Sequence[CommandURI] = ()
    # The user the task runs as (CommandInfo.user; None: the framework's user).
    user: str | None = None


def build_task(spec: TaskSpec, task_id: str, agent_id: str, ports: Sequence[int] = ()
               ) -> TaskInfo:
    """The ``TaskInfo`` for ``spec`` on ``agent_id`` with the chosen host ``ports``."""
    container = spec.docker.to_mesos() if spec.docker else None
    if spec.volumes:
        container = container or ContainerInfo(type=ContainerType.MESOS)
        container.volumes = [*container.volumes, *spec.volumes]
    argv = list(spec.argv) if spec.argv else None
    if container is not None and spec.cmd is None and argv:
        info = task_info(spec.name, task_id, agent_id, cmd=None, argv=None, container=container,
                         cpus=spec.cpus, mem=spec.mem, disk=spec.disk, gpus=spec.gpus,
                         ports=ports, env=spec.env, labels=spec.labels,
                         health_check=spec.check.to_mesos() if spec.check else None,
                         uris=spec.uris)
        assert info.command is not None
        # Docker semantics: arguments without a value are the image's CMD override.
        info.command.arguments = argv
    else:
        info = task_info(spec.name, task_id, agent_id, cmd=spec.cmd, argv=argv,
                         container=container, cpus=spec.cpus, mem=spec.mem, disk=spec.disk,
                         gpus=spec.gpus, ports=ports, env=spec.env, labels=spec.labels,
                         health_check=spec.check.to_mesos() if spec.check else None,
                         uris=spec.uris)
    if spec.secret_env:
        assert info.command is not None
        env = info.command.environment or Environment()
        env.variables = [*env.variables, *(env_variable(var, ref)
                                           for var, ref in sorted(spec.secret_env.items()))]
        info.command.environment = env
    if spec.user:
        assert info.command is not None
        info.command.user = spec.user
    if spec.kill_grace_s is not None:
        info.kill_policy = KillPolicy(
            grace_period=DurationInfo(nanoseconds=int(spec.kill_grace_s * 1e9)))
    if spec.discovery_name:
        names = list(spec.port_names) + [None] * (len(ports) - len(spec.port_names))
        info.discovery = DiscoveryInfo(
            visibility="FRAMEWORK", name=spec.discovery_name,
            ports=DiscoveryPorts(ports=[DiscoveryPort(number=p, name=n, protocol="tcp")
                                        for p, n in zip(ports, names, strict=False)]))
    return info
