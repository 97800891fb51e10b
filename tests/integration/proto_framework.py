"""A Mesos framework that speaks only protobuf, with nothing but the standard library
and classes generated from .proto files: what a C++, Java or Go client sends.

    python -m tests.integration.proto_framework MASTER_URL PACKAGE

PACKAGE is where the generated modules are: ``mesoslite.proto.mesos.v1`` (the
project's) or ``mesos.v1`` (generated from Mesos' own files, on PYTHONPATH).  It
subscribes, launches one command task (``echo``) into the first offer that fits,
declines the others, acknowledges every update that carries a uuid, and exits 0 once
TASK_FINISHED is acknowledged.  Each step is one JSON line on stdout.
"""

from __future__ import annotations

import http.client
import importlib
import json
import sys
from typing import Any
from urllib.parse import urlsplit

PROTOBUF = "application/x-protobuf"


class ProtoFramework:
    def __init__(self, master: str, package: str) -> None:
        self.mesos = importlib.import_module(f"{package}.mesos_pb2")
        self.sched = importlib.import_module(f"{package}.scheduler.scheduler_pb2")
        self.host = urlsplit(master).netloc
        self.framework_id: Any = None
        self.stream_id = ""
        self.launched = False
        self.calls = http.client.HTTPConnection(self.host, timeout=30)

    def say(self, **fields: object) -> None:
        print(json.dumps(fields), flush=True)

    def post(self, call: Any) -> None:
        self.calls.request("POST", "/api/v1/scheduler", body=call.SerializeToString(),
                           headers={"Content-Type": PROTOBUF, "Accept": PROTOBUF,
                                    "Mesos-Stream-Id": self.stream_id})
        response = self.calls.getresponse()
        body = response.read()
        if response.status != 202:
            raise SystemExit(f"{self.sched.Call.Type.Name(call.type)} answered "
                             f"{response.status}: {body!r}")

    def call(self, kind: str) -> Any:
        call = self.sched.Call(type=self.sched.Call.Type.Value(kind))
        call.framework_id.CopyFrom(self.framework_id)
        return call

    def run(self) -> int:
        subscribe = self.sched.Call(type=self.sched.Call.SUBSCRIBE)
        info = subscribe.subscribe.framework_info
        info.user, info.name = "nobody", "protobuf-framework"
        stream = http.client.HTTPConnection(self.host, timeout=30)
        stream.request("POST", "/api/v1/scheduler", body=subscribe.SerializeToString(),
                       headers={"Content-Type": PROTOBUF, "Accept": PROTOBUF})
        response = stream.getresponse()
        if response.status != 200:
            raise SystemExit(f"SUBSCRIBE answered {response.status}: {response.read()!r}")
        self.say(step="subscribed", content_type=response.getheader("Content-Type"),
                 generated=self.sched.__file__)
        self.stream_id = response.getheader("Mesos-Stream-Id")
        while True:
            event = self.sched.Event.FromString(_record(response))
            if self.on_event(event):
                return 0

    def on_event(self, event: Any) -> bool:
        """Act on one event; True when the task's end is acknowledged."""
        kind = self.sched.Event.Type.Name(event.type)
        if kind == "SUBSCRIBED":
            self.framework_id = event.subscribed.framework_id
            self.say(step="SUBSCRIBED", framework_id=self.framework_id.value)
        elif kind == "OFFERS":
            for offer in event.offers.offers:
                self.answer_offer(offer)
        elif kind == "UPDATE":
            status = event.update.status
            state = self.mesos.TaskState.Name(status.state)
            self.say(step="UPDATE", task=status.task_id.value, state=state)
            if status.HasField("uuid"):
                ack = self.call("ACKNOWLEDGE")
                ack.acknowledge.agent_id.CopyFrom(status.agent_id)
                ack.acknowledge.task_id.CopyFrom(status.task_id)
                ack.acknowledge.uuid = status.uuid
                self.post(ack)
                self.say(step="ACKNOWLEDGED", state=state)
                return state == "TASK_FINISHED"
        elif kind == "ERROR":
            raise SystemExit(f"ERROR event: {event.error.message}")
        return False

    def answer_offer(self, offer: Any) -> None:
        cpus = sum(r.scalar.value for r in offer.resources if r.name == "cpus")
        if self.launched or cpus < 0.1:
            decline = self.call("DECLINE")
            decline.decline.offer_ids.add().CopyFrom(offer.id)
            self.post(decline)
            return
        accept = self.call("ACCEPT")
        accept.accept.offer_ids.add().CopyFrom(offer.id)
        operation = accept.accept.operations.add(type=self.mesos.Offer.Operation.LAUNCH)
        task = operation.launch.task_infos.add(name="proto-task")
        task.task_id.value = "proto-task"
        task.agent_id.CopyFrom(offer.agent_id)
        task.command.value = "echo hello from protobuf"
        for name, amount in (("cpus", 0.1), ("mem", 16.0)):
            resource = task.resources.add(name=name, type=self.mesos.Value.SCALAR)
            resource.scalar.value = amount
        self.post(accept)
        self.launched = True
        self.say(step="ACCEPT", offer=offer.id.value, ports=_ports(offer))


def _ports(offer: Any) -> list[list[int]]:
    """The offer's port ranges (uint64 on the wire), to show they arrive as numbers."""
    return [[r.begin, r.end] for resource in offer.resources if resource.name == "ports"
            for r in resource.ranges.range]


def _record(response: http.client.HTTPResponse) -> bytes:
    """One RecordIO record: the length in ASCII digits, a newline, the bytes."""
    digits = b""
    while (char := response.read(1)) != b"\n":
        if not char:
            raise SystemExit("the master closed the stream")
        digits += char
    return response.read(int(digits))


if __name__ == "__main__":
    sys.exit(ProtoFramework(sys.argv[1], sys.argv[2]).run())
