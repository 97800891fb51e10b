"""The sweep's scheduler, on the framework kit: one executor per agent, many short
tasks fed to it, results back as framework messages (docs/framework-api.md).

* Every task names the same ``ExecutorInfo``: the agent starts that executor with the
  first task sent to it and hands it every later one.  Its resources are taken from
  the offer that launches its first task; later offers from that agent name it in
  ``executor_ids`` and only the tasks' resources are needed then.
* A result arrives as a framework message (``on_message``) and again in the task's
  TASK_FINISHED ``data``; messages are best effort, the update is not, so a result
  whose message was lost is still counted.
* A task that fails (its executor crashed, say) is tried again, under a new task id,
  up to ``MAX_ATTEMPTS`` times.  When every point has a result (or ran out of
  attempts) the framework tears itself down, which shuts the executors down.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

import mesoslite
from mesoslite.framework import AgentLaunch, LaunchBackoff, Outcome, Plan, Round, Workload
from mesoslite.framework.offers import AgentOffers
from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    DurationInfo,
    Environment,
    EnvironmentVariable,
    ExecutorInfo,
    TaskInfo,
    TaskState,
    TaskStatus,
)
from mesoslite.placement import Placement
from mesoslite.resources import Resources
from mesoslite.scheduler import calls, resource_list
from sweep.points import Point, Result, decode_result, encode

EXECUTOR_ID = "sweep"
EXECUTOR_RESOURCES = Resources.of(cpus=0.1, mem=64.0)
TASK_RESOURCES = Resources.of(cpus=0.05, mem=8.0)
MAX_ATTEMPTS = 3
PACKAGE_PARENT = Path(__file__).resolve().parents[1]  # where ``import sweep`` finds it


def executor_info(python: str = sys.executable) -> ExecutorInfo:
    """The executor, one per agent: ``python -m sweep.executor``.

    The agent runs it with a bare PATH and none of this process's environment, so the
    interpreter is named by its path (the agent must be on this host, or have the same
    path) and PYTHONPATH finds this package and the mesoslite this scheduler runs on.
    """
    paths = dict.fromkeys([str(PACKAGE_PARENT), str(Path(mesoslite.__file__).parents[1])])
    return ExecutorInfo(
        executor_id=ID(EXECUTOR_ID), name="sweep executor",
        command=CommandInfo(
            value=f"exec {shlex.quote(python)} -m sweep.executor",
            environment=Environment(variables=[
                EnvironmentVariable(name="PYTHONPATH", value=os.pathsep.join(paths))])),
        resources=resource_list(EXECUTOR_RESOURCES),
        shutdown_grace_period=DurationInfo(nanoseconds=5_000_000_000))


class Sweep(Workload):
    """Evaluate ``points``; ``results`` maps a point's index to its value."""

    def __init__(self, points: Sequence[Point], executor: ExecutorInfo | None = None) -> None:
        self.executor = executor or executor_info()
        self.total = len(points)
        self.todo: deque[Point] = deque(points)  # not launched yet
        self.attempts: dict[int, int] = {}  # point index -> launches so far
        self.running: dict[str, tuple[Point, str]] = {}  # task id -> (point, agent id)
        self.results: dict[int, float] = {}
        self.given_up: set[int] = set()
        self.by_message = 0  # results that came first as a framework message

    # ------------------------------------------------------------ the offer cycle

    def plan(self, now: float, ready: bool, backoff: LaunchBackoff) -> Plan:
        # Done once every point has its answer and every task its terminal update (a
        # result's message may come before its task has finished).
        finished = len(self.results) + len(self.given_up) == self.total and not self.running
        return Plan(demand=len(self.todo) if ready else 0, done=finished)

    def question(self, offers: Sequence[AgentOffers], now: float) -> Round:
        return Round(problem=None, context=offers)  # first fit, in offer order

    def placed(self, round: Round, answer: Placement, now: float) -> list[AgentLaunch]:
        launches = []
        for agent in round.context:
            tasks = self.tasks_for(agent)
            if tasks:
                launches.append(AgentLaunch(agent.agent_id, (calls.launch_operation(tasks),)))
        return launches

    def tasks_for(self, agent: AgentOffers) -> list[TaskInfo]:
        """As many tasks as the agent's offers hold, and the executor's resources when
        it does not run there yet."""
        free = agent.resources
        running = any(e.value == EXECUTOR_ID for o in agent.offers for e in o.executor_ids)
        if not running:
            if not EXECUTOR_RESOURCES + TASK_RESOURCES <= free:
                return []
            free = free - EXECUTOR_RESOURCES
        tasks = []
        while self.todo and TASK_RESOURCES <= free:
            tasks.append(self._task(self.todo.popleft(), agent.agent_id))
            free = free - TASK_RESOURCES
        return tasks

    def _task(self, point: Point, agent_id: str) -> TaskInfo:
        attempt = self.attempts.get(point.index, 0) + 1
        self.attempts[point.index] = attempt
        task_id = f"sweep-{point.index}" + (f"-{attempt}" if attempt > 1 else "")
        self.running[task_id] = (point, agent_id)
        return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID(agent_id),
                        resources=resource_list(TASK_RESOURCES), executor=self.executor,
                        data=encode(point))

    def launch_refused(self, launch: AgentLaunch, message: str, now: float) -> None:
        for task_id in launch.task_ids:  # e.g. a rescinded offer: never started
            point, _ = self.running.pop(task_id)
            self.attempts[point.index] -= 1
            self.todo.appendleft(point)

    # ------------------------------------------------------------ what comes back

    def on_message(self, agent_id: str, executor_id: str, data: bytes, now: float) -> None:
        try:
            result = decode_result(data)
        except msgspec.DecodeError:
            return  # not ours to read
        if result.index not in self.results:
            self.by_message += 1
            self._record(result)

    def on_update(self, status: TaskStatus, now: float) -> Outcome:
        entry = self.running.get(status.task_id.value)
        if entry is None:
            return Outcome(known=False)  # not a task of this run: the kit kills it
        if not status.state.terminal:
            return Outcome()
        point, _ = self.running.pop(status.task_id.value)
        if status.state == TaskState.TASK_FINISHED and status.data:
            self._record(decode_result(status.data))  # the reliable copy
        elif point.index not in self.results:
            if self.attempts[point.index] < MAX_ATTEMPTS:
                self.todo.append(point)
            else:
                self.given_up.add(point.index)
            print(f"{status.task_id.value}: {status.state.value} {status.message or ''}")
        return Outcome()

    def _record(self, result: Result) -> None:
        self.results.setdefault(result.index, result.value)

    def known_tasks(self) -> Iterable[tuple[str, str | None]]:
        return [(task_id, agent_id) for task_id, (_, agent_id) in self.running.items()]
