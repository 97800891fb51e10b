"""Health checks on the agent (docker and process tasks) and kills with a grace period,
through a real in-process cluster and the real engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from mesoslite.messages.mesos import (
    CommandInfo,
    HealthCheck,
    HealthCheckType,
    HTTPCheckInfo,
    Offer,
    Reason,
    TaskState,
    TCPCheckInfo,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import offer_resources, task_info
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.poll import wait_for
from tests.docker.conftest import launch_docker, task_container

pytestmark = pytest.mark.docker

SERVE = ("mkdir -p /tmp/www && echo ok > /tmp/www/index.html && "
         "exec httpd -f -p 8080 -h /tmp/www")


def check(kind: HealthCheckType, failures: int = 2, grace: float = 60.0, **kinds: object
          ) -> HealthCheck:
    """Quick checks: no delay, every 0.2 s; a generous timeout (a `docker exec` on two
    busy shared cores can take seconds, and a timed-out check is a failed one)."""
    return HealthCheck(type=kind, delay_seconds=0, interval_seconds=0.2, timeout_seconds=30,
                       grace_period_seconds=grace, consecutive_failures=failures,
                       **kinds)  # type: ignore[arg-type]


def health_flags(fw: RecordingFramework, task_id: str) -> list[bool]:
    """``healthy`` of the task's health updates, in order; an update the agent resent
    (delivery is at-least-once: same uuid) counts once."""
    unique = {u.uuid: u.healthy for u in fw.sched.updates
              if u.task_id.value == task_id and u.healthy is not None}
    return list(unique.values())


async def assert_killed_by_health_check(fw: RecordingFramework, task_id: str) -> None:
    status = await fw.wait_state(task_id, TaskState.TASK_FAILED, timeout=30)
    assert status.reason == Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
    assert "Health check failed 2 consecutive times" in status.message
    # One update per change, not one per check: healthy once, then unhealthy once.
    assert health_flags(fw, task_id) == [True, False]


async def test_docker_http_check_passes_then_fails_and_kills(docker_cluster, framework,
                                                             docker_engine):
    # Port 8080 names the container port: the agent probes its host port mapping.
    health = check(HealthCheckType.HTTP, http=HTTPCheckInfo(port=8080, path="/index.html"))
    await launch_docker(framework, "web", SERVE, container_ports=[8080], health_check=health)
    await wait_for(lambda: health_flags(framework, "web") == [True], timeout=30,
                   message="a healthy update")
    container = await asyncio.to_thread(task_container, docker_engine, "web")
    await asyncio.to_thread(container.exec_run, ["rm", "/tmp/www/index.html"])  # now 404
    await assert_killed_by_health_check(framework, "web")


async def test_docker_command_check_runs_in_the_container(docker_cluster, framework):
    # `test -f healthy` runs in the container, in the sandbox (its working directory).
    health = check(HealthCheckType.COMMAND, command=CommandInfo(value="test -f healthy"))
    await launch_docker(framework, "cmd", "sleep 300", health_check=health)
    await framework.wait_state("cmd", TaskState.TASK_RUNNING)
    box = docker_cluster.agents[0].cp.sandbox(framework.id, "cmd")
    (box / "healthy").touch()  # failures before this one were inside the grace period
    await wait_for(lambda: health_flags(framework, "cmd") == [True], timeout=30)
    (box / "healthy").unlink()
    await assert_killed_by_health_check(framework, "cmd")


async def launch_process(fw: RecordingFramework, task_id: str, cmd: str, ports: int,
                         health: Callable[[list[int]], HealthCheck]) -> list[int]:
    """A process task with ``ports`` host ports; ``health`` builds its check from them."""
    need = Resources.of(cpus=0.1, mem=32)

    def fits(o: Offer) -> bool:
        free = offer_resources(o)
        return need <= free and len(free.port_list()) >= ports

    offer = await wait_for(lambda: next(
        (o for o in fw.sched.open_offers.values() if fits(o)), None))
    hosts = offer_resources(offer).take_ports(ports).port_list()
    task = task_info(task_id, task_id, offer.agent_id, cmd=cmd, cpus=0.1, mem=32, ports=hosts,
                     health_check=health(hosts))
    await fw.launch(offer, [task], refuse_seconds=0)
    return hosts


async def test_process_command_check_passes_then_fails_and_kills(docker_cluster, framework):
    await launch_process(framework, "proc", "sleep 300", 0, lambda _: check(
        HealthCheckType.COMMAND, command=CommandInfo(value="test -f healthy")))
    await framework.wait_state("proc", TaskState.TASK_RUNNING)
    box = docker_cluster.agents[0].cp.sandbox(framework.id, "proc")
    (box / "healthy").touch()
    await wait_for(lambda: health_flags(framework, "proc") == [True], timeout=30)
    (box / "healthy").unlink()
    await assert_killed_by_health_check(framework, "proc")


async def test_process_tcp_checks_pass_and_fail(docker_cluster, framework):
    serve = "exec /bin/busybox httpd -f -p 127.0.0.1:$PORT0 -h ."
    await launch_process(framework, "listening", serve, 1, lambda ports: check(
        HealthCheckType.TCP, tcp=TCPCheckInfo(port=ports[0])))
    await wait_for(lambda: health_flags(framework, "listening") == [True], timeout=30)
    # Nothing listens on the second port; no grace period: the failures count at once.
    await launch_process(framework, "deaf", serve, 2, lambda ports: check(
        HealthCheckType.TCP, grace=0, tcp=TCPCheckInfo(port=ports[1])))
    status = await framework.wait_state("deaf", TaskState.TASK_FAILED, timeout=30)
    assert status.reason == Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
    assert "Health check failed 2 consecutive times" in status.message
    assert health_flags(framework, "deaf") == [False]
    assert framework.sched.last("listening").state == TaskState.TASK_RUNNING


async def test_kill_uses_the_grace_period_then_removes(docker_cluster, framework,
                                                       docker_engine):
    graceful = "trap 'echo got-TERM; exit 0' TERM; echo ready; while true; do sleep 0.1; done"
    stubborn = "trap '' TERM; echo ready; while true; do sleep 0.1; done"
    await launch_docker(framework, "graceful", graceful, grace=30)
    await launch_docker(framework, "stubborn", stubborn, grace=1)
    agent = docker_cluster.agents[0]
    for task_id in ("graceful", "stubborn"):
        await framework.wait_state(task_id, TaskState.TASK_RUNNING)
        out = agent.cp.sandbox(framework.id, task_id) / "stdout"
        await wait_for(lambda out=out: "ready" in out.read_text())
        await framework.driver.kill(task_id)
    for task_id in ("graceful", "stubborn"):
        await framework.wait_state(task_id, TaskState.TASK_KILLED, timeout=30)
        assert await asyncio.to_thread(task_container, docker_engine, task_id) is None
    # SIGTERM reached the graceful one (it exited on its own); the stubborn one ignored
    # it and was SIGKILLed once its grace period ran out.
    assert (agent.cp.sandbox(framework.id, "graceful") / "stdout").read_text() == \
        "ready\ngot-TERM\n"
    assert (agent.cp.sandbox(framework.id, "stubborn") / "stdout").read_text() == "ready\n"
