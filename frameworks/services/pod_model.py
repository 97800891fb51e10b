"""Marathon pods: the typed definition, its defaults and its JSON shape.

A pod is a set of containers that always run together on one agent: each instance is
ONE task group (a LAUNCH_GROUP under the agent's default executor, docs/containers.md
"Task groups"), one Mesos task per container.  ``Pod`` holds Marathon's fields with
Marathon's names (``pod_validation.parse_pod`` builds it from JSON); ``pod_json``
renders it as ``GET /v2/pods/{id}`` does.  Fields accepted but not acted on are kept
verbatim in ``Pod.passthrough`` and echoed back (the parser names them in a warning).

Versions work as for apps (``model.next_version``): ``version`` changes with every
change, ``config_version`` only when the containers' configuration does (not when
scaling), and an instance belongs to the configuration it was launched with.
"""

from __future__ import annotations

from typing import Any

import msgspec

from frameworks.services.model import BRIDGE, VersionInfo

POD_NETWORK_MODES = ("host", BRIDGE, "container")
INSTANCE_MARK = ".instance-"  # Marathon's instance ids: <pod id, / as _>.instance-<uuid>


class Base(msgspec.Struct, rename="camel", omit_defaults=True, forbid_unknown_fields=True):
    """Marathon's camelCase; an unknown field is an error (the parser names it)."""


class MesosCommand(Base):
    shell: str | None = None
    argv: list[str] | None = None


class PodExec(Base):
    command: MesosCommand
    override_entrypoint: bool | None = None


class PodResources(Base):
    cpus: float = 1.0
    mem: float = 128.0
    disk: float = 0.0
    gpus: int = 0


class ExecutorResources(Base):
    """The default executor's share of each instance (Marathon's defaults)."""

    cpus: float = 0.1
    mem: float = 32.0
    disk: float = 10.0


class PodImage(Base):
    id: str
    kind: str = "DOCKER"
    force_pull: bool = False


class Endpoint(Base):
    name: str
    container_port: int | None = None
    host_port: int | None = None
    protocol: list[str] = msgspec.field(default_factory=lambda: ["tcp"])
    labels: dict[str, str] = {}


class HttpCheck(Base):
    endpoint: str
    path: str = "/"
    scheme: str = "HTTP"


class TcpCheck(Base):
    endpoint: str


class PodCommandCheck(Base):
    command: MesosCommand


class PodHealthCheck(Base):
    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    exec: PodCommandCheck | None = None
    grace_period_seconds: int = 300
    interval_seconds: int = 60
    max_consecutive_failures: int = 3
    timeout_seconds: int = 20
    delay_seconds: int = 15


class VolumeMount(Base):
    name: str
    mount_path: str
    read_only: bool = False


class PodArtifact(Base):
    uri: str
    extract: bool = True
    executable: bool = False
    cache: bool = False
    dest_path: str | None = None


class Lifecycle(Base):
    kill_grace_period_seconds: float | None = None


class PodSecret(Base):
    """``secrets`` entry: ``source`` names a stored secret (``config:NAME``: a config
    map) and ``key`` optionally one of its keys (mesoslite's addition, as for apps)."""

    source: str
    key: str | None = None


class SecretValue(Base):
    """An ``environment`` value ``{"secret": ID}``: the variable holds that secret."""

    secret: str


EnvValue = str | SecretValue


class PodContainer(Base):
    name: str
    resources: PodResources = msgspec.field(default_factory=PodResources)
    exec: PodExec | None = None
    image: PodImage | None = None
    endpoints: list[Endpoint] = []
    environment: dict[str, EnvValue] = {}
    health_check: PodHealthCheck | None = None
    volume_mounts: list[VolumeMount] = []
    artifacts: list[PodArtifact] = []
    labels: dict[str, str] = {}
    lifecycle: Lifecycle | None = None
    passthrough: dict[str, Any] = {}  # accepted, not acted on (named in a warning)


class PodVolume(Base):
    """``{name}``: ephemeral, shared by the instance's containers (in the group's
    sandbox); ``{name, host}``: a host path (relative: inside the group's sandbox);
    ``{name, secret}``: a secret of ``Pod.secrets``, read-only on a tmpfs."""

    name: str
    host: str | None = None
    secret: str | None = None


class PodNetwork(Base):
    mode: str = "container"
    name: str | None = None
    labels: dict[str, str] = {}


class FixedScaling(Base):
    kind: str = "fixed"
    instances: int = 1


class PodBackoff(Base):
    backoff: float = 1.0
    backoff_factor: float = 1.15
    max_launch_delay: float = 300.0


class PodUpgrade(Base):
    minimum_health_capacity: float = 1.0
    maximum_over_capacity: float = 1.0


class PodPlacement(Base):
    constraints: list[list[str]] = []
    passthrough: dict[str, Any] = {}


class PodScheduling(Base):
    backoff: PodBackoff = msgspec.field(default_factory=PodBackoff)
    upgrade: PodUpgrade = msgspec.field(default_factory=PodUpgrade)
    placement: PodPlacement = msgspec.field(default_factory=PodPlacement)
    kill_selection: str = "YOUNGEST_FIRST"
    passthrough: dict[str, Any] = {}


class Pod(Base):
    """One pod definition at one version (validated)."""

    id: str
    containers: list[PodContainer]
    labels: dict[str, str] = {}
    environment: dict[str, EnvValue] = {}
    secrets: dict[str, PodSecret] = {}
    volumes: list[PodVolume] = []
    networks: list[PodNetwork] = []
    scaling: FixedScaling = msgspec.field(default_factory=FixedScaling)
    scheduling: PodScheduling = msgspec.field(default_factory=PodScheduling)
    executor_resources: ExecutorResources = msgspec.field(default_factory=ExecutorResources)
    version: str | None = None
    version_info: VersionInfo | None = None
    passthrough: dict[str, Any] = {}  # accepted, not acted on (named in a warning)

    @property
    def instances(self) -> int:
        return self.scaling.instances

    @property
    def bridged(self) -> bool:
        """Containers share one network namespace behind the bridge (else the host's)."""
        return bool(self.networks) and self.networks[0].mode != "host"

    @property
    def config_version(self) -> str:
        assert self.version_info is not None, "a stored pod always has versionInfo"
        return self.version_info.last_config_change_at

    @property
    def has_health_checks(self) -> bool:
        return any(c.health_check is not None for c in self.containers)

    def endpoints(self) -> list[tuple[PodContainer, Endpoint]]:
        """Every endpoint with its container, in definition order."""
        return [(c, e) for c in self.containers for e in c.endpoints]

    def host_ports_requested(self) -> list[int]:
        """One entry per host port an instance needs: 0 any port, N port N."""
        return [e.host_port for _, e in self.endpoints() if e.host_port is not None]

    def resources(self) -> dict[str, float]:
        """What one instance takes: its containers' and the executor's."""
        total = {"cpus": self.executor_resources.cpus, "mem": self.executor_resources.mem,
                 "disk": self.executor_resources.disk, "gpus": 0.0}
        for c in self.containers:
            for key in ("cpus", "mem", "disk", "gpus"):
                total[key] += float(getattr(c.resources, key))
        return total


def encode_pod(pod: Pod) -> dict[str, Any]:
    return msgspec.to_builtins(pod)


def decode_pod(data: dict[str, Any]) -> Pod:
    return msgspec.convert(data, Pod)


def config_of(pod: Pod) -> dict[str, Any]:
    """What decides an instance's configuration: all but scaling and versions."""
    data = encode_pod(pod)
    for key in ("scaling", "version", "versionInfo"):
        data.pop(key, None)
    return data


def same_config(a: Pod, b: Pod) -> bool:
    return config_of(a) == config_of(b)


def is_instance_id(text: str) -> bool:
    return INSTANCE_MARK in text


# ---------------------------------------------------------------- JSON out


def pod_json(pod: Pod) -> dict[str, Any]:
    """The pod as Marathon renders it: defaults filled in where Marathon shows them."""
    out: dict[str, Any] = {
        "id": pod.id,
        "version": pod.version,
        "labels": dict(pod.labels),
        "environment": msgspec.to_builtins(pod.environment),
        "containers": [_container_json(c) for c in pod.containers],
        "volumes": [msgspec.to_builtins(v) for v in pod.volumes],
        **({"secrets": msgspec.to_builtins(pod.secrets)} if pod.secrets else {}),
        "networks": [msgspec.to_builtins(n) | {"mode": n.mode} for n in pod.networks]
        or [{"mode": "host"}],
        "scaling": {"kind": pod.scaling.kind, "instances": pod.scaling.instances},
        "scheduling": {
            "backoff": {"backoff": pod.scheduling.backoff.backoff,
                        "backoffFactor": pod.scheduling.backoff.backoff_factor,
                        "maxLaunchDelay": pod.scheduling.backoff.max_launch_delay},
            "upgrade": {
                "minimumHealthCapacity": pod.scheduling.upgrade.minimum_health_capacity,
                "maximumOverCapacity": pod.scheduling.upgrade.maximum_over_capacity},
            "placement": {"constraints": [list(c) for c in
                                          pod.scheduling.placement.constraints],
                          **pod.scheduling.placement.passthrough},
            "killSelection": pod.scheduling.kill_selection,
            **pod.scheduling.passthrough,
        },
        "executorResources": {"cpus": pod.executor_resources.cpus,
                              "mem": pod.executor_resources.mem,
                              "disk": pod.executor_resources.disk},
    }
    out.update(pod.passthrough)
    return out


def _container_json(c: PodContainer) -> dict[str, Any]:
    out = msgspec.to_builtins(c)
    out.update(out.pop("passthrough", {}))
    out["resources"] = {"cpus": c.resources.cpus, "mem": c.resources.mem,
                        "disk": c.resources.disk, "gpus": c.resources.gpus}
    if c.endpoints:
        out["endpoints"] = [msgspec.to_builtins(e) | {"protocol": list(e.protocol)}
                            for e in c.endpoints]
    hc = c.health_check
    if hc is not None:  # every timing, defaults too, as Marathon shows them
        out["healthCheck"] = msgspec.to_builtins(hc) | {
            "gracePeriodSeconds": hc.grace_period_seconds,
            "intervalSeconds": hc.interval_seconds,
            "maxConsecutiveFailures": hc.max_consecutive_failures,
            "timeoutSeconds": hc.timeout_seconds, "delaySeconds": hc.delay_seconds}
    return out



def is_pod_json(data: dict[str, Any]) -> bool:
    """Whether a stored definition (a deployment's ``previous``) is a pod's."""
    return "containers" in data
