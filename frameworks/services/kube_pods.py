"""A Kubernetes pod (a Pod, or a controller's template with several containers) ->
a Marathon pod definition (``PUT /v2/pods/{id}``, Marathon's ``Pod`` type).

Every container runs, in one task group on one agent: they share the network
namespace (``container/bridge``: ``localhost`` reaches the other containers) and the
pod's volumes.  ``emptyDir`` becomes a pod ephemeral volume, ``hostPath`` a host
volume, ``secret``/``configMap`` a secret volume; ports become endpoints (host port
dynamic unless given); the liveness probe (or, without one, the startup probe) the
container's ``healthCheck``; a readiness probe is a ``check`` beside a liveness probe,
else a health check that never kills.  Marathon pods have no service ports: a Service
selecting a pod is a warning (kube.py).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from frameworks.services.kube_apps import MARATHON_DEFAULTS, startup_grace
from frameworks.services.kube_podspec import (
    Container,
    Context,
    PodSpec,
    Probe,
    StoredRef,
    port_index,
)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def marathon_pod(pod: PodSpec, pod_id: str, instances: int, labels: dict[str, str],
                 ctx: Context, strategy: dict[str, float] | None = None) -> dict[str, Any]:
    """The Marathon pod running every container of ``pod``."""
    out: dict[str, Any] = {"id": pod_id, "labels": dict(labels),
                           "scaling": {"kind": "fixed", "instances": instances},
                           "networks": [{"mode": "container/bridge"}]}
    secrets: dict[str, dict[str, str]] = {}
    used = {m.volume for c in pod.containers for m in c.mounts}
    volumes = []
    for name in sorted(used):
        volume = pod.volumes[name]
        if volume.kind == "emptyDir":
            volumes.append({"name": name})
        elif volume.kind == "hostPath":
            volumes.append({"name": name, "host": volume.source})
        else:
            source = volume.source if volume.kind == "secret" else f"config:{volume.source}"
            volumes.append({"name": name, "secret": _secret(secrets, StoredRef(source))})
    endpoints: set[str] = set()
    out["containers"] = [_container(c, secrets, endpoints, ctx) for c in pod.containers]
    if volumes:
        out["volumes"] = volumes
    if secrets:
        out["secrets"] = secrets
    scheduling: dict[str, Any] = {}
    if strategy is not None:
        scheduling["upgrade"] = strategy
    if pod.constraints:
        scheduling["placement"] = {"constraints": [
            {"fieldName": c[0], "operator": c[1], **({"value": c[2]} if len(c) > 2 else {})}
            for c in pod.constraints]}
    if scheduling:
        out["scheduling"] = scheduling
    return out


def _secret(secrets: dict[str, dict[str, str]], ref: StoredRef) -> str:
    sid = ref.source.replace("config:", "config-") + (f"-{ref.key}" if ref.key else "")
    secrets[sid] = {"source": ref.source, **({"key": ref.key} if ref.key else {})}
    return sid


def _container(c: Container, secrets: dict[str, dict[str, str]], taken: set[str],
               ctx: Context) -> dict[str, Any]:
    if not _NAME.match(c.name):
        ctx.warn(f"{c.path}.name {c.name!r} is not a valid container name "
                 "(lowercase letters, digits, '-')")
    out: dict[str, Any] = {"name": c.name, "resources": {
        "cpus": c.cpus if c.cpus is not None else 1.0,
        "mem": c.mem if c.mem is not None else 128.0}}
    if c.gpus is not None:
        out["resources"]["gpus"] = c.gpus
    if c.cpus is None and c.mem is None:
        ctx.warn(f"{c.path}: no resources.requests; {MARATHON_DEFAULTS}")
    out["image"] = {"kind": "DOCKER", "id": c.image, "forcePull": c.pull_always}
    if c.privileged:
        ctx.warn(f"{c.path}.securityContext.privileged: pod containers are not privileged")
    line = c.shell_line(ctx)
    if line:
        out["exec"] = {"command": {"shell": line}}
    elif c.args:
        out["exec"] = {"command": {"argv": c.args}, "overrideEntrypoint": False}
    env: dict[str, Any] = {}
    for name, value in c.env.items():
        if isinstance(value, str):
            env[name] = value
        elif isinstance(value, StoredRef):
            env[name] = {"secret": _secret(secrets, value)}
    if env:
        out["environment"] = env
    names = []
    for port in c.ports:
        name = port.name or f"{c.name}-{port.container_port}"
        if name in taken:
            name = f"{c.name}-{name}"
        taken.add(name)
        names.append(name)
    if c.ports:
        out["endpoints"] = [{"name": n, "containerPort": p.container_port,
                             "hostPort": p.host_port, "protocol": [p.protocol]}
                            for n, p in zip(names, c.ports, strict=True)]
    if c.mounts:
        out["volumeMounts"] = [{"name": m.volume, "mountPath": m.path,
                                "readOnly": m.read_only} for m in c.mounts]
    _checks(c, names, out, ctx)
    return out


def _checks(c: Container, endpoints: list[str], out: dict[str, Any], ctx: Context) -> None:
    live = c.liveness or c.startup
    health = None
    if live is not None:
        health = _action(live, c, endpoints, ctx)
        if health is not None:
            grace = startup_grace(c) if c.liveness else 0
            out["healthCheck"] = {**health, "gracePeriodSeconds": live.delay + grace,
                                  "intervalSeconds": live.period,
                                  "timeoutSeconds": live.timeout,
                                  "maxConsecutiveFailures": live.failures,
                                  "delaySeconds": live.delay}
    ready = c.readiness
    action = _action(ready, c, endpoints, ctx) if ready is not None else None
    if ready is None or action is None:
        return
    if health is None:
        # A check that never kills: the pod counts as healthy once it passes.
        out["healthCheck"] = {**action, "gracePeriodSeconds": ready.delay + startup_grace(c),
                              "intervalSeconds": ready.period, "timeoutSeconds": ready.timeout,
                              "maxConsecutiveFailures": 0, "delaySeconds": ready.delay}
    else:
        out["check"] = {**action, "intervalSeconds": ready.period,
                        "timeoutSeconds": ready.timeout, "delaySeconds": ready.delay}


def _action(p: Probe, c: Container, endpoints: list[str], ctx: Context
            ) -> dict[str, Any] | None:
    if p.kind == "exec":
        return {"exec": {"command": {"shell": shlex.join(p.command)}}}
    index = port_index(p.port, c.ports)
    if index is None:
        kind = "httpGet" if p.kind == "http" else "tcpSocket"
        ctx.warn(f"{p.path}.{kind}.port is not a container port; not checked")
        return None
    if p.kind == "http":
        return {"http": {"endpoint": endpoints[index], "path": p.http_path,
                         "scheme": p.scheme}}
    return {"tcp": {"endpoint": endpoints[index]}}
