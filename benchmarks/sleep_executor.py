"""The benchmark's executor (benchmarks/executors.py): each task is a sleep of the
seconds in its ``data``, run inside this one process; RUNNING, then FINISHED."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import aiohttp

from mesoslite.messages import executor as ex
from mesoslite.messages.mesos import ID, TaskInfo, TaskState, TaskStatus


async def main() -> None:
    url = f"http://{os.environ['MESOS_AGENT_ENDPOINT']}/api/v1/executor"
    ids = {"executor_id": ID(os.environ["MESOS_EXECUTOR_ID"]),
           "framework_id": ID(os.environ["MESOS_FRAMEWORK_ID"])}
    async with aiohttp.ClientSession() as session:

        async def update(task: TaskInfo, state: TaskState) -> None:
            status = TaskStatus(task_id=task.task_id, state=state, uuid=uuid.uuid4().bytes,
                                timestamp=time.time())
            body = ex.encode_call(ex.Call(**ids, type=ex.CallType.UPDATE,
                                          update=ex.Update(status=status)))
            async with session.post(url, data=body,
                                    headers={"Content-Type": "application/json"}):
                pass

        async def run(task: TaskInfo) -> None:
            await update(task, TaskState.TASK_RUNNING)
            await asyncio.sleep(float(task.data or b"0.1"))
            await update(task, TaskState.TASK_FINISHED)

        body = ex.encode_call(ex.Call(**ids, type=ex.CallType.SUBSCRIBE,
                                      subscribe=ex.Subscribe()))
        running = set()
        async with session.post(url, data=body,
                                headers={"Content-Type": "application/json"}) as stream:
            while line := await stream.content.readline():
                event = ex.decode_event(await stream.content.readexactly(int(line)))
                if event.type == ex.EventType.LAUNCH and event.launch is not None:
                    job = asyncio.create_task(run(event.launch.task))
                    running.add(job)
                    job.add_done_callback(running.discard)
                elif event.type == ex.EventType.SHUTDOWN:
                    return


if __name__ == "__main__":
    asyncio.run(main())
