"""JSON -> ``Pod``: Marathon's pod fields checked, with the apps' 422 shape.

``parse_pod`` returns the pod and warnings, or raises ``validation.Invalid`` whose
details name every problem by its path (``/containers(0)/endpoints(1)/hostPort``).
Every field is either honoured, accepted and named in a warning (kept verbatim and
echoed back: ``NOT_HONOURED``), or refused with a reason (``REFUSED``); an unknown field
is refused too, so nothing a pod asks for is dropped in silence.
"""

from __future__ import annotations

import math
import re
from typing import Any

import msgspec

from frameworks.services.app_secrets import entry_errors
from frameworks.services.model import BRIDGE, KILL_SELECTIONS
from frameworks.services.pod_model import Pod, PodContainer, SecretValue
from frameworks.services.validation import (
    Errors,
    Invalid,
    msgspec_detail,
    resolve_id,
)
from mesoslite.messages.mesos import CommandURI
from mesoslite.placement import Constraint, PlacementInputError
from mesoslite.uris import uri_error

NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9]+)*$")
READ_ONLY = ("version", "versionInfo", "passthrough")
# (where, field) -> why it is accepted but not acted on; kept and echoed back.
NOT_HONOURED: dict[tuple[str, str], str] = {
    ("pod", "user"): "user is ignored: containers run as the agent's user",
    ("pod", "role"): "role is ignored: pods use the framework's role",
    ("pod", "legacySharedCgroups"): "legacySharedCgroups is ignored",
    ("container", "user"): "user is ignored: containers run as the agent's user",
    ("container", "check"): "check (generic checks) is ignored: use healthCheck",
    ("container", "resourceLimits"): "resourceLimits is ignored: the resources are the "
                                     "limits",
    ("container", "tty"): "tty is ignored",
    ("scheduling", "unreachableStrategy"): "unreachableStrategy is fixed: unreachable "
                                           "instances are replaced at once",
    ("placement", "acceptedResourceRoles"): "acceptedResourceRoles is ignored: pods use "
                                            "the framework's role",
}
REFUSED: dict[tuple[str, str], str] = {
    ("pod", "linuxInfo"): "linuxInfo is not supported",
    ("container", "linuxInfo"): "linuxInfo is not supported",
    ("image", "pullConfig"): "pullConfig is not supported: the agent's engine pulls with "
                             "its own credentials",
    ("volume", "persistent"): "persistent volumes are not supported in pods",
    ("volume", "external"): "external volumes are not supported in pods",
}


def parse_pod(raw: Any, path_id: str | None = None) -> tuple[Pod, list[str]]:
    """Validate ``raw`` (decoded JSON) into a ``Pod``.  ``path_id``: the URL's id,
    which wins over (and must agree with) the body's.  Raises ``Invalid``."""
    if not isinstance(raw, dict):
        raise Invalid([("/", ["expected a JSON object"])])
    errors, warnings = Errors(), set()
    body = {k: v for k, v in raw.items() if k not in READ_ONLY}
    body["id"] = resolve_id(body.get("id"), path_id, errors)
    passthrough = _split(body, "pod", "", errors, warnings)
    containers = body.get("containers")
    for i, c in enumerate(containers if isinstance(containers, list) else []):
        if isinstance(c, dict):
            c["passthrough"] = _split(c, "container", f"/containers({i})", errors, warnings)
            if isinstance(c.get("image"), dict):
                _split(c["image"], "image", f"/containers({i})/image", errors, warnings)
    volumes = body.get("volumes")
    for i, v in enumerate(volumes if isinstance(volumes, list) else []):
        if isinstance(v, dict):
            _split(v, "volume", f"/volumes({i})", errors, warnings)
    scheduling = body.get("scheduling")
    if isinstance(scheduling, dict):
        scheduling["passthrough"] = _split(scheduling, "scheduling", "/scheduling", errors,
                                           warnings)
        if isinstance(scheduling.get("placement"), dict):
            scheduling["placement"]["passthrough"] = _split(
                scheduling["placement"], "placement", "/scheduling/placement", errors,
                warnings)
    _raise(errors)
    try:
        pod = msgspec.convert(body, Pod)
    except msgspec.ValidationError as exc:
        raise Invalid([msgspec_detail(str(exc))]) from None
    pod.passthrough = passthrough
    for check in (_check_containers, _check_networking, _check_volumes, _check_secrets,
                  _check_scheduling):
        check(pod, errors)
    _raise(errors)
    return pod, sorted(warnings)


def _split(obj: dict[str, Any], where: str, path: str, errors: Errors,
           warnings: set[str]) -> dict[str, Any]:
    """Take the not-honoured fields out of ``obj`` (returned, to echo back), noting
    why; refused fields are errors."""
    kept = {}
    for key in list(obj):
        if (where, key) in REFUSED:
            errors.add(f"{path}/{key}", REFUSED[(where, key)])
        elif (where, key) in NOT_HONOURED:
            kept[key] = obj.pop(key)
            if kept[key] not in (None, "", [], {}, False):
                warnings.add(NOT_HONOURED[(where, key)])
    return kept


def _raise(errors: Errors) -> None:
    if errors.items:
        raise Invalid(list(errors.items.items()))


def _minimum(errors: Errors, path: str, value: float, low: float) -> None:
    if not math.isfinite(value) or value < low:
        errors.add(path, f"got {value}, expected {low:g} or more")


# ---------------------------------------------------------------- rules


def _check_containers(pod: Pod, errors: Errors) -> None:
    if not pod.containers:
        errors.add("/containers", "a pod needs at least one container")
    seen: set[str] = set()
    endpoint_names: set[str] = set()
    for i, c in enumerate(pod.containers):
        path = f"/containers({i})"
        if not NAME.match(c.name):
            errors.add(f"{path}/name", f"must fully match regular expression '{NAME.pattern}'")
        if c.name in seen:
            errors.add(f"{path}/name", f"container name '{c.name}' is used twice")
        seen.add(c.name)
        _check_container(pod, c, path, errors)
        for j, e in enumerate(c.endpoints):
            if e.name in endpoint_names:
                errors.add(f"{path}/endpoints({j})/name",
                           f"endpoint name '{e.name}' is used twice in the pod")
            endpoint_names.add(e.name)


def _check_container(pod: Pod, c: PodContainer, path: str, errors: Errors) -> None:
    if c.exec is None and c.image is None:
        errors.add(path, "a container needs exec (a command) or an image")
    if c.exec is not None and (c.exec.command.shell is None) == (c.exec.command.argv is None):
        errors.add(f"{path}/exec/command", "give exactly one of shell and argv")
    if c.exec is not None and c.exec.command.argv == []:
        errors.add(f"{path}/exec/command/argv", "must not be empty")
    if c.image is not None and c.image.kind != "DOCKER":
        errors.add(f"{path}/image/kind", "only DOCKER images are supported")
    if c.image is not None and not c.image.id.strip():
        errors.add(f"{path}/image/id", "must not be empty")
    _minimum(errors, f"{path}/resources/cpus", c.resources.cpus, 0.001)
    _minimum(errors, f"{path}/resources/mem", c.resources.mem, 0.001)
    _minimum(errors, f"{path}/resources/disk", c.resources.disk, 0)
    _minimum(errors, f"{path}/resources/gpus", c.resources.gpus, 0)
    if c.lifecycle is not None and c.lifecycle.kill_grace_period_seconds is not None:
        _minimum(errors, f"{path}/lifecycle/killGracePeriodSeconds",
                 c.lifecycle.kill_grace_period_seconds, 0)
    for j, a in enumerate(c.artifacts):
        problem = uri_error(CommandURI(value=a.uri, output_file=a.dest_path))
        if problem is not None:
            field = "uri" if problem[0] == "value" else "destPath"
            errors.add(f"{path}/artifacts({j})/{field}", problem[1])
    _check_endpoints(pod, c, path, errors)
    _check_health(pod, c, path, errors)


def _check_endpoints(pod: Pod, c: PodContainer, path: str, errors: Errors) -> None:
    for j, e in enumerate(c.endpoints):
        where = f"{path}/endpoints({j})"
        if not NAME.match(e.name):
            errors.add(f"{where}/name", f"must fully match regular expression '{NAME.pattern}'")
        for k, proto in enumerate(e.protocol):
            if proto not in ("tcp", "udp"):
                errors.add(f"{where}/protocol({k})", "must be tcp or udp")
        if e.host_port is not None and not 0 <= e.host_port <= 65535:
            errors.add(f"{where}/hostPort", "must be between 0 and 65535")
        if pod.bridged:
            if e.container_port is None or not 1 <= e.container_port <= 65535:
                errors.add(f"{where}/containerPort",
                           f"is required with {BRIDGE} networking (1 to 65535)")
        elif e.container_port is not None:
            errors.add(f"{where}/containerPort",
                       "is not allowed with host networking: the endpoint is its hostPort")


def _check_health(pod: Pod, c: PodContainer, path: str, errors: Errors) -> None:
    hc = c.health_check
    if hc is None:
        return
    where = f"{path}/healthCheck"
    kinds = [k for k in (hc.http, hc.tcp, hc.exec) if k is not None]
    if len(kinds) != 1:
        errors.add(where, "give exactly one of http, tcp and exec")
    for name, value in (("gracePeriodSeconds", hc.grace_period_seconds),
                        ("intervalSeconds", hc.interval_seconds),
                        ("timeoutSeconds", hc.timeout_seconds),
                        ("maxConsecutiveFailures", hc.max_consecutive_failures),
                        ("delaySeconds", hc.delay_seconds)):
        _minimum(errors, f"{where}/{name}", value, 0)
    probe = hc.http or hc.tcp
    if probe is not None:
        kind = "http" if hc.http is not None else "tcp"
        named = {e.name: e for _, e in pod.endpoints()}
        endpoint = named.get(probe.endpoint)
        if endpoint is None:
            errors.add(f"{where}/{kind}/endpoint",
                       f"'{probe.endpoint}' is not an endpoint of the pod")
        elif endpoint.host_port is None:
            errors.add(f"{where}/{kind}/endpoint",
                       f"endpoint '{probe.endpoint}' needs a hostPort: the agent probes it "
                       "from the host")
    if hc.http is not None and hc.http.scheme not in ("HTTP", "HTTPS"):
        errors.add(f"{where}/http/scheme", "must be HTTP or HTTPS")
    if hc.exec is not None and (hc.exec.command.shell is None) == (
            hc.exec.command.argv is None):
        errors.add(f"{where}/exec/command", "give exactly one of shell and argv")


def _check_networking(pod: Pod, errors: Errors) -> None:
    if len(pod.networks) > 1:
        errors.add("/networks", "only one network is supported")
    for i, net in enumerate(pod.networks):
        if net.mode == "container":
            errors.add(f"/networks({i})/mode", "named container networks are not supported:"
                                               f" use {BRIDGE} or host")
        elif net.mode not in ("host", BRIDGE):
            errors.add(f"/networks({i})/mode", f"must be one of host, {BRIDGE}")
    if pod.bridged:
        for i, c in enumerate(pod.containers):
            if c.image is None:
                errors.add(f"/containers({i})/image",
                           f"is required with {BRIDGE} networking: a container without an "
                           "image runs on the host's network")


def _check_volumes(pod: Pod, errors: Errors) -> None:
    names: set[str] = set()
    for i, v in enumerate(pod.volumes):
        if v.name in names:
            errors.add(f"/volumes({i})/name", f"volume name '{v.name}' is used twice")
        names.add(v.name)
        if v.host is not None and (not v.host or (not v.host.startswith("/") and (
                ".." in v.host.split("/")))):
            errors.add(f"/volumes({i})/host", "must be an absolute path, or a relative one "
                                              "inside the instance's sandbox")
    for i, c in enumerate(pod.containers):
        for j, m in enumerate(c.volume_mounts):
            if m.name not in names:
                errors.add(f"/containers({i})/volumeMounts({j})/name",
                           f"'{m.name}' is not a volume of the pod")
            if not m.mount_path.strip():
                errors.add(f"/containers({i})/volumeMounts({j})/mountPath",
                           "must not be empty")
            elif c.image is None and m.mount_path.startswith("/"):
                errors.add(f"/containers({i})/volumeMounts({j})/mountPath",
                           "must be relative (inside the container's sandbox) for a "
                           "container without an image: it has no filesystem of its own")


def _check_secrets(pod: Pod, errors: Errors) -> None:
    """``secrets`` name stored objects; environment values and volumes name entries
    of ``secrets``.  Messages name ids and objects, never values."""
    for sid, entry in pod.secrets.items():
        for path, message in entry_errors(sid, entry.source, entry.key):
            errors.add(path, message)
    envs = [("", pod.environment), *((f"/containers({i})", c.environment)
                                     for i, c in enumerate(pod.containers))]
    for prefix, env in envs:
        for var, value in env.items():
            if isinstance(value, SecretValue) and value.secret not in pod.secrets:
                errors.add(f"{prefix}/environment/{var}",
                           f"references '{value.secret[:80]}', which is not in secrets")
    for i, v in enumerate(pod.volumes):
        if v.secret is None:
            continue
        if v.host is not None:
            errors.add(f"/volumes({i})", "give one of host or secret")
        if v.secret not in pod.secrets:
            errors.add(f"/volumes({i})/secret",
                       f"references '{v.secret[:80]}', which is not in secrets")


def _check_scheduling(pod: Pod, errors: Errors) -> None:
    if pod.scaling.kind != "fixed":
        errors.add("/scaling/kind", "must be fixed")
    _minimum(errors, "/scaling/instances", pod.scaling.instances, 0)
    s = pod.scheduling
    for name, value in (("minimumHealthCapacity", s.upgrade.minimum_health_capacity),
                        ("maximumOverCapacity", s.upgrade.maximum_over_capacity)):
        if not 0.0 <= value <= 1.0:
            errors.add(f"/scheduling/upgrade/{name}", f"got {value}, expected between 0.0 "
                                                      "and 1.0")
    checks: list[tuple[str, float, float]] = [
        ("backoff", s.backoff.backoff, 0), ("backoffFactor", s.backoff.backoff_factor, 1.0),
        ("maxLaunchDelay", s.backoff.max_launch_delay, 0)]
    for name, value, low in checks:
        _minimum(errors, f"/scheduling/backoff/{name}", value, low)
    if s.kill_selection not in KILL_SELECTIONS:
        errors.add("/scheduling/killSelection", f"must be one of {', '.join(KILL_SELECTIONS)}")
    for i, raw in enumerate(s.placement.constraints):
        try:
            Constraint.of(raw)
        except PlacementInputError as exc:
            errors.add(f"/scheduling/placement/constraints({i})", exc.message)
    executor: list[tuple[str, float, float]] = [
        ("cpus", pod.executor_resources.cpus, 0.0), ("mem", pod.executor_resources.mem, 0.0),
        ("disk", pod.executor_resources.disk, 0.0)]
    for name, value, low in executor:
        _minimum(errors, f"/executorResources/{name}", value, low)


