"""App definitions: Marathon's field names, defaults and JSON shape.

``App`` is the typed, validated form (``validation.parse_app`` builds it from JSON);
``app_json`` renders it the way Marathon's ``GET /v2/apps/{id}`` does, so existing
clients (which often construct their objects from every key they receive) read it.
Fields mesoslite does not act on (Marathon's ``residency``, ``storeUrls``, ..., and any
field it does not know, nested ones included) are kept verbatim in ``App.passthrough``
(``unknown_fields.py``) and echoed back, so a GET/PUT round trip through a Marathon
client loses nothing.

Versions are Marathon timestamps (``2024-05-01T12:00:00.123Z``): ``version`` changes
with every change, ``versionInfo.lastConfigChangeAt`` only when the task
configuration changes (not when scaling).  A task belongs to the configuration it was
launched with (``App.config_version``); that is what a deployment replaces.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec

from frameworks.services.unknown_fields import overlay
from mesoslite.messages.mesos import CommandURI

DEFAULT_DEPLOYMENT_TIMEOUT = 600.0
DEPLOYMENT_TIMEOUT_LABEL = "MESOSLITE_DEPLOYMENT_TIMEOUT_SECONDS"
KILL_SELECTIONS = ("YOUNGEST_FIRST", "OLDEST_FIRST")
BRIDGE = "container/bridge"
HEALTH_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP")

# Marathon fields mesoslite accepts and echoes but does not act on (see docs/services.md).
PASSTHROUGH_FIELDS = (
    "acceptedResourceRoles", "executor", "residency", "storeUrls", "ipAddress", "role", "tty",
)


class Base(msgspec.Struct, rename="camel", omit_defaults=True):
    """JSON in Marathon's camelCase; unknown fields ignored on decode."""


class PortDefinition(Base):
    port: int = 0
    protocol: str = "tcp"
    name: str | None = None
    labels: dict[str, str] = {}


class PortMapping(Base):
    container_port: int = 0
    host_port: int | None = None
    service_port: int = 0
    protocol: str = "tcp"
    name: str | None = None
    labels: dict[str, str] = {}


class DockerParameter(Base):
    key: str
    value: str


class Docker(Base):
    image: str = ""
    network: str | None = None  # Marathon < 1.5 spelling; folded into App.network
    port_mappings: list[PortMapping] | None = None  # likewise, into container.portMappings
    privileged: bool = False
    parameters: list[DockerParameter] = []
    force_pull_image: bool = False


class PersistentVolumeInfo(Base):
    """Marathon's local persistent volume: ``size`` in MB (see volumes.py)."""

    size: float = 0.0
    type: str = "root"


class ExternalVolumeInfo(Base):
    """Marathon's external volume; provider ``dvdi`` is a named Docker volume (driver
    in ``options["dvdi/driver"]``, default ``local``)."""

    name: str | None = None
    provider: str = "dvdi"
    options: dict[str, str] = {}


class ContainerVolume(Base):
    container_path: str
    host_path: str | None = None
    mode: str = "RW"
    persistent: PersistentVolumeInfo | None = None
    external: ExternalVolumeInfo | None = None
    secret: str | None = None  # an id in App.secrets: read-only files (docs/secrets.md)


class AppSecret(Base):
    """DC/OS' ``secrets`` entry: ``source`` names a stored secret (``config:NAME``: a
    config map), ``key`` one of its keys (mesoslite; see docs/secrets.md)."""

    source: str
    key: str | None = None


class Artifact(Base):
    """A ``fetch`` entry: what the agent downloads into the sandbox before the task
    starts (Mesos' ``CommandInfo.URI``; ``destPath`` is its ``output_file``)."""

    uri: str
    extract: bool = True
    executable: bool = False
    cache: bool = False
    dest_path: str | None = None

    def to_mesos(self) -> CommandURI:
        return CommandURI(value=self.uri, extract=self.extract, executable=self.executable,
                          cache=self.cache, output_file=self.dest_path)


class Container(Base):
    type: str = "DOCKER"
    docker: Docker | None = None
    port_mappings: list[PortMapping] | None = None
    volumes: list[ContainerVolume] = []


class Network(Base):
    mode: str = "host"
    name: str | None = None
    labels: dict[str, str] = {}


class CommandCheck(Base):
    value: str


class HealthCheck(Base):
    protocol: str = "HTTP"
    path: str | None = None
    port_index: int | None = None
    port: int | None = None
    command: CommandCheck | None = None
    grace_period_seconds: int = 300
    interval_seconds: int = 60
    timeout_seconds: int = 20
    max_consecutive_failures: int = 3
    delay_seconds: int = 15
    ignore_http1xx: bool = False
    ip_protocol: str = "IPv4"


class ReadinessCheck(Base):
    name: str = "readinessCheck"
    protocol: str = "HTTP"
    path: str = "/"
    port_name: str = "http-api"
    interval_seconds: int = 30
    timeout_seconds: int = 10
    http_status_codes_for_ready: list[int] = msgspec.field(default_factory=lambda: [200])
    preserve_last_response: bool = False


class UpgradeStrategy(Base):
    minimum_health_capacity: float = 1.0
    maximum_over_capacity: float = 1.0


class UnreachableEnabled(Base):
    """Marathon's ``unreachableStrategy`` object: an instance unreachable for
    ``inactiveAfterSeconds`` is replaced; after ``expungeAfterSeconds`` the old task is
    forgotten (killed if it comes back).  See unreachable.py."""

    inactive_after_seconds: int = 0
    expunge_after_seconds: int = 0


class VersionInfo(Base):
    last_scaling_at: str
    last_config_change_at: str


class AutoscaleSpec(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """``autoscale`` (snake_case, as written in the issue; see autoscale.py)."""

    min: int = 1
    max: int = 1
    target_cpu_utilization: float = 0.5
    cooldown_seconds: float = 60.0


class App(Base):
    """One app definition at one version (validated; see ``validation.parse_app``)."""

    id: str = ""
    cmd: str | None = None
    args: list[str] | None = None
    container: Container | None = None
    networks: list[Network] = []
    cpus: float = 1.0
    mem: float = 128.0
    disk: float = 0.0
    gpus: int = 0
    instances: int = 1
    env: dict[str, Any] = {}
    labels: dict[str, str] = {}
    constraints: list[list[str]] = []
    health_checks: list[HealthCheck] = []
    readiness_checks: list[ReadinessCheck] = []
    upgrade_strategy: UpgradeStrategy = msgspec.field(default_factory=UpgradeStrategy)
    backoff_seconds: float = 1.0
    backoff_factor: float = 1.15
    max_launch_delay_seconds: float = 300.0
    kill_selection: str = "YOUNGEST_FIRST"
    port_definitions: list[PortDefinition] | None = None
    ports: list[int] | None = None  # deprecated spelling of portDefinitions
    require_ports: bool = False
    dependencies: list[str] = []
    task_kill_grace_period_seconds: float | None = None
    autoscale: AutoscaleSpec | None = None
    secrets: dict[str, AppSecret] = {}  # referenced by env and volumes
    fetch: list[Artifact] = []
    user: str | None = None  # the tasks run as this user (CommandInfo.user)
    # None: Marathon's default ({0, 0}; "disabled" for apps with persistent volumes)
    unreachable_strategy: UnreachableEnabled | Literal["disabled"] | None = None
    uris: list[str] | None = None  # Marathon < 1.5 spelling of fetch; folded into it
    version: str | None = None
    version_info: VersionInfo | None = None
    passthrough: dict[str, Any] = {}  # fields kept verbatim (unknown_fields.py)

    # ------------------------------------------------------------ derived

    @property
    def network(self) -> str:
        """``host`` or ``bridge`` (Marathon's ``container/bridge``)."""
        return "bridge" if self.networks and self.networks[0].mode == BRIDGE else "host"

    @property
    def docker_image(self) -> str | None:
        c = self.container
        return c.docker.image if c and c.docker and c.docker.image else None

    @property
    def port_mappings(self) -> list[PortMapping]:
        c = self.container
        return list(c.port_mappings or []) if c else []

    @property
    def host_ports_requested(self) -> list[int]:
        """One entry per host port a task needs: 0 for any port, N for port N."""
        if self.network == "bridge":
            return [pm.host_port for pm in self.port_mappings if pm.host_port is not None]
        defs = self.port_definitions or []
        return [d.port if self.require_ports else 0 for d in defs]

    @property
    def port_names(self) -> list[str | None]:
        if self.network == "bridge":
            return [pm.name for pm in self.port_mappings if pm.host_port is not None]
        return [d.name for d in (self.port_definitions or [])]

    @property
    def unreachable(self) -> UnreachableEnabled | None:
        """The unreachable strategy in effect; None: disabled (never replaced)."""
        chosen = self.unreachable_strategy
        if chosen is None:
            c = self.container
            resident = c is not None and any(v.persistent is not None for v in c.volumes)
            return None if resident else UnreachableEnabled()
        return None if chosen == "disabled" else chosen

    @property
    def config_version(self) -> str:
        assert self.version_info is not None, "a stored app always has versionInfo"
        return self.version_info.last_config_change_at

    @property
    def deployment_timeout(self) -> float:
        raw = self.labels.get(DEPLOYMENT_TIMEOUT_LABEL)
        return float(raw) if raw else DEFAULT_DEPLOYMENT_TIMEOUT

    @property
    def has_health_checks(self) -> bool:
        return bool(self.health_checks)

    @property
    def agent_check(self) -> int | None:
        """Index of the check the agent runs (Mesos runs one per task): the COMMAND
        check if there is one (only the agent can run it), else the first."""
        for i, hc in enumerate(self.health_checks):
            if hc.protocol == "COMMAND":
                return i
        return 0 if self.health_checks else None

    @property
    def framework_checks(self) -> list[int]:
        """Indices of the checks the framework runs itself (HTTP, HTTPS, TCP), as
        Marathon runs its own HTTP/TCP checks."""
        return [i for i in range(len(self.health_checks)) if i != self.agent_check]


def same_config(a: App, b: App) -> bool:
    """Whether ``a`` and ``b`` launch the same tasks: equal in everything but
    instances, versions and the autoscaling policy.  Compared as values (``1`` and
    ``1.0`` are equal), so writing back what was read is no change."""
    neutral: dict[str, Any] = {"instances": 0, "version": None, "version_info": None,
                               "autoscale": None}
    return msgspec.structs.replace(a, **neutral) == msgspec.structs.replace(b, **neutral)


# ---------------------------------------------------------------- versions


def encode_app(app: App) -> dict[str, Any]:
    """An app as stored (exact, versions and passthrough fields included)."""
    return msgspec.to_builtins(app)


def decode_app(data: dict[str, Any]) -> App:
    return msgspec.convert(data, App)


def timestamp(now: float) -> str:
    """Marathon's version format: ISO 8601, UTC, milliseconds."""
    ms = round(now * 1000)
    secs, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{millis:03d}Z"


def parse_timestamp(text: str) -> float:
    """Inverse of ``timestamp`` (raises ``ValueError`` on anything else)."""
    import calendar

    base, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return secs + (int(frac[:3].ljust(3, "0")) / 1000 if frac else 0.0)


def next_version(now: float, previous: str | None) -> str:
    """A version string for ``now``, strictly after ``previous`` (one ms later if the
    clock has not moved), so versions of one app are unique and ordered."""
    candidate = timestamp(now)
    if previous is not None and candidate <= previous:
        candidate = timestamp(parse_timestamp(previous) + 0.001)
    return candidate


# ---------------------------------------------------------------- JSON out


def app_json(app: App) -> dict[str, Any]:
    """The app as Marathon renders it (defaults filled in, read-only fields added by
    the caller).  Only field names Marathon itself uses appear here."""
    out: dict[str, Any] = {
        "id": app.id,
        "backoffFactor": app.backoff_factor,
        "backoffSeconds": _num(app.backoff_seconds),
        "constraints": [list(c) for c in app.constraints],
        "container": _container_json(app.container) if app.container else None,
        "cpus": app.cpus,
        "dependencies": list(app.dependencies),
        "disk": app.disk,
        "env": dict(app.env),
        "executor": "",
        "gpus": app.gpus,
        "healthChecks": [_health_json(h) for h in app.health_checks],
        "instances": app.instances,
        "killSelection": app.kill_selection,
        "labels": dict(app.labels),
        "maxLaunchDelaySeconds": _num(app.max_launch_delay_seconds),
        "mem": app.mem,
        "networks": [_network_json(n) for n in app.networks] or [{"mode": "host"}],
        "portDefinitions": [_port_def_json(p) for p in app.port_definitions or []],
        "readinessChecks": [msgspec.to_builtins(r) | _readiness_defaults(r)
                            for r in app.readiness_checks],
        "requirePorts": app.require_ports,
        "upgradeStrategy": {
            "minimumHealthCapacity": app.upgrade_strategy.minimum_health_capacity,
            "maximumOverCapacity": app.upgrade_strategy.maximum_over_capacity,
        },
        "unreachableStrategy": _unreachable_json(app.unreachable),
        "version": app.version,
        "versionInfo": msgspec.to_builtins(app.version_info) if app.version_info else None,
        "fetch": [_artifact_json(a) for a in app.fetch],
    }
    if app.cmd is not None:
        out["cmd"] = app.cmd
    if app.args is not None:
        out["args"] = list(app.args)
    if app.user is not None:
        out["user"] = app.user
    if app.task_kill_grace_period_seconds is not None:
        out["taskKillGracePeriodSeconds"] = _num(app.task_kill_grace_period_seconds)
    if app.network == "host":
        out["ports"] = [p.port for p in app.port_definitions or []]
    if app.autoscale is not None:  # only apps that set it (strict clients use labels)
        out["autoscale"] = {f: getattr(app.autoscale, f)  # every field, defaults too
                            for f in app.autoscale.__struct_fields__}
    if app.secrets:  # names of stored objects only, never values
        out["secrets"] = msgspec.to_builtins(app.secrets)
    return overlay(out, app.passthrough)


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _unreachable_json(strategy: UnreachableEnabled | None) -> dict[str, int] | str:
    if strategy is None:
        return "disabled"
    return {"inactiveAfterSeconds": strategy.inactive_after_seconds,
            "expungeAfterSeconds": strategy.expunge_after_seconds}


def _artifact_json(a: Artifact) -> dict[str, Any]:
    out: dict[str, Any] = {"uri": a.uri, "extract": a.extract, "executable": a.executable,
                           "cache": a.cache}
    if a.dest_path is not None:
        out["destPath"] = a.dest_path
    return out


def _network_json(n: Network) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": n.mode}
    if n.name:
        out["name"] = n.name
    if n.labels:
        out["labels"] = dict(n.labels)
    return out


def _port_def_json(p: PortDefinition) -> dict[str, Any]:
    out: dict[str, Any] = {"port": p.port, "protocol": p.protocol, "labels": dict(p.labels)}
    if p.name:
        out["name"] = p.name
    return out


def _port_mapping_json(pm: PortMapping) -> dict[str, Any]:
    out: dict[str, Any] = {"containerPort": pm.container_port, "servicePort": pm.service_port,
                           "protocol": pm.protocol, "labels": dict(pm.labels)}
    if pm.host_port is not None:
        out["hostPort"] = pm.host_port
    if pm.name:
        out["name"] = pm.name
    return out


def _container_json(c: Container) -> dict[str, Any]:
    out: dict[str, Any] = {"type": c.type, "volumes": [msgspec.to_builtins(v) for v in c.volumes]}
    if c.docker is not None:
        out["docker"] = {
            "image": c.docker.image, "privileged": c.docker.privileged,
            "parameters": [{"key": p.key, "value": p.value} for p in c.docker.parameters],
            "forcePullImage": c.docker.force_pull_image,
        }
    if c.port_mappings is not None:
        out["portMappings"] = [_port_mapping_json(pm) for pm in c.port_mappings]
    return out


def _health_json(h: HealthCheck) -> dict[str, Any]:
    out: dict[str, Any] = {
        "protocol": h.protocol, "gracePeriodSeconds": h.grace_period_seconds,
        "intervalSeconds": h.interval_seconds, "timeoutSeconds": h.timeout_seconds,
        "maxConsecutiveFailures": h.max_consecutive_failures, "delaySeconds": h.delay_seconds,
    }
    if h.protocol in ("HTTP", "HTTPS", "MESOS_HTTP", "MESOS_HTTPS"):
        out["path"] = h.path or "/"
        out["ignoreHttp1xx"] = h.ignore_http1xx
    if h.port is not None:
        out["port"] = h.port
    elif h.port_index is not None:
        out["portIndex"] = h.port_index
    if h.command is not None:
        out["command"] = {"value": h.command.value}
    if h.protocol.startswith("MESOS_"):
        out["ipProtocol"] = h.ip_protocol
    return out


def _readiness_defaults(r: ReadinessCheck) -> dict[str, Any]:
    # omit_defaults drops these; Marathon always shows them.
    return {"name": r.name, "protocol": r.protocol, "path": r.path, "portName": r.port_name,
            "intervalSeconds": r.interval_seconds, "timeoutSeconds": r.timeout_seconds,
            "httpStatusCodesForReady": list(r.http_status_codes_for_ready),
            "preserveLastResponse": r.preserve_last_response}
