"""The master's durable state on SQLite and PostgreSQL: one group commit is all or
nothing, and a restarted master recovers agents, frameworks and tasks from it."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from mesoslite.messages.mesos import TaskState
from mesoslite.store.db import sqlite_url
from mesoslite.store.master_store import MasterStore, Writes
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "master.db")
    return request.getfixturevalue("pg_url")


def test_writes_round_trip_and_deletes(store_url):
    store = MasterStore(store_url)
    writes = Writes(agents={"a1": {"id": "a1", "x": 1}},
                    frameworks={"f1": {"id": "f1"}},
                    tasks={("f1", "t1"): {"agent_id": "a1", "n": 1},
                           ("f1", "t2"): {"agent_id": "a1", "n": 2}})
    store.apply(writes)
    store.apply(Writes(tasks={("f1", "t1"): {"agent_id": "a1", "n": 3}},
                       deleted_tasks={("f1", "t2")}))
    snap = store.load()
    assert snap["agents"] == [{"id": "a1", "x": 1}]
    assert snap["tasks"] == [{"agent_id": "a1", "n": 3}]
    assert store.next_epoch() + 1 == store.next_epoch()
    store.close()


def test_secret_objects_round_trip_replace_and_delete(store_url):
    store = MasterStore(store_url)
    store.apply(Writes(secrets={("secret", "db"): {"name": "db", "sealed": "v1"},
                                ("config", "db"): {"name": "db", "data": {"k": "v"}}}))
    store.apply(Writes(secrets={("secret", "db"): {"name": "db", "sealed": "v2"}}))
    assert sorted(store.load()["secrets"], key=str) == sorted(
        [{"name": "db", "sealed": "v2"}, {"name": "db", "data": {"k": "v"}}], key=str)
    store.apply(Writes(deleted_secrets={("secret", "db")}))
    assert store.load()["secrets"] == [{"name": "db", "data": {"k": "v"}}]
    store.close()


def test_a_failed_batch_writes_nothing(store_url):
    store = MasterStore(store_url)
    store.apply(Writes(agents={"a1": {"id": "a1"}}))
    bad = Writes(agents={"a2": {"id": "a2"}},
                 tasks={("f", "t"): {"agent_id": None}})  # NOT NULL violated at the end
    with pytest.raises(IntegrityError):
        store.apply(bad)
    assert store.load()["agents"] == [{"id": "a1"}]
    store.close()


@pytest.mark.asyncio
async def test_master_on_postgres_recovers_after_restart(tmp_path, pg_url, framework_factory):
    from mesoslite.testing.cluster import ClusterSpec, LocalCluster
    from tests.integration.conftest import AGENT_RESOURCES, fast_config

    cluster = LocalCluster(ClusterSpec(work_dir=tmp_path, agents=1, store_url=pg_url,
                                       agent_resources=AGENT_RESOURCES,
                                       master_config=fast_config()))
    await cluster.start()
    try:
        fw = await framework_factory(cluster.master_url)
        await fw.run_task("pg", "sleep 60")
        await fw.wait_state("pg", TaskState.TASK_RUNNING)
        await cluster.stop_master()
        await cluster.start_master()
        state = await get_json(cluster.master_url + "/master/state")
        assert [t["id"] for f in state["frameworks"] for t in f["tasks"]] == ["pg"]
        await wait_for(lambda: len(fw.sched.framework_ids) >= 2)
        await fw.driver.kill("pg")
        await fw.wait_state("pg", TaskState.TASK_KILLED)
    finally:
        await cluster.stop()
