"""The supervisor fork server: one long-lived launcher forks every task's supervisor,
and nothing about a supervisor changes for it (own session, init's child, outlives
the launcher and the agent)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import psutil

from mesoslite.agent.containerizers.base import LaunchSpec, StopKind
from mesoslite.agent.containerizers.process import ProcessContainerizer
from mesoslite.testing.poll import wait_for
from tests.unit.containerizers.process.conftest import ended, pid_alive, stopped

SpecFactory = Callable[..., LaunchSpec]


def supervisor_of(container: object) -> int:
    return container.record["supervisor_pid"]  # type: ignore[attr-defined]


async def test_one_launcher_forks_supervisors_that_stand_alone(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    first = await containerizer.launch(make_spec("sleep 300"))
    second = await containerizer.launch(make_spec("sleep 300"))
    assert containerizer.launcher is not None
    server = containerizer.launcher.pid
    assert server is not None and pid_alive(server)
    sups = [supervisor_of(first), supervisor_of(second)]
    for sup in sups:
        # neither the agent's nor the launcher's child, and in a session of its own
        assert psutil.Process(sup).ppid() not in (os.getpid(), server)
        assert os.getsid(sup) not in (os.getsid(0), os.getsid(server))
    assert os.getsid(sups[0]) != os.getsid(sups[1])
    assert (await stopped(first)).signal == signal.SIGKILL
    assert (await stopped(second, StopKind.TERM)).signal == signal.SIGTERM


async def test_tasks_outlive_the_launcher_and_a_dead_one_is_replaced(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    running = await containerizer.launch(make_spec("sleep 300"))
    assert containerizer.launcher is not None
    server = containerizer.launcher.pid
    assert server is not None
    os.kill(server, signal.SIGKILL)
    await wait_for(lambda: not pid_alive(server), message="launcher killed")
    later = await containerizer.launch(make_spec("exit 3"))
    assert (await ended(later)).exit_code == 3
    assert containerizer.launcher.pid not in (None, server)
    assert pid_alive(running.record["task_pid"])  # untouched by its launcher's death
    await stopped(running)


async def test_closing_the_agent_side_stops_the_launcher_not_the_tasks(
    make_containerizer: Callable[..., ProcessContainerizer], agent_id: str,
    make_spec: SpecFactory,
):
    containerizer = make_containerizer(agent_id)
    running = await containerizer.launch(make_spec("sleep 300"))
    assert containerizer.launcher is not None
    server = containerizer.launcher.pid
    assert server is not None
    task_pid = running.record["task_pid"]
    await containerizer.close()
    await wait_for(lambda: not pid_alive(server), message="launcher gone with the agent side")
    assert pid_alive(task_pid)
    os.killpg(task_pid, signal.SIGKILL)


async def test_without_the_fork_server_supervisors_are_spawned(
    work_dir, agent_id: str, make_spec: SpecFactory
):
    containerizer = ProcessContainerizer(agent_id, work_dir, fork_server=False)
    try:
        assert containerizer.launcher is None
        term = await ended(await containerizer.launch(make_spec("exit 4")))
        assert term.exit_code == 4
        failed = make_spec("/nonexistent/binary", shell=False)
        try:
            await containerizer.launch(failed)
        except Exception as exc:  # noqa: BLE001
            assert "no such file" in str(exc)
        else:
            raise AssertionError("a missing executable must fail the launch")
    finally:
        await containerizer.cleanup_orphans(set())
        await containerizer.close()
        containerizer.cgroups.remove_agent_namespace(agent_id)
