"""From an app definition to the ``TaskSpec`` of one of its tasks.

Marathon's environment for tasks (``MARATHON_APP_*``, ``PORT0..N``, ``PORT_<NAME>``),
the Docker container with its port mappings, the health check translated to the
agent's (Mesos) check on the right port, the kill grace period and discovery info.
"""

from __future__ import annotations

import re
import uuid

from frameworks.common.taskinfo import CheckSpec, DockerSpec, TaskSpec
from frameworks.services.app_secrets import secret_env, secret_volumes
from frameworks.services.model import App, HealthCheck
from frameworks.services.volumes import Reservation, mesos_volumes


def new_task_id(app_id: str) -> str:
    """Marathon's form: the app id with ``/`` as ``_``, a dot, a unique suffix."""
    return f"{app_id.strip('/').replace('/', '_')}.{uuid.uuid4().hex}"


def task_spec(app: App, ports: list[int], reservation: Reservation | None = None) -> TaskSpec:
    """What to launch for ``app`` given the host ``ports`` chosen for this task (one
    per ``app.host_ports_requested`` entry, in order) and, for a resident app, the
    instance's reservation (its persistent volumes)."""
    docker = None
    if app.docker_image is not None:
        assert app.container is not None and app.container.docker is not None
        d = app.container.docker
        mappings = []
        if app.network == "bridge":
            mapped = [pm for pm in app.port_mappings if pm.host_port is not None]
            mappings = [(host, pm.container_port or host, pm.protocol)
                        for host, pm in zip(ports, mapped, strict=True)]
        docker = DockerSpec(
            image=d.image, network="BRIDGE" if app.network == "bridge" else "HOST",
            port_mappings=mappings, privileged=d.privileged,
            parameters=[(p.key, p.value) for p in d.parameters], force_pull=d.force_pull_image)
    return TaskSpec(
        name=app.id.strip("/").replace("/", "."),
        cmd=app.cmd, argv=list(app.args) if app.args is not None else None,
        cpus=app.cpus, mem=app.mem, disk=app.disk, gpus=app.gpus,
        env=task_env(app, ports), labels=dict(app.labels), docker=docker,
        check=(health_check(app.health_checks[app.agent_check], app, ports)
               if app.agent_check is not None else None),
        kill_grace_s=app.task_kill_grace_period_seconds,
        discovery_name=app.id.strip("/").replace("/", "."), port_names=app.port_names,
        volumes=[*mesos_volumes(app, reservation), *secret_volumes(app)],
        secret_env=secret_env(app),
        uris=[artifact.to_mesos() for artifact in app.fetch],
        user=app.user or None,
    )


def task_env(app: App, ports: list[int]) -> dict[str, str]:
    """Marathon's variables, then the app's own ``env`` on top."""
    env = {
        "MARATHON_APP_ID": app.id,
        "MARATHON_APP_VERSION": app.version or "",
        "MARATHON_APP_RESOURCE_CPUS": _fmt(app.cpus),
        "MARATHON_APP_RESOURCE_MEM": _fmt(app.mem),
        "MARATHON_APP_RESOURCE_DISK": _fmt(app.disk),
        "MARATHON_APP_RESOURCE_GPUS": str(app.gpus),
        "MARATHON_APP_LABELS": " ".join(_env_name(k) for k in sorted(app.labels)),
    }
    if app.docker_image:
        env["MARATHON_APP_DOCKER_IMAGE"] = app.docker_image
    for key, value in app.labels.items():
        env[f"MARATHON_APP_LABEL_{_env_name(key)}"] = value
    for i, port in enumerate(ports):
        env[f"PORT{i}"] = str(port)
    if ports:
        env["PORT"] = str(ports[0])
        env["PORTS"] = ",".join(str(p) for p in ports)
    for name, port in zip(app.port_names, ports, strict=False):
        if name:
            env[f"PORT_{_env_name(name)}"] = str(port)
    if app.network == "bridge":
        mapped = [pm for pm in app.port_mappings if pm.host_port is not None]
        for pm, port in zip(mapped, ports, strict=False):
            if pm.container_port:
                env[f"PORT_{pm.container_port}"] = str(port)
    env.update({k: v for k, v in app.env.items() if isinstance(v, str)})
    return env


def health_check(hc: HealthCheck, app: App, ports: list[int]) -> CheckSpec:
    """The agent's check for Marathon's.  Every protocol runs on the agent (Marathon's
    own HTTP/TCP checks and its MESOS_* ones alike), probing the task's host port."""
    protocol = hc.protocol.removeprefix("MESOS_")
    port = hc.port
    if port is None and hc.port_index is not None and hc.port_index < len(ports):
        port = ports[hc.port_index]
    return CheckSpec(
        kind=protocol, port=port, path=hc.path or "/",
        command=hc.command.value if hc.command else None,
        delay_s=float(hc.delay_seconds), interval_s=float(hc.interval_seconds),
        timeout_s=float(hc.timeout_seconds),
        consecutive_failures=hc.max_consecutive_failures,
        grace_period_s=float(hc.grace_period_seconds),
    )


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _env_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text).upper()
