"""Real ``mesoslite`` processes for end-to-end tests: start, wait until they answer,
``kill -9``, restart with the same work dir."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from mesoslite.testing.poll import wait_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Process:
    """One ``python -m mesoslite.cli.main ...`` process; output goes to ``log``."""

    args: list[str]
    log: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mesoslite.cli.main", *self.args],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                start_new_session=True,
            )

    async def start(self, timeout: float = 30.0) -> Process:
        self._spawn()
        await wait_for(self._healthy, timeout, interval=0.05,
                       message=f"{self.args[0]} on port {self.port} to answer (log {self.log})")
        return self

    async def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.args[0]} exited with {self.proc.returncode}:\n"
                                 + self.log.read_text()[-3000:])
        try:
            async with aiohttp.ClientSession() as s, s.get(self.url + "/health") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                await asyncio.to_thread(self.proc.wait, 20)
            except subprocess.TimeoutExpired:
                self.kill9()


def master_process(work_dir: Path, port: int | None = None, *extra: str) -> Process:
    port = port or free_port()
    args = ["master", "--port", str(port), "--work-dir", str(work_dir),
            "--agent-ping-timeout", "1", "--max-agent-ping-timeouts", "5",
            "--heartbeat-interval", "1", "--allocation-interval", "0.1",
            "--agent-reregister-timeout", "10", *extra]
    work_dir.mkdir(parents=True, exist_ok=True)
    return Process(args, work_dir / "process.log", port)


def agent_process(master_url: str, work_dir: Path, resources: str, port: int | None = None,
                  *extra: str) -> Process:
    port = port or free_port()
    args = ["agent", "--master", master_url, "--port", str(port), "--work-dir", str(work_dir),
            "--resources", resources, "--status-update-retry", "0.3",
            "--containerizers", "process", *extra]
    work_dir.mkdir(parents=True, exist_ok=True)
    return Process(args, work_dir / "process.log", port)
