"""The health-check state machine (pure: results and times in, actions out)."""

from __future__ import annotations

from mesoslite.agent.health import (
    HealthPolicy,
    HealthState,
    KillTask,
    SendHealth,
    check_port,
    command_argv,
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
    HealthCheck,
    HealthCheckType,
    PortMapping,
    TaskInfo,
)

POLICY = HealthPolicy(delay=5, interval=2, timeout=1, grace=10, max_failures=3)


def test_first_check_after_the_delay_then_every_interval_after_the_last_result():
    state = HealthState(POLICY, started_at=100.0)
    assert state.next_check_at == 105.0
    state.record(True, 105.5)
    assert state.next_check_at == 107.5


def test_first_success_is_reported_and_repeats_are_not():
    state = HealthState(POLICY, started_at=0.0)
    assert state.record(True, 5) == [SendHealth(True)]
    assert state.record(True, 7) == []
    assert state.record(True, 9) == []


def test_failures_inside_the_grace_period_are_ignored_until_the_first_success():
    state = HealthState(POLICY, started_at=0.0)
    for t in (5, 7, 9):
        assert state.record(False, t) == []
    assert state.failures == 0
    # After the grace period they count.
    assert state.record(False, 10.5) == [SendHealth(False)]
    assert state.failures == 1


def test_first_success_ends_the_grace_period():
    state = HealthState(POLICY, started_at=0.0)
    state.record(True, 5)
    assert state.record(False, 6) == [SendHealth(False)]
    assert state.failures == 1


def test_transitions_are_reported_once_each():
    state = HealthState(POLICY, started_at=0.0)
    assert state.record(True, 5) == [SendHealth(True)]
    assert state.record(False, 6) == [SendHealth(False)]
    assert state.record(False, 7) == []
    assert state.record(True, 8) == [SendHealth(True)]
    assert state.failures == 0  # a success resets the count


def test_kill_after_consecutive_failures_with_a_message():
    state = HealthState(POLICY, started_at=0.0)
    state.record(True, 5)
    assert state.record(False, 6, "refused") == [SendHealth(False)]
    assert state.record(False, 8, "refused") == []
    actions = state.record(False, 10, "refused")
    assert len(actions) == 1 and isinstance(actions[0], KillTask)
    assert "Health check failed 3 consecutive times" in actions[0].message
    assert "refused" in actions[0].message
    assert state.done
    assert state.record(False, 12) == []  # nothing after the kill
    assert state.record(True, 12) == []


def test_success_between_failures_restarts_the_count():
    state = HealthState(POLICY, started_at=0.0)
    state.record(True, 5)
    state.record(False, 6)
    state.record(False, 7)
    state.record(True, 8)
    state.record(False, 9)
    state.record(False, 10)
    assert not state.done
    assert isinstance(state.record(False, 11)[-1], KillTask)


def test_unhealthy_first_result_after_grace_then_kill_in_one_step():
    policy = HealthPolicy(delay=0, interval=1, timeout=1, grace=0, max_failures=1)
    state = HealthState(policy, started_at=0.0)
    actions = state.record(False, 0.1, "boom")
    assert actions[0] == SendHealth(False)
    assert isinstance(actions[1], KillTask)


def test_zero_consecutive_failures_never_kills():
    policy = HealthPolicy(delay=0, interval=1, timeout=1, grace=0, max_failures=0)
    state = HealthState(policy, started_at=0.0)
    for t in range(1, 50):
        actions = state.record(False, t)
        assert not any(isinstance(a, KillTask) for a in actions)
    assert not state.done


def test_after_a_restart_the_last_report_is_the_starting_point():
    state = HealthState(POLICY, started_at=1000.0, reported=True)
    assert state.record(True, 1005) == []  # nothing changed: no update
    # No new grace period either: the task had passed it before the restart.
    assert state.record(False, 1006) == [SendHealth(False)]


def test_policy_from_a_health_check():
    check = HealthCheck(type=HealthCheckType.TCP, delay_seconds=1, interval_seconds=2,
                        timeout_seconds=3, grace_period_seconds=4, consecutive_failures=5)
    assert HealthPolicy.from_check(check) == HealthPolicy(1, 2, 3, 4, 5)


def _docker_task(network: DockerNetwork) -> TaskInfo:
    docker = DockerInfo(image="x", network=network, port_mappings=[
        PortMapping(host_port=31005, container_port=80)])
    return TaskInfo(name="t", task_id=ID("t"), agent_id=ID("a"),
                    container=ContainerInfo(type=ContainerType.DOCKER, docker=docker))


def test_bridge_container_ports_are_translated_to_host_ports():
    task = _docker_task(DockerNetwork.BRIDGE)
    assert check_port(task, 80) == 31005
    assert check_port(task, 31005) == 31005
    assert check_port(task, 8080) == 8080
    assert check_port(_docker_task(DockerNetwork.HOST), 80) == 80


def test_command_argv_shell_plain_and_with_environment():
    shell = HealthCheck(type=HealthCheckType.COMMAND, command=CommandInfo(value="test -f ok"))
    assert command_argv(shell) == ["/bin/sh", "-c", "test -f ok"]
    plain = HealthCheck(type=HealthCheckType.COMMAND, command=CommandInfo(
        value="true", shell=False, arguments=["true", "x"]))
    assert command_argv(plain) == ["true", "x"]
    env = HealthCheck(type=HealthCheckType.COMMAND, command=CommandInfo(
        value="check", environment=Environment(variables=[EnvironmentVariable("A", "1")])))
    assert command_argv(env) == ["env", "A=1", "/bin/sh", "-c", "check"]
