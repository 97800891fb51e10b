"""Jobs on a real in-process cluster (process tasks): success, retries, timeouts,
parallelism, completions, cancel, rerun."""

from __future__ import annotations

import os
from pathlib import Path

from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from tests.batch.conftest import api, attempts_of, get_run, step_of, submit, wait_run


async def test_success_runs_every_completion_exactly_once(batch_env, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    server = await batch_env.server(await batch_env.cluster())
    run = await submit(server, {"id": "hello", "completions": 5, "parallelism": 5, "cpus": 0.5,
                                "command": f"touch {out}/$BATCH_TASK_INDEX-$BATCH_ATTEMPT"})
    done = await wait_run(server, run["id"])
    assert done["state"] == "SUCCEEDED", done["message"]
    assert sorted(os.listdir(out)) == [f"{i}-1" for i in range(5)]
    assert sorted(a["index"] for a in done["attempts"]) == list(range(5))
    assert {a["state"] for a in done["attempts"]} == {"FINISHED"}
    assert step_of(done, "main")["counts"] == {"pending": 0, "running": 0, "done": 5,
                                               "failed": 0, "failed_attempts": 0}


async def test_failure_is_retried_exactly_retries_times(batch_env):
    server = await batch_env.server(await batch_env.cluster())
    run = await submit(server, {"id": "flaky", "command": "exit 3", "retries": 2,
                                "backoff": {"initial": 0.05, "factor": 2}})
    done = await wait_run(server, run["id"])
    assert done["state"] == "FAILED"
    attempts = attempts_of(done)
    assert [a["number"] for a in attempts] == [1, 2, 3]
    assert all(a["state"] == "FAILED" and a["counts_as_failure"] for a in attempts)
    assert "failed after 3 attempts" in done["message"]
    assert "status 3" in done["message"]


async def test_a_retry_that_succeeds_makes_the_run_succeed(batch_env):
    server = await batch_env.server(await batch_env.cluster())
    run = await submit(server, {"id": "second-time", "retries": 3, "backoff": {"initial": 0},
                                "command": 'test "$BATCH_ATTEMPT" -ge 2'})
    done = await wait_run(server, run["id"])
    assert done["state"] == "SUCCEEDED"
    assert [(a["number"], a["state"]) for a in done["attempts"]] == [(1, "FAILED"),
                                                                     (2, "FINISHED")]


async def test_timeout_kills_the_tasks_and_fails_the_run(batch_env, tmp_path):
    server = await batch_env.server(await batch_env.cluster())
    pids = tmp_path / "pids"
    run = await submit(server, {"id": "hangs", "completions": 2, "timeout": "1s",
                                "retries": 5, "kill_grace": 0.5,
                                "command": f"echo $$ >> {pids}; exec sleep 600"})
    done = await wait_run(server, run["id"])
    assert done["state"] == "FAILED"
    assert "timed out after 1s" in done["message"]
    assert len(done["attempts"]) == 2  # a timeout is not retried
    assert {a["state"] for a in done["attempts"]} == {"KILLED"}
    assert all(a["kill_reason"].startswith("timed out") for a in done["attempts"])
    for pid in pids.read_text().split():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(
            f"/proc/{pid}/status").read_text()


async def test_parallelism_is_never_exceeded(batch_env):
    cluster = await batch_env.cluster()
    server = await batch_env.server(cluster)
    run = await submit(server, {"id": "wide", "completions": 8, "parallelism": 3,
                                "cpus": 0.1, "command": "sleep 0.3"})
    seen_ours, seen_master = [], []

    async def sample() -> bool:
        current = await get_run(server, run["id"])
        seen_ours.append(sum(1 for a in current["attempts"] if a["state"] in (
            "LAUNCHING", "STAGING", "STARTING", "RUNNING", "KILLING")))
        state = await get_json(cluster.master_url + "/master/state")
        seen_master.append(sum(1 for fw in state["frameworks"] for t in fw["tasks"]
                               if t["id"].startswith(run["id"])
                               and t["state"] in ("TASK_STAGING", "TASK_STARTING",
                                                  "TASK_RUNNING")))
        return current["state"] != "ACTIVE"

    await wait_for(sample, 60, interval=0.02)
    done = await get_run(server, run["id"])
    assert done["state"] == "SUCCEEDED"
    assert len(done["attempts"]) == 8
    assert max(seen_ours) <= 3 and max(seen_master) <= 3
    assert len(seen_ours) > 10  # sampled throughout


async def test_cancel_kills_running_tasks(batch_env):
    server = await batch_env.server(await batch_env.cluster())
    run = await submit(server, {"id": "long", "completions": 2, "kill_grace": 0.2,
                                "command": "exec sleep 600"})

    async def running() -> bool:
        current = await get_run(server, run["id"])
        return sum(a["state"] == "RUNNING" for a in current["attempts"]) == 2

    await wait_for(running, 20)
    status, body = await api(server, "POST", f"/v1/runs/{run['id']}/actions/stop")
    assert status == 202, body
    done = await wait_run(server, run["id"])
    assert done["state"] == "CANCELLED"
    assert {a["state"] for a in done["attempts"]} == {"KILLED"}
    assert not any(a["counts_as_failure"] for a in done["attempts"])
    status, body = await api(server, "POST", f"/v1/runs/{run['id']}/actions/stop")
    assert status == 409


async def test_rerun_failed_only_reuses_succeeded_steps(batch_env, tmp_path):
    server = await batch_env.server(await batch_env.cluster())
    flag = tmp_path / "fixed"
    job = {"id": "pipe", "steps": [
        {"name": "build", "command": "true"},
        {"name": "test", "depends_on": ["build"], "command": f"test -f {flag}"}]}
    first = await wait_run(server, (await submit(server, job))["id"])
    assert first["state"] == "FAILED"
    flag.touch()
    status, new = await api(server, "POST", f"/v1/runs/{first['id']}/actions/rerun",
                            {"failed_only": True})
    assert status == 201, new
    second = await wait_run(server, new["id"])
    assert second["state"] == "SUCCEEDED" and second["rerun_of"] == first["id"]
    assert [a["step"] for a in second["attempts"]] == ["test"]  # build was not run again
    assert "reused" in step_of(second, "build")["message"]


async def test_lost_agent_replaces_the_attempt_without_using_a_retry(batch_env, tmp_path):
    cluster = await batch_env.cluster(agents=2)
    server = await batch_env.server(cluster)
    go = tmp_path / "go"
    run = await submit(server, {"id": "survivor", "retries": 0, "kill_grace": 0.2,
                                "command": f"while [ ! -f {go} ]; do sleep 0.05; done"})

    async def running_on() -> str | None:
        current = await get_run(server, run["id"])
        return next((a["agent_id"] for a in current["attempts"] if a["state"] == "RUNNING"),
                    None)

    agent_id = await wait_for(running_on, 20)
    index = next(i for i, a in enumerate(cluster.agents) if a.agent_id == agent_id)
    await cluster.stop_agent(index)  # gone without a word: the master declares it lost

    async def replaced() -> bool:
        current = await get_run(server, run["id"])
        return any(a["state"] == "RUNNING" and a["agent_id"] != agent_id
                   for a in current["attempts"])

    await wait_for(replaced, 30)
    go.touch()
    done = await wait_run(server, run["id"])
    assert done["state"] == "SUCCEEDED"
    first, second = done["attempts"]
    assert first["state"] == "LOST" and not first["counts_as_failure"]
    assert second["state"] == "FINISHED" and second["number"] == 2
    await cluster.start_agent(index)  # comes back: the master kills the written-off task
    await cluster.wait_registered()
