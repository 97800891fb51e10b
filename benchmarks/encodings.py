"""The two encodings on the launch path: a JSON framework against a protobuf one.

Each round starts a fresh master process (SQLite) and simulated agents (one more
process, ``mesoslite.testing.sim_agent``), then one framework client launches
``--tasks`` tasks as fast as offers allow (many per ACCEPT) and acknowledges every
update.  The client is the same thin HTTP client for both encodings: JSON builds
dicts and ``msgspec.json``; protobuf builds and parses the classes generated from
mesoslite/proto, as a C++ or Java client would.  Rounds run in ABBA order
(``--rounds`` times), so drift of the machine falls on both.

Printed per round and as medians per encoding: tasks/s (first ACCEPT to the last
TASK_RUNNING acknowledged) and the master's CPU per task (its user+system time over
the same span, from psutil), then the protobuf/JSON ratios.

    .venv/bin/python benchmarks/encodings.py                  # 50 agents x 2,000 tasks, ABBA x2
    .venv/bin/python benchmarks/encodings.py --quick          # 10 agents x 300 tasks, ABBA x1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.launch import AgentsProcess, MasterProcess
from mesoslite.proto.mesos.v1 import mesos_pb2
from mesoslite.proto.mesos.v1.scheduler import scheduler_pb2 as pb

JSON, PROTOBUF = "application/json", "application/x-protobuf"


@dataclass
class Offer:
    id: str
    agent_id: str
    cpus: float
    mem: float


@dataclass
class Update:
    task_id: str
    agent_id: str
    state: str
    uuid: bytes | None


class JsonCodec:
    media = JSON

    def subscribe(self) -> bytes:
        return msgspec.json.encode({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
            "user": "bench", "name": "encodings-json"}}})

    def launch(self, fid: str, offer: Offer, tasks: list[tuple[str, float, float]]) -> bytes:
        infos = [{"name": t, "task_id": {"value": t}, "agent_id": {"value": offer.agent_id},
                  "command": {"value": "sleep 3600"}, "resources": [
                      {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                      {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}}]}
                 for t, cpus, mem in tasks]
        return msgspec.json.encode({
            "type": "ACCEPT", "framework_id": {"value": fid}, "accept": {
                "offer_ids": [{"value": offer.id}], "filters": {"refuse_seconds": 0.0},
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": infos}}]}})

    def decline(self, fid: str, offer: Offer) -> bytes:
        return msgspec.json.encode({"type": "DECLINE", "framework_id": {"value": fid},
                                    "decline": {"offer_ids": [{"value": offer.id}],
                                                "filters": {"refuse_seconds": 3600.0}}})

    def acknowledge(self, fid: str, update: Update) -> bytes:
        return msgspec.json.encode({"type": "ACKNOWLEDGE", "framework_id": {"value": fid},
                                    "acknowledge": {"agent_id": {"value": update.agent_id},
                                                    "task_id": {"value": update.task_id},
                                                    "uuid": update.uuid}})

    def event(self, record: bytes) -> tuple[str, Any]:
        event = msgspec.json.decode(record)
        kind = event["type"]
        if kind == "SUBSCRIBED":
            return kind, event["subscribed"]["framework_id"]["value"]
        if kind == "OFFERS":
            return kind, [Offer(o["id"]["value"], o["agent_id"]["value"],
                                *_scalars(o["resources"])) for o in event["offers"]["offers"]]
        if kind == "UPDATE":
            s = event["update"]["status"]
            uuid = s.get("uuid")
            return kind, Update(s["task_id"]["value"], s["agent_id"]["value"], s["state"],
                                msgspec.convert(uuid, bytes) if uuid else None)
        return kind, None


def _scalars(resources: list[dict[str, Any]]) -> tuple[float, float]:
    found = {r["name"]: r["scalar"]["value"] for r in resources if "scalar" in r}
    return found.get("cpus", 0.0), found.get("mem", 0.0)


class ProtobufCodec:
    media = PROTOBUF

    def subscribe(self) -> bytes:
        call = pb.Call(type=pb.Call.SUBSCRIBE)
        call.subscribe.framework_info.user = "bench"
        call.subscribe.framework_info.name = "encodings-protobuf"
        return call.SerializeToString()

    def _call(self, kind: int, fid: str) -> Any:
        call = pb.Call(type=kind)
        call.framework_id.value = fid
        return call

    def launch(self, fid: str, offer: Offer, tasks: list[tuple[str, float, float]]) -> bytes:
        call = self._call(pb.Call.ACCEPT, fid)
        call.accept.offer_ids.add(value=offer.id)
        call.accept.filters.refuse_seconds = 0.0
        launch = call.accept.operations.add(type=mesos_pb2.Offer.Operation.LAUNCH).launch
        for name, cpus, mem in tasks:
            task = launch.task_infos.add(name=name)
            task.task_id.value, task.agent_id.value = name, offer.agent_id
            task.command.value = "sleep 3600"
            task.resources.add(name="cpus", type=mesos_pb2.Value.SCALAR).scalar.value = cpus
            task.resources.add(name="mem", type=mesos_pb2.Value.SCALAR).scalar.value = mem
        return call.SerializeToString()

    def decline(self, fid: str, offer: Offer) -> bytes:
        call = self._call(pb.Call.DECLINE, fid)
        call.decline.offer_ids.add(value=offer.id)
        call.decline.filters.refuse_seconds = 3600.0
        return call.SerializeToString()

    def acknowledge(self, fid: str, update: Update) -> bytes:
        call = self._call(pb.Call.ACKNOWLEDGE, fid)
        ack = call.acknowledge
        ack.agent_id.value, ack.task_id.value, ack.uuid = (
            update.agent_id, update.task_id, update.uuid)
        return call.SerializeToString()

    def event(self, record: bytes) -> tuple[str, Any]:
        event = pb.Event.FromString(record)
        kind = pb.Event.Type.Name(event.type)
        if kind == "SUBSCRIBED":
            return kind, event.subscribed.framework_id.value
        if kind == "OFFERS":
            out = []
            for o in event.offers.offers:
                found = {r.name: r.scalar.value for r in o.resources if r.HasField("scalar")}
                out.append(Offer(o.id.value, o.agent_id.value, found.get("cpus", 0.0),
                                 found.get("mem", 0.0)))
            return kind, out
        if kind == "UPDATE":
            s = event.update.status
            return kind, Update(s.task_id.value, s.agent_id.value,
                                mesos_pb2.TaskState.Name(s.state),
                                s.uuid if s.HasField("uuid") else None)
        return kind, None


class Launcher:
    """One framework: launches ``total`` tasks and acknowledges every update."""

    def __init__(self, url: str, codec: JsonCodec | ProtobufCodec, total: int,
                 per_offer: int) -> None:
        self.url, self.codec, self.total, self.per_offer = url, codec, total, per_offer
        self.launched = 0
        self.running: set[str] = set()
        self.first_accept = 0.0
        self.done = asyncio.Event()
        self.errors: list[str] = []
        self.pending: set[asyncio.Task[None]] = set()
        self.fid = ""
        self.stream_id = ""

    async def run(self, session: aiohttp.ClientSession) -> None:
        headers = {"Content-Type": self.codec.media, "Accept": self.codec.media}
        async with session.post(self.url, data=self.codec.subscribe(), headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            self.stream_id = resp.headers["Mesos-Stream-Id"]
            while True:  # until cancelled, after the last acknowledgements
                length = int(await resp.content.readline())
                kind, payload = self.codec.event(await resp.content.readexactly(length))
                self.on_event(session, kind, payload)

    def post(self, session: aiohttp.ClientSession, body: bytes) -> None:
        async def send() -> None:
            async with session.post(self.url, data=body, headers={
                    "Content-Type": self.codec.media, "Mesos-Stream-Id": self.stream_id}) as r:
                if r.status != 202:
                    self.errors.append(f"{r.status}: {await r.text()}")
        task = asyncio.get_running_loop().create_task(send())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def on_event(self, session: aiohttp.ClientSession, kind: str, payload: Any) -> None:
        if kind == "SUBSCRIBED":
            self.fid = payload
        elif kind == "OFFERS":
            for offer in payload:
                n = min(self.per_offer, self.total - self.launched,
                        int(offer.cpus / 0.1 + 1e-9), int(offer.mem / 32 + 1e-9))
                if n <= 0:
                    self.post(session, self.codec.decline(self.fid, offer))
                    continue
                tasks = [(f"t{i}", 0.1, 32.0) for i in range(self.launched, self.launched + n)]
                self.launched += n
                self.first_accept = self.first_accept or time.perf_counter()
                self.post(session, self.codec.launch(self.fid, offer, tasks))
        elif kind == "UPDATE":
            if payload.uuid:
                self.post(session, self.codec.acknowledge(self.fid, payload))
            if payload.state == "TASK_RUNNING":
                self.running.add(payload.task_id)
                if len(self.running) >= self.total:
                    self.done.set()
            elif payload.state not in ("TASK_STAGING", "TASK_STARTING"):
                self.errors.append(f"{payload.task_id}: {payload.state}")


async def one_round(codec: JsonCodec | ProtobufCodec, opts: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="mesoslite-encodings-") as tmp:
        master = MasterProcess(Path(tmp), opts.allocation_interval)
        await master.start()
        agents = AgentsProcess(master.url, opts.agents, 10.0)
        try:
            await agents.start()
            per_offer = max(1, -(-opts.tasks // opts.agents))
            launcher = Launcher(master.url + "/api/v1/scheduler", codec, opts.tasks, per_offer)
            async with aiohttp.ClientSession() as session:
                cpu0 = master.cpu_seconds()
                run = asyncio.create_task(launcher.run(session))
                await asyncio.wait_for(launcher.done.wait(), opts.timeout)
                end = time.perf_counter()
                cpu = master.cpu_seconds() - cpu0
                if launcher.pending:  # the last acknowledgements, before the stream closes
                    await asyncio.wait(set(launcher.pending), timeout=10)
                run.cancel()
        finally:
            await agents.stop()
            await master.stop()
    seconds = end - launcher.first_accept
    return {"encoding": codec.media, "tasks_per_second": opts.tasks / seconds,
            "master_cpu_ms_per_task": 1000 * cpu / opts.tasks, "errors": launcher.errors}


async def run(opts: argparse.Namespace) -> None:
    order = [JsonCodec, ProtobufCodec, ProtobufCodec, JsonCodec] * opts.rounds
    results = []
    print(f"{opts.agents} simulated agents, {opts.tasks} tasks per round, order "
          + " ".join("J" if c is JsonCodec else "P" for c in order))
    for codec in order:
        result = await one_round(codec(), opts)
        results.append(result)
        errors = f"  errors: {result['errors'][:3]}" if result["errors"] else ""
        print(f"  {result['encoding']:24} {result['tasks_per_second']:8.1f} tasks/s"
              f"  master {result['master_cpu_ms_per_task']:6.3f} ms CPU/task{errors}", flush=True)
    medians = {}
    for media in (JSON, PROTOBUF):
        mine = [r for r in results if r["encoding"] == media]
        medians[media] = (statistics.median(r["tasks_per_second"] for r in mine),
                          statistics.median(r["master_cpu_ms_per_task"] for r in mine))
        print(f"median {media:24} {medians[media][0]:8.1f} tasks/s"
              f"  master {medians[media][1]:6.3f} ms CPU/task")
    (jt, jc), (pt, pc) = medians[JSON], medians[PROTOBUF]
    print(f"protobuf / JSON: tasks/s x{pt / jt:.2f}, master CPU per task x{pc / jc:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, default=50)
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=2, help="ABBA repetitions")
    p.add_argument("--quick", action="store_true", help="10 agents x 300 tasks, ABBA once")
    p.add_argument("--allocation-interval", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=600.0, help="per round (s)")
    opts = p.parse_args(argv)
    if opts.quick:
        opts.agents, opts.tasks, opts.rounds = 10, 300, 1
    asyncio.run(run(opts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
