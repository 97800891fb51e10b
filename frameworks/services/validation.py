"""JSON -> ``App``: Marathon's validation, with its error shape.

``parse_app`` raises ``Invalid`` carrying Marathon's ``details``: a list of
``(path, [errors])`` where paths look like ``/instances``, ``/container/docker/image``
or ``/healthChecks(0)/portIndex`` (Marathon writes array indices in parentheses).
Type errors come from msgspec (one at a time, as it stops at the first); rule checks
are collected so one answer names every problem it can.

It also returns warnings: fields accepted and echoed back but not acted on (Marathon's
``storeUrls``, ``ipAddress``, ..., and any field the model does not know, kept verbatim
by ``unknown_fields``), so a caller can say so instead of silently ignoring them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from frameworks.services.app_secrets import secret_errors
from frameworks.services.autoscale import spec_errors, spec_from_labels
from frameworks.services.endpoints import STRATEGIES, STRATEGY_LABEL
from frameworks.services.model import (
    BRIDGE,
    DEPLOYMENT_TIMEOUT_LABEL,
    HEALTH_PROTOCOLS,
    KILL_SELECTIONS,
    PASSTHROUGH_FIELDS,
    App,
    Artifact,
    Container,
    Network,
    PortDefinition,
)
from frameworks.services.unknown_fields import marathon_path, unknown_fields
from frameworks.services.volumes import volume_errors
from mesoslite.messages.mesos import CommandURI
from mesoslite.placement import Constraint, PlacementInputError
from mesoslite.uris import uri_error

SEGMENT = re.compile(r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*"
                     r"([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$")
# Route words: /v2/apps/{id}/tasks etc. would be ambiguous with an app of that name.
RESERVED_SEGMENTS = frozenset({"tasks", "versions", "restart", "autoscale", "volumes"})
READ_ONLY_FIELDS = (
    "tasks", "deployments", "tasksRunning", "tasksStaged", "tasksHealthy", "tasksUnhealthy",
    "lastTaskFailure", "taskStats", "readinessCheckResults", "version", "versionInfo",
    "passthrough",
)
_SNAKE = {"targetCpuUtilization": "target_cpu_utilization",
          "cooldownSeconds": "cooldown_seconds"}
LEGACY_NETWORKS = {"HOST": "host", "BRIDGE": BRIDGE}
NOT_HONOURED = {
    "storeUrls": "storeUrls are ignored",
    "ipAddress": "ipAddress (IP-per-task) is not supported",
    "acceptedResourceRoles": "acceptedResourceRoles is ignored: apps use the framework's role",
    "tty": "tty is ignored",
}


class Invalid(Exception):
    """422: ``details`` is Marathon's list of ``(path, [errors])``."""

    def __init__(self, details: list[tuple[str, list[str]]],
                 message: str = "Object is not valid") -> None:
        super().__init__(f"{message}: {details}")
        self.message = message
        self.details = details


class Errors:
    """Marathon details by path, collected before one 422 answers them all."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.items.setdefault(path, []).append(message)

    def raise_any(self) -> None:
        if self.items:
            raise Invalid(list(self.items.items()))


def normalize_id(raw: str, base: str = "/") -> str:
    """An absolute app id: relative ids (``web``, ``../db``) resolve against ``base``."""
    parts = [] if raw.startswith("/") else [p for p in base.split("/") if p]
    for seg in raw.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if parts:
                parts.pop()
            continue
        parts.append(seg)
    return "/" + "/".join(parts)


def id_errors(app_id: str) -> list[str]:
    segments = [s for s in app_id.split("/") if s]
    if not segments:
        return ["must not be empty"]
    errors = []
    for seg in segments:
        if not SEGMENT.match(seg):
            errors.append(f"'{seg}' must fully match regular expression "
                          f"'{SEGMENT.pattern}'")
        elif seg in RESERVED_SEGMENTS:
            errors.append(f"'{seg}' is reserved for the API's own paths")
    return errors


def parse_app(raw: Any, path_id: str | None = None) -> tuple[App, list[str]]:
    """Validate ``raw`` (decoded JSON) into an ``App`` with defaults; ``path_id`` is the
    id from the URL, which wins over (and must agree with) the body's.  Returns the app
    and warnings; raises ``Invalid``."""
    if not isinstance(raw, dict):
        raise Invalid([("/", ["expected a JSON object"])])
    body = {k: v for k, v in raw.items() if k not in READ_ONLY_FIELDS}
    passthrough = unknown_fields(body, App)  # kept verbatim, echoed back
    if passthrough.get("/executor") == "":
        del passthrough["/executor"]  # what every app renders: not a change of its own
    warnings = _not_honoured(passthrough)
    errors = Errors()
    app_id = resolve_id(body.get("id"), path_id, errors)
    body["id"] = app_id
    if isinstance(body.get("autoscale"), dict):  # camelCase spellings too
        body["autoscale"] = {_SNAKE.get(k, k): v for k, v in body["autoscale"].items()}
    try:
        app = msgspec.convert(body, App)
    except msgspec.ValidationError as exc:
        raise Invalid([msgspec_detail(str(exc))]) from None
    app.passthrough = passthrough
    _fold_legacy(app, errors)
    _check_basics(app, errors)
    _check_fetch(app, errors)
    _check_unreachable(app, errors)
    _check_networking(app, errors)
    _check_health(app, errors)
    _check_constraints(app, errors)
    _check_autoscale_and_volumes(app, errors)
    app.dependencies = [normalize_id(d, app_id.rsplit("/", 1)[0] or "/")
                        for d in app.dependencies]
    errors.raise_any()
    return app, warnings


def _not_honoured(kept: dict[str, Any]) -> list[str]:
    """A warning per kept field that asks for something: Marathon's own fields only
    when not empty or default, any other field always."""
    out = set()
    for pointer, value in kept.items():
        name = pointer[1:]
        if name in PASSTHROUGH_FIELDS:
            if name in NOT_HONOURED and _meaningful(name, value):
                out.add(NOT_HONOURED[name])
        else:
            out.add(f"{marathon_path(pointer)}: unknown field, kept as given but not honoured")
    return sorted(out)


def _meaningful(key: str, value: Any) -> bool:
    """Whether an unhonoured field asks for something (empty or default values do not)."""
    if key == "acceptedResourceRoles":
        return bool(value) and value != ["*"]
    if key in ("role",):
        return False
    return value not in (None, "", [], {}, "//cmd")


def resolve_id(body_id: Any, path_id: str | None, errors: Errors) -> str:
    """The definition's id: the URL's (``path_id``, which the body's must agree with)
    or the body's; problems go to ``errors`` under ``/id``."""
    if body_id is not None and not isinstance(body_id, str):
        errors.add("/id", "expected a string")
        body_id = None
    if path_id is not None:
        app_id = normalize_id(path_id)
        if body_id and normalize_id(body_id) != app_id:
            errors.add("/id", f"the id in the body ({body_id}) differs from the URL's "
                              f"({app_id})")
    elif body_id:
        app_id = normalize_id(body_id)
    else:
        errors.add("/id", "is required")
        return "/"
    for message in id_errors(app_id):
        errors.add("/id", message)
    return app_id


def msgspec_detail(text: str) -> tuple[str, list[str]]:
    """msgspec's ``Expected `int`, got `str` - at `$.healthChecks[0].port` `` as a
    Marathon detail ``("/healthChecks(0)/port", ["Expected `int`, got `str`"])``; a
    missing or unknown field is named in the path."""
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        return "/", [text]
    path = where.rstrip("`")[1:]  # drop "$"
    for pattern, word in ((r"Object missing required field `([^`]+)`", "is required"),
                          (r"Object contains unknown field `([^`]+)`", "unknown field")):
        found = re.match(pattern, message)
        if found:
            path += "." + found.group(1)
            message = word
    path = re.sub(r"\[(\d+)\]", r"(\1)", path)
    path = re.sub(r"\[['\"]?([^\]'\"]*)['\"]?\]", r".\1", path)
    return path.replace(".", "/") or "/", [message]


def _fold_legacy(app: App, errors: Errors) -> None:
    """Marathon < 1.5 spellings (``ports``, ``uris``, ``docker.network``,
    ``docker.portMappings``) into the current ones, and the networking defaults."""
    if app.uris is not None:
        if app.fetch:
            errors.add("/uris", "give either uris or fetch, not both")
        fetch = []
        for i, uri in enumerate(app.uris):  # checked here: their path is /uris(i)
            if (problem := uri_error(CommandURI(value=uri))) is not None:
                errors.add(f"/uris({i})", problem[1])
            else:
                fetch.append(Artifact(uri=uri))
        app.fetch, app.uris = fetch, None
    if app.ports is not None:
        if app.port_definitions is None:
            app.port_definitions = [PortDefinition(port=p) for p in app.ports]
        elif [d.port for d in app.port_definitions] != app.ports:
            # Both given: Marathon accepts them when they agree (what a client reading
            # an app and writing it back sends); portDefinitions then win.
            errors.add("/ports", "give either ports or portDefinitions, not both (or the "
                                 "same ports in both)")
        app.ports = None
    docker = app.container.docker if app.container else None
    if docker is not None and docker.network is not None:
        mode = LEGACY_NETWORKS.get(docker.network.upper())
        if mode is None:
            errors.add("/container/docker/network",
                       f"{docker.network} networking is not supported (HOST or BRIDGE)")
        elif not app.networks:
            app.networks = [Network(mode=mode)]
        docker.network = None
    if docker is not None and docker.port_mappings is not None:
        assert app.container is not None
        if app.container.port_mappings is None:
            app.container.port_mappings = docker.port_mappings
        docker.port_mappings = None
    if app.network == "host":
        app.networks = [Network(mode="host")] if not app.networks else app.networks
        if app.port_definitions is None:
            # Marathon's default: one dynamic port per task.
            app.port_definitions = [PortDefinition(port=0)]
    else:
        app.port_definitions = app.port_definitions or []
        for pm in app.port_mappings:
            if pm.host_port is None:
                pm.host_port = 0


def _check_basics(app: App, errors: Errors) -> None:
    if app.cmd is not None and app.args is not None:
        errors.add("/", "AppDefinition must either contain one of 'cmd' or 'args', "
                        "and/or a 'container'.")
    if app.cmd is None and app.args is None and app.container is None:
        errors.add("/", "AppDefinition must either contain one of 'cmd' or 'args', "
                        "and/or a 'container'.")
    if app.cmd is not None and not app.cmd.strip():
        errors.add("/cmd", "must not be empty")
    _minimum(errors, "/instances", app.instances, 0)
    _minimum(errors, "/cpus", app.cpus, 0.001)
    _minimum(errors, "/mem", app.mem, 0)
    _minimum(errors, "/disk", app.disk, 0)
    _minimum(errors, "/gpus", app.gpus, 0)
    _minimum(errors, "/backoffSeconds", app.backoff_seconds, 0)
    _minimum(errors, "/backoffFactor", app.backoff_factor, 1.0)
    _minimum(errors, "/maxLaunchDelaySeconds", app.max_launch_delay_seconds, 0)
    if app.task_kill_grace_period_seconds is not None:
        _minimum(errors, "/taskKillGracePeriodSeconds", app.task_kill_grace_period_seconds, 0)
    strategy = app.upgrade_strategy
    for name, value in (("minimumHealthCapacity", strategy.minimum_health_capacity),
                        ("maximumOverCapacity", strategy.maximum_over_capacity)):
        if not 0.0 <= value <= 1.0:
            errors.add(f"/upgradeStrategy/{name}", f"got {value}, expected between 0.0 and 1.0")
    if app.kill_selection not in KILL_SELECTIONS:
        errors.add("/killSelection", f"must be one of {', '.join(KILL_SELECTIONS)}")
    for path, message in secret_errors(app):  # secrets and their env/volume uses
        errors.add(path, message)
    timeout = app.labels.get(DEPLOYMENT_TIMEOUT_LABEL)
    if timeout is not None and not _positive_number(timeout):
        errors.add(f"/labels/{DEPLOYMENT_TIMEOUT_LABEL}", "must be a number of seconds > 0")
    strategy = app.labels.get(STRATEGY_LABEL)  # the load balancer's (docs/discovery.md)
    if strategy is not None and strategy.strip().lower().replace("_", "-") not in STRATEGIES:
        errors.add(f"/labels/{STRATEGY_LABEL}", f"must be one of {', '.join(STRATEGIES)}")
    for i, dep in enumerate(app.dependencies):
        if id_errors(normalize_id(dep, "/")):
            errors.add(f"/dependencies({i})", f"'{dep}' is not a valid app id")


def _check_fetch(app: App, errors: Errors) -> None:
    """What the agents' fetcher takes (docs/fetcher.md)."""
    fields = {"value": "uri", "output_file": "destPath"}
    for i, artifact in enumerate(app.fetch):
        problem = uri_error(artifact.to_mesos())
        if problem is not None:
            errors.add(f"/fetch({i})/{fields[problem[0]]}", problem[1])


def _check_unreachable(app: App, errors: Errors) -> None:
    """Marathon's rules and messages for ``unreachableStrategy``; the app's default,
    given explicitly (what a client that read the app sends back), is stored as the
    default, so writing back what was read changes no configuration."""
    strategy = app.unreachable_strategy
    app.unreachable_strategy = None  # so that ``app.unreachable`` is the default
    if strategy == (app.unreachable or "disabled"):
        return
    app.unreachable_strategy = strategy
    if strategy is None or strategy == "disabled":
        return
    inactive, expunge = strategy.inactive_after_seconds, strategy.expunge_after_seconds
    path = "/unreachableStrategy/inactiveAfterSeconds"
    if inactive < 0:
        errors.add(path, f"inactiveAfterSeconds ({inactive}) must be greater than or equal "
                         "to 0")
    elif inactive > expunge:
        errors.add(path, f"inactiveAfterSeconds ({inactive}) must be less or equal to "
                         f"expungeAfterSeconds, which is {expunge}")


def _minimum(errors: Errors, path: str, value: float, low: float) -> None:
    if not math.isfinite(value) or value < low:
        low_text = int(low) if float(low).is_integer() else low
        errors.add(path, f"got {value}, expected {low_text} or more")


def _positive_number(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and float(text) > 0
    except ValueError:
        return False


def _check_networking(app: App, errors: Errors) -> None:
    for i, net in enumerate(app.networks):
        if net.mode not in ("host", BRIDGE):
            errors.add(f"/networks({i})/mode",
                       f"{net.mode} networking is not supported (host or {BRIDGE})")
    if len(app.networks) > 1:
        errors.add("/networks", "at most one network is supported")
    container = app.container
    if container is not None:
        _check_container(app, container, errors)
    if app.network == "bridge" and app.docker_image is None:
        errors.add("/networks", f"{BRIDGE} networking needs a Docker container")
    if app.network == "host" and app.port_mappings:
        errors.add("/container/portMappings", f"port mappings need {BRIDGE} networking")
    if app.network == "bridge" and app.port_definitions:
        errors.add("/portDefinitions", f"portDefinitions are for host networking; "
                                       f"use container.portMappings with {BRIDGE}")
    names = [n for n in app.port_names if n]
    if len(names) != len(set(names)):
        errors.add("/portDefinitions", "port names must be unique")
    for i, port in enumerate(app.host_ports_requested):
        if not 0 <= port <= 65535:
            errors.add(f"/portDefinitions({i})/port", f"got {port}, expected 0 to 65535")
    fixed = [p for p in app.host_ports_requested if p]
    if len(fixed) != len(set(fixed)):
        errors.add("/portDefinitions", "fixed host ports must be unique")
    if app.require_ports and app.network == "host" and 0 in [
            d.port for d in app.port_definitions or []]:
        errors.add("/requirePorts", "requirePorts needs every portDefinitions port to be "
                                    "non-zero")


def _check_container(app: App, container: Container, errors: Errors) -> None:
    if container.type not in ("DOCKER", "MESOS"):
        errors.add("/container/type", "must be DOCKER or MESOS")
    if container.type == "DOCKER" and (container.docker is None or not container.docker.image):
        errors.add("/container/docker/image", "must not be empty")
    for i, vol in enumerate(container.volumes):
        if vol.mode.upper() not in ("RW", "RO"):
            errors.add(f"/container/volumes({i})/mode", "must be RW or RO")
    for i, pm in enumerate(container.port_mappings or []):
        if not 0 <= pm.container_port <= 65535:
            errors.add(f"/container/portMappings({i})/containerPort",
                       f"got {pm.container_port}, expected 0 to 65535")
        if pm.host_port is not None and not 0 <= pm.host_port <= 65535:
            errors.add(f"/container/portMappings({i})/hostPort",
                       f"got {pm.host_port}, expected 0 to 65535")


def _check_health(app: App, errors: Errors) -> None:
    if sum(1 for hc in app.health_checks if hc.protocol == "COMMAND") > 1:
        errors.add("/healthChecks", "at most one COMMAND health check is allowed")
    ports = len(app.host_ports_requested)
    for i, hc in enumerate(app.health_checks):
        where = f"/healthChecks({i})"
        if hc.protocol not in HEALTH_PROTOCOLS:
            errors.add(f"{where}/protocol", f"must be one of {', '.join(HEALTH_PROTOCOLS)}")
            continue
        if hc.protocol == "COMMAND":
            if hc.command is None or not hc.command.value.strip():
                errors.add(f"{where}/command", "a COMMAND health check needs a command")
            continue
        if hc.port is None and hc.port_index is None:
            hc.port_index = 0
        if hc.port is None and not 0 <= (hc.port_index or 0) < max(ports, 1) or (
                hc.port is None and ports == 0):
            errors.add(where, "Health check port indices must address an element of the "
                              "ports array or container port mappings.")
        for name, value in (("gracePeriodSeconds", hc.grace_period_seconds),
                            ("intervalSeconds", hc.interval_seconds),
                            ("timeoutSeconds", hc.timeout_seconds),
                            ("maxConsecutiveFailures", hc.max_consecutive_failures),
                            ("delaySeconds", hc.delay_seconds)):
            _minimum(errors, f"{where}/{name}", value, 0)
    if len(app.readiness_checks) > 1:
        errors.add("/readinessChecks", "at most one readiness check is supported")
    names = {n for n in app.port_names if n}
    for i, rc in enumerate(app.readiness_checks):
        if rc.protocol not in ("HTTP", "HTTPS"):
            errors.add(f"/readinessChecks({i})/protocol", "must be HTTP or HTTPS")
        if rc.port_name not in names:
            errors.add(f"/readinessChecks({i})/portName",
                       f"no port named '{rc.port_name}' in the app's ports")


def _check_autoscale_and_volumes(app: App, errors: Errors) -> None:
    if app.autoscale is not None:
        for name, message in spec_errors(app.autoscale):
            errors.add(f"/autoscale/{name}", message)
    else:
        for label, message in spec_from_labels(app.labels)[1]:
            errors.add(f"/labels/{label}", message)
    for path, message in volume_errors(app):
        errors.add(path, message)


def _check_constraints(app: App, errors: Errors) -> None:
    for i, raw in enumerate(app.constraints):
        try:
            Constraint.of(raw)
        except PlacementInputError as exc:
            errors.add(f"/constraints({i})", exc.message)
