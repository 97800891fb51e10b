"""What the master refuses in a LAUNCH_GROUP as a whole (``validate_group``): each
refusal names the field, and a group the default executor can run passes."""

from __future__ import annotations

import pytest

from mesoslite.master.validation import validate_group
from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    ExecutorInfo,
    ExecutorType,
    LaunchGroup,
    PortMapping,
    TaskGroupInfo,
    TaskInfo,
)


def docker(task_id: str, network: DockerNetwork = DockerNetwork.BRIDGE, *,
           mapped: bool = False, hostname: str | None = None) -> TaskInfo:
    mappings = [PortMapping(host_port=31000, container_port=80)] if mapped else []
    return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("a"), container=ContainerInfo(
        type=ContainerType.DOCKER, hostname=hostname,
        docker=DockerInfo(image="x", network=network, port_mappings=mappings)))


def plain(task_id: str) -> TaskInfo:
    return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("a"),
                    command=CommandInfo(value="true"))


def executor(**fields: object) -> ExecutorInfo:
    return ExecutorInfo(**{"type": ExecutorType.DEFAULT, "executor_id": ID("pod"), **fields})


def group(ex: ExecutorInfo, *tasks: TaskInfo) -> LaunchGroup:
    return LaunchGroup(executor=ex, task_group=TaskGroupInfo(tasks=list(tasks)))


@pytest.mark.parametrize("launch, named", [
    (group(executor(type=None), plain("a")), "'executor.type' must be DEFAULT"),
    (group(executor(type=ExecutorType.CUSTOM), plain("a")), "not CUSTOM"),
    (group(executor(executor_id=None), plain("a")), "'executor.executor_id' must not be empty"),
    (group(executor(executor_id=ID("a b")), plain("a")), "'executor.executor_id' 'a b'"),
    (group(executor(executor_id=ID("a")), plain("a")), "is also one of its task ids"),
    (group(executor(framework_id=ID("other")), plain("a")), "'executor.framework_id' other"),
    (group(executor(command=CommandInfo(value="x")), plain("a")), "'executor.command'"),
    (group(executor(container=ContainerInfo(type=ContainerType.DOCKER)), plain("a")),
     "'executor.container' must be of type MESOS"),
    (group(executor(), docker("a"), docker("b", DockerNetwork.NONE)),
     "'container.docker.network' must be the same"),
    (group(executor(), docker("a"), docker("b", mapped=True)),
     "Task 'b' 'container.docker.port_mappings'"),
    (group(executor(), docker("a"), docker("b", hostname="h")), "Task 'b' 'container.hostname'"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_each_refusal_names_the_field(launch: LaunchGroup, named: str):
    error = validate_group("fw", launch)
    assert error is not None and named in error


def test_a_group_the_default_executor_can_run_passes():
    launch = group(executor(framework_id=ID("fw"),
                            container=ContainerInfo(type=ContainerType.MESOS)),
                   docker("a", mapped=True, hostname="pod"), docker("b"), plain("c"))
    assert validate_group("fw", launch) is None
    host = group(executor(), docker("a", DockerNetwork.HOST),
                 docker("b", DockerNetwork.HOST, hostname="h"))
    assert validate_group("fw", host) is None  # HOST tasks share no namespace of their own
