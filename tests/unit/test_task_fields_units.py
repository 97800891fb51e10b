"""Pure parts of the task fields the agent honours: which user a task runs as, the
refusals naming the field, and the Docker limits from ``TaskInfo.limits``."""

from __future__ import annotations

import getpass
import math

import msgspec
import pytest

from mesoslite.agent import task_user as task_user_module
from mesoslite.agent.checks import empty_status, result_status
from mesoslite.agent.containerizers.base import LaunchError
from mesoslite.agent.containerizers.docker_spec import limits
from mesoslite.agent.task_user import AGENT_USER, task_user
from mesoslite.messages.mesos import CheckType, CommandInfo, FrameworkInfo, TaskInfo
from mesoslite.messages.refused import task_limits, task_refusal

ME = getpass.getuser()


def framework(user: str) -> FrameworkInfo:
    return FrameworkInfo(user=user, name="f")


def test_command_user_wins_over_the_framework_user() -> None:
    assert task_user(framework("no-such-user-x1"), CommandInfo(value="x", user=ME)) == ME
    assert task_user(framework(ME), CommandInfo(value="x")) == ME
    assert task_user(framework(""), CommandInfo(value="x")) == AGENT_USER


def test_no_switch_user_runs_everything_as_the_agent() -> None:
    info = framework("no-such-user-x1")
    assert task_user(info, None, switch_user=False) == AGENT_USER


def test_a_missing_user_is_refused_naming_the_field() -> None:
    with pytest.raises(LaunchError, match="framework_info.user 'no-such-user-x1': no such"):
        task_user(framework("no-such-user-x1"), None)
    with pytest.raises(LaunchError, match="command.user 'no-such-user-x1'"):
        task_user(framework(ME), CommandInfo(value="x", user="no-such-user-x1"))


def test_an_agent_that_is_not_root_refuses_other_users(monkeypatch) -> None:
    monkeypatch.setattr(task_user_module.os, "geteuid", lambda: 4242)
    with pytest.raises(LaunchError, match="framework_info.user 'root': the agent is not root"):
        task_user(framework("root"), None)


def task(**fields: object) -> TaskInfo:
    base = {"name": "t", "task_id": {"value": "t"}, "agent_id": {"value": "a"},
            "command": {"value": "true"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}},
                          {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}}]}
    return msgspec.convert({**base, **fields}, TaskInfo)


@pytest.mark.parametrize("fields, refusal", [
    ({"limits": {"disk": {"value": 5}}}, "task.limits.disk: unsupported"),
    ({"limits": {"mem": {"value": 32}}}, "task.limits.mem: 32 is below"),
    ({"limits": {"cpus": {"value": -1}}}, "task.limits.cpus: -1 is not a non-negative"),
    ({"max_completion_time": {"nanoseconds": -1}}, "task.max_completion_time: must not"),
    ({"check": {"type": "HTTP"}}, "task.check.http: must be set"),
    ({"check": {"type": "TCP", "tcp": {"port": 70000}}}, "task.check.tcp.port"),
    ({"check": {"type": "UNKNOWN"}}, "task.check.type"),
    ({"container": {"type": "MESOS", "mesos": {"image": {"type": "DOCKER", "docker": {
        "name": "x", "config": {"type": "REFERENCE"}}}}}},
     "task.container.mesos.image.docker.config: registry credentials"),
    ({"container": {"type": "DOCKER", "docker": {"image": "x"}, "mesos": {"image": {
        "type": "DOCKER", "docker": {"name": "x"}}}}}, "task.container.mesos: only a MESOS"),
    ({"command": None, "executor": {"executor_id": {"value": "e"}},
      "max_completion_time": {"nanoseconds": 1}}, "task.max_completion_time: a task of a "),
])
def test_what_cannot_be_honoured_is_named(fields, refusal) -> None:
    assert refusal in (task_refusal(task(**fields)) or "")


def test_honoured_fields_pass_and_limits_read_infinity() -> None:
    honoured = task(limits={"cpus": {"value": 2}, "mem": {"value": "Infinity"}},
                    max_completion_time={"nanoseconds": 10**9},
                    check={"type": "TCP", "tcp": {"port": 80}})
    assert task_refusal(honoured) is None
    assert task_limits(honoured) == {"cpus": 2.0, "mem": math.inf}


def test_docker_limits_follow_the_limit_and_shares_the_request() -> None:
    assert limits(0.5, 64) == {"cpu_shares": 512, "cpu_period": 100_000, "cpu_quota": 50_000,
                               "mem_limit": 64 * 2**20, "memswap_limit": 64 * 2**20}
    assert limits(0.5, 64, 2.0, math.inf) == {
        "cpu_shares": 512, "cpu_period": 100_000, "cpu_quota": 200_000,
        "mem_reservation": 64 * 2**20}


def test_check_statuses_are_empty_until_a_result() -> None:
    assert msgspec.to_builtins(empty_status(CheckType.TCP)) == {"type": "TCP", "tcp": {}}
    assert msgspec.to_builtins(result_status(CheckType.HTTP, 503)) == {
        "type": "HTTP", "http": {"status_code": 503}}
