"""One task of the process containerizer as the agent sees it: wait, signal, usage, exec.

The task's supervisor (``supervisor.py``) is not the agent's child, so the end of a
container is observed through a pidfd on the supervisor (falling back to polling its
/proc entry on kernels without pidfds); the supervisor has written the task's exit
status to ``<meta_dir>/exit_status.json`` before it exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from mesoslite.agent.containerizers import osutil
from mesoslite.agent.containerizers.base import (
    Container,
    LaunchSpec,
    ResourceUsage,
    StopKind,
    Termination,
)
from mesoslite.agent.containerizers.cgroups import Cgroup

log = logging.getLogger(__name__)

SUPERVISOR_FILE = "supervisor.json"
EXIT_STATUS_FILE = "exit_status.json"
INHERITED_ENV = ("PATH", "HOME", "LANG")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EXEC_OUTPUT_LIMIT = 4096  # bytes of health-check output kept (the tail)
EXEC_TIMEOUT_CODE = 124  # as timeout(1)
FORCE_KILL_TIMEOUT = 10.0  # after SIGKILL, how long before giving up on the supervisor
POLL_INTERVAL = 0.05  # only without pidfd support


def task_environment(env: dict[str, str]) -> dict[str, str]:
    """The task's environment: the agent's PATH/HOME/LANG, overridden by ``env``."""
    base = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}
    base.setdefault("PATH", DEFAULT_PATH)
    base.update(env)
    return base


def read_termination(meta_dir: str) -> Termination | None:
    """The Termination the supervisor recorded, None if it recorded none (yet)."""
    doc = osutil.read_json(os.path.join(meta_dir, EXIT_STATUS_FILE))
    if not isinstance(doc, dict):
        return None
    return Termination(
        exit_code=doc.get("exit_code"),
        signal=doc.get("signal"),
        oom_killed=bool(doc.get("oom_killed")),
        message=str(doc.get("message", "")),
    )


async def destroy_cgroup(cgroup: Cgroup | None, timeout: float = FORCE_KILL_TIMEOUT) -> bool:
    """SIGKILL everything in ``cgroup`` and remove it; True once it is gone."""
    if cgroup is None:
        return True
    deadline = time.monotonic() + timeout
    while True:
        cgroup.kill_all(signal.SIGKILL)
        if cgroup.remove():
            return True
        if time.monotonic() > deadline:
            log.warning("cgroup %s still busy after %.0fs", cgroup.dirs, timeout)
            return False
        await asyncio.sleep(0.02)


async def finish(
    record: dict[str, Any], cgroup: Cgroup | None, forced: bool = False
) -> Termination:
    """How a container whose supervisor is gone ended; kills and removes leftovers.

    Without a recorded exit status the supervisor died abnormally: the task is then
    killed too (Mesos destroys a container whose executor is lost).
    """
    term = read_termination(record["meta_dir"])
    if term is None:
        if osutil.same_process(record.get("task_pid"), record.get("task_start")):
            osutil.killpg_quietly(record["task_pid"], signal.SIGKILL)
        term = Termination(
            signal=signal.SIGKILL if forced else None,
            message=(
                f"The task's supervisor (pid {record.get('supervisor_pid')}) ended without "
                "recording the task's exit status; the task was killed"
            ),
        )
    await destroy_cgroup(cgroup)
    return term


class ProcessContainer(Container):
    """A running task.  Create it inside the event loop; it starts watching at once."""

    def __init__(
        self,
        spec: LaunchSpec,
        record: dict[str, Any],
        cgroup: Cgroup | None,
        on_finished: Callable[[str], None],
    ) -> None:
        self.spec = spec
        self.record = record
        self._cgroup = cgroup
        self._on_finished = on_finished
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[Termination] = self._loop.create_future()
        self._pidfd_supported = True
        try:
            self._pidfd = osutil.open_pidfd(record["supervisor_pid"], record["supervisor_start"])
        except OSError:
            self._pidfd, self._pidfd_supported = None, False
        self._forced = False  # StopKind.KILL sent
        self._reaper: asyncio.Task[None] | None = None
        self._watcher = self._loop.create_task(self._watch())

    @property
    def container_id(self) -> str:
        return self.spec.container_id

    # ------------------------------------------------------------ waiting

    async def wait(self) -> Termination:
        """How the task ended; any number of callers may await it."""
        return await asyncio.shield(self._done)

    async def _watch(self) -> None:
        try:
            await self._supervisor_exit()
            term = await finish(self.record, self._cgroup, self._forced)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the future must resolve whatever goes wrong
            log.exception("watching container %s failed", self.container_id)
            term = Termination(message=f"Lost track of the task: {e}")
        finally:
            self._close_pidfd()
        self._on_finished(self.container_id)
        if not self._done.done():
            self._done.set_result(term)

    async def _supervisor_exit(self) -> None:
        fd = self._pidfd
        if fd is not None:
            ready: asyncio.Future[None] = self._loop.create_future()

            def on_readable() -> None:  # a pidfd turns readable when the process exits
                if not ready.done():
                    ready.set_result(None)

            self._loop.add_reader(fd, on_readable)
            try:
                await ready
            finally:
                if self._pidfd == fd:  # close() may have released it already
                    self._loop.remove_reader(fd)
        elif not self._pidfd_supported:
            sup = (self.record["supervisor_pid"], self.record["supervisor_start"])
            while osutil.same_process(*sup):
                await asyncio.sleep(POLL_INTERVAL)

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    def close(self) -> None:
        """Stop watching (agent shutdown); the task keeps running."""
        self._watcher.cancel()
        self._close_pidfd()
        if not self._done.done():
            self._done.cancel()

    # ------------------------------------------------------------ signals

    async def signal(self, kind: StopKind) -> None:
        """TERM: SIGTERM to the supervisor, which forwards it to the task's process
        group.  KILL: SIGKILL of the process group and the whole cgroup, by the
        supervisor and directly (in case it is stopped or wedged); a supervisor still
        there FORCE_KILL_TIMEOUT later is killed too, so the container ends whatever
        happens.  Returns at once; ``wait()`` tells the end."""
        if self._done.done():
            return
        if kind is StopKind.TERM:
            self._signal_supervisor(signal.SIGTERM)
            return
        if self._forced:
            return
        self._forced = True
        self._signal_supervisor(signal.SIGUSR1)  # supervisor: SIGKILL group + cgroup
        if self._cgroup is not None:
            self._cgroup.kill_all(signal.SIGKILL)
        if osutil.same_process(self.record["task_pid"], self.record["task_start"]):
            osutil.killpg_quietly(self.record["task_pid"], signal.SIGKILL)
        self._reaper = self._loop.create_task(self._kill_wedged_supervisor())

    async def _kill_wedged_supervisor(self) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._done), FORCE_KILL_TIMEOUT)
        except TimeoutError:
            log.warning(
                "supervisor of %s did not exit after SIGKILL; killing it", self.container_id
            )
            self._signal_supervisor(signal.SIGKILL)

    def _signal_supervisor(self, sig: int) -> None:
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, sig)
            elif osutil.same_process(
                self.record["supervisor_pid"], self.record["supervisor_start"]
            ):
                os.kill(self.record["supervisor_pid"], sig)
        except ProcessLookupError:
            pass

    # ------------------------------------------------------------ usage & exec

    async def update_limits(self, cpus: float, mem_mb: float) -> bool:
        """New cgroup limits (False without a cgroup, or when the hierarchy refuses)."""
        cgroup = self._cgroup
        if cgroup is None or self._done.done():
            return False
        try:
            skipped = await asyncio.to_thread(cgroup.set_limits, cpus, int(mem_mb * 2**20))
        except OSError as exc:
            log.warning("limits of %s not changed: %s", self.container_id, exc)
            return False
        return not skipped

    async def usage(self) -> ResourceUsage | None:
        """Cumulative CPU seconds and memory (RSS) of the container; None once ended."""
        if self._done.done():
            return None
        return await asyncio.to_thread(self._collect_usage)

    def _collect_usage(self) -> ResourceUsage:
        stats: dict[str, Any] = self._cgroup.usage() if self._cgroup is not None else {}
        if "cpu_seconds" not in stats or "mem_rss_bytes" not in stats:
            for key, value in _process_tree_usage(self.record).items():
                stats.setdefault(key, value)
        mem = stats.get("mem_rss_bytes") or stats.get("mem_total_bytes") or 0
        extra = {k: v for k, v in stats.items() if k != "cpu_seconds" and v is not None}
        return ResourceUsage(
            cpu_seconds=float(stats.get("cpu_seconds") or 0.0),
            mem_bytes=int(mem),
            timestamp=time.time(),
            extra=extra,
        )

    async def exec(self, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run ``argv`` with the task's environment in its sandbox.

        Returns (exit status, the last EXEC_OUTPUT_LIMIT bytes of stdout+stderr).  A
        signal-killed command reports 128+signal, a missing one 127, and one still
        running after ``timeout`` seconds is killed (with its process group) and
        reports 124.  Note: it runs outside the task's cgroup.
        """
        return await run_command(
            argv, task_environment(self.spec.env), Path(self.spec.sandbox), timeout
        )


def _process_tree_usage(record: dict[str, Any]) -> dict[str, Any]:
    """cpu_seconds / mem_rss_bytes of the task's process tree, via psutil."""
    if not osutil.same_process(record["task_pid"], record["task_start"]):
        return {}
    cpu, rss = 0.0, 0
    try:
        root = psutil.Process(record["task_pid"])
        times = root.cpu_times()
        cpu += times.children_user + times.children_system  # reaped descendants
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            cpu += times.user + times.system
            rss += proc.memory_info().rss
        except psutil.Error:
            continue
    return {"cpu_seconds": cpu, "mem_rss_bytes": rss}


async def run_command(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> tuple[int, str]:
    """See ``ProcessContainer.exec``."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # so a timeout can kill what it spawned, too
        )
    except FileNotFoundError:
        return 127, f"{argv[0] if argv else ''}: command not found"
    except OSError as e:
        return 126, f"{argv[0] if argv else ''}: {e.strerror or e}"
    output = bytearray()

    async def collect() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            output.extend(chunk)
            del output[:-EXEC_OUTPUT_LIMIT]

    try:
        await asyncio.wait_for(asyncio.gather(collect(), proc.wait()), timeout)
    except TimeoutError:
        osutil.killpg_quietly(proc.pid, signal.SIGKILL)
        await proc.wait()
        note = f"\n[killed: still running after {timeout:g}s]"
        return EXEC_TIMEOUT_CODE, output.decode("utf-8", "replace") + note
    code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    return code, output.decode("utf-8", "replace")
