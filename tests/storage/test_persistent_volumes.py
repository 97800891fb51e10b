"""Local persistent volumes on a real cluster with the real Docker engine: an app
instance's volume keeps its data across a task kill and an app upgrade, the instance
always comes back to the agent holding it, its disk use is reported, and
``DELETE ...?wipe=true`` destroys it (without ``wipe`` it stays)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from mesoslite.testing.poll import wait_for
from tests.autoscale.conftest import Cluster
from tests.services.conftest import IMAGE

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]

# Each start appends its task id to the volume's log: the file is the instance's history.
APPEND = 'echo "$MESOS_TASK_ID $GEN" >> /mnt/mesos/sandbox/data/log; exec sleep 3600'


def resident(app_id: str, instances: int, gen: str = "1") -> dict[str, Any]:
    return {"id": app_id, "cmd": APPEND, "instances": instances, "cpus": 0.1, "mem": 32,
            "env": {"GEN": gen}, "taskKillGracePeriodSeconds": 0,
            "container": {"type": "DOCKER", "docker": {"image": IMAGE},
                          "volumes": [{"containerPath": "data", "mode": "RW",
                                       "persistent": {"size": 16}}]},
            "networks": [{"mode": "container/bridge"}]}


def volume_dir(c: Cluster, host: str, volume_id: str) -> Path:
    return c.agent(host).config.work_dir / "volumes" / volume_id


def log_of(c: Cluster, host: str, volume_id: str) -> list[str]:
    path = volume_dir(c, host, volume_id) / "data" / "log"
    return path.read_text().splitlines() if path.exists() else []


async def placed(c: Cluster, app_id: str, n: int) -> dict[str, tuple[str, str]]:
    """volume id -> (host, task id) of the app's ``n`` running tasks."""
    tasks = await c.api.running(app_id, n, timeout=60)
    out = {}
    for t in tasks:
        (local,) = t["localVolumes"]
        assert local["containerPath"] == "data"
        out[local["persistenceId"]] = (t["host"], t["id"])
    return out


async def test_data_survives_kill_and_upgrade_on_the_same_agent(usage_cluster, engine
                                                                ) -> None:
    c: Cluster = await usage_cluster(agents=3)
    await c.api.ok("POST", "/v2/apps", resident("/db", 2))
    first = await placed(c, "/db", 2)
    for vid, (host, task_id) in first.items():
        await wait_for(lambda h=host, v=vid: log_of(c, h, v), 20, message="first write")
        assert log_of(c, host, vid) == [f"{task_id} 1"]

    # A container killed behind the framework's back: replaced on the same agent,
    # on the same volume, which still holds the first task's line.
    victim_vid, (victim_host, victim_task) = min(first.items())
    container = container_of(engine, victim_task)
    await asyncio.to_thread(container.kill)

    async def replaced() -> dict[str, tuple[str, str]] | None:
        now = await placed(c, "/db", 2)
        return now if now[victim_vid][1] != victim_task else None

    second = await wait_for(replaced, 60, interval=0.2, message="a replacement")
    assert second.keys() == first.keys()
    assert {v: h for v, (h, _) in second.items()} == {v: h for v, (h, _) in first.items()}
    await wait_for(lambda: len(log_of(c, victim_host, victim_vid)) == 2, 20,
                   message="the replacement's line")
    assert log_of(c, victim_host, victim_vid) == [f"{victim_task} 1",
                                                  f"{second[victim_vid][1]} 1"]

    # An upgrade (new configuration): each new task starts on its instance's volume.
    await c.api.ok("PUT", "/v2/apps/db", resident("/db", 2, gen="2"))
    await c.api.no_deployments(timeout=90)
    third = await placed(c, "/db", 2)
    assert {v: h for v, (h, _) in third.items()} == {v: h for v, (h, _) in first.items()}
    for vid, (host, task_id) in third.items():
        await wait_for(lambda h=host, v=vid, t=task_id: log_of(c, h, v)[-1:] == [f"{t} 2"], 20,
                       message="the upgraded task's line")
        assert len(log_of(c, host, vid)) == (3 if vid == victim_vid else 2)

    # Disk use per volume, on the app and in the master's metrics.
    async def measured() -> list[dict[str, Any]] | None:
        rows = (await c.api.ok("GET", "/v2/apps/db/volumes"))["volumes"]
        ok = [r for r in rows if r["state"] == "attached" and (r["diskUsedMb"] or 0) > 0]
        return rows if len(ok) == 2 else None

    rows = await wait_for(measured, 20, interval=0.2, message="disk use of both volumes")
    assert {r["persistenceId"]: r["host"] for r in rows} == {v: h for v, (h, _) in
                                                             first.items()}
    assert all(r["sizeMb"] == 16 for r in rows)
    metrics = await c.master_get("/metrics")
    for vid in first:
        assert f'volume_id="{vid}"' in metrics.split("mesoslite_volume_disk_bytes", 1)[1]

    # Deleted with wipe: the tasks go, then the volumes with their data.
    status, _, _ = await c.api.call("DELETE", "/v2/apps/db", wipe=True)
    assert status == 200
    for vid, (host, _) in first.items():
        await wait_for(lambda h=host, v=vid: not volume_dir(c, h, v).exists(), 30,
                       interval=0.2, message=f"{vid} destroyed")
    await wait_for(lambda: not c.server.state.reservations, 10, message="reservations gone")


async def test_delete_without_wipe_keeps_the_data(usage_cluster) -> None:
    c: Cluster = await usage_cluster(agents=1)
    await c.api.ok("POST", "/v2/apps", resident("/keep", 1))
    ((vid, (host, _)),) = (await placed(c, "/keep", 1)).items()
    await wait_for(lambda: log_of(c, host, vid), 20, message="first write")
    status, _, _ = await c.api.call("DELETE", "/v2/apps/keep")
    assert status == 200
    await wait_for(lambda: "/keep" not in c.server.state.apps and not c.server.state.tasks,
                   30, message="app gone")
    shown = (await c.api.ok("GET", "/v2/apps/keep/volumes"))["volumes"]
    assert [(r["persistenceId"], r["state"]) for r in shown] == [(vid, "free")]
    assert log_of(c, host, vid), "the data is still there"


def container_of(engine: Any, task_id: str) -> Any:
    from mesoslite.agent.containerizers.docker_spec import LABEL_TASK_ID

    found = engine.containers.list(filters={"label": f"{LABEL_TASK_ID}={task_id}"})
    assert found, f"no container for {task_id}"
    return found[0]


async def test_a_task_killed_with_wipe_starts_again_on_a_new_volume(usage_cluster) -> None:
    c: Cluster = await usage_cluster(agents=1)
    await c.api.ok("POST", "/v2/apps", resident("/wiped", 1))
    ((vid, (host, task_id)),) = (await placed(c, "/wiped", 1)).items()
    await wait_for(lambda: log_of(c, host, vid), 20, message="first write")
    await c.api.no_deployments(timeout=60)
    answer = await c.api.ok("POST", "/v2/tasks/delete", {"ids": [task_id]}, wipe=True)
    assert [t["id"] for t in answer["tasks"]] == [task_id]
    await wait_for(lambda: not volume_dir(c, host, vid).exists(), 30, interval=0.2,
                   message="the old instance's volume destroyed")

    async def replaced() -> dict[str, tuple[str, str]] | None:
        now = await placed(c, "/wiped", 1)
        return now if vid not in now else None

    ((new_vid, (new_host, new_task)),) = (await wait_for(
        replaced, 60, interval=0.2, message="a replacement on a new volume")).items()
    await wait_for(lambda: log_of(c, new_host, new_vid), 20, message="the new task's line")
    assert log_of(c, new_host, new_vid) == [f"{new_task} 1"]  # nothing of the old data
