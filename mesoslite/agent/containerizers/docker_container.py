"""One task of the docker containerizer as the agent sees it: wait, signal, usage, exec.

Each ``DockerContainer`` has one watcher thread (the docker SDK blocks) that copies the
container's output into the sandbox (``docker_logs.LogCopier``) until the engine's
log stream ends, which is when the container stops; it then reads how it ended,
records that in ``<meta_dir>/termination.json`` (so an agent that dies right after the
removal still knows), removes the container and resolves ``wait()``.  The event loop
only ever awaits futures: every engine call goes through ``Engine.call`` (a thread
pool) or the watcher thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import docker
from docker.errors import APIError, NotFound

from mesoslite.agent.containerizers.base import (
    Container,
    LaunchSpec,
    ResourceUsage,
    StopKind,
    Termination,
)
from mesoslite.agent.containerizers.docker_logs import LogCopier
from mesoslite.agent.containerizers.docker_spec import limits

log = logging.getLogger(__name__)

T = TypeVar("T")
TERMINATION_FILE = "termination.json"
EXEC_OUTPUT_LIMIT = 4096  # bytes of health-check output kept (the tail)
EXEC_TIMEOUT_CODE = 124  # as timeout(1)
CONFLICT = 409  # the engine's answer to a signal for a container that does not run
RETRY_MAX = 2.0  # seconds between attempts while the engine does not answer
# Engine calls in flight at once (create/start/stop/inspect of many tasks): the
# engine serialises much of its work, more threads only add contention on 2 cores.
ENGINE_WORKERS = 16
EXEC_WORKERS = 8


class Engine:
    """The docker engine through the SDK's low-level client, off the event loop.

    The client is made lazily in a worker thread (it asks the engine for its API
    version, which blocks).  ``call`` runs short requests in a small pool; watcher
    threads use ``api`` directly.
    """

    def __init__(self, workers: int = ENGINE_WORKERS, timeout: float = 60.0) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="docker")
        # Health-check execs may block for their whole timeout: their own threads, so
        # slow checks never hold up launches and kills.
        self._exec_pool = ThreadPoolExecutor(max_workers=EXEC_WORKERS,
                                             thread_name_prefix="docker-exec")
        self._timeout = timeout
        self._workers = workers
        self._api: docker.APIClient | None = None
        self._lock = threading.Lock()

    @property
    def api(self) -> docker.APIClient:
        """The client (blocking on first use: call from a worker thread)."""
        with self._lock:
            if self._api is None:
                # Room for every watcher's long-lived log stream plus the pool's calls.
                self._api = docker.APIClient(
                    version="auto", timeout=int(self._timeout), max_pool_size=256,
                    **docker.utils.kwargs_from_env())
            return self._api

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def call_exec(self, fn: Callable[..., T], *args: Any) -> T:
        """Like ``call``, in the exec pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._exec_pool, lambda: fn(*args))

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the pool, not waiting for it (from the event loop)."""
        try:
            self._pool.submit(fn, *args)
        except RuntimeError:
            pass  # shut down: the agent is stopping

    async def api_call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """``APIClient.<method>(*args, **kwargs)`` in the pool."""
        return await self.call(lambda: getattr(self.api, method)(*args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._exec_pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._api is not None:
                self._api.close()
                self._api = None


class _Closed(Exception):
    """The agent stopped watching (it shuts down; the container keeps running)."""


def read_termination(meta_dir: Path) -> Termination | None:
    try:
        doc = json.loads((meta_dir / TERMINATION_FILE).read_text())
    except (OSError, ValueError):
        return None
    return Termination(exit_code=doc.get("exit_code"), signal=doc.get("signal"),
                       oom_killed=bool(doc.get("oom_killed")), message=doc.get("message", ""))


def termination_from_state(state: dict[str, Any], mem_limit: int | None) -> Termination:
    """How a stopped container ended, from ``docker inspect``'s ``State``."""
    code = state.get("ExitCode")
    if state.get("OOMKilled"):
        used = f"Requested: {mem_limit // 2**20}MB" if mem_limit else "no limit recorded"
        return Termination(exit_code=code, oom_killed=True,
                           message=f"Memory limit exceeded: {used}")
    if state.get("Error"):
        return Termination(exit_code=code if code else None,
                           message=f"The container failed: {state['Error']}")
    return Termination(exit_code=code, message=f"Command exited with status {code}")


class DockerContainer(Container):
    """A started container.  Create it inside the event loop: it starts watching at once.

    ``on_finished(container_id)`` runs in the loop once the container is gone.
    """

    def __init__(self, engine: Engine, spec: LaunchSpec, record: dict[str, Any],
                 on_finished: Callable[[str], None], resume_logs: bool = False) -> None:
        self.spec = spec
        self.record = record
        self._engine = engine
        self._on_finished = on_finished
        self._meta = Path(record["meta_dir"])
        self._loop = asyncio.get_running_loop()
        self._done: asyncio.Future[Termination] = self._loop.create_future()
        self._closed = threading.Event()
        self._copier: LogCopier | None = None
        self._stop_signal_name: str | None = None
        self._thread = threading.Thread(target=self._watch, args=(resume_logs,), daemon=True,
                                        name=f"docker-watch-{spec.container_id[:8]}")
        self._thread.start()

    @property
    def docker_id(self) -> str:
        return str(self.record["docker_id"])

    # ------------------------------------------------------------ watching (thread)

    def _watch(self, resume_logs: bool) -> None:
        try:
            # The client is fetched per request: an engine that does not answer yet
            # (restarting) is retried below instead of ending the watch.
            self._copier = LogCopier(lambda: self._engine.api, self.docker_id,
                                     Path(self.spec.sandbox), self._meta)
            if self._closed.is_set():
                return
            if resume_logs:
                self._copier.restore()
            else:
                self._copier.begin()
            term = self._follow_until_stopped(self._copier)
        except _Closed:
            return
        except Exception as exc:  # the future must resolve whatever goes wrong
            log.exception("watching container %s failed", self.spec.container_id)
            term = Termination(message=f"Lost track of the container: {exc}")
        try:
            self._loop.call_soon_threadsafe(self._resolve, term)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more

    def _follow_until_stopped(self, copier: LogCopier) -> Termination:
        delay = 0.05
        while True:
            try:
                copier.copy(follow=True)
            except Exception as exc:  # noqa: BLE001 - any break: check the state, reopen
                self._check_closed()
                log.debug("log stream of %s broke: %s", self.docker_id, exc)
            self._check_closed()
            try:
                info = self._engine.api.inspect_container(self.docker_id)
                state = info["State"]
                copier.note_created(info.get("Created"))
            except NotFound:
                return read_termination(self._meta) or Termination(
                    message="The container was removed outside of mesoslite")
            except Exception as exc:  # noqa: BLE001 - engine restarting or unreachable
                log.warning("cannot inspect container %s: %s", self.docker_id, exc)
                state = {"Running": True}
            if not (state.get("Running") or state.get("Paused") or state.get("Restarting")):
                try:
                    copier.copy(follow=False)  # what the follow stream had not delivered
                except Exception as exc:  # noqa: BLE001 - report the exit all the same
                    self._check_closed()
                    log.warning("cannot copy the last output of %s: %s", self.docker_id, exc)
                return self._finish(state)
            self._closed.wait(delay)  # the stream ended early: reopen it, gently
            delay = min(delay * 2, RETRY_MAX)

    def _check_closed(self) -> None:
        if self._closed.is_set():
            raise _Closed

    def _finish(self, state: dict[str, Any]) -> Termination:
        term = termination_from_state(state, self.record.get("mem_limit_bytes"))
        doc = {"exit_code": term.exit_code, "signal": term.signal, "oom_killed": term.oom_killed,
               "message": term.message, "finished_at": state.get("FinishedAt")}
        tmp = self._meta / f".{TERMINATION_FILE}.tmp"
        try:
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self._meta / TERMINATION_FILE)
        except OSError as exc:
            log.warning("cannot record the end of %s: %s", self.docker_id, exc)
        try:
            self._engine.api.remove_container(self.docker_id, v=True, force=True)
        except NotFound:
            pass
        except APIError as exc:
            log.warning("cannot remove container %s: %s", self.docker_id, exc)
        return term

    def _resolve(self, term: Termination) -> None:
        if self._done.done():
            return
        self._on_finished(self.spec.container_id)
        self._done.set_result(term)

    # ------------------------------------------------------------ Container API

    async def wait(self) -> Termination:
        """How the container ended (after its output was copied and it was removed)."""
        return await asyncio.shield(self._done)

    async def update_limits(self, cpus: float, mem_mb: float) -> bool:
        """``docker update`` of the container's cpu and memory limits."""
        if self._done.done():
            return False
        try:
            await self._engine.api_call("update_container", self.docker_id,
                                        **limits(cpus, mem_mb))
        except (APIError, OSError) as exc:
            log.warning("limits of %s not changed: %s", self.docker_id, exc)
            return False
        return True

    async def signal(self, kind: StopKind) -> None:
        """TERM: the container's stop signal as ``docker stop`` sends it (the task's
        ``stop-signal`` parameter, else the image's STOPSIGNAL, else SIGTERM); if the
        engine refuses it, SIGKILL.  KILL: SIGKILL.  The watcher then sees the end and
        removes the container.  Returns once the engine took the signal."""
        if self._done.done():
            return
        if kind is StopKind.KILL:
            await self._send(signal.SIGKILL.name)
            return
        try:
            await self._engine.api_call("kill", self.docker_id, signal=await self._stop_signal())
        except NotFound:
            pass  # gone: the watcher sees it
        except APIError as exc:
            if exc.status_code == CONFLICT:
                return  # no longer running: the watcher sees it
            log.warning("cannot send %s its stop signal (%s); killing it", self.docker_id, exc)
            await self._send(signal.SIGKILL.name)

    async def _stop_signal(self) -> str:
        """The container's configured stop signal (the engine merged the image's into
        the container's config when it created it); read once."""
        if self._stop_signal_name is None:
            info = await self._engine.api_call("inspect_container", self.docker_id)
            self._stop_signal_name = (info.get("Config") or {}).get("StopSignal") or "SIGTERM"
        return self._stop_signal_name

    async def _send(self, sig: str) -> None:
        try:
            await self._engine.api_call("kill", self.docker_id, signal=sig)
        except APIError:
            pass  # already stopped or gone: the watcher sees it

    def close(self) -> None:
        """Stop watching (agent shutdown); the container keeps running."""
        self._closed.set()
        if self._copier is not None:
            self._copier.interrupt()
        if not self._done.done():
            self._done.cancel()

    async def usage(self) -> ResourceUsage | None:
        """Cumulative CPU seconds and memory in use (without the page cache's inactive
        files, as ``docker stats`` counts) from the engine's stats; None once ended."""
        if self._done.done():
            return None
        try:
            stats = await self._engine.api_call("stats", self.docker_id, stream=False,
                                                one_shot=True)
        except APIError:
            return None
        cpu = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage", 0)
        mem = stats.get("memory_stats", {})
        inner = mem.get("stats", {})
        inactive = inner.get("total_inactive_file", inner.get("inactive_file", 0))
        used = max(0, int(mem.get("usage", 0)) - int(inactive))
        return ResourceUsage(cpu_seconds=cpu / 1e9, mem_bytes=used, timestamp=time.time(),
                             extra={"mem_limit_bytes": mem.get("limit"),
                                    "mem_max_usage_bytes": mem.get("max_usage")})

    async def exec(self, argv: list[str], timeout: float) -> tuple[int, str]:
        """Run ``argv`` in the container (``docker exec``, the container's environment).

        Returns (exit status, the last EXEC_OUTPUT_LIMIT bytes of stdout+stderr).  When
        the whole exec (engine calls included) takes longer than ``timeout`` seconds the
        command is killed and 124 reported; a missing command reports the engine's
        126/127, an exec the engine refuses (container stopped) 126.
        """
        started: dict[str, str] = {}
        job = asyncio.ensure_future(self._engine.call_exec(self._exec_blocking, argv, started))
        try:
            return await asyncio.wait_for(asyncio.shield(job), timeout)
        except TimeoutError:
            if "id" in started:
                await self._kill_exec(started["id"])
            return EXEC_TIMEOUT_CODE, f"[killed: still running after {timeout:g}s]"
        except APIError as exc:
            return 126, f"docker exec failed: {exc.explanation or exc}"

    def _exec_blocking(self, argv: list[str], started: dict[str, str]) -> tuple[int, str]:
        api = self._engine.api
        exec_id = api.exec_create(self.docker_id, argv)["Id"]
        started["id"] = exec_id
        output = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id).get("ExitCode")
        text = bytes(output or b"")[-EXEC_OUTPUT_LIMIT:].decode("utf-8", "replace")
        return (code if code is not None else 126), text

    async def _kill_exec(self, exec_id: str) -> None:
        """The engine has no API to stop an exec: kill its process from the host (the
        agent and the engine share a host; the pid is the host's)."""
        try:
            pid = (await self._engine.api_call("exec_inspect", exec_id)).get("Pid")
            if pid:
                os.kill(int(pid), signal.SIGKILL)
        except (APIError, OSError):
            pass
