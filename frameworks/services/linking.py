"""What a task is told about other apps: its dependencies' addresses in its
environment and, for Docker tasks, host entries naming every app's service.  Pure.

Every agent host runs a load balancer (``mesoslite lb``) listening on each app's
service port, on 127.0.0.1 and on the Docker bridge gateway; so a service is reached
at *the local proxy, service port*, wherever its tasks run.

**Host entries** (Docker tasks).  Each app with a TCP service port gets names in the
container's ``/etc/hosts``, pointing at the proxy's address as seen from containers
(``host-gateway``: Docker resolves it to the bridge gateway, 20.10+):

* ``redis-master``, ``web.prod`` -- the app id's path reversed, as in DNS;
* ``redis-master.mesoslite``, ``web.prod.mesoslite`` -- the full DNS name;
* ``web`` -- the bare name, for apps in the same group as the task (Kubernetes'
  same-namespace short name; it wins over a top-level app of the same name).

Every app known when the task launches is named, not only declared dependencies (so
a Kubernetes client that never declared one runs unchanged); an app created later is
not in the file of a container already running (use DNS, or restart the task).  The
task's own ``add-host`` parameters win over these.

**Environment** (every task, for each app in ``dependencies``), with ``P`` the
dependency's id path upper-cased, ``/`` and ``-`` as ``_`` (``/redis-master`` ->
``REDIS_MASTER``, ``/prod/db`` -> ``PROD_DB``):

* ``P_HOST`` -- where the local proxy is reached: ``127.0.0.1`` for process tasks, the
  dependency's host-entry name (``redis-master``) for Docker tasks;
* ``P_PORT`` -- its first service port; ``P_PORTS`` all, comma-separated;
  ``P_PORT_<NAME>`` each named one;
* ``P_SERVICE_HOST``, ``P_SERVICE_PORT`` -- the same, under Kubernetes' names, so
  clients written for Kubernetes' environment find them;
* ``P_ENDPOINTS`` -- ``host:port,...`` of its routable tasks on the first service
  port when the task launched (direct, bypassing the proxy; a snapshot).

The app's own ``env`` wins over all of these.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from frameworks.common.taskinfo import DockerSpec, TaskSpec
from frameworks.services.dnszone import DEFAULT_DOMAIN, app_labels
from frameworks.services.endpoints import AppEndpoints, app_endpoints
from frameworks.services.model import App
from frameworks.services.state import ServicesState, service_ports

LOOPBACK = "127.0.0.1"
HOST_GATEWAY = "host-gateway"  # Docker's name for the bridge gateway in --add-host
_HOSTNAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


def env_prefix(app_id: str) -> str:
    """``/prod/redis-master`` -> ``PROD_REDIS_MASTER``."""
    return re.sub(r"[^A-Za-z0-9_]", "_", "_".join(s for s in app_id.split("/") if s)).upper()


def short_name(app_id: str) -> str:
    """The name without the domain: ``/prod/web`` -> ``web.prod``."""
    return ".".join(app_labels(app_id))


def group_of(app_id: str) -> str:
    return app_id.rstrip("/").rsplit("/", 1)[0] or "/"


def has_tcp_service_port(app: App) -> bool:
    ports = service_ports(app)
    protocols = ([pd.protocol for pd in app.port_definitions or []] if app.network == "host"
                 else [pm.protocol for pm in app.port_mappings])
    return any(p and "tcp" in (proto or "tcp").lower() for p, proto in
               zip(ports, protocols, strict=False))


def host_aliases(apps: Mapping[str, App], for_app: str, domain: str = DEFAULT_DOMAIN
                 ) -> dict[str, str]:
    """name -> app id for every app with a TCP service port, as a task of ``for_app``
    sees them (see the module docstring)."""
    names: dict[str, str] = {}
    served = sorted(a for a, app in apps.items() if has_tcp_service_port(app))
    for app_id in served:
        for name in (short_name(app_id), f"{short_name(app_id)}.{domain.rstrip('.')}"):
            if _HOSTNAME.match(name):
                names.setdefault(name, app_id)
    group = group_of(for_app)
    for app_id in served:
        if group != "/" and group_of(app_id) == group:
            bare = app_labels(app_id)[0]
            if _HOSTNAME.match(bare):
                names[bare] = app_id  # same group: wins over a top-level app's name
    return names


def dependency_env(app: App, apps: Mapping[str, App],
                   endpoints: Mapping[str, AppEndpoints], host: str | None) -> dict[str, str]:
    """The variables for ``app``'s dependencies (see the module docstring); ``host``
    is what ``P_HOST`` says for them: None for a per-dependency host-entry name."""
    env: dict[str, str] = {}
    for dep_id in app.dependencies:
        dep = apps.get(dep_id)
        if dep is None:
            continue
        prefix = env_prefix(dep_id)
        ports = [p for p in service_ports(dep) if p]
        if ports:
            where = host if host is not None else short_name(dep_id)
            env[f"{prefix}_HOST"] = env[f"{prefix}_SERVICE_HOST"] = where
            env[f"{prefix}_PORT"] = env[f"{prefix}_SERVICE_PORT"] = str(ports[0])
            env[f"{prefix}_PORTS"] = ",".join(str(p) for p in ports)
        names = ([pd.name for pd in dep.port_definitions or []] if dep.network == "host"
                 else [pm.name for pm in dep.port_mappings])
        for name, port in zip(names, service_ports(dep), strict=False):
            if name and port:
                env[f"{prefix}_PORT_{re.sub(r'[^A-Za-z0-9_]', '_', name).upper()}"] = str(port)
        current = endpoints.get(dep_id)
        if current is not None and current.ports:
            env[f"{prefix}_ENDPOINTS"] = ",".join(
                f"{e.host}:{e.port}" for e in current.ports[0].endpoints)
    return env


def linked_spec(spec: TaskSpec, app: App, state: ServicesState,
                lb_address: str | None = HOST_GATEWAY) -> TaskSpec:
    """``spec`` with the dependencies' variables (under the task's own) and, for a
    Docker task when ``lb_address`` is set, the host entries (before the task's own
    ``add-host`` parameters, so those win)."""
    apps = state.apps
    endpoints = {d: app_endpoints(apps[d], state.app_tasks(d))
                 for d in app.dependencies if d in apps}
    docker = spec.docker
    if docker is None:
        env = dependency_env(app, apps, endpoints, LOOPBACK)
        return dataclasses.replace(spec, env={**env, **spec.env}) if env else spec
    env = dependency_env(app, apps, endpoints, None)
    hosts: list[tuple[str, str]] = []
    if lb_address:
        hosts = [("add-host", f"{name}:{lb_address}")
                 for name in sorted(host_aliases(apps, app.id))]
    else:  # no host entries: the names would not resolve, so give no HOST at all
        env = {k: v for k, v in env.items() if not k.endswith("_HOST")}
    new_docker: DockerSpec = dataclasses.replace(
        docker, parameters=[*hosts, *docker.parameters])
    return dataclasses.replace(spec, env={**env, **spec.env}, docker=new_docker)
