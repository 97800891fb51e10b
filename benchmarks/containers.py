"""Container launch: mesoslite vs the raw docker SDK vs a Docker Swarm service.

Launches ``--count`` (50) busybox ``sleep`` containers on the local engine three ways,
one after the other in one run, cleaning up after each:

1. **mesoslite** - an in-process cluster (one master, one agent with the docker
   containerizer) and a small framework that puts every task into one ACCEPT as soon
   as an offer arrives.  Per task: submit (the ACCEPT call) to its TASK_RUNNING update
   arriving at the framework.
2. **raw SDK** - ``APIClient.create_container`` + ``start`` for every container from a
   thread pool as wide as the agent's engine pool (``ENGINE_WORKERS``: the same
   parallelism), the same image, command, limits and network.  Per container: submit
   to ``start`` returning.
3. **swarm** - one replicated service with ``--count`` replicas, the same limits;
   from ``services.create`` until every task reports ``running`` (polled every 50 ms).
   The engine is made a swarm manager (``docker swarm init --advertise-addr
   127.0.0.1``) if it is not one, and leaves the swarm at the end in that case only.

Prints time to all running, containers/s, the ratios mesoslite/raw and
mesoslite/swarm (times: > 1 means mesoslite is slower), and p50/p99 submit-to-RUNNING
for mesoslite against raw create+start.  Needs a Docker engine and busybox-static.

    .venv/bin/python benchmarks/containers.py [--count 50]
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.types import Resources as SwarmResources
from docker.types import ServiceMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mesoslite.agent.containerizers.docker_container import ENGINE_WORKERS
from mesoslite.agent.containerizers.docker_spec import LABEL_RUNTIME_ID
from mesoslite.master.core import MasterConfig
from mesoslite.messages.mesos import (
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    DurationInfo,
    Filters,
    FrameworkInfo,
    KillPolicy,
    Offer,
    TaskInfo,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import Driver, Scheduler, offer_resources, task_info
from mesoslite.testing.cluster import ClusterSpec, LocalCluster

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "mesoslite/busybox:latest"
COMMAND = ["sleep", "3600"]
CPUS, MEM_MB = 0.1, 32.0
BENCH_LABEL = "mesoslite.benchmark"


@dataclass
class Result:
    name: str
    total: float  # seconds from the first submit to the last container running
    latencies: list[float] = field(default_factory=list)  # per container, seconds

    def rate(self, count: int) -> float:
        return count / self.total if self.total else float("nan")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# -------------------------------------------------------------------- mesoslite


class LaunchAll(Scheduler):
    """Launches ``count`` docker tasks in one ACCEPT; records submit and RUNNING times."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.submitted_at = 0.0
        self.running_at: dict[str, float] = {}
        self.failed: dict[str, str] = {}
        self.done = asyncio.Event()
        self._launched = False

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        for offer in offers:
            if self._launched or not self._fits(offer):
                await driver.decline([offer.id], refuse_seconds=3600)
                continue
            self._launched = True
            tasks = [self._task(offer, i) for i in range(self.count)]
            self.submitted_at = time.perf_counter()
            await driver.launch([offer.id], tasks, Filters(refuse_seconds=3600))

    def _fits(self, offer: Offer) -> bool:
        return Resources.of(cpus=CPUS * self.count, mem=MEM_MB * self.count) <= \
            offer_resources(offer)

    def _task(self, offer: Offer, i: int) -> TaskInfo:
        docker_info = DockerInfo(image=IMAGE, network=DockerNetwork.BRIDGE)
        task = task_info(f"bench-{i}", f"bench-{i}", offer.agent_id, argv=COMMAND, cpus=CPUS,
                         mem=MEM_MB, container=ContainerInfo(type=ContainerType.DOCKER,
                                                             docker=docker_info))
        # `sleep` as pid 1 ignores SIGTERM: no grace period, so the cleanup is quick.
        task.kill_policy = KillPolicy(grace_period=DurationInfo(nanoseconds=0))
        return task

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        tid = status.task_id.value
        if status.state == TaskState.TASK_RUNNING:
            self.running_at.setdefault(tid, time.perf_counter())
        elif status.state.terminal and tid not in self.running_at:
            self.failed[tid] = f"{status.state.value}: {status.message}"
        if len(self.running_at) + len(self.failed) >= self.count:
            self.done.set()


async def run_mesoslite(count: int, work_dir: Path) -> Result:
    spec = ClusterSpec(
        work_dir=work_dir, agents=1, containerizers=["docker"],
        agent_resources=Resources.parse("cpus:64;mem:65536;disk:1024;ports:[29000-29099]"),
        master_config=MasterConfig(allocation_interval=0.05))
    cluster = LocalCluster(spec)
    await cluster.start()
    sched = LaunchAll(count)
    driver = Driver(sched, FrameworkInfo(user=getpass.getuser(), name="containers-bench"),
                    cluster.master_url)
    run = asyncio.create_task(driver.run())
    try:
        await asyncio.wait_for(sched.done.wait(), 600)
        if sched.failed:
            raise RuntimeError(f"{len(sched.failed)} tasks failed, e.g. "
                               f"{next(iter(sched.failed.values()))}")
        ends = [t - sched.submitted_at for t in sched.running_at.values()]
        return Result("mesoslite", max(ends), ends)
    finally:
        await cluster.stop(kill_tasks=True)  # the framework still acknowledges
        driver.stop()
        await asyncio.gather(run, return_exceptions=True)
        rid = (work_dir / "agent1" / "runtime_id").read_text().strip()
        remove_labelled(f"{LABEL_RUNTIME_ID}={rid}")


# -------------------------------------------------------------------- raw SDK


def run_raw(count: int, run_id: str) -> Result:
    api = docker.APIClient(version="auto", max_pool_size=64)
    host_config = api.create_host_config(
        network_mode="bridge", cpu_period=100_000, cpu_quota=int(CPUS * 100_000),
        cpu_shares=int(CPUS * 1024), mem_limit=int(MEM_MB * 2**20),
        memswap_limit=int(MEM_MB * 2**20))

    def one(i: int) -> float:
        created = api.create_container(IMAGE, COMMAND, name=f"bench-raw-{run_id}-{i}",
                                       labels={BENCH_LABEL: run_id}, host_config=host_config)
        api.start(created["Id"])
        return time.perf_counter()

    try:
        with ThreadPoolExecutor(max_workers=ENGINE_WORKERS) as pool:
            start = time.perf_counter()
            ends = [t - start for t in pool.map(one, range(count))]
        return Result("raw SDK", max(ends), ends)
    finally:
        remove_labelled(f"{BENCH_LABEL}={run_id}")
        api.close()


# -------------------------------------------------------------------- swarm


def run_swarm(count: int, run_id: str) -> Result | str:
    client = docker.from_env()
    state = client.info().get("Swarm", {})
    joined_here = False
    had_gwbridge = bool(client.api.networks(names=["docker_gwbridge"]))
    if state.get("LocalNodeState") == "inactive":
        client.swarm.init(advertise_addr="127.0.0.1")
        joined_here = True
    elif not state.get("ControlAvailable"):
        return "skipped: this engine is in a swarm but not a manager"
    try:
        return _swarm_service(client, count, run_id)
    finally:
        if joined_here:  # leave the engine as it was: no swarm, no gateway bridge
            client.swarm.leave(force=True)
            if not had_gwbridge:
                for net in client.api.networks(names=["docker_gwbridge"]):
                    client.api.remove_network(net["Id"])
        client.close()


def _swarm_service(client: docker.DockerClient, count: int, run_id: str) -> Result:
    service = None
    try:
        start = time.perf_counter()
        service = client.services.create(
            IMAGE, COMMAND, name=f"bench-swarm-{run_id}", labels={BENCH_LABEL: run_id},
            mode=ServiceMode("replicated", replicas=count),
            resources=SwarmResources(cpu_limit=int(CPUS * 1e9),
                                     mem_limit=int(MEM_MB * 2**20)))
        running_at: dict[str, float] = {}
        deadline = start + 600
        while len(running_at) < count:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"swarm: only {len(running_at)} of {count} running")
            for task in service.tasks(filters={"desired-state": "running"}):
                if task["Status"]["State"] == "running":
                    running_at.setdefault(task["ID"], time.perf_counter() - start)
            time.sleep(0.05)
        ends = sorted(running_at.values())[:count]
        return Result("swarm", max(ends), ends)
    finally:
        if service is not None:
            service.remove()
            wait_gone(client, f"com.docker.swarm.service.name=bench-swarm-{run_id}")


# -------------------------------------------------------------------- helpers


def remove_labelled(label: str) -> None:
    api = docker.APIClient(version="auto")
    try:
        for c in api.containers(all=True, filters={"label": label}):
            try:
                api.remove_container(c["Id"], force=True, v=True)
            except docker.errors.NotFound:
                pass
    finally:
        api.close()


def wait_gone(client: docker.DockerClient, label: str, timeout: float = 120) -> None:
    """Until the swarm has removed the service's containers (then force the rest)."""
    deadline = time.monotonic() + timeout
    while client.api.containers(all=True, filters={"label": label}):
        if time.monotonic() > deadline:
            remove_labelled(label)
            return
        time.sleep(0.2)


def report(count: int, results: list[Result], swarm_note: str | None) -> str:
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows = [(f"{count} busybox sleep containers, engine parallelism {ENGINE_WORKERS}, "
             f"{os.cpu_count()} cpus, load average at the end {load}"), "",
            f"{'':12}{'all running':>13}{'containers/s':>14}{'p50':>9}{'p99':>9}"]
    for r in results:
        rows.append(f"{r.name:12}{r.total:12.2f}s{r.rate(count):14.1f}"
                    f"{percentile(r.latencies, 50):8.2f}s{percentile(r.latencies, 99):8.2f}s")
    if swarm_note:
        rows.append(f"{'swarm':12}{swarm_note}")
    by = {r.name: r for r in results}
    mesos = by["mesoslite"]
    rows.append("")
    rows.append(f"mesoslite/raw   time ratio {mesos.total / by['raw SDK'].total:.2f}x")
    if "swarm" in by:
        rows.append(f"mesoslite/swarm time ratio {mesos.total / by['swarm'].total:.2f}x")
    rows.append(f"submit-to-RUNNING p50/p99: mesoslite "
                f"{percentile(mesos.latencies, 50):.2f}/{percentile(mesos.latencies, 99):.2f}s"
                f" vs raw create+start {percentile(by['raw SDK'].latencies, 50):.2f}/"
                f"{percentile(by['raw SDK'].latencies, 99):.2f}s")
    rows.append("(swarm p50/p99: service create to each task seen running, 50 ms polls)")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args()
    # The driver's warning when the cluster stops under it is expected here.
    logging.getLogger("mesoslite.scheduler").setLevel(logging.ERROR)
    subprocess.run([str(ROOT / "scripts" / "build-test-image")], check=True)
    run_id = uuid.uuid4().hex[:8]
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="mesoslite-bench-") as tmp:
        results.append(asyncio.run(run_mesoslite(args.count, Path(tmp))))
    results.append(run_raw(args.count, run_id))
    swarm = run_swarm(args.count, run_id)
    note = swarm if isinstance(swarm, str) else None
    if isinstance(swarm, Result):
        results.append(swarm)
    print(report(args.count, results, note))


if __name__ == "__main__":
    main()
