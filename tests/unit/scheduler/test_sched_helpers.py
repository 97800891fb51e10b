"""task_info and the offer helpers."""

from __future__ import annotations

import json

import msgspec
import pytest

from mesoslite.messages.mesos import (
    ID,
    Attribute,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    Offer,
    Range,
    Ranges,
    Scalar,
    Set,
    Text,
    ValueType,
    from_resources,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import offer_attributes, offer_resources, task_info, task_resources


def test_shell_task_json_is_mesos_shaped() -> None:
    task = task_info("web", "t1", "a1", cmd="echo hi", cpus=0.5, mem=128, disk=10, ports=[31001])
    body = json.loads(msgspec.json.encode(task))
    assert body["task_id"] == {"value": "t1"} and body["agent_id"] == {"value": "a1"}
    assert body["command"] == {"value": "echo hi"}  # shell=true is the default
    assert body["resources"] == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 10.0}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 128.0}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31001, "end": 31001}]}},
    ]


def test_argv_env_labels_and_ports() -> None:
    task = task_info(
        "t",
        ID("t2"),
        ID("a1"),
        argv=["/bin/server", "--port", "31000"],
        ports=[31000, 31001, 31005],
        env={"B": "2", "A": "1"},
        labels={"team": "infra"},
    )
    assert task.command is not None
    assert task.command.shell is False and task.command.value == "/bin/server"
    assert task.command.arguments == ["/bin/server", "--port", "31000"]
    assert task.command.environment is not None
    assert [(v.name, v.value) for v in task.command.environment.variables] == [
        ("A", "1"),
        ("B", "2"),
    ]
    assert task.labels is not None and task.labels.labels[0].key == "team"
    assert task_resources(task) == Resources.of(
        cpus=0.1, mem=32, ports=[(31000, 31001), (31005, 31005)]
    )


def test_role_sets_allocation_info() -> None:
    task = task_info("t", "t", "a", cmd="true", role="batch")
    assert {r.allocation_info.role for r in task.resources if r.allocation_info} == {"batch"}


def test_container_without_command_runs_the_entrypoint() -> None:
    container = ContainerInfo(type=ContainerType.DOCKER, docker=DockerInfo(image="busybox"))
    task = task_info("t", "t", "a", container=container)
    assert task.container == container
    assert task.command is not None and task.command.shell is False and task.command.value is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs cmd or argv"),
        ({"cmd": "a", "argv": ["b"]}, "not both"),
        ({"argv": []}, "non-empty"),
        ({"argv": "ls -l"}, "non-empty list"),
    ],
)
def test_bad_commands(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        task_info("t", "t", "a", **kwargs)


def test_offer_resources_and_attributes() -> None:
    have = Resources.of(cpus=4, mem=2048, ports=[(31000, 31999)])
    offer = Offer(
        id=ID("o"),
        framework_id=ID("f"),
        agent_id=ID("a"),
        hostname="h",
        resources=from_resources(have, "*"),
        attributes=[
            Attribute(name="rack", type=ValueType.TEXT, text=Text(value="r1")),
            Attribute(name="gen", type=ValueType.SCALAR, scalar=Scalar(value=3)),
            Attribute(
                name="ids", type=ValueType.RANGES, ranges=Ranges(range=[Range(begin=1, end=4)])
            ),
            Attribute(name="zones", type=ValueType.SET, set=Set(item=["a", "b"])),
        ],
    )
    assert offer_resources(offer) == have
    assert offer_attributes(offer) == {
        "rack": "r1",
        "gen": 3.0,
        "ids": ((1, 4),),
        "zones": frozenset({"a", "b"}),
    }
    task = task_info("t", "t", offer.agent_id, cmd="true", cpus=1, mem=512, ports=[31000])
    left = offer_resources(offer) - task_resources(task)
    assert left == Resources.of(cpus=3, mem=1536, ports=[(31001, 31999)])
