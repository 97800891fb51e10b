"""Controllers (Deployment, ReplicationController, ReplicaSet) and one-container pod
templates -> Marathon app definitions.

``read_controller`` reads what a controller adds to its pod template (replicas,
labels, rolling strategy, progress deadline); ``app_from_pod`` renders a pod with one
container as an app: Docker image, bridge port mappings with dynamic host ports,
command, env (stored references become the app's ``secrets``), resources, probes
(liveness -> health check; HTTP readiness -> readiness check; TCP/exec readiness ->
a health check that never kills; startupProbe -> the grace period), volumes
(``emptyDir`` -> a directory of the task's sandbox) and constraints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frameworks.services.kube_fields import ManifestError, Reader, count_or_share
from frameworks.services.kube_podspec import (
    Container,
    Context,
    PodSpec,
    Port,
    Probe,
    StoredRef,
    port_index,
    read_pod,
)
from frameworks.services.model import DEPLOYMENT_TIMEOUT_LABEL

MARATHON_DEFAULTS = "Marathon's defaults apply (1 cpu, 128 MB)"


@dataclass
class Controller:
    """What a controller says about the pods it keeps."""

    replicas: int
    labels: dict[str, str]  # the controller's and its pod template's
    pod: PodSpec
    strategy: dict[str, float] | None  # upgradeStrategy
    deadline: int | None  # progressDeadlineSeconds


def read_controller(r: Reader, ctx: Context) -> Controller:
    replicas = r.get("spec.replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise ManifestError(f"{ctx.where}: spec.replicas must be a whole number >= 0")
    labels = {str(k): str(v) for k, v in (r.take("metadata.labels") or {}).items()}
    pod = read_pod(r, "spec.template.spec", ctx)
    labels.update(pod.labels)
    r.take("spec.selector")  # the pod labels are the app's; the selector adds nothing
    strategy = _strategy(r, replicas, ctx) if ctx.kind == "Deployment" else None
    deadline = r.get("spec.progressDeadlineSeconds")
    return Controller(replicas, labels, pod, strategy,
                      int(deadline) if deadline is not None else None)


def _strategy(r: Reader, replicas: int, ctx: Context) -> dict[str, float] | None:
    kind = r.get("spec.strategy.type", "RollingUpdate")
    if kind == "Recreate":
        return {"minimumHealthCapacity": 0.0, "maximumOverCapacity": 0.0}
    unavailable = r.get("spec.strategy.rollingUpdate.maxUnavailable", "25%")
    surge = r.get("spec.strategy.rollingUpdate.maxSurge", "25%")
    if replicas == 0:
        return None
    down = count_or_share(unavailable, replicas, False, f"{ctx.where}: maxUnavailable")
    up = count_or_share(surge, replicas, True, f"{ctx.where}: maxSurge")
    if down == 0 and up == 0:
        raise ManifestError(f"{ctx.where}: maxUnavailable and maxSurge cannot both be 0")
    return {"minimumHealthCapacity": round(max(0, replicas - down) / replicas, 4),
            "maximumOverCapacity": round(min(1.0, up / replicas), 4)}


# ---------------------------------------------------------------- the app


def app_from_pod(pod: PodSpec, app_id: str, instances: int, labels: dict[str, str],
                 ctx: Context) -> dict[str, Any]:
    """The app for a pod template with one container."""
    [c] = pod.containers
    app: dict[str, Any] = {"id": app_id, "instances": instances, "labels": dict(labels)}
    docker: dict[str, Any] = {"image": c.image, "forcePullImage": c.pull_always}
    if c.privileged:
        docker["privileged"] = True
    mappings = [_mapping(p) for p in c.ports]
    app["container"] = {"type": "DOCKER", "docker": docker, "portMappings": mappings,
                        "volumes": _volumes(pod, c, app)}
    app["networks"] = [{"mode": "container/bridge"}]
    line = c.shell_line(ctx)
    if line:
        app["cmd"] = line
    elif c.args:
        app["args"] = c.args
    env: dict[str, Any] = {}
    for name, value in c.env.items():
        if isinstance(value, str):
            env[name] = value
        elif isinstance(value, StoredRef):
            env[name] = {"secret": app_secret(app, value)}
    if env:
        app["env"] = env
    for name in ("cpus", "mem"):
        if getattr(c, name) is not None:
            app[name] = getattr(c, name)
    if c.gpus is not None:
        app["gpus"] = c.gpus
    if c.cpus is None and c.mem is None:
        ctx.warn(f"no resources.requests; {MARATHON_DEFAULTS}")
    _checks(c, mappings, app, ctx)
    if pod.constraints:
        app["constraints"] = pod.constraints
    return app


def _mapping(port: Port) -> dict[str, Any]:
    mapping: dict[str, Any] = {"containerPort": port.container_port,
                               "hostPort": port.host_port, "protocol": port.protocol}
    if port.name:
        mapping["name"] = port.name
    return mapping


def app_secret(app: dict[str, Any], ref: StoredRef) -> str:
    """The id of ``ref`` in the app's ``secrets`` (added once)."""
    sid = ref.source.replace("config:", "config-") + (f"-{ref.key}" if ref.key else "")
    entry: dict[str, Any] = {"source": ref.source}
    if ref.key:
        entry["key"] = ref.key
    app.setdefault("secrets", {})[sid] = entry
    return sid


def _volumes(pod: PodSpec, c: Container, app: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for mount in c.mounts:
        volume = pod.volumes[mount.volume]
        mode = "RO" if mount.read_only else "RW"
        if volume.kind == "hostPath":
            out.append({"containerPath": mount.path, "hostPath": volume.source, "mode": mode})
        elif volume.kind == "emptyDir":
            # A relative host path is a directory of the task's sandbox: empty at start,
            # gone with the sandbox, as an emptyDir lives and dies with its pod.
            out.append({"containerPath": mount.path, "hostPath": f"emptydir-{volume.name}",
                        "mode": mode})
        else:
            # Read-only files on a tmpfs, one per key (Kubernetes' layout).
            source = volume.source if volume.kind == "secret" else f"config:{volume.source}"
            out.append({"containerPath": mount.path,
                        "secret": app_secret(app, StoredRef(source))})
    return out


# ---------------------------------------------------------------- checks


def startup_grace(c: Container) -> int:
    """Seconds the startup probe allows before other probes count (Kubernetes holds
    them back until it succeeds; Marathon's grace period is the nearest thing)."""
    s = c.startup
    return s.delay + s.failures * s.period if s is not None else 0


def _checks(c: Container, mappings: list[dict[str, Any]], app: dict[str, Any],
            ctx: Context) -> None:
    checks = []
    live = c.liveness or c.startup
    if live is not None:
        check = _health(live, c.ports, ctx, startup_grace(c) if c.liveness else 0)
        if check is not None:
            checks.append(check)
    ready = c.readiness
    if ready is not None and ready.kind == "http":
        index = port_index(ready.port, c.ports)
        if index is None:
            ctx.warn(f"{ready.path}.httpGet.port is not a container port; readiness not "
                     "checked")
        else:
            mappings[index].setdefault("name", f"port-{mappings[index]['containerPort']}")
            app["readinessChecks"] = [{
                "name": "readinessCheck", "protocol": ready.scheme, "path": ready.http_path,
                "portName": mappings[index]["name"], "intervalSeconds": ready.period,
                "timeoutSeconds": ready.timeout}]
    elif ready is not None:
        # Marathon's readiness checks are HTTP only; a check that never kills gates
        # deployments on the task being healthy, which is what readiness is for here.
        check = _health(ready, c.ports, ctx, startup_grace(c))
        if check is not None:
            if check["protocol"] == "COMMAND" and any(x["protocol"] == "COMMAND"
                                                      for x in checks):
                ctx.warn(f"{ready.path}: one exec check per task runs; the livenessProbe's "
                         "is kept")
            else:
                checks.append({**check, "maxConsecutiveFailures": 0})
    if checks:
        app["healthChecks"] = checks


def _health(p: Probe, ports: list[Port], ctx: Context, grace: int) -> dict[str, Any] | None:
    check: dict[str, Any] = {"intervalSeconds": p.period, "timeoutSeconds": p.timeout,
                             "maxConsecutiveFailures": p.failures, "delaySeconds": p.delay,
                             "gracePeriodSeconds": p.delay + grace}
    if p.kind == "exec":
        import shlex

        return {**check, "protocol": "COMMAND", "command": {"value": shlex.join(p.command)}}
    index = port_index(p.port, ports)
    if index is None:
        kind = "httpGet" if p.kind == "http" else "tcpSocket"
        ctx.warn(f"{p.path}.{kind}.port is not a container port; no health check")
        return None
    if p.kind == "http":
        return {**check, "protocol": p.scheme, "portIndex": index, "path": p.http_path}
    return {**check, "protocol": "TCP", "portIndex": index}


def with_deadline(app: dict[str, Any], ctl: Controller) -> dict[str, Any]:
    """The controller's rolling strategy and progress deadline on the app."""
    if ctl.strategy is not None:
        app["upgradeStrategy"] = ctl.strategy
    if ctl.deadline is not None:
        app["labels"][DEPLOYMENT_TIMEOUT_LABEL] = str(ctl.deadline)
    return app
