"""The master checks a launch's secret references when it takes the ACCEPT: a task
whose reference cannot resolve gets TASK_ERROR from the master at once and never
reaches an agent, while the tasks beside it in the same ACCEPT run.  Real master and
agent over HTTP, real processes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.messages.mesos import (
    Environment,
    EnvironmentVariable,
    Reason,
    Secret,
    SecretReference,
    Source,
    TaskInfo,
    TaskState,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import task_info
from mesoslite.secrets.crypto import ensure_key_file
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.framework import RecordingFramework
from tests.secrets.conftest import RecordingApi
from tests.services.conftest import fast_master


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[LocalCluster]:
    """A master with a secrets key and one agent running process tasks."""
    spec = ClusterSpec(work_dir=tmp_path / "cluster", agents=1,
                       agent_resources=Resources.parse("cpus:2;mem:512;disk:256"),
                       master_config=fast_master(), status_update_retry=0.2,
                       secrets_key=ensure_key_file(tmp_path / "keys" / "secrets.key"))
    c = LocalCluster(spec)
    await c.start()
    yield c
    await c.stop(kill_tasks=True)


def using(task: TaskInfo, name: str, key: str) -> TaskInfo:
    """``task`` with ``$VALUE`` from secret ``name``'s ``key``."""
    assert task.command is not None
    task.command.environment = Environment(variables=[EnvironmentVariable(
        name="VALUE", type="SECRET",
        secret=Secret(type="REFERENCE", reference=SecretReference(name=name, key=key)))])
    return task


async def test_an_unresolvable_secret_is_a_task_error_from_the_master(
        cluster: LocalCluster) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    await RecordingApi(cluster.master_url, []).ok(
        "PUT", "/master/secrets/db", {"string_data": {"password": canary}})
    fw = await RecordingFramework(cluster.master_url).start()
    try:
        offer = await fw.offer()
        agent = offer.agent_id
        tasks = [using(task_info("missing", "missing", agent, cmd="true", cpus=0.1, mem=16),
                       "nowhere", "password"),
                 using(task_info("good", "good", agent, cmd="exec sleep 600", cpus=0.1,
                                 mem=16), "db", "password"),
                 using(task_info("nokey", "nokey", agent, cmd="true", cpus=0.1, mem=16),
                       "db", "user")]
        await fw.launch(offer, tasks, refuse_seconds=0)
        # The master answers the ACCEPT before the launch leaves it, on the same stream:
        # once the good task runs, every answer about the others has arrived.
        await fw.wait_state("good", TaskState.TASK_RUNNING)
        for task_id, why in (("missing", "secret 'nowhere' does not exist"),
                             ("nokey", "secret 'db' has no key 'user'")):
            assert fw.sched.states(task_id) == [TaskState.TASK_ERROR]
            status = fw.sched.last(task_id)
            assert status is not None
            assert status.source == Source.SOURCE_MASTER
            assert status.reason == Reason.REASON_TASK_INVALID
            assert why in (status.message or "")
            assert canary not in (status.message or "")
        # The agent never saw them: no sandbox, not among its tasks.
        work_dir = cluster.spec.work_dir
        assert list(work_dir.glob("agent*/sandboxes/*/good"))
        assert not list(work_dir.glob("agent*/sandboxes/*/missing"))
        assert not list(work_dir.glob("agent*/sandboxes/*/nokey"))
        agent_url = f"http://127.0.0.1:{cluster.agents[0].config.port}"
        state = await RecordingApi(agent_url, []).ok("GET", "/state")
        assert [t["id"] for t in state["tasks"]] == ["good"]
    finally:
        await fw.stop()
