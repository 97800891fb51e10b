"""Host-path and named Docker volumes of apps and batch jobs on a real cluster with
the real Docker engine: host paths only under the agent's allowed prefixes (refused
with a sentence naming the volume otherwise), and a named volume sharing data between
an app's container and a job's."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from frameworks.batch.server import BatchConfig, BatchServer
from mesoslite.testing.poll import wait_for
from tests.autoscale.conftest import Cluster
from tests.batch.conftest import api as batch_api
from tests.batch.conftest import fast_scheduler, submit, wait_run
from tests.services.conftest import IMAGE

pytestmark = [pytest.mark.asyncio, pytest.mark.docker]


def docker_app(app_id: str, cmd: str, volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": app_id, "cmd": cmd, "instances": 1, "cpus": 0.1, "mem": 32,
            "taskKillGracePeriodSeconds": 0,
            "container": {"type": "DOCKER", "docker": {"image": IMAGE}, "volumes": volumes},
            "networks": [{"mode": "container/bridge"}]}


async def batch_server(c: Cluster, work_dir: Path) -> BatchServer:
    server = BatchServer(BatchConfig(masters=[c.master_url], work_dir=work_dir, port=0,
                                     settings=fast_scheduler(), driver_backoff_max=0.5))
    await server.start()
    await wait_for(lambda: server.subscribed, 10, message="batch framework subscribed")
    return server


async def test_host_paths_only_under_allowed_prefixes(usage_cluster, tmp_path) -> None:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "in").write_text("from the host\n")
    c: Cluster = await usage_cluster(agents=1, allowed=[str(allowed)])

    # An app: outside the prefix, its task fails with the reason (and is retried).
    await c.api.ok("POST", "/v2/apps", docker_app("/etc-reader", "exec sleep 3600", [
        {"containerPath": "/host-etc", "hostPath": "/etc", "mode": "RO"}]))

    async def refused() -> str | None:
        failure = (await c.api.app("/etc-reader")).get("lastTaskFailure")
        return failure["message"] if failure else None

    message = await wait_for(refused, 30, interval=0.2, message="the refused launch")
    assert "/host-etc" in message and "/etc is not allowed on this agent" in message
    assert str(allowed) in message  # the allowed prefixes are named
    await c.api.call("DELETE", "/v2/apps/etc-reader", force=True)

    # A symlink inside the prefix pointing out of it is outside too.
    (allowed / "escape").symlink_to("/etc")
    batch = await batch_server(c, tmp_path / "batch")
    try:
        run = await submit(batch, {"id": "escape", "image": IMAGE, "kill_grace": 0,
                                   "command": "cat /x/hostname", "volumes": [
                                       {"container_path": "/x",
                                        "host_path": str(allowed / "escape")}]})
        done = await wait_run(batch, run["id"], 60)
        assert done["state"] == "FAILED"
        assert "is not allowed on this agent" in str(done["attempts"][0])

        # Inside the prefix: read and written by a job's container.
        run = await submit(batch, {"id": "copy", "image": IMAGE, "kill_grace": 0,
                                   "command": "cat /data/in > /data/out", "volumes": [
                                       {"container_path": "/data", "host_path": str(allowed)}]})
        done = await wait_run(batch, run["id"], 60)
        assert done["state"] == "SUCCEEDED", done
        assert (allowed / "out").read_text() == "from the host\n"

        # Bad volume specs are refused at submission, with their paths.
        status, body = await batch_api(batch, "PUT", "/v1/jobs/bad", {
            "id": "bad", "command": "true", "volumes": [
                {"container_path": "/a", "host_path": "/b", "docker_volume": "c"},
                {"container_path": "../up", "host_path": "x"},
                {"container_path": "/m", "docker_volume": "ok", "mode": "RX"}]})
        assert status == 422, body
        paths = [d["path"] for d in body["details"]]
        assert paths == ["volumes[0]", "volumes[1].container_path", "volumes[2].mode"], body
    finally:
        await batch.stop()


async def test_named_volume_shares_data_between_an_app_and_a_job(usage_cluster, engine,
                                                                 tmp_path) -> None:
    name = f"mesoslite-test-{uuid.uuid4().hex[:8]}"
    c: Cluster = await usage_cluster(agents=1)
    batch = await batch_server(c, tmp_path / "batch")
    try:
        await c.api.ok("POST", "/v2/apps", docker_app(
            "/writer", 'echo "$MESOS_TASK_ID" > /shared/who; exec sleep 3600', [
                {"containerPath": "/shared", "external": {"name": name, "provider": "dvdi"}}]))
        (task,) = await c.api.running("/writer", 1, timeout=60)
        run = await submit(batch, {"id": "reader", "image": IMAGE, "kill_grace": 0,
                                   "command": f'test "$(cat /v/who)" = "{task["id"]}"',
                                   "volumes": [{"container_path": "/v",
                                                "docker_volume": name, "mode": "RO"}]})
        done = await wait_run(batch, run["id"], 60)
        assert done["state"] == "SUCCEEDED", done
    finally:
        await batch.stop()
        await c.api.call("DELETE", "/v2/apps/writer", force=True)
        await wait_for(lambda: not c.server.state.tasks, 30, message="writer gone")
        engine.volumes.get(name).remove(force=True)
