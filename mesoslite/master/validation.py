"""Validation of what frameworks ask the master to launch (pure functions).

Each check returns ``None`` when fine or a message meant for the framework author,
naming the offending field.  Mirrors Mesos' ``master/validation.cpp`` where it
applies; mesoslite-specific rules say so.
"""

from __future__ import annotations

import re

from mesoslite.messages.mesos import (
    ContainerInfo,
    ContainerType,
    DockerNetwork,
    ExecutorInfo,
    ExecutorType,
    HealthCheckType,
    LaunchGroup,
    TaskInfo,
    to_resources,
)
from mesoslite.messages.refused import container_refusal, runs_image, task_refusal
from mesoslite.resources import ResourceError, Resources
from mesoslite.secrets.refs import validate_refs
from mesoslite.uris import validate_uris

MAX_ID_LENGTH = 255
_BAD_ID_CHARS = re.compile(r"[\s/\\\x00-\x1f\x7f]")


def validate_id(value: str, what: str) -> str | None:
    """Mesos' ID rules: non-empty, no whitespace, control characters, '/' or '\\'."""
    if not value:
        return f"{what} must not be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"{what} is longer than {MAX_ID_LENGTH} characters"
    if value in (".", ".."):
        return f"{what} must not be '.' or '..'"
    if _BAD_ID_CHARS.search(value):
        return f"{what} '{value}' contains whitespace, control characters, '/' or '\\'"
    return None


def task_resources(task: TaskInfo) -> tuple[Resources | None, str | None]:
    """The task's resources, or an error naming the field."""
    try:
        return to_resources(task.resources, "resources"), None
    except ResourceError as exc:
        return None, f"Task uses invalid resources: {exc} (at {exc.path})"


def validate_task(
    task: TaskInfo,
    agent_id: str,
    role: str,
    agent_containerizers: list[str],
) -> str | None:
    """Structural checks on one TaskInfo (resources are checked by the caller)."""
    error = validate_id(task.task_id.value, "Task ID")
    if error:
        return error
    if task.agent_id.value != agent_id:
        return f"Task uses invalid agent: {task.agent_id.value}, the offer is for {agent_id}"
    if task.executor is not None:
        if task.command is not None:
            return "Task must set one of 'command' and 'executor', not both"
        if task.container is not None:
            return ("Task run by a custom executor cannot set 'container': the executor "
                    "runs it (set 'executor.container')")
        if task.health_check is not None:
            return ("Task run by a custom executor cannot set 'health_check': the "
                    "executor checks its tasks")
    for resource in task.resources:
        alloc_role = resource.allocation_info.role if resource.allocation_info else None
        if alloc_role is not None and alloc_role != role:
            return (
                f"Task resource '{resource.name}' is allocated to role '{alloc_role}',"
                f" the offer to role '{role}'"
            )
    refused = task_refusal(task)  # fields mesoslite cannot honour (messages/refused.py)
    if refused is not None:
        return f"Task {refused}"
    if task.executor is not None:
        return validate_refs(task)
    return (_validate_command_and_container(task, agent_containerizers)
            or _validate_health(task) or validate_refs(task))  # refs: docs/secrets.md


def validate_executor(executor: ExecutorInfo, framework_id: str,
                      agent_containerizers: list[str]) -> str | None:
    """A task's custom executor (docs/executors.md)."""
    if executor.executor_id is None:
        return "Task 'executor.executor_id' must be set"
    error = validate_id(executor.executor_id.value, "Executor ID")
    if error:
        return error
    if executor.type not in (None, ExecutorType.CUSTOM):
        return ("Task 'executor.type' must be CUSTOM (DEFAULT executors run task groups: "
                "use LAUNCH_GROUP)")
    if executor.framework_id is not None and executor.framework_id.value != framework_id:
        return (f"Task 'executor.framework_id' is '{executor.framework_id.value}', the "
                f"framework is '{framework_id}'")
    return _validate_executor_program(executor, agent_containerizers)


def _validate_executor_program(executor: ExecutorInfo, containerizers: list[str]
                               ) -> str | None:
    container: ContainerInfo | None = executor.container
    refused = container_refusal(container, "executor.container")
    if refused is not None:
        return f"Task {refused}"
    if runs_image(container):
        if "docker" not in containerizers:
            return _no_docker_for_image("executor.container", containerizers)
    elif container is not None and container.type == ContainerType.DOCKER:
        if container.docker is None or not container.docker.image:
            return "Task 'executor.container.docker.image' must be set for a DOCKER container"
        if "docker" not in containerizers:
            return "The agent has no docker containerizer (it runs: " + ",".join(
                containerizers) + ")"
    elif executor.command is None:
        return "Task 'executor' must set 'command' (or a DOCKER 'container')"
    command = executor.command
    if command is not None and not command.value and not command.arguments and (
            container is None):
        return "Task 'executor.command.value' must name the program to run"
    error = validate_uris(command.uris, "executor.command.uris") if command else None
    return f"Task {error}" if error else None


def _no_docker_for_image(path: str, containerizers: list[str]) -> str:
    return (f"Task '{path}.mesos.image': the agent has no docker containerizer to run "
            "images (it runs: " + ",".join(containerizers) + ")")


def _validate_command_and_container(task: TaskInfo, containerizers: list[str]) -> str | None:
    container = task.container
    if runs_image(container):
        if "docker" not in containerizers:
            return _no_docker_for_image("container", containerizers)
        if task.command is None:
            return "Task must set 'command' (a MESOS container runs it inside its image)"
    elif container is not None and container.type == ContainerType.DOCKER:
        if container.docker is None or not container.docker.image:
            return "Task 'container.docker.image' must be set for a DOCKER container"
        if "docker" not in containerizers:
            return "The agent has no docker containerizer (it runs: " + ",".join(
                containerizers
            ) + ")"
    elif task.command is None:
        return "Task must set 'command' (or a DOCKER 'container')"
    command = task.command
    if command is not None:
        if command.shell and not command.value and container is None:
            return "Task 'command.value' must be set when 'command.shell' is true"
        if not command.shell and not command.value and not command.arguments and (
            container is None
        ):
            return "Task 'command.value' must name the executable when 'command.shell' is false"
        error = validate_uris(command.uris, "command.uris")  # what the fetcher takes
        if error:
            return f"Task {error}"
    grace = task.kill_policy.grace_period if task.kill_policy else None
    if grace is not None and grace.nanoseconds < 0:
        return "Task 'kill_policy.grace_period' must not be negative"
    return None


def _validate_health(task: TaskInfo) -> str | None:
    check = task.health_check
    if check is None:
        return None
    needed = {
        HealthCheckType.COMMAND: ("command", check.command),
        HealthCheckType.HTTP: ("http", check.http),
        HealthCheckType.TCP: ("tcp", check.tcp),
    }
    if check.type not in needed:
        return "Task 'health_check.type' must be COMMAND, HTTP or TCP"
    field, value = needed[check.type]
    if value is None:
        return f"Task 'health_check.{field}' must be set for a {check.type.value} check"
    for name in ("delay_seconds", "interval_seconds", "timeout_seconds", "grace_period_seconds"):
        if getattr(check, name) < 0:
            return f"Task 'health_check.{name}' must not be negative"
    return None


def validate_group(framework_id: str, group: LaunchGroup) -> str | None:
    """Checks on a LAUNCH_GROUP as a whole (each task is checked on its own after):
    it runs under the agent's built-in DEFAULT executor, and its Docker tasks can
    share one network namespace (docs/containers.md, "Task groups")."""
    return (_validate_default_executor(framework_id, group)
            or _validate_group_network(group.task_group.tasks))


def _validate_default_executor(framework_id: str, group: LaunchGroup) -> str | None:
    executor = group.executor
    if executor.type != ExecutorType.DEFAULT:
        got = executor.type.value if executor.type else "unset, which means CUSTOM"
        return ("LAUNCH_GROUP 'executor.type' must be DEFAULT (mesoslite runs task groups "
                f"with its built-in default executor), not {got}")
    eid = executor.executor_id.value if executor.executor_id else ""
    error = validate_id(eid, "LAUNCH_GROUP 'executor.executor_id'")
    if error:
        return error
    if executor.framework_id is not None and executor.framework_id.value != framework_id:
        return (f"LAUNCH_GROUP 'executor.framework_id' {executor.framework_id.value} is not "
                f"the framework's id {framework_id}")
    if executor.command is not None:
        return "LAUNCH_GROUP 'executor.command' must not be set for the DEFAULT executor"
    container = executor.container
    if container is not None and (container.type != ContainerType.MESOS or container.docker):
        return ("LAUNCH_GROUP 'executor.container' must be of type MESOS, without 'docker', "
                "for the DEFAULT executor")
    if eid in {t.task_id.value for t in group.task_group.tasks}:
        return (f"LAUNCH_GROUP 'executor.executor_id' '{eid}' is also one of its task ids "
                "(on the agent, executor and task ids name sandboxes alike)")
    return None


def _validate_group_network(tasks: list[TaskInfo]) -> str | None:
    """The group's BRIDGE / NONE Docker tasks share the first one's network namespace
    (as the agent does it, ``agent/task_groups.py``): one network for all, and only
    that first one may map ports or set a hostname."""
    docker = [t for t in tasks if t.container is not None and t.container.docker is not None
              and t.container.type == ContainerType.DOCKER]
    networks = sorted({t.container.docker.network.value for t in docker})  # type: ignore[union-attr]
    if len(networks) > 1:
        return ("Task group: 'container.docker.network' must be the same for all its Docker "
                f"tasks, which share one network namespace (found {', '.join(networks)})")
    sharing = [t for t in docker if t.container.docker.network  # type: ignore[union-attr]
               in (DockerNetwork.BRIDGE, DockerNetwork.NONE)]
    for task in sharing[1:]:
        owner, tid = sharing[0].task_id.value, task.task_id.value
        if task.container.docker.port_mappings:  # type: ignore[union-attr]
            return (f"Task '{tid}' 'container.docker.port_mappings': in a task group only "
                    f"the first Docker task ('{owner}'), which holds the group's network "
                    "namespace, may map ports")
        if task.container.hostname:  # type: ignore[union-attr]
            return (f"Task '{tid}' 'container.hostname': in a task group only the first "
                    f"Docker task ('{owner}'), which holds the group's network namespace, "
                    "may set the hostname")
    return None


def check_fits(task: TaskInfo, resources: Resources, available: Resources) -> str | None:
    if not resources:
        return "Task uses no resources"
    if not available.contains(resources):
        return f"Task uses more resources {resources} than available {available}"
    return None
