"""The sweep's executor: started once per agent by the agent, as
``python -m sweep.executor``; evaluates each task's point (docs/framework-api.md,
"Executors").

Each task: TASK_RUNNING, the point evaluated off the event loop, the result sent as a
framework message (fast, best effort), then TASK_FINISHED carrying the same result
(reliable: held by the driver until acknowledged).  A KILL cancels the task; a
SHUTDOWN kills every task still running.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec

from mesoslite.executor import DriverError, Executor, ExecutorDriver, run
from mesoslite.messages.executor import Subscribed
from mesoslite.messages.mesos import KillPolicy, TaskInfo, TaskState
from sweep.points import Result, decode_point, encode, evaluate

log = logging.getLogger("sweep.executor")


class SweepExecutor(Executor):
    def __init__(self) -> None:
        self.running: dict[str, asyncio.Task[None]] = {}  # task id -> its evaluation

    async def subscribed(self, driver: ExecutorDriver, info: Subscribed) -> None:
        log.info("subscribed to agent %s", info.agent_info.hostname)

    async def launch(self, driver: ExecutorDriver, task: TaskInfo) -> None:
        # Return at once: the driver hands on the next event (a KILL, say) only then.
        task_id = task.task_id.value
        job = asyncio.create_task(self._evaluate(driver, task), name=task_id)
        self.running[task_id] = job
        job.add_done_callback(lambda _: self.running.pop(task_id, None))

    async def _evaluate(self, driver: ExecutorDriver, task: TaskInfo) -> None:
        task_id = task.task_id.value
        try:
            point = decode_point(task.data or b"")
        except msgspec.DecodeError as exc:
            await driver.update(task_id, TaskState.TASK_FAILED, message=f"not a point: {exc}")
            return
        await driver.update(task_id, TaskState.TASK_RUNNING)
        value = await asyncio.to_thread(evaluate, point)  # real work would take a while
        result = encode(Result(index=point.index, value=value))
        try:
            await driver.send_message(result)
        except (DriverError, ValueError) as exc:  # best effort: the update carries it too
            log.warning("result of %s not sent as a message: %s", task_id, exc)
        await driver.update(task_id, TaskState.TASK_FINISHED, data=result)

    async def kill(self, driver: ExecutorDriver, task_id: str,
                   kill_policy: KillPolicy | None) -> None:
        await self._stop(driver, task_id, "killed by the scheduler")

    async def shutdown(self, driver: ExecutorDriver) -> None:
        log.info("shutting down with %d task(s) running", len(self.running))
        for task_id in list(self.running):
            await self._stop(driver, task_id, "the executor shut down")

    async def _stop(self, driver: ExecutorDriver, task_id: str, why: str) -> None:
        job = self.running.pop(task_id, None)
        if job is None or job.done():
            return  # it ended already: its terminal update is on its way
        job.cancel()
        await driver.update(task_id, TaskState.TASK_KILLED, message=why)


if __name__ == "__main__":
    raise SystemExit(run(SweepExecutor()))
