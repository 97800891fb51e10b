"""Marathon pods with process containers on host networking (no Docker): the containers
of an instance share localhost and an ephemeral volume; an instance killed through
``::instances`` is replaced; a restarted framework adopts the running instance; an
existing Marathon client (marathon-python, which has no pod calls of its own: its
request helper) creates and deletes the pod and reads the ``pod_*`` events."""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

import aiohttp
import pytest

from mesoslite.testing.poll import wait_for
from tests.services.conftest import Api

marathon = pytest.importorskip("marathon")

pytestmark = pytest.mark.asyncio
PY = sys.executable
# "web" serves its sandbox (where the volume is linked as "vol") on its endpoint's port;
# "fetch" gets that page over 127.0.0.1 and writes it into the shared volume.
SERVE = f"exec {PY} -m http.server $ENDPOINT_WEB --bind 127.0.0.1"
FETCH = (f"until {PY} -c \"import os, urllib.request as u; open('vol/got', 'wb').write("
         "u.urlopen('http://127.0.0.1:' + os.environ['EP_HOST_WEB'] + '/').read())\"; "
         "do sleep 0.2; done; exec sleep 3600")


def process_pod(pod_id: str) -> dict[str, Any]:
    check = {"http": {"endpoint": "web", "path": "/"}, "gracePeriodSeconds": 10,
             "intervalSeconds": 1, "timeoutSeconds": 1, "maxConsecutiveFailures": 3,
             "delaySeconds": 0}
    mount = [{"name": "shared", "mountPath": "vol"}]
    return {
        "id": pod_id, "scaling": {"kind": "fixed", "instances": 1},
        "networks": [{"mode": "host"}], "volumes": [{"name": "shared"}],
        "containers": [
            {"name": "web", "resources": {"cpus": 0.1, "mem": 32},
             "exec": {"command": {"shell": SERVE}}, "volumeMounts": mount,
             "endpoints": [{"name": "web", "hostPort": 0}], "healthCheck": check},
            {"name": "fetch", "resources": {"cpus": 0.1, "mem": 32},
             "exec": {"command": {"shell": FETCH}}, "volumeMounts": mount},
        ],
    }


async def one_stable(api: Api, pod_id: str, timeout: float = 60) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        status = await api.ok("GET", f"/v2/pods{pod_id}::status")
        items = status["instances"]
        return items[0] if len(items) == 1 and items[0]["status"] == "STABLE" else None

    return await wait_for(check, timeout, interval=0.1, message=f"a stable {pod_id}")


async def test_process_pod_localhost_volume_instances_restart_and_client(
        cluster, services_factory, tmp_path) -> None:
    work = tmp_path / "svc"
    server = await services_factory(cluster.master_url, work_dir=work)
    await wait_for(lambda: server.reconciled, 10, message="reconciled")
    api = Api(server.url)
    client = marathon.MarathonClient(server.url, timeout=10)
    events: list[Any] = []

    def listen() -> None:
        for event in client.event_stream(event_types=["pod_created_event",
                                                      "pod_deleted_event"]):
            events.append(event)
            if len(events) == 2:
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    await wait_for(lambda: server.bus.subscribers > 0, 10, message="the client's stream")
    await asyncio.to_thread(client._do_request, "POST", "/v2/pods",
                            data=json.dumps(process_pod("/duo")))
    instance = await one_stable(api, "/duo")
    web = next(c for c in instance["containers"] if c["name"] == "web")
    assert web["endpoints"][0]["healthy"] is True
    assert {c["name"]: c["status"] for c in instance["containers"]} == {
        "web": "TASK_RUNNING", "fetch": "TASK_RUNNING"}

    async def copied() -> str | None:
        """What "fetch" got from "web" over 127.0.0.1 and wrote into the shared
        volume, read back through web (the current instance: other test runs on this
        machine may hold a port, failing an instance, which is then replaced)."""
        current = await one_stable(api, "/duo")
        port = current["containers"][0]["endpoints"][0]["allocatedHostPort"]
        try:
            async with aiohttp.ClientSession() as s, s.get(
                    f"http://127.0.0.1:{port}/vol/got") as r:
                text = await r.text() if r.status == 200 else None
        except aiohttp.ClientError:
            return None
        return text if text and "vol/" in text else None  # web's sandbox listing

    await wait_for(copied, 30, interval=0.2, message="fetch's copy in the volume")
    instance = await one_stable(api, "/duo")

    # Killing the instance through ::instances replaces it.
    killed = await api.ok("DELETE", f"/v2/pods/duo::instances/{instance['id']}")
    assert killed["id"] == instance["id"]
    replacement = await wait_for(
        lambda: _other_stable(api, instance["id"]), 60, interval=0.1,
        message="a replacement instance")

    # A restarted framework adopts the running instance (no new launch).
    await services_factory.servers[0].stop()
    services_factory.servers.remove(server)
    again = await services_factory(cluster.master_url, work_dir=work)
    await wait_for(lambda: again.reconciled, 15, message="reconciled again")
    api = Api(again.url)
    assert (await one_stable(api, "/duo"))["id"] == replacement["id"]
    assert (await api.ok("GET", "/v2/pods/duo"))["containers"][1]["name"] == "fetch"

    # The client deletes it; the instance goes.
    client = marathon.MarathonClient(again.url, timeout=10)
    await asyncio.to_thread(client._do_request, "DELETE", "/v2/pods/duo")
    await api.no_deployments(30)
    assert not again.state.tasks
    assert [type(e).__name__ for e in events[:1]] == ["MarathonPodCreatedEvent"]


async def _other_stable(api: Api, old: str) -> dict[str, Any] | None:
    status = await api.ok("GET", "/v2/pods/duo::status")
    items = [i for i in status["instances"] if i["status"] == "STABLE" and i["id"] != old]
    return items[0] if len(items) == 1 == len(status["instances"]) else None
