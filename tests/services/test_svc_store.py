"""The services store: one transaction per batch, exact round trips, on SQLite and
PostgreSQL; a restarted framework finds its apps, versions, deployments and tasks."""

from __future__ import annotations

import pytest

from frameworks.services import operations
from frameworks.services.state import ServicesState
from frameworks.services.store import ServicesStore
from frameworks.services.tasks import TaskRecord
from frameworks.services.validation import parse_app
from mesoslite.store.db import sqlite_url


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "services.db")
    return request.getfixturevalue("pg_url")


def populated() -> ServicesState:
    state = ServicesState()
    app, _ = parse_app({"id": "/prod/web", "cmd": "sleep 1", "instances": 2,
                        "fetch": [{"uri": "/opt/x", "cache": True}], "user": "nobody",
                        "residency": {"taskLostBehavior": "WAIT_FOREVER"},
                        "labels": {"a": "b"}})
    operations.create_app(state, app, 1000.0)
    operations.scale_app(state, "/prod/web", 3, 1001.0, force=True)
    state.put_task(TaskRecord(id="prod_web.1", app_id="/prod/web", version="v", config_version="c",
                              agent_id="a1", hostname="agent1", staged_at=1000.5, ports=[31000],
                              healthy=True))
    state.journal.put_meta("framework_id", "fw-1")
    return state


def test_round_trip(store_url) -> None:
    state = populated()
    store = ServicesStore(store_url)
    try:
        batch = state.journal.take()
        assert batch is not None and batch.notes  # deployment_info etc., after the commit
        store.apply(batch)
        state.journal.committed(batch)
        snap = store.load()
        loaded = ServicesState()
        loaded.load(snap.apps, snap.versions, snap.deployments, snap.tasks)
        assert loaded.apps == state.apps
        assert loaded.versions == state.versions
        assert loaded.deployments == state.deployments
        assert loaded.tasks == state.tasks and snap.meta["framework_id"] == "fw-1"
        assert loaded.apps["/prod/web"].passthrough == {
            "/residency": {"taskLostBehavior": "WAIT_FOREVER"}}
        assert loaded.apps["/prod/web"].user == "nobody"
        assert loaded.apps["/prod/web"].fetch[0].cache
        # deletions
        operations.delete_app(loaded, "/prod/web", 1002.0, force=True)
        loaded.drop_task("prod_web.1")
        batch = loaded.journal.take()
        assert batch is not None
        store.apply(batch)
        snap = store.load()
        assert snap.apps == [] and snap.versions == [] and snap.tasks == []
        [stop] = snap.deployments
        assert stop.kind == "stop" and stop.previous["id"] == "/prod/web"
        again = ServicesState()
        again.load(snap.apps, snap.versions, snap.deployments, snap.tasks)
        assert again.removing["/prod/web"].instances == 0, "the removal resumes after restart"
    finally:
        store.close()
