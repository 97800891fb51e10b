"""A PostgreSQL server of a test's own, to restart or stop without disturbing others."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from mesoslite.testing.poll import within
from mesoslite.testing.processes import free_port


class PrivatePostgres:
    """A throwaway PostgreSQL server of this test alone (``initdb`` in a temporary
    directory, trust authentication on 127.0.0.1), so restarting it disturbs no other
    test using the shared server.  It runs as the ``postgres`` user when the test runs
    as root (PostgreSQL refuses to run as root), else as the test's own user.  The
    binaries are those of the newest installed version, found as
    ``scripts/provision`` does."""

    def __init__(self) -> None:
        versions = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: float(v))
        self.bin = Path("/usr/lib/postgresql") / versions[-1] / "bin"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="mesoslite-pg-"))
        self.data = self.dir / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @staticmethod
    def unavailable() -> str | None:
        if not Path("/usr/lib/postgresql").is_dir():
            return "PostgreSQL binaries (/usr/lib/postgresql)"
        if os.geteuid() != 0:
            return None
        if shutil.which("runuser") is None:
            return "runuser (to run PostgreSQL as its own user)"
        try:
            subprocess.run(["id", "postgres"], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return "a 'postgres' user"
        return None

    async def _as_postgres(self, *argv: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        proc = await asyncio.create_subprocess_exec(
            *as_user, *argv, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, cwd=self.dir)
        try:
            out, _ = await within(120, f"`{' '.join(argv)}` to exit", proc.communicate())
        finally:
            if proc.returncode is None:
                proc.kill()
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {out.decode(errors='replace')[-2000:]}")

    def _ctl(self, action: str, *extra: str) -> list[str]:
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=100")
        return [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"),
                "-w", "-t", "60", "-o", options, *extra, action]

    async def start(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.dir.chmod(0o755)
        await self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                                "-U", "postgres", "--no-sync")
        await self._as_postgres(*self._ctl("start"))
        return self

    async def restart(self) -> float:
        """Restart (fast shutdown: every session ends); the seconds it was down."""
        start = time.monotonic()
        await self._as_postgres(*self._ctl("restart", "-m", "fast"))
        return time.monotonic() - start

    async def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            await self._as_postgres(*self._ctl("stop", "-m", "immediate"))
        shutil.rmtree(self.dir, ignore_errors=True)
