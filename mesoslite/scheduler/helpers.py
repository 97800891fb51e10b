"""Conveniences for framework authors: build tasks, read offers.

``task_info`` writes the Mesos resource list (cpus/mem/disk scalars, a ``ports``
range) and the command so a task is one call; ``offer_resources``,
``offer_attributes`` and ``offer_text_attributes`` turn an offer into plain values to
compare and pick from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mesoslite.messages.attributes import attributes_text
from mesoslite.messages.mesos import (
    Attribute,
    CommandInfo,
    CommandURI,
    ContainerInfo,
    Environment,
    EnvironmentVariable,
    HealthCheck,
    Offer,
    Resource,
    TaskInfo,
    ValueType,
    dict_to_labels,
    from_resources,
    to_resources,
)
from mesoslite.resources import Range, Resources
from mesoslite.scheduler.calls import IdLike, as_id

AttributeValue = str | float | tuple[Range, ...] | frozenset[str]


def task_info(
    name: str,
    task_id: IdLike,
    agent_id: IdLike,
    *,
    cmd: str | None = None,
    argv: Sequence[str] | None = None,
    cpus: float = 0.1,
    mem: float = 32.0,
    disk: float = 0.0,
    gpus: float = 0.0,
    ports: Iterable[int] = (),
    env: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    container: ContainerInfo | None = None,
    health_check: HealthCheck | None = None,
    role: str | None = None,
    data: bytes | None = None,
    uris: Iterable[str | CommandURI] = (),
) -> TaskInfo:
    """A ``TaskInfo`` for a command task.

    Give exactly one of ``cmd`` (run by ``/bin/sh -c``) or ``argv`` (executed
    directly, ``argv[0]`` the program); with a Docker ``container`` both may be
    omitted to run the image's own entrypoint.  ``mem`` and ``disk`` are in MB;
    ``ports`` are host ports taken from the offer's ``ports`` ranges.  ``role`` marks
    the resources as allocated to that role, which MULTI_ROLE frameworks must do
    (use the offer's ``allocation_info.role``).  ``uris`` are fetched into the
    sandbox before the task starts (a plain string: a URL or path, extracted if it is
    an archive; a ``CommandURI`` for ``executable``, ``cache``, ``output_file``; see
    docs/fetcher.md).  Raises ``ValueError`` on a bad combination and
    ``ResourceError`` on negative amounts.
    """
    if cmd is not None and argv is not None:
        raise ValueError("give either cmd (a shell command) or argv (a program), not both")
    if cmd is not None:
        command = CommandInfo(value=cmd, shell=True)
    elif argv is not None:
        if isinstance(argv, str) or not argv:
            raise ValueError("argv must be a non-empty list of strings")
        command = CommandInfo(value=argv[0], shell=False, arguments=list(argv))
    elif container is not None:
        command = CommandInfo(shell=False)  # the image's entrypoint and cmd
    else:
        raise ValueError("a task needs cmd or argv (or a container image to run)")
    command.uris = [CommandURI(value=u) if isinstance(u, str) else u for u in uris]
    if env:
        command.environment = Environment(
            variables=[EnvironmentVariable(name=k, value=v) for k, v in sorted(env.items())]
        )
    needed = Resources(
        scalars={"cpus": cpus, "mem": mem, "disk": disk, "gpus": gpus},
        ranges={"ports": [(p, p) for p in ports]},
    )
    return TaskInfo(
        name=name,
        task_id=as_id(task_id),
        agent_id=as_id(agent_id),
        resources=from_resources(needed, role),
        command=command,
        container=container,
        health_check=health_check,
        labels=dict_to_labels(dict(labels)) if labels else None,
        data=data,
    )


def offer_resources(offer: Offer) -> Resources:
    """The offer's resources as a ``Resources`` value (supports ``+ - <=``)."""
    return to_resources(offer.resources, "offer.resources")


def task_resources(task: TaskInfo) -> Resources:
    """The resources a task asks for, to subtract from what an offer has left."""
    return to_resources(task.resources, "task.resources")


def offer_attributes(offer: Offer) -> dict[str, AttributeValue]:
    """The agent's attributes: TEXT as ``str``, SCALAR as ``float``, RANGES as a
    tuple of ``(begin, end)`` and SET as a ``frozenset``."""
    return {a.name: _attribute_value(a) for a in offer.attributes}


def offer_text_attributes(offer: Offer) -> dict[str, str]:
    """The agent's attributes as text, the form placement constraints compare: what
    the agent was started with (``rack:01`` stays ``"01"``), SCALAR ``3.0`` as
    ``"3"``, RANGES as ``"[1-4,6-9]"``, SET as ``"{a,b}"``."""
    return attributes_text(offer.attributes)


def _attribute_value(attribute: Attribute) -> AttributeValue:
    if attribute.type == ValueType.SCALAR and attribute.scalar is not None:
        return attribute.scalar.value
    if attribute.type == ValueType.RANGES and attribute.ranges is not None:
        return tuple((r.begin, r.end) for r in attribute.ranges.range)
    if attribute.type == ValueType.SET and attribute.set is not None:
        return frozenset(attribute.set.item)
    if attribute.text is not None:
        return attribute.text.value
    return ""


def resource_list(resources: Resources, role: str | None = None) -> list[Resource]:
    """``Resources`` as the typed Mesos list a ``TaskInfo`` or ``ExecutorInfo`` holds."""
    return from_resources(resources, role)
