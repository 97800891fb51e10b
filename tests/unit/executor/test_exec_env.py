"""The executor's environment as an agent sets it: Mesos' duration strings, the
required ids, the defaults for what an agent leaves out, and the errors that name
the variable at fault."""

from __future__ import annotations

import pytest

from mesoslite.executor import ExecutorEnv, parse_duration
from mesoslite.executor.env import (
    DEFAULT_RECOVERY_TIMEOUT,
    DEFAULT_SHUTDOWN_GRACE_PERIOD,
    DEFAULT_SUBSCRIPTION_BACKOFF_MAX,
)

AGENT_ENV = {
    "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
    "MESOS_FRAMEWORK_ID": "fw-1",
    "MESOS_EXECUTOR_ID": "sweep",
    "MESOS_AGENT_ID": "agent-7",
    "MESOS_DIRECTORY": "/var/sandbox",
    "MESOS_SANDBOX": "/mnt/mesos/sandbox",
    "MESOS_CHECKPOINT": "1",
    "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
    "MESOS_RECOVERY_TIMEOUT": "15mins",
    "MESOS_SUBSCRIPTION_BACKOFF_MAX": "500ms",
    "MESOS_EXECUTOR_AUTHENTICATION_TOKEN": "s3cret",
    "MESOS_HTTP_COMMAND_EXECUTOR": "0",
}


@pytest.mark.parametrize(("text", "seconds"), [
    ("5secs", 5.0), ("15mins", 900.0), ("500ms", 0.5), ("900secs", 900.0),
    ("2hrs", 7200.0), ("1days", 86400.0), ("1weeks", 604800.0), ("250us", 250e-6),
    ("10ns", 10e-9), ("1.5mins", 90.0), ("2.5secs", 2.5), (".5secs", 0.5), ("0secs", 0.0),
    (" 3secs\n", 3.0),
])
def test_mesos_durations_are_read_in_seconds(text: str, seconds: float):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "secs", "5 secs", "5s", "5sec", "-5secs", "5SECS",
                                  "1e3ms", "", "five secs", "5secs5"])
def test_what_is_not_a_mesos_duration_is_refused_with_the_text(text: str):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_the_agents_environment_is_read_whole():
    env = ExecutorEnv.from_environ(AGENT_ENV)
    assert env == ExecutorEnv(
        agent_endpoint="127.0.0.1:5051", framework_id="fw-1", executor_id="sweep",
        agent_id="agent-7", directory="/var/sandbox", sandbox="/mnt/mesos/sandbox",
        checkpoint=True, shutdown_grace_period=5.0, recovery_timeout=900.0,
        subscription_backoff_max=0.5, authentication_token="s3cret")
    assert env.url == "http://127.0.0.1:5051/api/v1/executor"


def test_what_an_agent_leaves_out_takes_mesos_defaults():
    minimal = {k: AGENT_ENV[k] for k in
               ("MESOS_AGENT_ENDPOINT", "MESOS_FRAMEWORK_ID", "MESOS_EXECUTOR_ID")}
    env = ExecutorEnv.from_environ({**minimal, "MESOS_SLAVE_ID": "old-name",
                                    "MESOS_DIRECTORY": "/d"})
    assert env.agent_id == "old-name"  # Mesos' older name of the variable
    assert env.sandbox == env.directory == "/d"
    assert not env.checkpoint  # only "1" turns checkpointing on, as in Mesos
    assert env.shutdown_grace_period == DEFAULT_SHUTDOWN_GRACE_PERIOD
    assert env.recovery_timeout == DEFAULT_RECOVERY_TIMEOUT
    assert env.subscription_backoff_max == DEFAULT_SUBSCRIPTION_BACKOFF_MAX
    assert env.authentication_token is None


@pytest.mark.parametrize("value", ["0", "true", ""])
def test_checkpointing_is_on_only_for_1(value: str):
    assert not ExecutorEnv.from_environ({**AGENT_ENV, "MESOS_CHECKPOINT": value}).checkpoint


@pytest.mark.parametrize("name", ["MESOS_AGENT_ENDPOINT", "MESOS_FRAMEWORK_ID",
                                  "MESOS_EXECUTOR_ID"])
def test_a_missing_id_or_endpoint_is_named(name: str):
    env = {k: v for k, v in AGENT_ENV.items() if k != name}
    with pytest.raises(ValueError, match=f"{name} is not set"):
        ExecutorEnv.from_environ(env)
    with pytest.raises(ValueError, match=f"{name} is not set"):
        ExecutorEnv.from_environ({**AGENT_ENV, name: " "})


@pytest.mark.parametrize("name", ["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                                  "MESOS_RECOVERY_TIMEOUT", "MESOS_SUBSCRIPTION_BACKOFF_MAX"])
def test_a_malformed_duration_is_named(name: str):
    with pytest.raises(ValueError, match=f"{name}: '5 minutes' is not a duration"):
        ExecutorEnv.from_environ({**AGENT_ENV, name: "5 minutes"})


@pytest.mark.parametrize(("endpoint", "url"), [
    ("10.0.0.5:5051", "http://10.0.0.5:5051/api/v1/executor"),
    ("https://agent.example:5051", "https://agent.example:5051/api/v1/executor"),
    ("http://127.0.0.1:5051/", "http://127.0.0.1:5051/api/v1/executor"),
])
def test_the_endpoint_may_be_host_port_or_a_url(endpoint: str, url: str):
    assert ExecutorEnv(endpoint, "fw", "ex").url == url
