"""Mesos' generic checks (``TaskInfo.check``), run by the agent.

Unlike a health check, a check only observes: its result goes to the framework in
``TaskStatus.check_status`` and never kills the task.  Semantics (Mesos' checks):

* the first check runs ``delay_seconds`` after the task is RUNNING, then one every
  ``interval_seconds`` (at least ``health.MIN_INTERVAL``) after the previous ended;
* COMMAND runs ``command.command`` where the task runs (``Container.exec``) and reports
  its ``exit_code``; HTTP GETs ``http://<agent address>:<port><path>`` and reports the
  ``status_code``; TCP reports whether a connection ``succeeded``.  A docker BRIDGE
  task's container port is translated to its mapped host port, as for health checks;
* a check that does not complete within ``timeout_seconds`` (0: no limit) - or cannot
  run, or an HTTP server that does not answer - has no result: the result's field is
  empty (``{"type": "HTTP", "http": {}}``);
* the TASK_RUNNING update carries the empty result; a TASK_RUNNING update with reason
  REASON_TASK_CHECK_STATUS_UPDATED goes out whenever the result changes, and every
  later update of the task carries the latest result (``TaskManager``).

After an agent restart the last result reported is the starting point.  The probes
are the health checks' (``health.Prober``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from mesoslite.agent.health import (
    MIN_INTERVAL,
    HttpTarget,
    Prober,
    TaskLoops,
    TcpTarget,
    check_command_argv,
    check_port,
)
from mesoslite.agent.lifecycle import AgentTaskState, Phase
from mesoslite.clock import Clock, SystemClock
from mesoslite.messages.mesos import (
    CheckInfo,
    CheckStatusCommand,
    CheckStatusHttp,
    CheckStatusInfo,
    CheckStatusTcp,
    CheckType,
)

if TYPE_CHECKING:
    from mesoslite.agent.tasks import TaskManager

log = logging.getLogger(__name__)

TIMED_OUT_NOTE = "[killed: still running after"  # what Container.exec says on a timeout


def empty_status(check_type: CheckType) -> CheckStatusInfo:
    """A check's status before it has a result (or when a check had none)."""
    return result_status(check_type, None)


def result_status(check_type: CheckType, result: int | bool | None) -> CheckStatusInfo:
    """The ``CheckStatusInfo`` for one result (None: the check had none)."""
    if check_type == CheckType.COMMAND:
        return CheckStatusInfo(type=check_type, command=CheckStatusCommand(
            exit_code=None if result is None else int(result)))
    if check_type == CheckType.HTTP:
        return CheckStatusInfo(type=check_type, http=CheckStatusHttp(
            status_code=None if result is None else int(result)))
    return CheckStatusInfo(type=check_type, tcp=CheckStatusTcp(
        succeeded=None if result is None else bool(result)))


class CheckMonitor(TaskLoops):
    """Runs the checks of RUNNING tasks; hook ``start`` to ``TaskManager.on_running``
    and ``stop`` to ``on_ended``; ``close`` on shutdown."""

    def __init__(self, tasks: TaskManager, prober: Prober, clock: Clock | None = None) -> None:
        super().__init__()
        self.tasks = tasks
        self.prober = prober
        self.clock = clock or SystemClock()

    def start(self, task: AgentTaskState) -> None:
        check = task.info.check
        if check is None or task.key in self._loops:
            return
        if check.type not in (CheckType.COMMAND, CheckType.HTTP, CheckType.TCP):
            return  # refused by the master (messages/refused.py)
        latest = self.tasks.updates.latest(*task.key)
        reported = latest.check_status if latest is not None else None
        self._spawn(task.key, self._run(task, check, reported))

    async def _run(self, task: AgentTaskState, check: CheckInfo,
                   reported: CheckStatusInfo | None) -> None:
        reported = reported or empty_status(check.type)
        next_at = self.clock.monotonic() + max(0.0, check.delay_seconds)
        while True:
            while (wait := next_at - self.clock.monotonic()) > 0:
                await asyncio.sleep(wait)
            if task.phase != Phase.RUNNING:
                return
            status = await self.check_once(task, check)
            next_at = self.clock.monotonic() + max(MIN_INTERVAL, check.interval_seconds)
            if status != reported:
                reported = status
                # Shielded: the update goes out whole even if the task ends meanwhile.
                await asyncio.shield(self.tasks.check_result(task.key, status))

    async def check_once(self, task: AgentTaskState, check: CheckInfo) -> CheckStatusInfo:
        """Run ``check`` once for ``task``; its status (empty without a result)."""
        timeout = max(0.0, check.timeout_seconds)
        address = self.tasks.identity.address
        if check.type == CheckType.COMMAND:
            return result_status(check.type, await self._exit_code(task, check, timeout))
        if check.type == CheckType.HTTP and check.http is not None:
            target = HttpTarget(address, check_port(task.info, check.http.port),
                                check.http.path or "/")
            return result_status(check.type, await self.prober.http_status(target, timeout))
        assert check.tcp is not None
        target_tcp = TcpTarget(address, check_port(task.info, check.tcp.port))
        return result_status(check.type, await self.prober.tcp_open(target_tcp, timeout))

    async def _exit_code(self, task: AgentTaskState, check: CheckInfo,
                         timeout: float) -> int | None:
        if task.container is None or check.command is None:
            return None
        try:
            argv = check_command_argv(check.command.command, "check")
        except ValueError:
            return None
        with contextlib.suppress(NotImplementedError):
            code, output = await task.container.exec(argv, timeout or 1e9)
            if TIMED_OUT_NOTE in output[-200:]:
                return None  # timed out: no result
            return code
        return None

    async def close(self) -> None:
        """Stop every check loop (tasks keep running)."""
        loops = self._cancel_all()
        await asyncio.gather(*loops, return_exceptions=True)
