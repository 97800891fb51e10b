"""The agent's end of the supervisor fork server (``launcher.py``).

``SupervisorLauncher.spawn`` asks the server for a new supervisor and returns the
launch socket's streams: write the launch config, half-close, read the handshake line,
exactly as with a supervisor spawned per task.  The server is started on first use
and again if it died; ``LauncherUnavailable`` tells the caller to spawn the
supervisor the old way instead (nothing was started then).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from dataclasses import dataclass

from mesoslite.agent.containerizers import launcher

log = logging.getLogger(__name__)

LAUNCHER_SCRIPT = os.path.abspath(launcher.__file__)


class LauncherUnavailable(Exception):
    """The fork server could not be reached or started; no supervisor was started."""


@dataclass
class Spawned:
    """A supervisor being started: ``pid`` leads its session (kill that group if the
    launch goes wrong); the streams are its stdin and stdout."""

    pid: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


class SupervisorLauncher:
    def __init__(self, python: str, env: dict[str, str], timeout: float) -> None:
        self._python = python
        self._env = env
        self._timeout = timeout
        self._control: socket.socket | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._starting = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The running server's pid (None before the first launch or once stopped)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def spawn(self, log_fd: int) -> Spawned:
        """A new supervisor whose stderr is ``log_fd``; LauncherUnavailable if the
        server cannot fork one (after one restart of a dead server)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                control = await self._server()
                socket.send_fds(control, [launcher.REQUEST], [theirs.fileno(), log_fd])
            except OSError:  # it died since the last launch: once more with a new one
                await self._discard()
                control = await self._server()
                socket.send_fds(control, [launcher.REQUEST], [theirs.fileno(), log_fd])
        except OSError as exc:
            ours.close()
            raise LauncherUnavailable(str(exc)) from None
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        try:
            first = await asyncio.wait_for(reader.readline(), self._timeout)
            pid = int(json.loads(first)["pid"])
        except (TimeoutError, ValueError, KeyError, TypeError, OSError) as exc:
            writer.close()
            await self._discard()  # a server that cannot fork is no use
            raise LauncherUnavailable(f"no answer from the supervisor launcher: {exc!r}"
                                      ) from None
        return Spawned(pid, reader, writer)

    async def _server(self) -> socket.socket:
        async with self._starting:
            if self._control is not None and self._proc is not None and (
                    self._proc.returncode is None):
                return self._control
            await self._discard()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    self._python, "-E", "-s", "-S", LAUNCHER_SCRIPT, str(theirs.fileno()),
                    pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL, start_new_session=True, cwd="/",
                    env=self._env)
            except BaseException:
                ours.close()
                raise
            finally:
                theirs.close()
            ours.setblocking(False)  # a send never waits on a wedged server
            self._control = ours
            return ours

    async def _discard(self) -> None:
        control, proc = self._control, self._proc
        self._control, self._proc = None, None
        if control is not None:
            control.close()  # the server exits on EOF
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    async def close(self) -> None:
        """Stop the server; supervisors it started keep running."""
        await self._discard()
