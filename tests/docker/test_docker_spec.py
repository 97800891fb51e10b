"""What a DOCKER task's container looks like (``docker_spec``, pure; the engine is not
called, the module sits here with the rest of the docker containerizer's tests)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mesoslite.agent.container_policy import ContainerPolicy
from mesoslite.agent.containerizers.base import LaunchError, LaunchSpec
from mesoslite.agent.containerizers.docker_logs import (
    LogPosition,
    StreamMark,
    parse_timestamp,
)
from mesoslite.agent.containerizers.docker_spec import (
    GROUP_SANDBOX_MOUNT,
    PARAMETER_ALLOW_LIST,
    SANDBOX_MOUNT,
    build_create_args,
)
from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    Environment,
    EnvironmentVariable,
    Label,
    Labels,
    Parameter,
    PortMapping,
    TaskInfo,
    Volume,
)

pytestmark = pytest.mark.docker


def spec(tmp_path: Path, command: CommandInfo | None = None, **docker: object) -> LaunchSpec:
    params = docker.pop("parameters", [])
    volumes = docker.pop("volumes", [])
    labels = docker.pop("labels", None)
    docker.setdefault("network", DockerNetwork.BRIDGE)  # HOST needs a policy exception
    info = DockerInfo(image="img:1", parameters=[Parameter(k, v) for k, v in params],
                      **docker)  # type: ignore[arg-type]
    task = TaskInfo(name="t", task_id=ID("t1"), agent_id=ID("a1"),
                    command=command or CommandInfo(value="echo hi"), labels=labels,
                    container=ContainerInfo(type=ContainerType.DOCKER, docker=info,
                                            volumes=volumes))
    env = {"PATH": "/host/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "MESOS_SANDBOX": str(tmp_path), "PORT0": "31000"}
    return LaunchSpec(container_id="c1", agent_id="a1", framework_id="f1", task=task,
                      sandbox=tmp_path, env=env, cpus=0.25, mem_mb=48, ports=(31000, 31001))


def test_names_labels_limits_and_sandbox(tmp_path):
    args = build_create_args(spec(tmp_path, labels=Labels([Label("team", "blue")])), "rid")
    assert args.name == "mesoslite-c1"
    assert args.labels == {"team": "blue", "mesoslite.runtime_id": "rid",
                           "mesoslite.agent_id": "a1", "mesoslite.framework_id": "f1",
                           "mesoslite.task_id": "t1", "mesoslite.container_id": "c1"}
    hc = args.host_config
    assert (hc["cpu_quota"], hc["cpu_period"], hc["cpu_shares"]) == (25000, 100000, 256)
    assert hc["mem_limit"] == hc["memswap_limit"] == 48 * 2**20
    assert hc["binds"][0] == f"{tmp_path}:{SANDBOX_MOUNT}:rw"
    assert args.working_dir == SANDBOX_MOUNT
    assert hc["log_config"]["type"] == "json-file"


def test_host_environment_is_not_forced_on_the_image(tmp_path):
    env = build_create_args(spec(tmp_path), "rid").environment
    assert "PATH" not in env and "HOME" not in env and "LANG" not in env
    assert env["MESOS_SANDBOX"] == SANDBOX_MOUNT and env["PORT0"] == "31000"
    task_set = CommandInfo(value="x", environment=Environment(
        variables=[EnvironmentVariable("PATH", "/host/bin")]))
    assert build_create_args(spec(tmp_path, task_set), "rid").environment["PATH"] == \
        "/host/bin"


def test_command_semantics(tmp_path):
    shell = build_create_args(spec(tmp_path, CommandInfo(value="echo $X")), "r")
    assert (shell.entrypoint, shell.command) == (["/bin/sh", "-c"], ["echo $X"])
    argv = build_create_args(spec(tmp_path, CommandInfo(
        value="ls", shell=False, arguments=["ls", "-l"])), "r")
    assert (argv.entrypoint, argv.command) == (None, ["ls", "-l"])
    image_default = build_create_args(spec(tmp_path, CommandInfo(shell=False)), "r")
    assert (image_default.entrypoint, image_default.command) == (None, None)


def test_port_mappings(tmp_path):
    args = build_create_args(spec(tmp_path, network=DockerNetwork.BRIDGE, port_mappings=[
        PortMapping(31000, 80), PortMapping(31001, 53, "tcp,udp")]), "r")
    assert args.ports == [(80, "tcp"), (53, "tcp"), (53, "udp")]
    assert args.host_config["port_bindings"] == {"80/tcp": [31000], "53/tcp": [31001],
                                                 "53/udp": [31001]}
    with pytest.raises(LaunchError, match="not among the task's ports resource"):
        build_create_args(spec(tmp_path, network=DockerNetwork.BRIDGE,
                               port_mappings=[PortMapping(32000, 80)]), "r")
    with pytest.raises(LaunchError, match="need BRIDGE networking"):
        build_create_args(spec(tmp_path, network=DockerNetwork.HOST,
                               port_mappings=[PortMapping(31000, 80)]), "r",
                          ContainerPolicy.local_dev())
    with pytest.raises(LaunchError, match="not supported"):
        build_create_args(spec(tmp_path, network=DockerNetwork.USER), "r")


def test_parameters_allow_list(tmp_path):
    args = build_create_args(spec(tmp_path, parameters=[
        ("--add-host", "db:10.0.0.2"), ("cap-drop", "NET_RAW"), ("env", "A=1"),
        ("label", "x=y"), ("read-only", "true"), ("init", "false"), ("shm-size", "8m"),
        ("stop-signal", "SIGINT"), ("user", "nobody"), ("workdir", "/w"),
        ("ulimit", "nproc=10")]), "r")
    hc = args.host_config
    assert hc["extra_hosts"] == {"db": "10.0.0.2"} and hc["cap_drop"] == ["ALL"]
    assert "NET_RAW" not in hc["cap_add"]  # hardening: tests/docker/test_hardening.py
    assert hc["read_only"] is True and hc["init"] is False and hc["shm_size"] == "8m"
    assert hc["ulimits"] == [{"name": "nproc", "soft": 10, "hard": 10}]
    assert args.environment["A"] == "1" and args.labels["x"] == "y"
    assert (args.stop_signal, args.user, args.working_dir) == ("SIGINT", "nobody", "/w")
    for key in ("privileged", "pid", "log-driver", "volumes-from", "security-opt"):
        with pytest.raises(LaunchError, match=f"'{key}' is not allowed"):
            build_create_args(spec(tmp_path, parameters=[(key, "x")]), "r")
    assert "privileged" not in PARAMETER_ALLOW_LIST
    with pytest.raises(LaunchError, match="Adding capabilities SYS_ADMIN is not allowed"):
        build_create_args(spec(tmp_path, parameters=[("cap-add", "SYS_ADMIN")]), "r")
    with pytest.raises(LaunchError, match="cannot use value"):
        build_create_args(spec(tmp_path, parameters=[("ulimit", "nofile=many")]), "r")
    with pytest.raises(LaunchError, match="reserved"):
        build_create_args(spec(tmp_path, parameters=[("label", "mesoslite.task_id=x")]), "r")
    with pytest.raises(LaunchError, match="Privileged"):
        build_create_args(spec(tmp_path, privileged=True), "r")


def test_volumes(tmp_path):
    args = build_create_args(spec(tmp_path, volumes=[
        Volume(container_path="/ro", mode="RO", host_path="/srv"),
        Volume(container_path="/rel", host_path="data")]), "r")
    assert args.host_config["binds"][1:] == ["/srv:/ro:ro", f"{tmp_path}/data:/rel:rw"]
    with pytest.raises(LaunchError, match="leaves the sandbox"):
        build_create_args(spec(tmp_path, volumes=[
            Volume(container_path="/x", host_path="../../etc")]), "r")
    with pytest.raises(LaunchError, match="must be absolute"):
        build_create_args(spec(tmp_path, volumes=[Volume(container_path="x", host_path="/a")]),
                          "r")


def test_log_timestamps_to_nanoseconds():
    assert parse_timestamp(b"1970-01-01T00:00:01.5Z") == 1_500_000_000
    assert parse_timestamp(b"2024-05-01T12:00:00.000000001Z") == 1714564800_000000001
    assert parse_timestamp(b"2024-05-01T14:00:00+02:00") == 1714564800_000000000
    both = LogPosition(stdout=StreamMark(ts=1714564800_000000001),
                       stderr=StreamMark(ts=1714564800_000000005))
    assert both.since_param() == "1714564800.000000001"
    assert LogPosition().since_param() is None
    one = LogPosition(stdout=StreamMark(ts=1714564800_000000001))
    assert one.since_param() is None  # stderr may still need anything
    one.floor = 1714564700_000000000
    assert one.since_param() == "1714564700.000000000"
    with pytest.raises(ValueError):
        parse_timestamp(b"yesterday")


def test_a_task_group_member_joins_the_owners_network_and_sees_the_group_sandbox(tmp_path):
    group = tmp_path / "pod"
    joined = dataclasses.replace(spec(tmp_path), group_sandbox=group, network_owner="c0")
    args = build_create_args(joined, "rid")
    assert args.host_config["network_mode"] == "container:mesoslite-c0"
    assert args.ports == [] and args.host_config["port_bindings"] is None
    assert args.host_config["binds"][:2] == [f"{tmp_path}:{SANDBOX_MOUNT}:rw",
                                             f"{group}:{GROUP_SANDBOX_MOUNT}:rw"]
    assert args.environment["MESOSLITE_GROUP_SANDBOX"] == GROUP_SANDBOX_MOUNT
    owner = dataclasses.replace(
        spec(tmp_path, port_mappings=[PortMapping(host_port=31000, container_port=80)]),
        group_sandbox=group)
    assert build_create_args(owner, "rid").host_config["network_mode"] == "bridge"


@pytest.mark.parametrize("docker, named", [
    ({"port_mappings": [PortMapping(host_port=31000, container_port=80)]}, "Port mappings"),
    ({"parameters": [("hostname", "h")]}, "Hostname"),
])
def test_a_group_member_in_the_owners_network_has_no_network_settings(tmp_path, docker, named):
    joined = dataclasses.replace(spec(tmp_path, **docker), network_owner="c0")
    with pytest.raises(LaunchError, match=named):
        build_create_args(joined, "rid")
