"""Kubernetes ``Deployment`` + ``Service`` manifests -> app definitions.

``translate(documents)`` takes parsed YAML documents (any mix of Deployments,
Services and plain app definitions) and returns the app definitions (Marathon JSON)
with warnings.  Every field of a Kubernetes object that was not read into the app is
named in a warning (``Deployment redis-master: spec.template.spec.serviceAccountName
is not honoured``): the translation tracks which fields it consumed, so nothing is
dropped silently, including fields this module has never heard of.

What maps to what (docs/services.md has the table): replicas -> instances; the first
container's image, command/args, env, ports (Docker bridge port mappings with dynamic
host ports), ``resources.requests`` (cpu "100m" -> 0.1, memory "100Mi" -> 100 MB);
liveness probe -> health check; HTTP readiness probe -> readiness check; rolling
update maxUnavailable/maxSurge -> upgradeStrategy; Recreate -> 0/0;
progressDeadlineSeconds -> the deployment timeout (mesoslite rolls back, Kubernetes
only reports); nodeSelector -> IS constraints; required pod anti-affinity on a
topology key -> UNIQUE; topology spread with maxSkew 1 -> GROUP_BY.  A Service whose
selector matches a Deployment's pod labels gives the matching port mappings their
service ports (Marathon's cluster-wide port per app port) and the app the label
``MESOSLITE_SERVICE``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from frameworks.services.kube_fields import (
    ManifestError,
    Reader,
    count_or_share,
    cpu_quantity,
    memory_quantity,
)
from frameworks.services.model import DEPLOYMENT_TIMEOUT_LABEL

__all__ = ["SERVICE_LABEL", "ManifestError", "Translation", "cpu_quantity",
           "memory_quantity", "translate"]

SERVICE_LABEL = "MESOSLITE_SERVICE"
DEPLOYMENT_VERSIONS = ("apps/v1", "apps/v1beta1", "apps/v1beta2", "extensions/v1beta1", "v1")


@dataclass
class Translation:
    apps: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- documents


def translate(documents: list[Any]) -> Translation:
    """Apps for the Deployments (with their Services) and plain app definitions."""
    out = Translation()
    deployments: list[tuple[dict[str, Any], dict[str, str], Reader]] = []
    services = []
    for i, doc in enumerate(documents):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"document {i + 1}: expected a mapping, got {type(doc).__name__}")
        kind = doc.get("kind")
        if kind is None and "id" in doc:
            out.apps.append(doc)  # an app definition as Marathon takes it
        elif kind == "Deployment":
            app, reader = _deployment(doc, out.warnings)
            deployments.append((app, _pod_labels(reader), reader))
        elif kind == "Service":
            services.append(doc)
        else:
            raise ManifestError(f"document {i + 1}: kind {kind!r} is not supported "
                                "(Deployment, Service or an app definition)")
    for doc in services:
        _service(doc, deployments, out.warnings)
    for app, _, reader in deployments:
        name = reader.get("metadata.name")
        out.warnings += [f"Deployment {name}: {p} is not honoured"
                         for p in reader.unread(skip=("status",))]
        out.apps.append(app)
    return out


def _pod_labels(reader: Reader) -> dict[str, str]:
    labels = reader.take("spec.template.metadata.labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def _deployment(doc: dict[str, Any], warnings: list[str]) -> tuple[dict[str, Any], Reader]:
    r = Reader(doc)
    name = r.get("metadata.name")
    if not isinstance(name, str) or not name:
        raise ManifestError("Deployment: metadata.name is required")
    where = f"Deployment {name}"
    version = r.get("apiVersion")
    if version not in DEPLOYMENT_VERSIONS:
        warnings.append(f"{where}: apiVersion {version!r} read as apps/v1")
    r.get("kind")
    namespace = r.get("metadata.namespace") or "default"
    app_id = f"/{name}" if namespace == "default" else f"/{namespace}/{name}"
    replicas = r.get("spec.replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise ManifestError(f"{where}: spec.replicas must be a whole number >= 0")
    containers = r.get("spec.template.spec.containers") or []
    if not containers:
        raise ManifestError(f"{where}: spec.template.spec.containers is empty")
    if len(containers) > 1:
        names = ", ".join(str(c.get("name")) for c in containers[1:])
        warnings.append(f"{where}: only the first container runs; not run: {names}")
        for i in range(1, len(containers)):
            r.take(f"spec.template.spec.containers[{i}]")
    labels = {str(k): str(v) for k, v in (r.take("metadata.labels") or {}).items()}
    labels.update(_pod_labels(r))
    r.take("spec.selector")  # the pod labels are the app's; the selector adds nothing
    app: dict[str, Any] = {"id": app_id, "instances": replicas, "labels": labels}
    _container(r, "spec.template.spec.containers[0]", app, where, warnings)
    _strategy(r, app, replicas, where)
    _placement(r, app, where, warnings)
    deadline = r.get("spec.progressDeadlineSeconds")
    if deadline is not None:
        app["labels"][DEPLOYMENT_TIMEOUT_LABEL] = str(deadline)
    return app, r


def _container(r: Reader, c: str, app: dict[str, Any], where: str, warnings: list[str]) -> None:
    r.get(f"{c}.name")
    image = r.get(f"{c}.image")
    if not image:
        raise ManifestError(f"{where}: {c}.image is required")
    pull = r.get(f"{c}.imagePullPolicy")
    docker: dict[str, Any] = {"image": str(image), "forcePullImage": pull == "Always"}
    if r.get(f"{c}.securityContext.privileged"):
        docker["privileged"] = True
    ports = []
    for i, port in enumerate(r.get(f"{c}.ports") or []):
        p = f"{c}.ports[{i}]"
        mapping = {"containerPort": int(r.get(f"{p}.containerPort", 0)),
                   "hostPort": int(r.get(f"{p}.hostPort", 0)),
                   "protocol": str(r.get(f"{p}.protocol", "TCP")).lower()}
        if r.get(f"{p}.name"):
            mapping["name"] = str(r.get(f"{p}.name"))
        ports.append(mapping)
    app["container"] = {"type": "DOCKER", "docker": docker, "portMappings": ports,
                        "volumes": _volumes(r, c, app, where, warnings)}
    app["networks"] = [{"mode": "container/bridge"}]
    command = [str(x) for x in r.take(f"{c}.command") or []]
    args = [str(x) for x in r.take(f"{c}.args") or []]
    if command:
        app["cmd"] = shlex.join(command + args)
    elif args:
        app["args"] = args
    env: dict[str, Any] = {}
    for i, _ in enumerate(r.get(f"{c}.env") or []):
        e = f"{c}.env[{i}]"
        name = str(r.get(f"{e}.name"))
        if r.get(f"{e}.valueFrom") is None:
            env[name] = str(r.get(f"{e}.value", ""))
            continue
        ref = _key_ref(r, f"{e}.valueFrom")
        if ref is None:
            warnings.append(f"{where}: {e}.valueFrom ({name}) is not honoured; "
                            "the variable is not set")
            r.take(f"{e}.valueFrom")
        else:
            env[name] = {"secret": _app_secret(app, *ref)}
    if env:
        app["env"] = env
    _resources(r, c, app, where, warnings)
    _probes(r, c, app, ports, where, warnings)


def _resources(r: Reader, c: str, app: dict[str, Any], where: str, warnings: list[str]) -> None:
    """Requests are the task's resources (which the agent also enforces as its limits);
    limits count only where no request is given, as in Kubernetes."""
    amounts: dict[str, dict[str, float]] = {}
    for kind in ("requests", "limits"):
        got = amounts.setdefault(kind, {})
        cpu = r.get(f"{c}.resources.{kind}.cpu")
        memory = r.get(f"{c}.resources.{kind}.memory")
        if cpu is not None:
            got["cpus"] = cpu_quantity(cpu, f"{where}: {c}.resources.{kind}.cpu")
        if memory is not None:
            got["mem"] = memory_quantity(memory, f"{where}: {c}.resources.{kind}.memory")
    for name in ("cpus", "mem"):
        request, limit = amounts["requests"].get(name), amounts["limits"].get(name)
        if request is not None:
            app[name] = request
        elif limit is not None:
            app[name] = limit
        if request is not None and limit is not None and limit != request:
            warnings.append(f"{where}: {c}.resources.limits {name} ({limit:g}) is not "
                            f"honoured: the request ({request:g}) is also the limit")
    gpus = r.key(f"{c}.resources.limits", "nvidia.com/gpu")
    if gpus is not None:
        app["gpus"] = int(gpus)
    if "cpus" not in app and "mem" not in app:
        warnings.append(f"{where}: no resources.requests; Marathon's defaults apply "
                        "(1 cpu, 128 MB)")


def _key_ref(r: Reader, path: str) -> tuple[str, str | None] | None:
    """``valueFrom.secretKeyRef`` / ``configMapKeyRef`` as (source, key), else None."""
    for kind, prefix in (("secretKeyRef", ""), ("configMapKeyRef", "config:")):
        name = r.get(f"{path}.{kind}.name")
        if name is not None:
            return prefix + str(name), str(r.get(f"{path}.{kind}.key", "")) or None
    return None


def _app_secret(app: dict[str, Any], source: str, key: str | None) -> str:
    """The id of ``source``/``key`` in the app's ``secrets`` (added once)."""
    sid = source.replace("config:", "config-") + (f"-{key}" if key else "")
    entry: dict[str, Any] = {"source": source}
    if key:
        entry["key"] = key
    app.setdefault("secrets", {})[sid] = entry
    return sid


def _volumes(r: Reader, c: str, app: dict[str, Any], where: str,
             warnings: list[str]) -> list[dict[str, Any]]:
    host_paths: dict[Any, str] = {}
    stored: dict[Any, str] = {}  # volume name -> secret or config:NAME
    for i, _ in enumerate(r.get("spec.template.spec.volumes") or []):
        v = f"spec.template.spec.volumes[{i}]"
        path = r.get(f"{v}.hostPath.path")
        if path is not None:
            host_paths[r.get(f"{v}.name")] = path
        elif r.get(f"{v}.secret.secretName") is not None:
            stored[r.get(f"{v}.name")] = str(r.get(f"{v}.secret.secretName"))
        elif r.get(f"{v}.configMap.name") is not None:
            stored[r.get(f"{v}.name")] = "config:" + str(r.get(f"{v}.configMap.name"))
    out = []
    for i, _ in enumerate(r.get(f"{c}.volumeMounts") or []):
        m = f"{c}.volumeMounts[{i}]"
        source = r.get(f"{m}.name")
        if source in host_paths:
            out.append({"containerPath": r.get(f"{m}.mountPath"),
                        "hostPath": host_paths[source],
                        "mode": "RO" if r.get(f"{m}.readOnly") else "RW"})
        elif source in stored:
            # Read-only files on a tmpfs, one per key (Kubernetes' layout).
            r.get(f"{m}.readOnly")
            out.append({"containerPath": r.get(f"{m}.mountPath"),
                        "secret": _app_secret(app, stored[source], None)})
        else:
            warnings.append(f"{where}: volume {source!r} is not a hostPath volume; not mounted")
    return out


def _probes(r: Reader, c: str, app: dict[str, Any], ports: list[dict[str, Any]], where: str,
            warnings: list[str]) -> None:
    live = f"{c}.livenessProbe"
    if r.get(live) is not None:
        check = _probe(r, live, ports, where, warnings)
        if check is not None:
            app["healthChecks"] = [check]
    ready = f"{c}.readinessProbe"
    if r.get(f"{ready}.httpGet") is not None:
        index = _port_index(r.get(f"{ready}.httpGet.port"), ports)
        if index is None:
            warnings.append(f"{where}: {ready}.httpGet.port is not a container port; "
                            "readiness not checked")
            return
        ports[index].setdefault("name", f"port-{ports[index]['containerPort']}")
        app["readinessChecks"] = [{
            "name": "readinessCheck", "protocol": str(r.get(f"{ready}.httpGet.scheme", "HTTP")),
            "path": str(r.get(f"{ready}.httpGet.path", "/")), "portName": ports[index]["name"],
            "intervalSeconds": int(r.get(f"{ready}.periodSeconds", 10)),
            "timeoutSeconds": int(r.get(f"{ready}.timeoutSeconds", 1)),
        }]


def _probe(r: Reader, p: str, ports: list[dict[str, Any]], where: str, warnings: list[str]
           ) -> dict[str, Any] | None:
    delay = int(r.get(f"{p}.initialDelaySeconds", 0))
    check: dict[str, Any] = {
        "intervalSeconds": int(r.get(f"{p}.periodSeconds", 10)),
        "timeoutSeconds": int(r.get(f"{p}.timeoutSeconds", 1)),
        "maxConsecutiveFailures": int(r.get(f"{p}.failureThreshold", 3)),
        "delaySeconds": delay, "gracePeriodSeconds": delay,
    }
    if r.get(f"{p}.exec") is not None:
        command = [str(x) for x in r.take(f"{p}.exec.command") or []]
        return {**check, "protocol": "COMMAND", "command": {"value": shlex.join(command)}}
    kind = "httpGet" if r.get(f"{p}.httpGet") is not None else "tcpSocket"
    index = _port_index(r.get(f"{p}.{kind}.port"), ports)
    if index is None:
        warnings.append(f"{where}: {p}.{kind}.port is not a container port; no health check")
        return None
    if kind == "httpGet":
        scheme = str(r.get(f"{p}.httpGet.scheme", "HTTP")).upper()
        return {**check, "protocol": scheme, "portIndex": index,
                "path": str(r.get(f"{p}.httpGet.path", "/"))}
    return {**check, "protocol": "TCP", "portIndex": index}


def _port_index(port: Any, ports: list[dict[str, Any]]) -> int | None:
    for i, mapping in enumerate(ports):
        if port == mapping.get("name") or str(port) == str(mapping["containerPort"]):
            return i
    return None


def _strategy(r: Reader, app: dict[str, Any], replicas: int, where: str) -> None:
    kind = r.get("spec.strategy.type", "RollingUpdate")
    if kind == "Recreate":
        app["upgradeStrategy"] = {"minimumHealthCapacity": 0.0, "maximumOverCapacity": 0.0}
        return
    unavailable = r.get("spec.strategy.rollingUpdate.maxUnavailable", "25%")
    surge = r.get("spec.strategy.rollingUpdate.maxSurge", "25%")
    if replicas == 0:
        return
    down = count_or_share(unavailable, replicas, False, f"{where}: maxUnavailable")
    up = count_or_share(surge, replicas, True, f"{where}: maxSurge")
    if down == 0 and up == 0:
        raise ManifestError(f"{where}: maxUnavailable and maxSurge cannot both be 0")
    app["upgradeStrategy"] = {
        "minimumHealthCapacity": round(max(0, replicas - down) / replicas, 4),
        "maximumOverCapacity": round(min(1.0, up / replicas), 4),
    }


def _placement(r: Reader, app: dict[str, Any], where: str, warnings: list[str]) -> None:
    constraints = []
    for key, value in (r.take("spec.template.spec.nodeSelector") or {}).items():
        constraints.append([_attribute(key), "IS", str(value)])
    anti = "spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    for i, term in enumerate(r.get(anti) or []):
        r.take(f"{anti}[{i}].labelSelector")  # assumed to select the app's own pods
        constraints.append([_attribute(str(r.get(f"{anti}[{i}].topologyKey"))), "UNIQUE"])
    spread = "spec.template.spec.topologySpreadConstraints"
    for i, term in enumerate(r.get(spread) or []):
        skew = r.get(f"{spread}[{i}].maxSkew")
        r.take(f"{spread}[{i}].labelSelector")
        r.get(f"{spread}[{i}].whenUnsatisfiable")
        if skew == 1:
            constraints.append([_attribute(str(r.get(f"{spread}[{i}].topologyKey"))),
                                "GROUP_BY"])
        else:
            warnings.append(f"{where}: {spread}[{i}] has maxSkew {skew}; only 1 is honoured")
    if constraints:
        app["constraints"] = constraints


def _attribute(key: str) -> str:
    return "hostname" if key in ("kubernetes.io/hostname", "hostname") else key


def _service(doc: dict[str, Any], deployments: list[tuple[dict[str, Any], dict[str, str],
                                                          Reader]],
             warnings: list[str]) -> None:
    r = Reader(doc)
    name = r.get("metadata.name")
    where = f"Service {name}"
    for path in ("apiVersion", "kind", "metadata.labels"):
        r.take(path)
    selector = {str(k): str(v) for k, v in (r.take("spec.selector") or {}).items()}
    matched = [(app, reader) for app, labels, reader in deployments
               if selector and all(labels.get(k) == v for k, v in selector.items())]
    if not matched:
        warnings.append(f"{where}: its selector matches no Deployment in these documents")
    for app, _ in matched:
        app["labels"][SERVICE_LABEL] = str(name)
        mappings = app["container"]["portMappings"]
        for i, _port in enumerate(r.get("spec.ports") or []):
            p = f"spec.ports[{i}]"
            port = r.get(f"{p}.port")
            target = r.get(f"{p}.targetPort", port)
            r.get(f"{p}.protocol")
            r.get(f"{p}.name")
            index = _port_index(target, mappings)
            if index is None:
                warnings.append(f"{where}: {p}.targetPort {target} is not a container port "
                                f"of {app['id']}")
                continue
            mappings[index]["servicePort"] = int(port)
    warnings += [f"{where}: {p} is not honoured" for p in r.unread(skip=("status",))]
