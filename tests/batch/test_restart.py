"""The framework restarts mid-pipeline and adopts its running tasks: no attempt runs
twice, none is forgotten.  Once in-process (a clean stop), once as a real
``mesoslite batch server`` process killed with SIGKILL."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import Process, free_port
from tests.batch.conftest import get_run, submit, wait_run


def pipeline(log: Path, go: Path) -> dict:
    """prep x2 -> work x6 (3 at once; each waits for ``go``) -> final.  Every task
    appends its attempt id to ``log`` when it starts."""
    record = f'echo "$BATCH_ATTEMPT_ID" >> {log}'
    return {"id": "restartable", "cpus": 0.25, "steps": [
        {"name": "prep", "completions": 2, "command": record},
        {"name": "work", "depends_on": ["prep"], "completions": 6, "parallelism": 3,
         "command": f"{record}; while [ ! -f {go} ]; do sleep 0.05; done"},
        {"name": "final", "depends_on": ["work"], "command": record}]}


def check_exactly_once(run: dict, log: Path) -> None:
    assert run["state"] == "SUCCEEDED", run["message"]
    started = log.read_text().split()
    counts = Counter(started)
    assert all(n == 1 for n in counts.values()), counts  # no attempt ran twice
    ran = {a["id"] for a in run["attempts"] if a["state"] != "LOST"}
    assert set(started) == ran  # and every attempt that ran is known
    finished = Counter((a["step"], a["index"]) for a in run["attempts"]
                       if a["state"] == "FINISHED")
    assert finished == {("prep", 0): 1, ("prep", 1): 1, ("final", 0): 1,
                        **{("work", i): 1 for i in range(6)}}


async def test_restart_adopts_running_tasks(batch_env, tmp_path):
    cluster = await batch_env.cluster()
    work = tmp_path / "state"
    server = await batch_env.server(cluster, work_dir=work)
    log, go = tmp_path / "attempts.log", tmp_path / "go"
    run = await submit(server, pipeline(log, go))

    async def three_working() -> bool:
        current = await get_run(server, run["id"])
        return sum(a["step"] == "work" and a["state"] == "RUNNING"
                   for a in current["attempts"]) == 3

    await wait_for(three_working, 30)
    await server.stop()
    batch_env.servers.remove(server)
    go.touch()  # the running tasks end while no framework listens
    server = await batch_env.server(cluster, work_dir=work)
    check_exactly_once(await wait_run(server, run["id"], 60), log)


@pytest.mark.e2e
async def test_kill9_mid_pipeline_then_restart_runs_every_attempt_once(batch_env, tmp_path):
    cluster = await batch_env.cluster()
    port = free_port()
    work = tmp_path / "batch-process"
    work.mkdir()
    args = ["batch", "server", "--master", cluster.master_url, "--port", str(port),
            "--work-dir", str(work), "--reconcile-interval", "1", "--log-level", "debug"]
    proc = Process(args, work / "process.log", port)
    await proc.start()
    try:
        log, go = tmp_path / "attempts.log", tmp_path / "go"
        job = pipeline(log, go)
        status, _, body = await request("PUT", f"{proc.url}/v1/jobs/{job['id']}", json=job)
        assert status == 201, body
        status, _, body = await request("POST", f"{proc.url}/v1/jobs/{job['id']}/runs")
        assert status == 201, body
        run_id = __import__("json").loads(body)["id"]

        async def working() -> bool:
            run = await get_json(f"{proc.url}/v1/runs/{run_id}")
            return sum(a["step"] == "work" and a["state"] == "RUNNING"
                       for a in run["attempts"]) >= 2

        await wait_for(working, 30)
        proc.kill9()
        go.touch()  # tasks end (and later ones would start) while the framework is dead
        await proc.start()

        async def ended() -> dict | None:
            run = await get_json(f"{proc.url}/v1/runs/{run_id}")
            return run if run["state"] != "ACTIVE" else None

        run = await wait_for(ended, 60, message="the pipeline to end after the restart")
        check_exactly_once(run, log)
    finally:
        await proc.stop()


async def test_attempt_recorded_but_never_sent_is_replaced_not_repeated(batch_env, tmp_path,
                                                                        monkeypatch):
    """A crash between recording an attempt and sending its ACCEPT: after the restart
    the master does not know the attempt, so it is marked LOST (it never ran) and a
    new attempt with a new id runs instead; the old id is never launched."""
    from mesoslite.framework.instructions import Accept
    from mesoslite.framework.runner import FrameworkRunner

    cluster = await batch_env.cluster()
    work = tmp_path / "state"
    crashed = []
    real_send = FrameworkRunner._send

    async def crash_before_accept(self, call):
        if isinstance(call, Accept):
            crashed.append(call)  # the process "dies" here: the attempts are committed
            return
        await real_send(self, call)

    monkeypatch.setattr(FrameworkRunner, "_send", crash_before_accept)
    server = await batch_env.server(cluster, work_dir=work)
    log = tmp_path / "attempts.log"
    run = await submit(server, {"id": "never-sent",
                                "command": f'echo "$BATCH_ATTEMPT_ID" >> {log}'})
    await wait_for(lambda: crashed, 20, message="the ACCEPT the process dies before")
    recorded = await get_run(server, run["id"])
    [first] = recorded["attempts"]
    assert first["state"] == "LAUNCHING"
    await server.stop()
    batch_env.servers.remove(server)
    monkeypatch.undo()

    server = await batch_env.server(cluster, work_dir=work)
    done = await wait_run(server, run["id"], 30)
    assert done["state"] == "SUCCEEDED"
    states = {a["id"]: a["state"] for a in done["attempts"]}
    assert states[first["id"]] == "LOST"
    assert [a["number"] for a in done["attempts"] if a["state"] == "FINISHED"] == [2]
    assert first["id"] not in log.read_text().split()
    assert len(log.read_text().split()) == 1


@pytest.mark.postgres
async def test_postgres_store_survives_a_restart(batch_env, tmp_path, pg_url):
    """The same guarantees with the store on PostgreSQL (HA deployments)."""
    from frameworks.batch.server import BatchConfig, BatchServer
    from tests.batch.conftest import fast_scheduler

    cluster = await batch_env.cluster()

    async def start() -> BatchServer:
        config = BatchConfig(masters=[cluster.master_url], work_dir=tmp_path / "pg",
                             port=0, store_url=pg_url, settings=fast_scheduler(),
                             driver_backoff_max=0.5)
        server = BatchServer(config)
        batch_env.servers.append(server)
        await server.start()
        await wait_for(lambda: server.subscribed, 10)
        return server

    server = await start()
    log, go = tmp_path / "attempts.log", tmp_path / "go"
    run = await submit(server, pipeline(log, go))

    async def working() -> bool:
        current = await get_run(server, run["id"])
        return any(a["step"] == "work" and a["state"] == "RUNNING" for a in current["attempts"])

    await wait_for(working, 30)
    await server.stop()
    batch_env.servers.remove(server)
    go.touch()
    server = await start()
    check_exactly_once(await wait_run(server, run["id"], 60), log)
