"""The README's commands, taken from README.md and run as a user runs them: each line
its own process through ``bash -c``, against a real Docker engine.  When the README
changes, these tests run the new text; when a command stops working as written, they
fail.

Only two things are substituted, and always textually: the venv (``.venv/bin/`` and a
bare ``mesoslite``/``python`` resolve to the interpreter running the tests, whose bin
directory leads ``PATH``) and the places a second cluster on a shared machine would
collide on: the listening ports (fixed in the README; replaced with free ones, and the
CLI's defaults pointed at them through ``MESOSLITE_MASTER/SERVICES/BATCH``) and the work
directories (``/var/lib/mesoslite/...``: root-owned and persistent; a temporary
directory instead).  The redis example's service port 6379 is the load balancer's and
stays as written.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import free_port
from tests.conftest import require

pytestmark = [pytest.mark.asyncio, pytest.mark.e2e, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
COMMAND_LIMIT = 300.0  # a command that runs to completion (the pipeline pulls nothing)
START_LIMIT = 60.0  # a server until it answers /health
# The CLI's defaults, by the README's port, as the environment variables that move them.
DEFAULT_URL_ENV = {5050: "MESOSLITE_MASTER", 8080: "MESOSLITE_SERVICES",
                   8090: "MESOSLITE_BATCH"}


def section_commands(title: str) -> list[str]:
    """The shell commands of the ``sh`` blocks under the README's ``## title``
    (continued lines joined; blank lines dropped)."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    body = text[start:end if end != -1 else None]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", body, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip():
                commands.append(line.strip())
    return commands


def is_server(command: str) -> bool:
    """The long-running parts: master, agent, services, batch server."""
    return re.match(r"(\S*/)?mesoslite (master|agent|services|batch server)\b",
                    command) is not None


@dataclass
class Shell:
    """Runs README lines with the substitutions above; stops what it started."""

    tmp: Path
    ports: dict[int, int] = field(default_factory=dict)  # README port -> free port
    servers: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def port_of(self, readme_port: int) -> int:
        return self.ports.setdefault(readme_port, free_port())

    def rewrite(self, command: str) -> str:
        command = command.replace(".venv/bin/", f"{BIN}/")
        command = command.replace("/var/lib/mesoslite/", f"{self.tmp}/")
        command = re.sub(r"--port (\d+)", lambda m: f"--port {self.port_of(int(m[1]))}",
                         command)
        return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: "127.0.0.1:" + str(
            self.ports.get(int(m[1]), int(m[1]))), command)

    def env(self) -> dict[str, str]:
        moved = {var: f"http://127.0.0.1:{self.port_of(port)}"
                 for port, var in DEFAULT_URL_ENV.items()}
        return {**os.environ, **moved, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}

    async def serve(self, command: str, rewrite: bool = True) -> None:
        """Start a server line in the background; return once it answers /health."""
        line = self.rewrite(command) if rewrite else command
        log = self.tmp / f"server{len(self.servers)}.log"
        proc = self._spawn(line, log)
        self.servers.append((line, proc, log))
        port = int(re.search(r"--port (\d+)", line)[1])  # type: ignore[index]

        async def started() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"{line!r} exited with {proc.returncode}:\n"
                                     + log.read_text()[-3000:])
            return await answers(port)

        await wait_for(started, START_LIMIT, interval=0.1, message=f"{line!r} to answer")

    def _spawn(self, line: str, log: Path) -> subprocess.Popen[bytes]:
        with open(log, "wb") as out:
            return subprocess.Popen(["bash", "-c", line], stdout=out, stderr=subprocess.STDOUT,
                                    env=self.env(), cwd=ROOT, start_new_session=True)

    async def run(self, command: str, limit: float = COMMAND_LIMIT) -> tuple[int, str]:
        """Run a line to completion; (exit code, stdout and stderr)."""
        line = self.rewrite(command)
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", line, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=self.env(), cwd=ROOT,
            start_new_session=True)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), limit)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError(f"{line!r} did not end within {limit:g}s") from None
        return proc.returncode or 0, out.decode()

    async def ok(self, command: str) -> str:
        code, out = await self.run(command)
        assert code == 0, f"{self.rewrite(command)!r} exited with {code}:\n{out}"
        return out

    async def stop(self) -> None:
        for _line, proc, _log in reversed(self.servers):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    await asyncio.to_thread(proc.wait, 30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    await asyncio.to_thread(proc.wait)


async def answers(port: int) -> bool:
    """Whether something answers 200 on ``http://127.0.0.1:PORT/health``."""
    try:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/health") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


@pytest.fixture
def engine():
    from mesoslite.agent.containerizers import docker_available

    require(docker_available(), "A Docker engine")
    for script in ("build-test-image", "build-standin-images"):  # as quickstart does
        built = subprocess.run([str(ROOT / "scripts" / script)], check=False,
                               capture_output=True, text=True)
        assert built.returncode == 0, built.stdout + built.stderr
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture
async def shell(tmp_path: Path, engine) -> AsyncIterator[Shell]:
    from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID

    sh = Shell(tmp_path)
    yield sh
    await sh.stop()
    for rid_file in tmp_path.glob("**/runtime_id"):  # the containers of these agents only
        label = f"{LABEL_RUNTIME_ID}={rid_file.read_text().strip()}"
        for container in engine.containers.list(all=True, filters={"label": label}):
            container.remove(force=True, v=True)


async def test_running_the_parts_yourself_runs_the_example_pipeline(shell: Shell):
    commands = section_commands("Running the parts yourself")
    assert any("ci-pipeline.yaml" in c for c in commands), commands
    for command in commands:
        if is_server(command):
            await shell.serve(command)
        else:
            out = await shell.ok(command)
            if "ci-pipeline.yaml" in command:
                assert re.search(r"run \S+ SUCCEEDED", out), out


async def test_the_quick_start_commands_work(shell: Shell):
    """``scripts/quickstart`` sets up .venv (pip needs a package index) and then runs
    ``mesoslite up``; this test runs that ``mesoslite up`` (on free ports, without the
    example frameworks, which only add load), then every command of the quick start as
    written but the scripts and ``logs TASK_ID`` (a placeholder).  The redis example
    answers once its task runs and the load balancer routes to it: its line is retried
    until it prints +PONG and +OK (and exits: the server closes after QUIT)."""
    master, services, batch = (shell.port_of(p) for p in (5050, 8080, 8090))
    await shell.serve(f"mesoslite up --port {master} --services-port {services} "
                      f"--batch-port {batch} --dns-port 0 --lb-status-port {free_port()} "
                      f"--work-dir {shell.tmp}/up --no-examples", rewrite=False)
    for port in (services, batch):
        await wait_for(lambda port=port: answers(port), START_LIMIT, interval=0.1,
                       message=f"mesoslite up's framework on port {port} to answer")
    commands = [c for c in section_commands("Quick start")
                if "TASK_ID" not in c and "scripts/" not in c]
    assert any("PONG" in c for c in commands), commands
    for command in commands:
        if "PONG" in command:
            await until_pong(shell, command)
            continue
        out = await shell.ok(command)
        if "ci-pipeline.yaml" in command:
            assert re.search(r"run \S+ SUCCEEDED", out), out


async def until_pong(shell: Shell, command: str) -> None:
    """Run ``command`` until it prints +PONG then +OK (the app starts meanwhile)."""
    last: list[str] = []

    async def pong() -> bool:
        code, out = await shell.run(command, limit=10)
        last[:] = [f"exit {code}: {out!r}"]
        return code == 0 and out.split() == ["+PONG", "+OK"]

    try:
        await wait_for(pong, 120, interval=0.5, message=f"{command!r} to print +PONG")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last: {last}") from None
