"""Pipelines on a real cluster: DAG order, skip on failure, allow_failure, gangs."""

from __future__ import annotations

from mesoslite.resources import Resources
from mesoslite.testing.poll import wait_for
from tests.batch.conftest import api, attempts_of, get_run, step_of, submit, wait_run


async def test_steps_run_in_dag_order_and_failure_skips_dependants(batch_env, tmp_path):
    log = tmp_path / "order.log"
    server = await batch_env.server(await batch_env.cluster())

    def step(name, deps=(), cmd=None, **extra):
        return {"name": name, "depends_on": list(deps),
                "command": cmd or f"echo {name}-$BATCH_TASK_INDEX >> {log}", **extra}

    job = {"id": "ci", "cpus": 0.25, "steps": [
        step("lint"),
        step("test", ["lint"], completions=3),
        step("docs", ["lint"], cmd="exit 1", allow_failure=True),
        step("package", ["test", "docs"], cmd="exit 7"),
        step("deploy", ["package"]),
        step("notify", ["docs"]),
    ]}
    done = await wait_run(server, (await submit(server, job))["id"])
    states = {s["name"]: s["state"] for s in done["steps"]}
    assert states == {"lint": "SUCCEEDED", "test": "SUCCEEDED", "docs": "FAILED",
                      "package": "FAILED", "deploy": "SKIPPED", "notify": "SUCCEEDED"}
    assert done["state"] == "FAILED" and "package" in done["message"]
    assert attempts_of(done, "deploy") == []
    lines = log.read_text().split()
    assert lines[0] == "lint-0"
    assert sorted(lines[1:4]) == ["test-0", "test-1", "test-2"] or "notify-0" in lines[1:5]
    assert lines.index("lint-0") < min(lines.index(f"test-{i}") for i in range(3))
    assert "deploy-0" not in lines
    # Every step started only after its dependencies had finished.
    ends = {s["name"]: s["finished_at"] for s in done["steps"]}
    for s in job["steps"]:
        mine = attempts_of(done, s["name"])
        for dep in s["depends_on"]:
            assert all(a["created_at"] >= ends[dep] for a in mine)


async def test_gang_starts_all_or_nothing(batch_env, tmp_path):
    # Two agents of 2 cpus: 4 cpus in all.
    cluster = await batch_env.cluster(agents=2)
    server = await batch_env.server(cluster)
    go = tmp_path / "go"
    blocker = await submit(server, {"id": "blocker", "cpus": 1,
                                    "command": f"while [ ! -f {go} ]; do sleep 0.05; done"})

    async def blocker_running() -> bool:
        return any(a["state"] == "RUNNING" for a in (await get_run(server, blocker["id"]))[
            "attempts"])

    await wait_for(blocker_running, 20)
    # 4 x 1 cpu: only 3 cpus are free, so none of the four may start.
    gang = await submit(server, {"id": "mpi", "gang": True, "completions": 4, "cpus": 1,
                                 "command": "echo $BATCH_TASK_INDEX; sleep 0.2"})

    async def explained() -> dict | None:
        _, queue = await api(server, "GET", "/mesoslite/v1/queue")
        entries = [e for e in queue["queue"] if e["run"] == gang["id"]]
        return entries[0] if entries and "gang of 4" in entries[0]["why"] else None

    entry = await wait_for(explained, 20, message="the queue to say why the gang waits")
    assert entry["gang"] and entry["tasks"] == [0, 1, 2, 3]
    for _ in range(5):  # stays so over several passes
        assert attempts_of(await get_run(server, gang["id"])) == []
        await wait_for(lambda: server.workload.passes > 0, 5)
    go.touch()
    done = await wait_run(server, gang["id"])
    assert done["state"] == "SUCCEEDED"
    attempts = attempts_of(done)
    assert sorted(a["index"] for a in attempts) == [0, 1, 2, 3]
    assert {a["number"] for a in attempts} == {1}
    latest_start = max(a["created_at"] for a in attempts)
    earliest_end = min(a["finished_at"] for a in attempts)
    assert latest_start <= earliest_end  # all four were launched before any ended


async def test_gang_that_can_never_fit_waits_without_blocking_others(batch_env):
    cluster = await batch_env.cluster(agents=1, resources=Resources.parse(
        "cpus:2;mem:1024;disk:1024;ports:[27000-27099]"))
    server = await batch_env.server(cluster)
    gang = await submit(server, {"id": "too-big", "gang": True, "completions": 3, "cpus": 1,
                                 "command": "true"})
    small = await submit(server, {"id": "small", "cpus": 1, "command": "true"})
    assert (await wait_run(server, small["id"]))["state"] == "SUCCEEDED"
    assert attempts_of(await get_run(server, gang["id"])) == []
    await api(server, "POST", f"/v1/runs/{gang['id']}/actions/stop")
    assert (await wait_run(server, gang["id"]))["state"] == "CANCELLED"


async def test_step_counts_describe_progress(batch_env, tmp_path):
    server = await batch_env.server(await batch_env.cluster())
    go = tmp_path / "go"
    run = await submit(server, {"id": "progress", "completions": 4, "parallelism": 2,
                                "cpus": 0.25,
                                "command": f"while [ ! -f {go} ]; do sleep 0.05; done"})

    async def two_running() -> dict | None:
        counts = step_of(await get_run(server, run["id"]), "main")["counts"]
        return counts if counts["running"] == 2 else None

    counts = await wait_for(two_running, 20)
    assert counts["pending"] == 2 and counts["done"] == 0
    _, queue = await api(server, "GET", "/mesoslite/v1/queue")
    held = [e for e in queue["queue"] if e["run"] == run["id"]]
    assert held and held[0]["status"] == "parallelism" and held[0]["tasks"] == [2, 3]
    go.touch()
    done = await wait_run(server, run["id"])
    assert step_of(done, "main")["counts"]["done"] == 4
