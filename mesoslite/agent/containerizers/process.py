"""The PROCESS containerizer: tasks as plain processes, limited by cgroups.

Each task gets a small supervisor process (``supervisor.py``) that is detached from
the agent, so tasks survive an agent restart; everything needed to find them again is
in ``Container.record`` (checkpointed by the agent) and in per-container files:

* ``<sandbox>/.mesoslite/<container_id>/`` - the supervisor's records
  (``supervisor.json``: pids and start times; ``exit_status.json``: how the task
  ended; ``supervisor.log``: the supervisor's own stderr);
* ``<work_dir>/containerizers/process/<agent_id>/<container_id>.json`` - one entry
  per live container, so ``cleanup_orphans`` can find containers the agent forgot;
* cgroups at ``<hierarchy>/<cgroups_root>/<agent_id>/<container_id>``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import pwd
import signal
import sys
from pathlib import Path
from typing import Any, ClassVar

from mesoslite.agent.containerizers import osutil, supervisor
from mesoslite.agent.containerizers.base import (
    Container,
    Containerizer,
    LaunchError,
    LaunchSpec,
    StopKind,
    Termination,
)
from mesoslite.agent.containerizers.cgroup_manager import CgroupManager, CgroupMode
from mesoslite.agent.containerizers.cgroups import Cgroup, safe_name
from mesoslite.agent.containerizers.launcher_client import (
    LauncherUnavailable,
    SupervisorLauncher,
)
from mesoslite.agent.containerizers.process_container import (
    SUPERVISOR_FILE,
    ProcessContainer,
    destroy_cgroup,
    finish,
    read_termination,
    task_environment,
)
from mesoslite.messages.mesos import CommandInfo, TaskInfo

META_DIR = ".mesoslite"
RECORD_VERSION = 1
log = logging.getLogger(__name__)

SUPERVISOR_SCRIPT = os.path.abspath(supervisor.__file__)
SUPERVISOR_ENV = ("PATH", "LANG", "LC_ALL")


def command_argv(task: TaskInfo) -> tuple[list[str], str | None, CommandInfo]:
    """(argv, executable, command) for a task, with Mesos' CommandInfo semantics.

    ``shell`` (default): ``/bin/sh -c value``.  Otherwise ``value`` is the executable
    (looked up in the task's PATH) and ``arguments`` the argv, ``arguments[0]`` being
    argv[0]; without arguments argv is ``[value]``.
    """
    command = task.command or (task.executor.command if task.executor else None)
    if command is None or not command.value:
        raise LaunchError(f"Task '{task.task_id.value}' has no command to run")
    if command.shell:
        return ["/bin/sh", "-c", command.value], None, command
    return list(command.arguments) or [command.value], command.value, command


def _user_switch(user: str | None) -> dict[str, Any] | None:
    """uid/gid/groups to run as, None to run as the agent's user."""
    if not user:
        return None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        raise LaunchError(f"Cannot run the task as '{user}': no such user") from None
    if pw.pw_uid == os.geteuid():
        return None
    if os.geteuid() != 0:
        raise LaunchError(f"Cannot run the task as '{user}': the agent is not root")
    groups = os.getgrouplist(user, pw.pw_gid)
    return {"name": user, "uid": pw.pw_uid, "gid": pw.pw_gid, "groups": groups}


def _memory_limit_bytes(spec: LaunchSpec) -> int:
    """The container's hard memory limit (0: none): the limit, else the request."""
    mem_mb = spec.mem_mb if spec.mem_limit_mb is None else spec.mem_limit_mb
    return int(mem_mb * 2**20) if 0 < mem_mb < math.inf else 0


def _supervisor_env() -> dict[str, str]:
    return {k: os.environ[k] for k in SUPERVISOR_ENV if k in os.environ}


def _kill_quietly(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class ProcessContainerizer(Containerizer):
    """Runs tasks as supervised process trees; see the module docstring.

    ``cgroups`` forces a hierarchy ("v1"/"v2"), disables limits ("none") or picks
    what the host offers ("auto").  ``python`` runs the supervisor (stdlib only).
    """

    name: ClassVar[str] = "process"

    def __init__(
        self,
        agent_id: str,
        work_dir: str | Path,
        *,
        cgroups: CgroupMode = "auto",
        cgroups_root: str = "mesoslite",
        python: str = sys.executable,
        launch_timeout: float = 30.0,
        fork_server: bool = True,
    ) -> None:
        self.agent_id = agent_id
        self.runtime_dir = Path(work_dir) / "containerizers" / "process" / safe_name(agent_id)
        self.cgroups = CgroupManager(cgroups_root, cgroups)
        self._python = python
        self._launch_timeout = launch_timeout
        self._containers: dict[str, ProcessContainer] = {}
        self._launching: set[str] = set()
        # Supervisors are forked by one long-lived launcher rather than each started
        # as a new interpreter (see launcher.py); ``fork_server=False`` spawns each.
        self.launcher = (SupervisorLauncher(python, _supervisor_env(), launch_timeout)
                          if fork_server else None)

    # ------------------------------------------------------------ launch

    async def launch(self, spec: LaunchSpec) -> Container:
        """Start the task; returns once it runs.  LaunchError when it cannot start."""
        cid = spec.container_id
        if cid in self._containers or cid in self._launching:
            raise LaunchError(f"Container {cid} is already running")
        argv, executable, command = command_argv(spec.task)
        user = _user_switch(spec.user if spec.user is not None else command.user)
        self._launching.add(cid)
        try:
            meta, cgroup = await self._set_up(spec, user)
        except BaseException:
            self._launching.discard(cid)
            raise
        mem_bytes = _memory_limit_bytes(spec) if cgroup is not None else 0
        config = {
            "argv": argv,
            "executable": executable,
            "env": task_environment(spec.env),
            "cwd": str(spec.sandbox),
            "stdout": str(Path(spec.sandbox) / "stdout"),
            "stderr": str(Path(spec.sandbox) / "stderr"),
            "meta_dir": str(meta),
            "cgroup": cgroup.to_record() if cgroup else None,
            "mem_limit_bytes": mem_bytes or None,
            "user": user,
        }
        try:
            info = await self._start_supervisor(config, meta)
        except BaseException:
            # Also when cancelled after the task started: it must not run unrecorded.
            self._kill_started_task(meta)
            self._unregister(cid)
            await destroy_cgroup(cgroup)
            raise
        finally:
            self._launching.discard(cid)
        record = {
            "version": RECORD_VERSION,
            "containerizer": self.name,
            "container_id": cid,
            "agent_id": self.agent_id,
            "sandbox": str(spec.sandbox),
            "meta_dir": str(meta),
            "cgroup": cgroup.to_record() if cgroup else None,
            "mem_limit_bytes": mem_bytes or None,
            "cpus": spec.cpus,
            **{
                k: info[k] for k in ("supervisor_pid", "supervisor_start", "task_pid", "task_start")
            },
        }
        return self._adopt(spec, record, cgroup)

    async def _set_up(self, spec: LaunchSpec, user: dict[str, Any] | None
                      ) -> tuple[Path, Cgroup | None]:
        """Sandbox, cgroup and runtime entry, made in a worker thread: cgroupfs writes
        and fsyncs take milliseconds, and the agent's event loop (in ``mesoslite up``
        the master's and the frameworks' too) must not wait on them.  A cancelled
        launch still waits for the thread, then undoes what it made."""
        job = asyncio.ensure_future(asyncio.to_thread(self._set_up_now, spec, user))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            try:
                _, cgroup = await job
            except Exception:  # noqa: BLE001 - it made nothing to undo
                raise asyncio.CancelledError from None
            self._unregister(spec.container_id)
            await destroy_cgroup(cgroup)
            raise

    def _set_up_now(self, spec: LaunchSpec, user: dict[str, Any] | None
                    ) -> tuple[Path, Cgroup | None]:
        meta = self._prepare_sandbox(spec, user)
        cgroup = self._create_cgroup(spec)
        try:
            self._register(spec.container_id, str(meta), cgroup)
        except OSError as e:
            if cgroup is not None:
                cgroup.remove()
            raise LaunchError(f"Cannot record the container: {e}") from None
        return meta, cgroup

    def _prepare_sandbox(self, spec: LaunchSpec, user: dict[str, Any] | None) -> Path:
        sandbox = Path(spec.sandbox)
        if not sandbox.is_dir():
            raise LaunchError(f"Sandbox {sandbox} does not exist or is not a directory")
        meta = sandbox / META_DIR / safe_name(spec.container_id)
        try:
            meta.parent.mkdir(mode=0o700, exist_ok=True)
            meta.mkdir(mode=0o700)
            for name in ("stdout", "stderr"):
                (sandbox / name).touch()
                if user:
                    os.chown(sandbox / name, user["uid"], user["gid"])
            if user:
                os.chown(sandbox, user["uid"], user["gid"])
        except FileExistsError:
            raise LaunchError(
                f"Container {spec.container_id} was already launched in sandbox {sandbox}"
            ) from None
        except OSError as e:
            raise LaunchError(f"Sandbox {sandbox} is not usable: {e}") from None
        return meta

    def _create_cgroup(self, spec: LaunchSpec) -> Cgroup | None:
        try:
            return self.cgroups.create(self.agent_id, spec.container_id, spec.cpus,
                                       _memory_limit_bytes(spec), spec.cpu_limit)
        except OSError as e:
            raise LaunchError(f"Cannot set up the container's cgroup: {e}") from None

    async def _start_supervisor(self, config: dict[str, Any], meta: Path) -> dict[str, Any]:
        """Start the supervisor (forked by the launcher, else spawned), hand it
        ``config``, return its handshake."""
        log_path = meta / "supervisor.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        proc: asyncio.subprocess.Process | None = None
        try:
            try:
                if self.launcher is None:
                    raise LauncherUnavailable("not used")
                spawned = await self.launcher.spawn(log_fd)
                pid, reader, writer = spawned.pid, spawned.reader, spawned.writer
            except LauncherUnavailable as exc:
                if self.launcher is not None:
                    log.warning("supervisor launcher unavailable (%s): spawning instead", exc)
                proc = await asyncio.create_subprocess_exec(
                    *(self._python, "-E", "-s", "-S", SUPERVISOR_SCRIPT),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log_fd,
                    start_new_session=True,  # never in the agent's process group
                    cwd="/",
                    env=_supervisor_env(),
                )
                assert proc.stdin is not None and proc.stdout is not None
                pid, reader, writer = proc.pid, proc.stdout, proc.stdin
        finally:
            os.close(log_fd)
        try:
            try:
                writer.write(json.dumps(config).encode())
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()  # the launcher's socket: half-close
                else:
                    writer.close()
            except ConnectionError:
                pass  # it died at once: the empty handshake below reports its log
            line = await asyncio.wait_for(reader.readline(), self._launch_timeout)
        except BaseException as e:
            # The supervisor shares the (exited) parent's process group: kill both,
            # and the task through its records if it got that far.
            osutil.killpg_quietly(pid, signal.SIGKILL)
            self._kill_started_task(meta)
            if proc is not None:
                await proc.wait()
            if isinstance(e, asyncio.TimeoutError):
                raise LaunchError(
                    f"The task's supervisor did not start within {self._launch_timeout:g}s"
                ) from None
            if isinstance(e, (OSError, ValueError)):
                raise LaunchError(f"Cannot start the task's supervisor: {e}") from None
            raise
        finally:
            writer.close()
        if proc is not None:
            await proc.wait()
        if not line:
            log_tail = log_path.read_text(errors="replace")[-2000:]
            raise LaunchError(f"The task's supervisor failed before starting the task: {log_tail}")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise LaunchError(str(answer.get("error") or "the task could not be started"))
        return answer

    @staticmethod
    def _kill_started_task(meta: Path) -> None:
        info = osutil.read_json(str(meta / SUPERVISOR_FILE)) or {}
        if osutil.same_process(info.get("task_pid"), info.get("task_start")):
            osutil.killpg_quietly(info["task_pid"], signal.SIGKILL)

    # ------------------------------------------------------------ bookkeeping

    def _adopt(self, spec: LaunchSpec, record: dict[str, Any], cgroup: Cgroup | None) -> Container:
        container = ProcessContainer(spec, record, cgroup, self._finished)
        self._containers[spec.container_id] = container
        return container

    def _finished(self, container_id: str) -> None:
        self._containers.pop(container_id, None)
        self._unregister(container_id)

    def _entry_path(self, container_id: str) -> Path:
        return self.runtime_dir / f"{safe_name(container_id)}.json"

    def _register(self, container_id: str, meta_dir: str, cgroup: Cgroup | None) -> None:
        """Persist enough to find the container again even if the agent forgets it."""
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        entry = {
            "container_id": container_id,
            "agent_id": self.agent_id,
            "meta_dir": meta_dir,
            "cgroup": cgroup.to_record() if cgroup else None,
        }
        osutil.atomic_write_json(str(self._entry_path(container_id)), entry)

    def _unregister(self, container_id: str) -> None:
        self._entry_path(container_id).unlink(missing_ok=True)

    def _entries(self) -> list[dict[str, Any]]:
        try:
            paths = sorted(self.runtime_dir.glob("*.json"))
        except OSError:
            return []
        entries = [osutil.read_json(str(p)) for p in paths]
        return [e for e in entries if isinstance(e, dict) and e.get("agent_id") == self.agent_id]

    # ------------------------------------------------------------ recovery

    async def recover(self, spec: LaunchSpec, record: dict[str, Any]) -> Container | Termination:
        """Re-attach to a container launched by an earlier agent process.

        Returns the Termination (after cleaning up) when the task ended meanwhile or its
        supervisor is gone; otherwise a Container watching the running task.
        """
        cid = spec.container_id
        if cid in self._containers:
            return self._containers[cid]
        cgroup = Cgroup.from_record(record["cgroup"]) if record.get("cgroup") else None
        alive = osutil.same_process(record.get("supervisor_pid"), record.get("supervisor_start"))
        if not alive or read_termination(record["meta_dir"]) is not None:
            term = await finish(record, cgroup)
            self._unregister(cid)
            return term
        if not self._entry_path(cid).exists():
            self._register(cid, record["meta_dir"], cgroup)
        return self._adopt(spec, dict(record), cgroup)

    async def cleanup_orphans(self, known: set[str]) -> list[str]:
        """Kill (SIGKILL) and remove this agent's containers whose id is not in
        ``known``: live ones, ones only found in the registry, and stray cgroups in
        this agent's namespace.  Other agents' containers are never touched.  Returns
        the ids (cgroup directory names for stray cgroups) that were removed.
        """
        removed: list[str] = []
        for entry in self._entries():
            cid = entry["container_id"]
            if cid in known or cid in self._launching:
                continue
            if (container := self._containers.get(cid)) is not None:
                await container.signal(StopKind.KILL)
                await container.wait()
            else:
                await self._destroy_entry(entry)
            removed.append(cid)
        spared = {safe_name(c) for c in (*known, *self._launching, *self._containers, *removed)}
        for name in sorted(self.cgroups.list_containers(self.agent_id) - spared):
            await destroy_cgroup(self.cgroups.container(self.agent_id, name))
            removed.append(name)
        return removed

    async def _destroy_entry(self, entry: dict[str, Any]) -> None:
        """Kill a container this agent process has no object for."""
        cgroup = Cgroup.from_record(entry["cgroup"]) if entry.get("cgroup") else None
        info = osutil.read_json(os.path.join(entry["meta_dir"], SUPERVISOR_FILE)) or {}
        sup = (info.get("supervisor_pid"), info.get("supervisor_start"))
        if osutil.same_process(*sup):
            _kill_quietly(sup[0], signal.SIGUSR1)
        self._kill_started_task(Path(entry["meta_dir"]))
        await destroy_cgroup(cgroup)
        # Give the supervisor the chance to record the exit, then make sure it is gone.
        for _ in range(500):
            if not osutil.same_process(*sup):
                break
            await asyncio.sleep(0.02)
        else:
            _kill_quietly(sup[0], signal.SIGKILL)
        self._unregister(entry["container_id"])

    async def close(self) -> None:
        """Stop watching containers; the tasks keep running."""
        for container in list(self._containers.values()):
            container.close()
        self._containers.clear()
        if self.launcher is not None:
            await self.launcher.close()
