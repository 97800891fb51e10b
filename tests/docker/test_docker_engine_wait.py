"""An agent asked for the docker containerizer while no engine answers (dockerd
restarting, or starting at boot alongside the agent) waits for one, up to
``--docker-wait`` seconds, instead of exiting.  The chaos soak found it: agents
revived during a Docker restart exited with 1 and stayed down until their supervisor
started them again."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.messages.mesos import TaskState
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import agent_process
from tests.docker.conftest import DOCKER_RESOURCES_TEXT, launch_docker

pytestmark = pytest.mark.docker

ENGINE = "/var/run/docker.sock"


@contextlib.asynccontextmanager
async def engine_at(path: Path) -> AsyncIterator[None]:
    """The Docker engine's socket, forwarded to ``path`` while inside: an engine
    that appears there only now, as a restarted dockerd's socket does."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            writer.close()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(ENGINE)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        writer.close()
        up_writer.close()

    server = await asyncio.start_unix_server(forward, str(path))
    try:
        yield
    finally:
        server.close()
        path.unlink(missing_ok=True)


async def test_an_agent_started_before_the_engine_waits_for_it_and_runs_docker_tasks(
        docker_cluster_factory, framework_factory, tmp_path):
    cluster = await docker_cluster_factory(agents=0)
    socket_dir = Path(tempfile.mkdtemp(prefix="mesoslite-engine-", dir="/tmp"))  # short path
    socket = socket_dir / "docker.sock"
    agent = agent_process(cluster.master_url, tmp_path / "agent", DOCKER_RESOURCES_TEXT, None,
                          "--containerizers", "docker,process", "--docker-wait", "60")
    agent.env["DOCKER_HOST"] = f"unix://{socket}"
    agent._spawn()
    try:
        def waiting() -> bool:
            assert agent.proc is not None
            if agent.proc.poll() is not None:
                raise AssertionError(f"the agent exited with {agent.proc.returncode} instead "
                                     f"of waiting:\n{agent.log.read_text()}")
            return "waiting up to 60 s" in agent.log.read_text()

        await wait_for(waiting, 30, message="the agent to say it waits for a Docker engine")
        async with engine_at(socket):
            await wait_for(agent._healthy, 30, message="the agent to answer once the "
                           "engine does")
            assert "the Docker engine answered after" in agent.log.read_text()
            fw = await framework_factory(cluster.master_url)
            await launch_docker(fw, "after-wait", "echo hello")
            await fw.wait_state("after-wait", TaskState.TASK_FINISHED, timeout=60)
            await agent.stop()
    finally:
        await agent.stop()
        socket_dir.rmdir()


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
