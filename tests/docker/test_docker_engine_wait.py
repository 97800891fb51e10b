"""An agent asked for the docker containerizer while no engine answers (dockerd
restarting, or starting at boot alongside the agent) waits for one, up to
``--docker-wait`` seconds, instead of exiting.  The chaos soak found it: agents
revived during a Docker restart exited with 1 and stayed down until their supervisor
started them again."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mesoslite.messages.mesos import TaskState
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import Process, agent_process
from tests.docker.conftest import DOCKER_RESOURCES_TEXT, launch_docker, runtime_id, task_container

pytestmark = pytest.mark.docker

ENGINE = "/var/run/docker.sock"


class EngineAt:
    """The Docker engine's socket, forwarded to ``path`` between ``open()`` and
    ``close()``: to the agent using it, an engine that comes and goes as a restarted
    dockerd does (``close`` cuts every forwarded connection and removes the socket),
    while its containers run on (as with live-restore)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_unix_server(self._forward, str(self.path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        self.path.unlink(missing_ok=True)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(ENGINE)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        writer.transport.abort()


@contextlib.asynccontextmanager
async def engine_at(path: Path) -> AsyncIterator[EngineAt]:
    engine = EngineAt(path)
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()


@pytest.fixture
def socket_path() -> Iterator[Path]:
    """A path for a forwarded engine socket, short enough for a unix socket."""
    directory = Path(tempfile.mkdtemp(prefix="mesoslite-engine-", dir="/tmp"))
    yield directory / "docker.sock"
    shutil.rmtree(directory, ignore_errors=True)


def docker_agent(master_url: str, work_dir: Path, socket: Path) -> Process:
    agent = agent_process(master_url, work_dir, DOCKER_RESOURCES_TEXT, None,
                          "--containerizers", "docker,process", "--docker-wait", "60")
    agent.env["DOCKER_HOST"] = f"unix://{socket}"
    return agent


async def test_an_agent_started_before_the_engine_waits_for_it_and_runs_docker_tasks(
        docker_cluster_factory, framework_factory, tmp_path, socket_path):
    cluster = await docker_cluster_factory(agents=0)
    agent = docker_agent(cluster.master_url, tmp_path / "agent", socket_path)
    agent._spawn()
    try:
        def waiting() -> bool:
            assert agent.proc is not None
            if agent.proc.poll() is not None:
                raise AssertionError(f"the agent exited with {agent.proc.returncode} instead "
                                     f"of waiting:\n{agent.log.read_text()}")
            return "waiting up to 60 s" in agent.log.read_text()

        await wait_for(waiting, 30, message="the agent to say it waits for a Docker engine")
        async with engine_at(socket_path):
            await wait_for(agent._healthy, 30, message="the agent to answer once the "
                           "engine does")
            assert "the Docker engine answered after" in agent.log.read_text()
            fw = await framework_factory(cluster.master_url)
            await launch_docker(fw, "after-wait", "echo hello")
            await fw.wait_state("after-wait", TaskState.TASK_FINISHED, timeout=60)
            await agent.stop()
    finally:
        await agent.stop()


async def test_a_kill_the_engine_could_not_take_is_carried_out_once_it_is_back(
        docker_cluster_factory, framework_factory, docker_engine, tmp_path, socket_path):
    # The engine goes away while the container runs on; the framework kills the task
    # meanwhile.  The agent's KILL fails; it must ask again until the engine takes it,
    # not leave the task KILLING and its container running for good.
    cluster = await docker_cluster_factory(agents=0)
    agent = docker_agent(cluster.master_url, tmp_path / "agent", socket_path)
    engine = EngineAt(socket_path)
    await engine.open()
    try:
        await agent.start()
        fw = await framework_factory(cluster.master_url)
        await launch_docker(fw, "outlives", "sleep 600")
        await fw.wait_state("outlives", TaskState.TASK_RUNNING, timeout=60)
        container = task_container(docker_engine, "outlives", runtime_id(tmp_path / "agent"))
        assert container is not None

        await engine.close()
        await fw.driver.kill("outlives")
        await wait_for(lambda: "sending KILL to task outlives failed" in agent.log.read_text(),
                       30, message="the agent to try the kill while the engine is away")
        container.reload()
        assert container.status == "running"  # nothing stopped it yet

        await engine.open()
        await fw.wait_state("outlives", TaskState.TASK_KILLED, timeout=60)
        assert task_container(docker_engine, "outlives", runtime_id(tmp_path / "agent")) is None
    finally:
        await agent.stop()
        await engine.close()


def test_an_agent_with_no_engine_says_so_in_one_line_after_its_wait(tmp_path):
    missing = tmp_path / "no-engine.sock"
    done = subprocess.run(
        [sys.executable, "-m", "mesoslite.cli.main", "agent", "--work-dir",
         str(tmp_path / "agent"), "--port", "0", "--containerizers", "docker,process",
         "--docker-wait", "0.5", "--master", "http://127.0.0.1:9"],
        env={"DOCKER_HOST": f"unix://{missing}", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: the docker containerizer needs a Docker engine; none answers through "
        "DOCKER_HOST or /var/run/docker.sock (waited 0.5 s)")
    assert "waiting up to 0.5 s" in done.stderr
