"""Fork server for task supervisors: one long-lived process per agent.

Starting ``python supervisor.py`` per task costs an interpreter start (about 10 ms of
CPU, far more when ten tasks start at once on a busy host) plus an asyncio child
process in the agent.  This process is started once, with the supervisor already
imported, and forks a supervisor per request instead.  What a supervisor is and does
does not change: the forked child is in the state ``python supervisor.py`` would be
in after start-up, it double-forks, and the supervisor ends up init's child in its
own session, outliving the agent and this server alike.

Protocol (``run_server``): the agent holds one end of a Unix stream socket; for each
launch it sends one byte with two file descriptors attached (``socket.send_fds``):

* a Unix socket of a fresh socketpair (the *launch socket*), and
* the supervisor's log file (its stderr).

The forked child writes ``{"pid": N}\\n`` on the launch socket at once (N: the
session leader to kill if the launch goes wrong), reads the JSON launch config from
it until EOF, and from then on is ``supervisor.main()`` with the launch socket as
stdin and stdout: the handshake line arrives on it exactly as from a spawned
supervisor.  The server exits when the agent's end closes (the agent stopped or
died); running supervisors are not affected.

Standard library only, run by path as ``python -E -s -S launcher.py FD``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys

if __package__:
    from mesoslite.agent.containerizers import supervisor
else:  # run as a script by path (python -S): its siblings are found next to it
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import supervisor  # type: ignore[no-redef]

REQUEST = b"L"


def _child(control: socket.socket, launch_fd: int, log_fd: int) -> None:
    """In the forked child: become a freshly started supervisor.  Never returns."""
    try:
        control.close()
        for sig in (signal.SIGINT, signal.SIGHUP):  # as a freshly started process has them
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()  # its own session and group, as start_new_session gave it
        os.write(launch_fd, (json.dumps({"pid": os.getpid()}) + "\n").encode())
        os.dup2(launch_fd, 0)
        os.dup2(launch_fd, 1)
        os.dup2(log_fd, 2)
        os.close(launch_fd)
        os.close(log_fd)
        code = supervisor.main()
    except BaseException as exc:  # noqa: BLE001 - report and never return to the loop
        try:
            os.write(2, f"launcher child failed: {exc!r}\n".encode())
        except OSError:
            pass
        code = 1
    os._exit(code)


def _reap() -> None:
    """Collect the forked children that have exited (each exits right after its
    own fork, so they never pile up)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_server(control: socket.socket) -> int:
    """Serve launch requests on ``control`` until the agent's end closes."""
    control.settimeout(1.0)  # to reap children even when no request comes
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1, 2)
        except TimeoutError:
            _reap()
            continue
        except OSError:
            return 1
        if not data:
            for fd in fds:
                os.close(fd)
            return 0
        if data != REQUEST or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        launch_fd, log_fd = fds
        pid = os.fork()
        if pid == 0:
            _child(control, launch_fd, log_fd)
        os.close(launch_fd)
        os.close(log_fd)
        _reap()


def main() -> int:
    control = socket.socket(fileno=int(sys.argv[1]))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.chdir("/")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C at the agent's terminal
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return run_server(control)


if __name__ == "__main__":
    sys.exit(main())
