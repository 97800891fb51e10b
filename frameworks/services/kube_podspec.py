"""Reading a Kubernetes pod spec into neutral values.

``read_pod(r, base, ctx)`` reads the pod spec at ``base`` (``spec`` of a Pod,
``spec.template.spec`` of a Deployment, ReplicationController, ReplicaSet or Job,
``spec.jobTemplate.spec.template.spec`` of a CronJob) with its template labels and
returns a ``PodSpec``: containers (image, command, env, ports, resources, probes,
mounts), volumes and placement.  The renderers turn it into an app (``kube_apps``), a
Marathon pod (``kube_pods``) or a batch job (``kube_batch``).  Everything read is
recorded by the ``Reader``; fields never read end up in a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from frameworks.services.kube_fields import (
    ManifestError,
    Reader,
    cpu_quantity,
    memory_quantity,
)

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# fieldRef paths whose value is only known where the task runs: the task variable
# that holds it (the agent sets HOST to its address, MESOSLITE_HOSTNAME to its name).
RUNTIME_FIELDS = {"status.podIP": "HOST", "status.hostIP": "HOST",
                  "status.podIPs": "HOST", "status.hostIPs": "HOST",
                  "spec.nodeName": "MESOSLITE_HOSTNAME"}

# (kind, stored name) -> its keys, or None when unknown (envFrom needs them).
KeyLookup = Callable[[str, str], "list[str] | None"]


@dataclass(frozen=True)
class StoredRef:
    """A key (or all keys) of a stored object: ``source`` is a secret's name or
    ``config:NAME`` for a config map (the services framework's spelling)."""

    source: str
    key: str | None = None

    @property
    def is_config(self) -> bool:
        return self.source.startswith("config:")

    @property
    def name(self) -> str:
        return self.source.removeprefix("config:")


@dataclass(frozen=True)
class RuntimeRef:
    """A value the task learns where it runs: the task variable holding it."""

    variable: str


EnvValue = str | StoredRef | RuntimeRef


@dataclass
class Names:
    """Where a namespace puts objects: apps and pods under the group ``/ns``; jobs,
    config maps and secrets (flat names) as ``ns.name``.  ``default`` adds nothing."""

    namespace: str = "default"

    def path(self, name: str) -> str:
        return f"/{name}" if self.namespace == "default" else f"/{self.namespace}/{name}"

    def flat(self, name: str) -> str:
        return name if self.namespace == "default" else f"{self.namespace}.{name}"


@dataclass
class Context:
    """What a translation of one object needs besides the object."""

    kind: str  # "Deployment"
    name: str  # the object's metadata.name
    warnings: list[str]
    names: Names
    keys: KeyLookup

    @property
    def where(self) -> str:
        """What prefixes every warning: ``Deployment web``."""
        return f"{self.kind} {self.name}"

    def warn(self, text: str) -> None:
        self.warnings.append(f"{self.where}: {text}")


@dataclass
class Port:
    container_port: int
    host_port: int = 0
    protocol: str = "tcp"
    name: str | None = None


@dataclass
class Probe:
    kind: str  # "http", "tcp" or "exec"
    path: str  # where it was written, for warnings
    port: Any = None  # a container port's number or name (http, tcp)
    http_path: str = "/"
    scheme: str = "HTTP"
    command: list[str] = field(default_factory=list)
    period: int = 10
    timeout: int = 1
    failures: int = 3
    delay: int = 0


@dataclass
class Mount:
    volume: str
    path: str
    read_only: bool = False


@dataclass
class Volume:
    name: str
    kind: str  # "hostPath", "secret", "configMap" or "emptyDir"
    source: str = ""  # the host path, or the stored object's name


@dataclass
class Container:
    path: str  # containers[i] path in the document, for warnings
    name: str
    image: str
    pull_always: bool = False
    privileged: bool = False
    command: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    env: dict[str, EnvValue] = field(default_factory=dict)
    ports: list[Port] = field(default_factory=list)
    cpus: float | None = None
    mem: float | None = None
    gpus: int | None = None
    liveness: Probe | None = None
    readiness: Probe | None = None
    startup: Probe | None = None
    mounts: list[Mount] = field(default_factory=list)

    def shell_line(self, ctx: Context) -> str | None:
        """``command`` + ``args`` as one shell line, with the runtime variables
        exported first; None when the image's own entrypoint runs."""
        import shlex

        runtime = {k: v for k, v in self.env.items() if isinstance(v, RuntimeRef)}
        if not self.command:
            if runtime:
                ctx.warn(f"{self.path}: env {', '.join(runtime)} (fieldRef) need a command "
                         "to be set from the task's environment; not set")
            return None
        line = shlex.join(self.command + self.args)
        if runtime:
            exports = " ".join(f'{k}="${v.variable}"' for k, v in runtime.items())
            line = f"export {exports}; exec {line}"
        return line


@dataclass
class PodSpec:
    labels: dict[str, str]
    containers: list[Container]
    volumes: dict[str, Volume]
    constraints: list[list[str]]  # Marathon's [field, OPERATOR(, value)]
    restart_policy: str | None = None


# ---------------------------------------------------------------- pod


def read_pod(r: Reader, base: str, ctx: Context) -> PodSpec:
    """The pod spec at ``base`` (its labels at ``base`` with ``spec`` -> ``metadata``)."""
    meta = base.removesuffix("spec") + "metadata"
    labels = {str(k): str(v) for k, v in (r.take(f"{meta}.labels") or {}).items()}
    volumes = _volumes(r, base, ctx)
    raw = r.get(f"{base}.containers") or []
    if not isinstance(raw, list) or not raw:
        raise ManifestError(f"{ctx.where}: {base}.containers is empty")
    containers = [_container(r, f"{base}.containers[{i}]", labels, ctx)
                  for i in range(len(raw))]
    for c in containers:
        for m in c.mounts:
            if m.volume not in volumes:
                ctx.warn(f"{c.path}: volumeMount {m.volume!r} names no volume; not mounted")
        c.mounts = [m for m in c.mounts if m.volume in volumes]
    return PodSpec(labels, containers, volumes, _placement(r, base, ctx),
                   r.get(f"{base}.restartPolicy"))


def _volumes(r: Reader, base: str, ctx: Context) -> dict[str, Volume]:
    out: dict[str, Volume] = {}
    for i, _ in enumerate(r.get(f"{base}.volumes") or []):
        v = f"{base}.volumes[{i}]"
        name = str(r.get(f"{v}.name"))
        if r.get(f"{v}.hostPath.path") is not None:
            out[name] = Volume(name, "hostPath", str(r.get(f"{v}.hostPath.path")))
            r.get(f"{v}.hostPath.type")
        elif r.get(f"{v}.secret.secretName") is not None:
            out[name] = Volume(name, "secret",
                               ctx.names.flat(str(r.get(f"{v}.secret.secretName"))))
        elif r.get(f"{v}.configMap.name") is not None:
            out[name] = Volume(name, "configMap",
                               ctx.names.flat(str(r.get(f"{v}.configMap.name"))))
        elif r.get(f"{v}.emptyDir") is not None:
            r.get(f"{v}.emptyDir")
            out[name] = Volume(name, "emptyDir")
        else:
            ctx.warn(f"{v} ({name}): only hostPath, secret, configMap and emptyDir volumes "
                     "are honoured; not mounted")
            r.take(v)
    return out


def _container(r: Reader, c: str, labels: dict[str, str], ctx: Context) -> Container:
    name = str(r.get(f"{c}.name", ""))
    image = r.get(f"{c}.image")
    if not image:
        raise ManifestError(f"{ctx.where}: {c}.image is required")
    out = Container(path=c, name=name, image=str(image),
                    pull_always=r.get(f"{c}.imagePullPolicy") == "Always",
                    privileged=bool(r.get(f"{c}.securityContext.privileged")),
                    command=[str(x) for x in r.take(f"{c}.command") or []],
                    args=[str(x) for x in r.take(f"{c}.args") or []])
    for i, _ in enumerate(r.get(f"{c}.ports") or []):
        p = f"{c}.ports[{i}]"
        port_name = r.get(f"{p}.name")
        out.ports.append(Port(int(r.get(f"{p}.containerPort", 0)),
                              int(r.get(f"{p}.hostPort", 0)),
                              str(r.get(f"{p}.protocol", "TCP")).lower(),
                              str(port_name) if port_name else None))
    out.env = _env(r, c, labels, ctx)
    _resources(r, c, out, ctx)
    out.liveness = _probe(r, f"{c}.livenessProbe", ctx)
    out.readiness = _probe(r, f"{c}.readinessProbe", ctx)
    out.startup = _probe(r, f"{c}.startupProbe", ctx)
    for i, _ in enumerate(r.get(f"{c}.volumeMounts") or []):
        m = f"{c}.volumeMounts[{i}]"
        out.mounts.append(Mount(str(r.get(f"{m}.name")), str(r.get(f"{m}.mountPath")),
                                bool(r.get(f"{m}.readOnly"))))
    return out


# ---------------------------------------------------------------- env


def _env(r: Reader, c: str, labels: dict[str, str], ctx: Context) -> dict[str, EnvValue]:
    """``envFrom`` first, then ``env`` on top (Kubernetes' order of precedence)."""
    env: dict[str, EnvValue] = {}
    for i, _ in enumerate(r.get(f"{c}.envFrom") or []):
        env.update(_env_from(r, f"{c}.envFrom[{i}]", ctx))
    for i, _ in enumerate(r.get(f"{c}.env") or []):
        e = f"{c}.env[{i}]"
        name = str(r.get(f"{e}.name"))
        if r.get(f"{e}.valueFrom") is None:
            env[name] = str(r.get(f"{e}.value", ""))
            continue
        value = _value_from(r, f"{e}.valueFrom", labels, ctx)
        if value is None:
            ctx.warn(f"{e}.valueFrom ({name}) is not honoured; the variable is not set")
            r.take(f"{e}.valueFrom")
        else:
            env[name] = value
    return env


def _env_from(r: Reader, e: str, ctx: Context) -> dict[str, EnvValue]:
    prefix = str(r.get(f"{e}.prefix", ""))
    for kind, stored_kind in (("configMapRef", "config"), ("secretRef", "secret")):
        name = r.get(f"{e}.{kind}.name")
        if name is None:
            continue
        r.get(f"{e}.{kind}.optional")
        stored = ctx.names.flat(str(name))
        keys = ctx.keys(stored_kind, stored)
        if keys is None:
            ctx.warn(f"{e}.{kind} {name}: its keys are unknown (not in these documents "
                     "nor on the master); nothing is set from it")
            return {}
        source = f"config:{stored}" if stored_kind == "config" else stored
        out: dict[str, EnvValue] = {}
        for key in keys:
            if ENV_NAME.match(prefix + key):
                out[prefix + key] = StoredRef(source, key)
            else:
                ctx.warn(f"{e}.{kind} {name}: key {key!r} is not a valid variable name; "
                         "skipped")
        return out
    ctx.warn(f"{e}: only configMapRef and secretRef are honoured")
    r.take(e)
    return {}


def _value_from(r: Reader, path: str, labels: dict[str, str], ctx: Context
                ) -> EnvValue | None:
    for kind, prefix in (("secretKeyRef", ""), ("configMapKeyRef", "config:")):
        name = r.get(f"{path}.{kind}.name")
        if name is not None:
            r.get(f"{path}.{kind}.optional")
            key = str(r.get(f"{path}.{kind}.key", "")) or None
            return StoredRef(prefix + ctx.names.flat(str(name)), key)
    field_path = r.get(f"{path}.fieldRef.fieldPath")
    if field_path is None:
        return None
    r.get(f"{path}.fieldRef.apiVersion")
    field_path = str(field_path)
    if field_path == "metadata.name":
        return ctx.name
    if field_path == "metadata.namespace":
        return ctx.names.namespace
    label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", field_path)
    if label:
        return labels.get(label.group(1), "")
    if field_path in RUNTIME_FIELDS:
        return RuntimeRef(RUNTIME_FIELDS[field_path])
    return None


# ---------------------------------------------------------------- resources, probes


def _resources(r: Reader, c: str, out: Container, ctx: Context) -> None:
    """Requests are the task's resources (which the agent also enforces as its limits);
    limits count only where no request is given, as in Kubernetes."""
    amounts: dict[str, dict[str, float]] = {}
    for kind in ("requests", "limits"):
        got = amounts.setdefault(kind, {})
        cpu = r.get(f"{c}.resources.{kind}.cpu")
        memory = r.get(f"{c}.resources.{kind}.memory")
        if cpu is not None:
            got["cpus"] = cpu_quantity(cpu, f"{ctx.where}: {c}.resources.{kind}.cpu")
        if memory is not None:
            got["mem"] = memory_quantity(memory, f"{ctx.where}: {c}.resources.{kind}.memory")
    for name in ("cpus", "mem"):
        request, limit = amounts["requests"].get(name), amounts["limits"].get(name)
        setattr(out, name, request if request is not None else limit)
        if request is not None and limit is not None and limit != request:
            ctx.warn(f"{c}.resources.limits {name} ({limit:g}) is not honoured: the request "
                     f"({request:g}) is also the limit")
    gpus = r.key(f"{c}.resources.limits", "nvidia.com/gpu")
    if gpus is not None:
        out.gpus = int(gpus)


def _probe(r: Reader, p: str, ctx: Context) -> Probe | None:
    if r.get(p) is None:
        return None
    probe = Probe(kind="", path=p, period=int(r.get(f"{p}.periodSeconds", 10)),
                  timeout=int(r.get(f"{p}.timeoutSeconds", 1)),
                  failures=int(r.get(f"{p}.failureThreshold", 3)),
                  delay=int(r.get(f"{p}.initialDelaySeconds", 0)))
    if r.get(f"{p}.successThreshold", 1) != 1:
        ctx.warn(f"{p}.successThreshold: one success counts (Marathon's checks)")
    if r.get(f"{p}.exec") is not None:
        probe.kind, probe.command = "exec", [str(x) for x in r.take(f"{p}.exec.command") or []]
    elif r.get(f"{p}.httpGet") is not None:
        probe.kind, probe.port = "http", r.get(f"{p}.httpGet.port")
        probe.http_path = str(r.get(f"{p}.httpGet.path", "/"))
        probe.scheme = str(r.get(f"{p}.httpGet.scheme", "HTTP")).upper()
    elif r.get(f"{p}.tcpSocket") is not None:
        probe.kind, probe.port = "tcp", r.get(f"{p}.tcpSocket.port")
    else:
        ctx.warn(f"{p}: only exec, httpGet and tcpSocket probes are honoured")
        r.take(p)
        return None
    return probe


def port_index(port: Any, ports: list[Port]) -> int | None:
    """The index of the container port a probe or Service names (number or name)."""
    for i, mapping in enumerate(ports):
        if port == mapping.name or str(port) == str(mapping.container_port):
            return i
    return None


# ---------------------------------------------------------------- placement


def _placement(r: Reader, base: str, ctx: Context) -> list[list[str]]:
    constraints = []
    for key, value in (r.take(f"{base}.nodeSelector") or {}).items():
        constraints.append([_attribute(key), "IS", str(value)])
    anti = f"{base}.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    for i, _ in enumerate(r.get(anti) or []):
        r.take(f"{anti}[{i}].labelSelector")  # assumed to select the app's own pods
        constraints.append([_attribute(str(r.get(f"{anti}[{i}].topologyKey"))), "UNIQUE"])
    spread = f"{base}.topologySpreadConstraints"
    for i, _ in enumerate(r.get(spread) or []):
        skew = r.get(f"{spread}[{i}].maxSkew")
        r.take(f"{spread}[{i}].labelSelector")
        r.get(f"{spread}[{i}].whenUnsatisfiable")
        if skew == 1:
            constraints.append([_attribute(str(r.get(f"{spread}[{i}].topologyKey"))),
                                "GROUP_BY"])
        else:
            ctx.warn(f"{spread}[{i}] has maxSkew {skew}; only 1 is honoured")
    return constraints


def _attribute(key: str) -> str:
    return "hostname" if key in ("kubernetes.io/hostname", "hostname") else key
