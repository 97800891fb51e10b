"""What mesoslite does with the fields a framework sends that Mesos' agent acts on:
the ones honoured since they were modelled (``HONOURED``) and the ones refused with a
reason (``REFUSED``), by their full protobuf names.  ``task_refusal`` finds the first
refused (or invalid) field in a decoded TaskInfo and names it by its path
(``task.limits.gpus: unsupported ...``); the master answers it as TASK_ERROR.

A field is refused rather than ignored so that no framework believes a task runs with
a container, limit or check it asked for and does not get.
"""

from __future__ import annotations

import math

from mesoslite.messages.mesos import (
    CheckInfo,
    CheckType,
    ContainerInfo,
    ContainerType,
    ImageType,
    TaskInfo,
    to_resources,
)
from mesoslite.resources import ResourceError

HONOURED: dict[str, str] = {
    "mesos.v1.ContainerInfo.mesos": "a MESOS container with an image runs it through "
                                    "the agent's Docker engine",
    "mesos.v1.ContainerInfo.MesosInfo.image": "run through the Docker engine",
    "mesos.v1.Image.type": "DOCKER only (APPC is refused)",
    "mesos.v1.Image.docker": "the image name, pulled by the Docker engine",
    "mesos.v1.Image.Docker.name": "the image the container runs",
    "mesos.v1.Image.cached": "false: the image is pulled again before the launch",
    "mesos.v1.TaskInfo.check": "run by the agent; reported in TaskStatus.check_status",
    "mesos.v1.CheckInfo.type": "COMMAND, HTTP or TCP",
    "mesos.v1.CheckInfo.command": "run in the task's container",
    "mesos.v1.CheckInfo.http": "GET from the agent; the status code is reported",
    "mesos.v1.CheckInfo.tcp": "a connection from the agent; success is reported",
    "mesos.v1.CheckInfo.delay_seconds": "before the first check",
    "mesos.v1.CheckInfo.interval_seconds": "between checks",
    "mesos.v1.CheckInfo.timeout_seconds": "a check that takes longer has no result",
    "mesos.v1.TaskInfo.max_completion_time": "the task is killed at its deadline, "
                                             "TASK_FAILED REASON_MAX_COMPLETION_TIME_REACHED",
    "mesos.v1.TaskInfo.limits": "cpus and mem, applied to the container (cgroups, Docker)",
    "mesos.v1.FrameworkInfo.user": "the default task user where the agent switches users",
    "mesos.v1.CommandInfo.user": "the task's user, over FrameworkInfo.user",
    "mesos.v1.scheduler.Call.Subscribe.offer_constraints": "honoured by the allocator",
    "mesos.v1.scheduler.Call.UpdateFramework.offer_constraints": "honoured by the allocator",
}

_PROVIDERS = "resource providers (CSI, external disks) are not supported"
_POLICY = ("set for every container by the agent's container policy "
           "(docs/containers.md), not per task")

REFUSED: dict[str, str] = {
    # the call: a REQUEST is not implemented by Mesos either
    "mesos.v1.scheduler.Call.request": "REQUEST calls are not implemented (Mesos ignores "
                                       "them): offers come from the allocator",
    "mesos.v1.FrameworkInfo.offer_filters": "offer filters (min_allocatable_resources) are "
                                            "not supported: every offer is at least 0.01 cpus "
                                            "or 32 MB",
    # operations on resource providers' disks
    "mesos.v1.Offer.Operation.create_disk": _PROVIDERS,
    "mesos.v1.Offer.Operation.destroy_disk": _PROVIDERS,
    "mesos.v1.Offer.Operation.grow_volume": "persistent volumes cannot be resized",
    "mesos.v1.Offer.Operation.shrink_volume": "persistent volumes cannot be resized",
    "mesos.v1.Offer.Operation.Reserve.source": "reservation refinement from a source is "
                                               "not supported: reserve unreserved resources",
    # resources
    "mesos.v1.Resource.provider_id": _PROVIDERS,
    "mesos.v1.Resource.revocable": "revocable resources are not offered or accepted",
    "mesos.v1.Resource.shared": "shared persistent volumes are not supported",
    "mesos.v1.Resource.DiskInfo.source": "disk sources (PATH, MOUNT, BLOCK, RAW) are not "
                                         "supported: agents offer their work disk only",
    "mesos.v1.Volume.host_path": "a persistent volume is mounted at its container_path "
                                 "only",
    "mesos.v1.Volume.image": "a persistent volume is mounted at its container_path only",
    "mesos.v1.Volume.source": "a persistent volume is mounted at its container_path only",
    # containers
    "mesos.v1.ContainerInfo.linux_info": "capabilities, namespaces and seccomp are "
                                         + _POLICY,
    "mesos.v1.ContainerInfo.rlimit_info": "POSIX rlimits are " + _POLICY,
    "mesos.v1.ContainerInfo.tty_info": "a terminal for the task is not supported",
    "mesos.v1.ContainerInfo.network_infos": "CNI networks are not supported: use "
                                            "docker.network and port_mappings",
    "mesos.v1.ContainerInfo.DockerInfo.volume_driver": "volume drivers are not supported: "
                                                       "volumes use Docker's local driver",
    "mesos.v1.Volume.Source.DockerVolume.driver_options": "volume drivers are not "
                                                          "supported: volumes use Docker's "
                                                          "local driver",
    "mesos.v1.Volume.Source.HostPath.mount_propagation": "mount propagation is not "
                                                         "supported",
    "mesos.v1.Volume.Source.csi_volume": _PROVIDERS,
    # secrets never travel in a call
    "mesos.v1.Secret.value": "a secret's value is never sent in a call: store it with "
                             "`mesoslite secrets create` and reference it by name",
    "mesos.v1.Image.appc": "APPC images are not supported: only DOCKER images run "
                           "(through the agent's Docker engine)",
    "mesos.v1.Image.Docker.credential": "registry credentials are not supported: the "
                                        "agent's Docker engine pulls with its own",
    "mesos.v1.Image.Docker.config": "registry credentials are not supported: the agent's "
                                    "Docker engine pulls with its own",
}

LIMITED = ("cpus", "mem")  # the resources TaskInfo.limits may name
INFINITY = "Infinity"  # the protobuf JSON form of an unlimited double


class TaskRefusal(ValueError):
    """A field that cannot be honoured; the text starts with the field's path."""


def limit_value(value: float | str) -> float:
    """A ``TaskInfo.limits`` value as a float (``math.inf`` for "Infinity");
    ValueError when it is neither a non-negative number nor "Infinity"."""
    if isinstance(value, str):
        if value in (INFINITY, "inf"):
            return math.inf
        raise ValueError(f"'{value}' is not a number or \"{INFINITY}\"")
    if math.isnan(value) or value < 0:
        raise ValueError(f"{value:g} is not a non-negative number")
    return float(value)


def task_limits(task: TaskInfo) -> dict[str, float]:
    """The task's limits by resource name (``math.inf``: unlimited); assumes
    ``task_refusal`` found nothing wrong."""
    return {name: limit_value(scalar.value) for name, scalar in task.limits.items()}


def task_refusal(task: TaskInfo, path: str = "task") -> str | None:
    """The first field of ``task`` that is refused or invalid, as
    ``<path>.<field>: <why>``; None when everything it sets is honoured."""
    try:
        _check_task(task, path)
    except TaskRefusal as exc:
        return str(exc)
    return None


def container_refusal(container: ContainerInfo | None, path: str) -> str | None:
    """Like ``task_refusal`` for a container (a task's or an executor's)."""
    try:
        _check_container(container, path)
    except TaskRefusal as exc:
        return str(exc)
    return None


def runs_image(container: ContainerInfo | None) -> bool:
    """Whether ``container`` is a MESOS container with an image (run through Docker)."""
    return (container is not None and container.type == ContainerType.MESOS
            and container.mesos is not None and container.mesos.image is not None)


def _check_task(task: TaskInfo, path: str) -> None:
    if task.executor is not None:
        for field in ("check", "max_completion_time"):
            if getattr(task, field) is not None:
                raise TaskRefusal(f"{path}.{field}: a task of a custom executor cannot set "
                                  "it (its executor runs the task; set it on command tasks)")
        if task.limits:
            raise TaskRefusal(f"{path}.limits: a task of a custom executor cannot set them "
                              "(its executor's container is sized by its tasks' resources)")
    _check_container(task.container, f"{path}.container")
    if task.max_completion_time is not None and task.max_completion_time.nanoseconds < 0:
        raise TaskRefusal(f"{path}.max_completion_time: must not be negative")
    _check_limits(task, path)
    if task.health_check is not None:
        for kind in ("http", "tcp"):
            probe = getattr(task.health_check, kind)
            if probe is not None and probe.protocol not in (None, "IPv4"):
                raise TaskRefusal(f"{path}.health_check.{kind}.protocol: only IPv4 checks "
                                  "are supported")
    if task.check is not None:
        _check_check(task.check, f"{path}.check")


def _check_container(container: ContainerInfo | None, path: str) -> None:
    if container is None or container.mesos is None or container.mesos.image is None:
        return
    image, where = container.mesos.image, f"{path}.mesos.image"
    if container.type != ContainerType.MESOS:
        raise TaskRefusal(f"{path}.mesos: only a MESOS container may set it")
    if image.type == ImageType.APPC or image.appc is not None:
        raise TaskRefusal(f"{where}.appc: {REFUSED['mesos.v1.Image.appc']}")
    docker = image.docker
    if docker is None or not docker.name:
        raise TaskRefusal(f"{where}.docker.name: must be set for a DOCKER image")
    for field in ("credential", "config"):
        if getattr(docker, field) is not None:
            raise TaskRefusal(f"{where}.docker.{field}: "
                              f"{REFUSED['mesos.v1.Image.Docker.' + field]}")


def _check_limits(task: TaskInfo, path: str) -> None:
    if not task.limits:
        return
    try:
        requested = to_resources(task.resources)
    except ResourceError:
        return  # the resources' own error is reported by the caller
    for name, scalar in sorted(task.limits.items()):
        where = f"{path}.limits.{name}"
        if name not in LIMITED:
            raise TaskRefusal(f"{where}: unsupported (only cpus and mem limits are applied)")
        try:
            value = limit_value(scalar.value)
        except ValueError as exc:
            raise TaskRefusal(f"{where}: {exc}") from None
        request = requested.scalar(name)
        if value < request:
            raise TaskRefusal(f"{where}: {value:g} is below the task's request of {request:g}")


def _check_check(check: CheckInfo, path: str) -> None:
    needed = {CheckType.COMMAND: ("command", check.command),
              CheckType.HTTP: ("http", check.http), CheckType.TCP: ("tcp", check.tcp)}
    if check.type not in needed:
        raise TaskRefusal(f"{path}.type: must be COMMAND, HTTP or TCP")
    field, value = needed[check.type]
    if value is None:
        raise TaskRefusal(f"{path}.{field}: must be set for a {check.type.value} check")
    port = getattr(value, "port", None)
    if port is not None and not 0 < port < 65536:
        raise TaskRefusal(f"{path}.{field}.port: {port} is not a port")
    if check.command is not None and not (check.command.command.value
                                          or check.command.command.arguments):
        raise TaskRefusal(f"{path}.command.command.value: must name what to run")
    for name in ("delay_seconds", "interval_seconds", "timeout_seconds"):
        if getattr(check, name) < 0:
            raise TaskRefusal(f"{path}.{name}: must not be negative")
