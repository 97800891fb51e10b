"""An executor that speaks the v1 executor HTTP API with nothing but aiohttp, for
the agent's protocol tests (independent of ``mesoslite.executor``).

Each task's ``data`` says what to do with it: ``finish`` (RUNNING, then FINISHED
with the data echoed), ``run`` (RUNNING until killed), ``crash`` (RUNNING, then the
executor exits with status 3).  A framework message comes back prefixed with
``echo:``.  On a broken stream it re-subscribes, with its unacknowledged updates
and tasks, until MESOS_RECOVERY_TIMEOUT (or, with RAW_EXECUTOR_STAY_AWAY set, never
does).  With RAW_EXECUTOR_PROTOBUF set it speaks protobuf both ways (the classes
generated from mesoslite/proto).  It writes what it does to stdout.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

import aiohttp
import msgspec
from google.protobuf import json_format

from mesoslite.messages import executor as ex
from mesoslite.messages.mesos import ID, TaskInfo, TaskState, TaskStatus
from mesoslite.proto.mesos.v1.executor import executor_pb2

PROTOBUF = bool(os.environ.get("RAW_EXECUTOR_PROTOBUF"))
MEDIA_TYPE = "application/x-protobuf" if PROTOBUF else "application/json"


def encode(call: ex.Call) -> bytes:
    if not PROTOBUF:
        return ex.encode_call(call)
    return json_format.ParseDict(msgspec.to_builtins(call), executor_pb2.Call()
                                 ).SerializeToString()


def decode(record: bytes) -> ex.Event:
    if not PROTOBUF:
        return ex.decode_event(record)
    data = json_format.MessageToDict(executor_pb2.Event.FromString(record),
                                     preserving_proto_field_name=True)
    return msgspec.convert(data, ex.Event, strict=False)  # 64-bit ints come as strings


class RawExecutor:
    def __init__(self) -> None:
        self.url = f"http://{os.environ['MESOS_AGENT_ENDPOINT']}/api/v1/executor"
        self.executor_id = ID(os.environ["MESOS_EXECUTOR_ID"])
        self.framework_id = ID(os.environ["MESOS_FRAMEWORK_ID"])
        self.token = os.environ.get("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "")
        self.unacked: dict[bytes, ex.Update] = {}
        self.tasks: dict[str, TaskInfo] = {}  # every task it was given
        self.unacked_tasks: dict[str, TaskInfo] = {}  # given, no update acknowledged yet
        self.session: aiohttp.ClientSession | None = None
        self.lost_since: float | None = None

    def call(self, type_: ex.CallType, **fields: object) -> bytes:
        return encode(ex.Call(executor_id=self.executor_id, framework_id=self.framework_id,
                              type=type_, **fields))  # type: ignore[arg-type]

    async def post(self, body: bytes) -> None:
        assert self.session is not None
        async with self.session.post(self.url, data=body, headers={
                "Content-Type": MEDIA_TYPE,
                "Authorization": f"Bearer {self.token}"}) as response:
            if response.status != 202:
                print("call refused:", response.status, await response.text(), flush=True)

    async def update(self, task: TaskInfo, state: TaskState, data: bytes | None = None
                     ) -> None:
        status = TaskStatus(task_id=task.task_id, state=state, data=data,
                            uuid=uuid.uuid4().bytes, timestamp=time.time())
        update = ex.Update(status=status)
        self.unacked[status.uuid] = update  # type: ignore[index]
        await self.post(self.call(ex.CallType.UPDATE, update=update))

    async def on_event(self, event: ex.Event) -> bool:
        """Act on one event; False to leave."""
        print("event", event.type.value, flush=True)
        if event.type == ex.EventType.SUBSCRIBED:
            self.lost_since = None
        if event.type == ex.EventType.LAUNCH:
            assert event.launch is not None
            task = event.launch.task
            self.tasks[task.task_id.value] = task
            self.unacked_tasks[task.task_id.value] = task
            what = (task.data or b"run").decode()
            await self.update(task, TaskState.TASK_RUNNING)
            if what == "finish":
                await self.update(task, TaskState.TASK_FINISHED, data=task.data)
            elif what == "crash":
                os._exit(3)
        elif event.type == ex.EventType.KILL:
            assert event.kill is not None
            task = self.tasks.get(event.kill.task_id.value)
            if task is not None:
                await self.update(task, TaskState.TASK_KILLED)
        elif event.type == ex.EventType.ACKNOWLEDGED:
            assert event.acknowledged is not None
            acked = self.unacked.pop(event.acknowledged.uuid, None)
            if acked is not None:
                self.unacked_tasks.pop(acked.status.task_id.value, None)
        elif event.type == ex.EventType.MESSAGE:
            assert event.message is not None
            await self.post(self.call(ex.CallType.MESSAGE, message=ex.Message(
                data=b"echo:" + event.message.data)))
        elif event.type == ex.EventType.SHUTDOWN:
            return False
        return True

    async def subscribe_once(self) -> bool:
        """One subscription; True when told to shut down."""
        assert self.session is not None
        body = self.call(ex.CallType.SUBSCRIBE, subscribe=ex.Subscribe(
            unacknowledged_tasks=list(self.unacked_tasks.values()),
            unacknowledged_updates=list(self.unacked.values())))
        async with self.session.post(self.url, data=body, headers={
                "Content-Type": MEDIA_TYPE, "Accept": MEDIA_TYPE,
                "Authorization": f"Bearer {self.token}"}) as response:
            if response.status != 200:
                print("subscribe refused:", response.status, await response.text(), flush=True)
                return False
            if response.headers.get("Content-Type") != MEDIA_TYPE:
                print("stream in", response.headers.get("Content-Type"), flush=True)
                os._exit(4)  # not the encoding it asked for
            while True:
                line = await response.content.readline()
                if not line:
                    return False
                record = await response.content.readexactly(int(line))
                if not await self.on_event(decode(record)):
                    return True

    async def run(self) -> int:
        print("started pid", os.getpid(), flush=True)
        text = os.environ.get("MESOS_RECOVERY_TIMEOUT", "")
        recovery = float(text.removesuffix("secs")) if text.endswith("secs") else 900.0
        async with aiohttp.ClientSession() as self.session:
            while True:
                try:
                    if await self.subscribe_once():
                        return 0
                except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
                    print("agent unreachable:", exc, flush=True)
                if os.environ.get("RAW_EXECUTOR_STAY_AWAY"):
                    print("staying away", flush=True)  # never re-subscribes
                    await asyncio.sleep(3600)
                now = time.monotonic()
                self.lost_since = self.lost_since or now
                if now - self.lost_since > recovery:
                    return 1
                await asyncio.sleep(0.1)


if __name__ == "__main__":
    sys.exit(asyncio.run(RawExecutor().run()))
