"""Per-task supervisor of the process containerizer.

Run as ``python -E -s -S supervisor.py`` with a JSON launch config on stdin (so the
task's environment never touches the disk).  It

1. reads the config, then forks and lets its parent exit: the supervisor is nobody's
   child but init's, so it outlives an agent restart and needs no reaping by it;
2. starts the task in its own session (process group = task pid), in the container's
   cgroup (joined in the child before exec), with stdout/stderr appended to files;
3. writes ``supervisor.json`` (its own and the task's pid + start time) atomically and
   answers the agent with one JSON line on stdout: ``{"ok": true, ...}`` or
   ``{"ok": false, "error": ...}`` when the task could not be started;
4. waits for the task (pidfd + cgroup OOM notification, no polling), forwarding
   SIGTERM to the task's process group and turning SIGUSR1 into SIGKILL of the group
   and the whole cgroup;
5. when the task's main process has ended, kills what is left of the container,
   writes ``exit_status.json`` atomically, removes the cgroup and exits.

Standard library only (plus the stdlib-only siblings ``osutil`` and ``cgroups``),
imported by path: the supervisor is one small process per task.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time

if TYPE_CHECKING:
    from typing import Any

if __package__:  # imported by the agent (process.py reads constants from it)
    from mesoslite.agent.containerizers import cgroups, osutil
else:  # run as a script by path (python -S): its siblings are found next to it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import cgroups  # type: ignore[no-redef]
    import osutil  # type: ignore[no-redef]

SUPERVISOR_FILE = "supervisor.json"
EXIT_STATUS_FILE = "exit_status.json"
DRAIN_TIMEOUT = 10.0  # seconds to wait for a killed cgroup to empty


class Supervisor:
    """State shared with the signal handlers."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.meta_dir: str = config["meta_dir"]
        record = config.get("cgroup")
        self.cgroup = cgroups.Cgroup.from_record(record) if record else None
        self.task_pid = 0
        self.reaped = False  # once reaped, the task's pid may be recycled: stop signalling
        self.oom = False
        self.notifier: tuple[int, int] | None = None  # (fd, poll mask) of OOM events
        # Read end of the signal wakeup pipe (see ``run``): a signal that lands between
        # Python's check for pending signals and the poll() syscall would otherwise go
        # unhandled until the task ends by itself.
        self.wakeup: int | None = None
        self.pending: list[int] = []  # signals that arrived before the task existed

    # ------------------------------------------------------------ launching

    def spawn(self) -> int:
        """Fork and exec the task; returns its pid, or raises the OSError exec met.

        A plain fork/exec rather than ``subprocess``: importing ``subprocess`` (and
        its ``threading``) costs the supervisor more start-up time than all the rest
        of its work, once per task.  The child reports a failed exec through a
        close-on-exec pipe: EOF on it means the exec succeeded.
        """
        cfg = self.config
        if self.cgroup is not None and cfg.get("mem_limit_bytes"):
            # Before the task exists, so not even an instant OOM goes unnoticed.
            self.notifier = self.cgroup.open_oom_notifier()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        out = os.open(cfg["stdout"], flags, 0o644)
        err = os.open(cfg["stderr"], flags, 0o644)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            self._exec_child(out, err, null, report_w)
        for fd in (out, err, null, report_w):
            os.close(fd)
        data = b""
        while chunk := os.read(report_r, 512):
            data += chunk
        os.close(report_r)
        if data:
            os.waitpid(pid, 0)
            errno_, _, what = data.decode().partition(":")
            raise OSError(int(errno_), os.strerror(int(errno_)), what or None)
        return pid

    def _exec_child(self, out: int, err: int, null: int, report_w: int) -> None:
        """In the forked child: session, stdio, cgroup, user, cwd, then exec."""
        cfg = self.config
        try:
            os.setsid()
            os.dup2(null, 0)
            os.dup2(out, 1)
            os.dup2(err, 2)
            for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            if self.cgroup is not None:
                # before dropping privileges: a non-root process can't join a cgroup
                self.cgroup.join(os.getpid())
            os.chdir(cfg["cwd"])  # as subprocess does: before the user switch
            user = cfg.get("user")
            if user:
                os.setgroups(user["groups"])
                os.setgid(user["gid"])
                os.setuid(user["uid"])
            what = cfg.get("executable") or cfg["argv"][0]
            os.closerange(3, report_w)
            os.closerange(report_w + 1, 65536)
            os.execvpe(what, cfg["argv"], cfg["env"])
        except OSError as exc:
            name = exc.filename if exc.filename is not None else ""
            os.write(report_w, f"{exc.errno or 0}:{name}".encode())
        except BaseException:  # noqa: BLE001 - the child must never return
            os.write(report_w, b"0:")
        os._exit(127)

    # ------------------------------------------------------------ signals

    def on_term(self, signum: int, frame: object) -> None:
        if not self.task_pid:
            self.pending.append(signum)
        elif not self.reaped:
            osutil.killpg_quietly(self.task_pid, signal.SIGTERM)

    def on_force(self, signum: int, frame: object) -> None:
        if not self.task_pid:
            self.pending.append(signum)
        elif not self.reaped:
            osutil.killpg_quietly(self.task_pid, signal.SIGKILL)
        if self.cgroup is not None:
            self.cgroup.kill_all(signal.SIGKILL)

    # ------------------------------------------------------------ waiting

    def supervise(self) -> int:
        """Wait for the task's main process; returns its wait status.

        With a pidfd we learn of the exit before reaping, so the leftovers of the
        process group are killed while its pid cannot have been recycled yet.
        """
        try:
            pidfd = os.pidfd_open(self.task_pid)
        except OSError:
            pidfd = None  # pre-5.3 kernel: a plain blocking waitpid, no OOM watching
        if pidfd is not None:
            self._poll_until_exit(pidfd)
            os.close(pidfd)
            osutil.killpg_quietly(self.task_pid, signal.SIGKILL)
        _, status = os.waitpid(self.task_pid, 0)
        self.reaped = True
        return status

    def _poll_until_exit(self, pidfd: int) -> None:
        notifier = self.notifier
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if notifier is not None:
            poller.register(notifier[0], notifier[1])
        if self.wakeup is not None:
            poller.register(self.wakeup, select.POLLIN)
        try:
            while True:
                ready = {fd for fd, _ in poller.poll()}
                if pidfd in ready:
                    return
                if self.wakeup in ready:
                    _drain_pipe(self.wakeup)  # the handler itself runs on return to Python
                if notifier is None or notifier[0] not in ready:
                    continue
                # Mesos semantics: an OOM kill is a memory limitation and ends the
                # whole container.
                assert self.cgroup is not None
                if self.cgroup.ack_oom_notifier(notifier[0]):
                    self.oom = True
                    poller.unregister(notifier[0])
                    self.on_force(signal.SIGKILL, None)
        finally:
            if notifier is not None:
                os.close(notifier[0])

    def drain(self) -> None:
        """Kill whatever the task left behind in its cgroup (the process group already
        got SIGKILL in ``supervise``)."""
        if self.cgroup is None:
            return
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while self.cgroup.kill_all(signal.SIGKILL) and time.monotonic() < deadline:
            time.sleep(0.01)

    def termination(self, status: int) -> dict[str, Any]:
        """The exit-status document (fields of ``base.Termination`` plus details)."""
        exit_code: int | None = None
        sig: int | None = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            message = f"Command terminated with signal {osutil.signal_name(sig)}"
        else:
            exit_code = os.waitstatus_to_exitcode(status)
            message = f"Command exited with status {exit_code}"
        limit = self.config.get("mem_limit_bytes")
        if self.cgroup is not None and limit:
            count = self.cgroup.oom_kill_count()
            if count is None:  # old kernel: failcnt plus a SIGKILL is the best evidence
                self.oom = self.oom or (sig == signal.SIGKILL and self.cgroup.memory_failcnt() > 0)
            else:
                self.oom = self.oom or count > 0
        if self.oom:
            used = self.cgroup.max_memory_bytes() if self.cgroup else None
            message = f"Memory limit exceeded: Requested: {limit // 2**20}MB" + (
                f", Maximum Used: {used // 2**20}MB" if used else ""
            )
        return {
            "exit_code": exit_code,
            "signal": sig,
            "oom_killed": self.oom,
            "message": message,
            "pid": self.task_pid,
            "finished_at": time.time(),
        }


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _describe_launch_error(exc: BaseException, config: dict[str, Any]) -> str:
    target = config.get("executable") or config["argv"][0]
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename not in (None, target):
        return f"Failed to launch the task: {exc.strerror}: {filename}"
    if isinstance(exc, FileNotFoundError):
        return f"Failed to execute '{target}': no such file or directory"
    if isinstance(exc, PermissionError):
        return f"Failed to execute '{target}': permission denied"
    return f"Failed to execute '{target}': {exc}"


def _answer(message: dict[str, Any]) -> None:
    """One handshake line to the agent, then detach from its pipe."""
    try:
        os.write(1, (json.dumps(message) + "\n").encode())
    except OSError:
        pass  # the agent died meanwhile: our records in meta_dir are what counts
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.close(devnull)


def run(config: dict[str, Any]) -> int:
    """Launch, answer the agent, supervise, record.  Returns the supervisor's status."""
    sup = Supervisor(config)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    sup.wakeup = wake_r
    # Handlers before the task exists: a signal that arrives early must not kill us;
    # it is kept and delivered once the task's process group exists.
    signal.signal(signal.SIGTERM, sup.on_term)
    signal.signal(signal.SIGUSR1, sup.on_force)
    try:
        task_pid = sup.spawn()
    except Exception as e:  # noqa: BLE001 - every failure must reach the agent
        _answer({"ok": False, "error": _describe_launch_error(e, config)})
        if sup.cgroup is not None:
            sup.cgroup.remove()
        return 1
    sup.task_pid = task_pid
    for signum in sup.pending:
        (sup.on_term if signum == signal.SIGTERM else sup.on_force)(signum, None)
    me = os.getpid()
    info = {
        "supervisor_pid": me,
        "supervisor_start": osutil.proc_start_time(me),
        "task_pid": task_pid,
        "task_start": osutil.proc_start_time(task_pid),
    }
    osutil.atomic_write_json(os.path.join(sup.meta_dir, SUPERVISOR_FILE), info)
    _answer({"ok": True, **info})
    status = sup.supervise()
    sup.drain()
    osutil.atomic_write_json(os.path.join(sup.meta_dir, EXIT_STATUS_FILE), sup.termination(status))
    if sup.cgroup is not None:
        sup.cgroup.remove()
    return 0


def main() -> int:
    config = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    if os.fork() != 0:
        os._exit(0)  # the agent reaps this short-lived parent; init adopts the child
    os.chdir("/")  # hold no directory the agent may want to remove
    signal.signal(signal.SIGHUP, lambda *_: None)  # a handler, not SIG_IGN: exec resets it
    signal.signal(signal.SIGINT, lambda *_: None)
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
