"""An executor written with ``mesoslite.executor``: the twin of ``raw_executor.py``,
for the tests that run the library against real agents.

Each task's ``data`` says what to do with it: ``finish`` (RUNNING, then FINISHED
with the data echoed), ``run`` (RUNNING until killed), ``crash`` (RUNNING, then the
executor exits with status 3).  A framework message comes back prefixed with
``echo:``.  It writes what it does to stdout.
"""

from __future__ import annotations

import os

from mesoslite.executor import Executor, ExecutorDriver, run
from mesoslite.messages.executor import Subscribed
from mesoslite.messages.mesos import KillPolicy, TaskInfo, TaskState


class LibExecutor(Executor):
    async def subscribed(self, driver: ExecutorDriver, info: Subscribed) -> None:
        print("event SUBSCRIBED", flush=True)

    async def launch(self, driver: ExecutorDriver, task: TaskInfo) -> None:
        what = (task.data or b"run").decode()
        print("event LAUNCH", task.task_id.value, what, flush=True)
        await driver.update(task.task_id, TaskState.TASK_RUNNING)
        if what == "finish":
            await driver.update(task.task_id, TaskState.TASK_FINISHED, data=task.data)
        elif what == "crash":
            os._exit(3)

    async def kill(self, driver: ExecutorDriver, task_id: str,
                   kill_policy: KillPolicy | None) -> None:
        await driver.update(task_id, TaskState.TASK_KILLED)

    async def message(self, driver: ExecutorDriver, data: bytes) -> None:
        await driver.send_message(b"echo:" + data)

    async def disconnected(self, driver: ExecutorDriver) -> None:
        print("disconnected", flush=True)


if __name__ == "__main__":
    print("started pid", os.getpid(), flush=True)
    raise SystemExit(run(LibExecutor()))
