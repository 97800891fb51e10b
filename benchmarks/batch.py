"""Batch throughput: N one-second tasks on the local cluster beside ``xargs -P``.

The cluster is what ``mesoslite up`` runs: a master, agents and the batch framework
in one process and one event loop, real task processes (the process containerizer:
a supervisor per task, cgroups where available).  The agents together have exactly
``--slots`` task slots (``--slots x 0.1`` cpus and 32 MB per slot); one job of
``--tasks`` tasks, each ``sleep 1``, runs with parallelism ``--slots``.  The baseline
runs the same commands with ``xargs -P <slots>`` on the same machine.

Printed for each: wall time from submission to the last task's end, tasks/s, and
slot utilisation = (sum of the tasks' own run times) / (slots x wall time), where a
task's run time is measured the same way for both: from the moment the command
starts (it stamps the clock) to the moment it ends.  ``1 - utilisation`` is what
scheduling, launching and reporting cost.

    .venv/bin/python benchmarks/batch.py                 # 1,000 tasks, 20 slots
    .venv/bin/python benchmarks/batch.py --quick         # 200 tasks
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from frameworks.batch.server import BatchConfig, BatchServer
from mesoslite.resources import Resources
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.http import get_json, request

TASK_CPUS, TASK_MEM = 0.1, 32.0


def stamped(log_dir: Path) -> str:
    """A one-second task that records its own start and end (epoch seconds)."""
    return (f'echo "$(date +%s.%N) $(sleep 1; date +%s.%N)" '
            f'> {log_dir}/$BATCH_TASK_INDEX')


def busy_time(log_dir: Path) -> tuple[float, int]:
    total, n = 0.0, 0
    for f in log_dir.iterdir():
        parts = f.read_text().split()
        if len(parts) == 2:
            total += float(parts[1]) - float(parts[0])
            n += 1
    return total, n


async def run_cluster(tasks: int, slots: int, agents: int, work: Path) -> dict[str, float]:
    per_agent = slots // agents
    resources = Resources.parse(f"cpus:{per_agent * TASK_CPUS:.1f};mem:{per_agent * 64};"
                                "disk:1024;ports:[31000-31099]")
    spec = ClusterSpec(work_dir=work / "cluster", agents=agents, agent_resources=resources)
    cluster = LocalCluster(spec)
    await cluster.start()
    server = BatchServer(BatchConfig(masters=[cluster.master_url], work_dir=work / "batch",
                                     port=0))
    log_dir = work / "stamps-cluster"
    log_dir.mkdir()
    try:
        await server.start()
        while not server.subscribed:
            await asyncio.sleep(0.05)
        job = {"id": "bench", "completions": tasks, "cpus": TASK_CPUS, "mem": TASK_MEM,
               "command": stamped(log_dir)}
        await request("PUT", f"{server.url}/v1/jobs/bench", json=job)
        t0 = time.time()
        status, _, body = await request("POST", f"{server.url}/v1/jobs/bench/runs")
        assert status == 201, body
        run_id = __import__("json").loads(body)["id"]
        while True:
            run = await get_json(f"{server.url}/v1/runs/{run_id}")
            if run["state"] != "ACTIVE":
                break
            await asyncio.sleep(0.2)
        wall = max(a["finished_at"] for a in run["attempts"]) - t0
        assert run["state"] == "SUCCEEDED", run["message"]
        state = await get_json(cluster.master_url + "/master/state")
    finally:
        await cluster.stop(kill_tasks=True)
        await server.stop()
    busy, n = busy_time(log_dir)
    ends = {int(f.name): float(f.read_text().split()[1]) for f in log_dir.iterdir()
            if len(f.read_text().split()) == 2}
    starts = {int(f.name): float(f.read_text().split()[0]) for f in log_dir.iterdir()
              if len(f.read_text().split()) == 2}
    attempts = run["attempts"]
    staged = {t["id"]: t["statuses"][0]["timestamp"] for fw in state["frameworks"]
              for t in fw["tasks"] + fw["completed_tasks"] if t["statuses"]}
    framework = sorted(staged[a["id"]] - a["created_at"] for a in attempts if a["id"] in staged)
    cluster_side = sorted(starts[a["index"]] - staged[a["id"]] for a in attempts
                          if a["id"] in staged)
    launch = sorted(starts[a["index"]] - a["created_at"] for a in attempts)
    report_lag = sorted(a["finished_at"] - ends[a["index"]] for a in attempts)
    return {"wall": wall, "tasks": n, "busy": busy, "attempts": len(attempts),
            "launch_p50": launch[len(launch) // 2], "launch_p99": launch[len(launch) * 99 // 100],
            "report_p50": report_lag[len(report_lag) // 2],
            "report_p99": report_lag[len(report_lag) * 99 // 100],
            "passes": server.workload.passes,
            "framework_p50": framework[len(framework) // 2],
            "cluster_p50": cluster_side[len(cluster_side) // 2]}


def run_xargs(tasks: int, slots: int, work: Path) -> dict[str, float]:
    log_dir = work / "stamps-xargs"
    log_dir.mkdir()
    cmd = stamped(log_dir).replace("$BATCH_TASK_INDEX", "$1")
    t0 = time.time()
    subprocess.run(["xargs", "-P", str(slots), "-n", "1", "sh", "-c", cmd, "task"],
                   input="\n".join(str(i) for i in range(tasks)), text=True, check=True)
    wall = time.time() - t0
    busy, n = busy_time(log_dir)
    return {"wall": wall, "tasks": n, "busy": busy, "attempts": n}


def report(name: str, r: dict[str, float], slots: int) -> str:
    util = r["busy"] / (slots * r["wall"])
    return (f"{name:<22} {r['tasks']:>6.0f} {r['wall']:>9.1f} {r['tasks'] / r['wall']:>8.2f} "
            f"{util:>12.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="200 tasks")
    args = parser.parse_args()
    tasks = 200 if args.quick else args.tasks
    logging.basicConfig(level=logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="mesoslite-batch-bench-"))
    try:
        cluster = asyncio.run(run_cluster(tasks, args.slots, args.agents, work))
        baseline = run_xargs(tasks, args.slots, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{tasks} tasks of 'sleep 1', {args.slots} slots "
          f"(ideal: {tasks / args.slots:.0f} s, {args.slots:.0f} tasks/s)")
    print(f"{'':<22} {'tasks':>6} {'wall s':>9} {'tasks/s':>8} {'utilisation':>12}")
    print(report(f"mesoslite batch ({args.agents} ag.)", cluster, args.slots))
    print(report(f"xargs -P {args.slots}", baseline, args.slots))
    print(f"cluster: decision -> command start p50 {cluster['launch_p50'] * 1000:.0f} ms, "
          f"p99 {cluster['launch_p99'] * 1000:.0f} ms; command end -> framework knows p50 "
          f"{cluster['report_p50'] * 1000:.0f} ms, p99 {cluster['report_p99'] * 1000:.0f} ms; "
          f"{cluster['passes']:.0f} scheduling passes")
    print(f"  of which decision -> the master has the task (placement, commit, ACCEPT) p50 "
          f"{cluster['framework_p50'] * 1000:.0f} ms; master -> command start p50 "
          f"{cluster['cluster_p50'] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
