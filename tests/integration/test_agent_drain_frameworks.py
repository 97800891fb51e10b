"""Draining an agent under the bundled frameworks, on a real cluster: the services
framework relaunches the drained app's task on another agent; a running batch step
is stopped with SIGTERM first (its grace) and retried on another agent, using none
of its retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from frameworks.batch.server import BatchConfig, BatchServer
from frameworks.services.server import ServicesServer
from mesoslite.testing.poll import SERVER_LIMIT, wait_for, within
from tests.batch.conftest import fast_scheduler, submit, wait_run
from tests.integration.test_agent_ops import agents, drain_state, on, operator
from tests.services.conftest import Api, fast_services


@pytest.fixture
async def started() -> AsyncIterator[list[Any]]:
    """Framework servers started by a test, stopped (before the cluster) after it."""
    servers: list[Any] = []
    yield servers
    for server in reversed(servers):
        await within(SERVER_LIMIT, "a framework to stop", server.stop())


async def test_services_relaunch_a_drained_task_elsewhere(cluster_factory, started,
                                                          tmp_path: Path):
    cluster = await cluster_factory(agents=2)
    url = cluster.master_url
    services = ServicesServer(fast_services(tmp_path / "services", url))
    started.append(services)
    await within(SERVER_LIMIT, "the services framework to start", services.start())
    await wait_for(lambda: services.reconciled, 10, message="services subscribed, reconciled")
    api = Api(services.url)
    await api.ok("POST", "/v2/apps", {"id": "/web", "cmd": "sleep 1000", "instances": 1,
                                      "cpus": 0.1, "mem": 16})
    (task,) = await api.running("/web", 1)
    drained = task["slaveId"]

    drain = on(drained, max_grace_period={"seconds": 1})
    assert await operator(url, "DRAIN_AGENT", drain) == (200, None)

    async def moved() -> dict[str, Any] | None:
        tasks = await api.tasks("/web")
        running = [t for t in tasks if t["state"] == "TASK_RUNNING"]
        return running[0] if len(tasks) == 1 and running and (
            running[0]["slaveId"] != drained) else None

    replacement = await wait_for(moved, 30, interval=0.1, message="/web relaunched elsewhere")
    assert replacement["id"] != task["id"]
    await drain_state(url, drained, "DRAINED")
    assert sorted(await agents(url)) == sorted([drained, replacement["slaveId"]])


async def test_a_running_batch_step_is_killed_with_grace_and_retried_elsewhere(
        cluster_factory, started, tmp_path: Path):
    cluster = await cluster_factory(agents=2)
    url = cluster.master_url
    batch = BatchServer(BatchConfig(masters=[url], work_dir=tmp_path / "batch", port=0,
                                    settings=fast_scheduler(), driver_backoff_max=0.5))
    started.append(batch)
    await within(SERVER_LIMIT, "the batch framework to start", batch.start())
    await wait_for(lambda: batch.subscribed, 10, message="batch framework subscribed")
    # The first attempt marks its start, then waits to be stopped and says it got
    # SIGTERM; the retry finds the mark and succeeds at once.
    started_mark, term_mark = tmp_path / "started", tmp_path / "got-term"
    command = (f"if [ -e {started_mark} ]; then exit 0; fi; touch {started_mark}; "
               f"trap 'touch {term_mark}; exit 1' TERM; while true; do sleep 0.1; done")
    run = await submit(batch, {"id": "drained-job", "command": command, "cpus": 0.1,
                               "mem": 16, "retries": 0, "kill_grace": "30s"})
    await wait_for(started_mark.exists, 30, message="the first attempt to start")
    (first,) = [a for a in (await _run(batch, run["id"]))["attempts"]]
    drained = first["agent_id"]

    drain = on(drained, max_grace_period={"seconds": 5})
    assert await operator(url, "DRAIN_AGENT", drain) == (200, None)
    done = await wait_run(batch, run["id"], timeout=60)
    assert done["state"] == "SUCCEEDED", done
    assert term_mark.exists(), "the drained attempt was stopped without SIGTERM first"
    killed, retried = sorted(done["attempts"], key=lambda a: a["number"])
    assert (killed["state"], killed["exit_state"]) == ("LOST", "TASK_KILLED"), killed
    assert retried["state"] == "FINISHED" and retried["agent_id"] != drained, retried
    await drain_state(url, drained, "DRAINED")


async def _run(batch: BatchServer, run_id: str) -> dict[str, Any]:
    from tests.batch.conftest import get_run

    return await get_run(batch, run_id)
