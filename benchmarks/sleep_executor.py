"""The benchmark's executor (benchmarks/executors.py), written with
``mesoslite.executor``: each task is a sleep of the seconds in its ``data``, run
inside this one process (RUNNING, the sleep, FINISHED), many at a time."""

from __future__ import annotations

import asyncio

from mesoslite.executor import Executor, ExecutorDriver, run
from mesoslite.messages.mesos import TaskInfo, TaskState


class SleepExecutor(Executor):
    def __init__(self) -> None:
        self.running: set[asyncio.Task[None]] = set()

    async def launch(self, driver: ExecutorDriver, task: TaskInfo) -> None:
        # The callback returns at once: the sleeps run side by side.
        job = asyncio.create_task(self._sleep(driver, task))
        self.running.add(job)
        job.add_done_callback(self.running.discard)

    async def _sleep(self, driver: ExecutorDriver, task: TaskInfo) -> None:
        await driver.update(task.task_id, TaskState.TASK_RUNNING)
        await asyncio.sleep(float(task.data or b"0.1"))
        await driver.update(task.task_id, TaskState.TASK_FINISHED)


if __name__ == "__main__":
    raise SystemExit(run(SleepExecutor()))
