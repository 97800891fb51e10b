"""Fixtures for the process containerizer tests: real processes, real cgroups where
the host allows, agents with unique ids (so concurrent runs never collide), and a
teardown that kills whatever a test left running.  Nothing sleeps a fixed time.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from mesoslite.agent.containerizers.base import Container, LaunchSpec, StopKind, Termination
from mesoslite.agent.containerizers.process import ProcessContainerizer
from mesoslite.messages.mesos import ID, CommandInfo, TaskInfo

PY = sys.executable
DEADLINE = 15.0  # seconds any awaited end of a task may take

# Runs the launching side of an agent in its own process, prints the record and
# then blocks, so a test can kill -9 it mid-flight.
AGENT_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from mesoslite.agent.containerizers.base import LaunchSpec
from mesoslite.agent.containerizers.process import ProcessContainerizer
from mesoslite.messages.mesos import ID, CommandInfo, TaskInfo

async def main():
    a = json.loads(sys.argv[1])
    c = ProcessContainerizer(a["agent_id"], a["work_dir"], cgroups=a["cgroups"])
    task = TaskInfo(name="t", task_id=ID(value=a["container_id"]), agent_id=ID(value="a"),
                    command=CommandInfo(value=a["command"]))
    spec = LaunchSpec(container_id=a["container_id"], agent_id=a["agent_id"],
                      framework_id="fw", task=task, sandbox=Path(a["sandbox"]), env={},
                      mem_mb=a["mem_mb"])
    container = await c.launch(spec)
    print(json.dumps(container.record), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def task_info(
    command: str,
    *,
    shell: bool = True,
    arguments: list[str] | None = None,
    user: str | None = None,
    task_id: str = "task",
) -> TaskInfo:
    return TaskInfo(
        name=task_id,
        task_id=ID(value=task_id),
        agent_id=ID(value="agent"),
        command=CommandInfo(value=command, shell=shell, arguments=arguments or [], user=user),
    )


async def ended(container: Container, timeout: float = DEADLINE) -> Termination:
    """The container's Termination, failing the test if it takes too long."""
    return await asyncio.wait_for(container.wait(), timeout)


async def stopped(container: Container, kind: StopKind = StopKind.KILL) -> Termination:
    """Send ``kind`` and return how the container ended."""
    await container.signal(kind)
    return await ended(container)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def read_pid(path: Path) -> int:
    return int(path.read_text().strip())


@pytest.fixture
def agent_id() -> str:
    return f"test-agent-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
async def make_containerizer(
    work_dir: Path,
) -> AsyncIterator[Callable[..., ProcessContainerizer]]:
    """Factory: ``make_containerizer(agent_id, cgroups="auto", work_dir=...)``.

    Teardown kills every container of every agent it made and removes the agents'
    cgroup namespaces.
    """
    made: list[ProcessContainerizer] = []

    def make(
        agent_id: str, cgroups: str = "auto", work_dir: Path = work_dir
    ) -> ProcessContainerizer:
        containerizer = ProcessContainerizer(agent_id, work_dir, cgroups=cgroups)  # type: ignore[arg-type]
        made.append(containerizer)
        return containerizer

    yield make
    for containerizer in made:
        await containerizer.cleanup_orphans(set())
        await containerizer.close()
        containerizer.cgroups.remove_agent_namespace(containerizer.agent_id)


@pytest.fixture
async def containerizer(
    make_containerizer: Callable[..., ProcessContainerizer], agent_id: str
) -> ProcessContainerizer:
    return make_containerizer(agent_id)


@pytest.fixture
def make_spec(tmp_path: Path, agent_id: str) -> Callable[..., LaunchSpec]:
    """Factory: ``make_spec(command, shell=..., env=..., cpus=..., mem_mb=...)`` with a
    fresh sandbox directory and container id."""

    def make(
        command: str,
        *,
        shell: bool = True,
        arguments: list[str] | None = None,
        env: dict[str, str] | None = None,
        cpus: float = 0.0,
        mem_mb: float = 0.0,
        user: str | None = None,
        sandbox: Path | None = None,
        container_id: str | None = None,
    ) -> LaunchSpec:
        cid = container_id or str(uuid.uuid4())
        if sandbox is None:
            sandbox = tmp_path / "sandboxes" / cid
            sandbox.mkdir(parents=True)
        return LaunchSpec(
            container_id=cid,
            agent_id=agent_id,
            framework_id="framework",
            task=task_info(command, shell=shell, arguments=arguments, user=user),
            sandbox=sandbox,
            env=env or {},
            cpus=cpus,
            mem_mb=mem_mb,
        )

    return make


class AgentProcess:
    """An agent's launching side in a separate process, to be killed with SIGKILL."""

    def __init__(self, proc: asyncio.subprocess.Process, record: dict[str, Any]) -> None:
        self.proc = proc
        self.record = record

    async def kill9(self) -> None:
        self.proc.kill()
        await self.proc.wait()


@pytest.fixture
async def spawn_agent() -> AsyncIterator[Callable[..., Any]]:
    """``await spawn_agent(spec, work_dir, cgroups="auto")`` -> AgentProcess whose
    container is launched; the process is killed at teardown if still alive."""
    procs: list[asyncio.subprocess.Process] = []

    async def spawn(spec: LaunchSpec, work_dir: Path, cgroups: str = "auto") -> AgentProcess:
        assert spec.task.command is not None
        args = {
            "agent_id": spec.agent_id,
            "work_dir": str(work_dir),
            "cgroups": cgroups,
            "container_id": spec.container_id,
            "command": spec.task.command.value,
            "sandbox": str(spec.sandbox),
            "mem_mb": spec.mem_mb,
        }
        proc = await asyncio.create_subprocess_exec(
            PY,
            "-c",
            AGENT_SCRIPT,
            json.dumps(args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parents[4]),
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[4])},
        )
        procs.append(proc)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), DEADLINE)
        assert line, "the agent process died before launching"
        return AgentProcess(proc, json.loads(line))

    yield spawn
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
