"""Process containerizer across agent restarts: re-attach, exits while the agent was
down, lost supervisors, and orphan cleanup that spares other agents.

The "agent" that launches runs in a separate Python process killed with SIGKILL; the
test process then plays the restarted agent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mesoslite.agent.containerizers import osutil
from mesoslite.agent.containerizers.base import Container, LaunchSpec, StopKind, Termination
from mesoslite.agent.containerizers.cgroups import Cgroup
from mesoslite.agent.containerizers.process import ProcessContainerizer
from mesoslite.testing.poll import wait_for
from tests.unit.containerizers.process.conftest import PY, ended, pid_alive, stopped

SpecFactory = Callable[..., LaunchSpec]
# Runs until the test creates "go" in the sandbox, then exits 7.
GATED = "touch ready; while [ ! -e go ]; do sleep 0.02; done; exit 7"


def task_running(record: dict[str, Any]) -> bool:
    return osutil.same_process(record["task_pid"], record["task_start"])


def cgroup_gone(record: dict[str, Any]) -> bool:
    return record["cgroup"] is None or not Cgroup.from_record(record["cgroup"]).exists()


async def test_recover_reattaches_and_reports_later_exit(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    work_dir: Path,
    make_spec: SpecFactory,
    spawn_agent: Callable[..., Any],
):
    spec = make_spec(GATED, mem_mb=64)
    agent = await spawn_agent(spec, work_dir)
    await agent.kill9()
    assert task_running(agent.record)  # the task outlived its agent

    restarted = make_containerizer(agent_id)
    container = await restarted.recover(spec, agent.record)
    assert isinstance(container, Container)
    assert container.record == agent.record
    (Path(spec.sandbox) / "go").touch()
    term = await ended(container)
    assert term.exit_code == 7 and not term.oom_killed
    assert cgroup_gone(agent.record)
    assert list(restarted.runtime_dir.glob("*.json")) == []  # registry entry dropped


async def test_recovered_container_can_be_killed(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    work_dir: Path,
    make_spec: SpecFactory,
    spawn_agent: Callable[..., Any],
):
    spec = make_spec(f"exec {PY} -c 'import time; time.sleep(300)'")
    agent = await spawn_agent(spec, work_dir)
    await agent.kill9()
    container = await make_containerizer(agent_id).recover(spec, agent.record)
    assert isinstance(container, Container)
    assert (await stopped(container, StopKind.TERM)).signal == signal.SIGTERM
    assert not task_running(agent.record)


async def test_exit_while_agent_down_is_returned_by_recover(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    work_dir: Path,
    make_spec: SpecFactory,
    spawn_agent: Callable[..., Any],
):
    spec = make_spec(GATED)
    agent = await spawn_agent(spec, work_dir)
    await agent.kill9()
    (Path(spec.sandbox) / "go").touch()
    sup = (agent.record["supervisor_pid"], agent.record["supervisor_start"])
    await wait_for(lambda: not osutil.same_process(*sup), message="supervisor exits")

    restarted = make_containerizer(agent_id)
    term = await restarted.recover(spec, agent.record)
    assert isinstance(term, Termination)
    assert term.exit_code == 7
    assert cgroup_gone(agent.record)
    assert await restarted.cleanup_orphans(set()) == []  # nothing left to clean


async def test_lost_supervisor_ends_the_container(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    container = await containerizer.launch(make_spec("sleep 300"))
    os.kill(container.record["supervisor_pid"], signal.SIGKILL)
    term = await ended(container)
    assert term.exit_code is None and "supervisor" in term.message
    await wait_for(lambda: not task_running(container.record), message="task killed")


async def test_recover_with_lost_supervisor_returns_termination(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    work_dir: Path,
    make_spec: SpecFactory,
    spawn_agent: Callable[..., Any],
):
    spec = make_spec("sleep 300")
    agent = await spawn_agent(spec, work_dir)
    await agent.kill9()
    os.kill(agent.record["supervisor_pid"], signal.SIGKILL)
    sup = (agent.record["supervisor_pid"], agent.record["supervisor_start"])
    await wait_for(lambda: not osutil.same_process(*sup), message="supervisor gone")
    term = await make_containerizer(agent_id).recover(spec, agent.record)
    assert isinstance(term, Termination) and "supervisor" in term.message
    await wait_for(lambda: not task_running(agent.record), message="task killed")


async def test_cleanup_orphans_spares_known_ids_and_other_agents(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    work_dir: Path,
    make_spec: SpecFactory,
    spawn_agent: Callable[..., Any],
):
    mine = make_containerizer(agent_id)
    # Another agent on the same host, even sharing the work dir and cgroup root.
    other = make_containerizer(f"other-{uuid.uuid4().hex[:8]}")
    keep = await mine.launch(make_spec("sleep 300"))
    orphan = await mine.launch(make_spec("sleep 300"))
    other_spec = make_spec("sleep 300")
    foreign = await other.launch(other_spec)
    # An orphan this agent process never saw: launched by a previous (killed) agent.
    dead_agent_spec = make_spec("sleep 300")
    dead_agent = await spawn_agent(dead_agent_spec, work_dir)
    await dead_agent.kill9()

    removed = await mine.cleanup_orphans({keep.record["container_id"]})
    assert sorted(removed) == sorted([orphan.record["container_id"], dead_agent_spec.container_id])
    assert (await ended(orphan)).signal == signal.SIGKILL
    await wait_for(lambda: not task_running(dead_agent.record), message="old orphan killed")
    assert cgroup_gone(dead_agent.record) and cgroup_gone(orphan.record)
    assert task_running(keep.record) and task_running(foreign.record)
    assert await other.cleanup_orphans({other_spec.container_id}) == []
    assert task_running(foreign.record)


async def test_cleanup_orphans_removes_stray_cgroups_of_this_agent(
    containerizer: ProcessContainerizer, agent_id: str
):
    if not containerizer.cgroups.available:
        pytest.skip("no writable cgroup hierarchy")
    stray = containerizer.cgroups.create(agent_id, "stray-container", 0, 0)
    assert stray is not None
    proc = await asyncio.create_subprocess_exec("sleep", "300")
    stray.join(proc.pid)
    assert await containerizer.cleanup_orphans(set()) == ["stray-container"]
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
    assert not stray.exists()
    assert not pid_alive(proc.pid)
