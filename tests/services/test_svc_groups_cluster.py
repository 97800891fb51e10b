"""Marathon groups and events on a real cluster (real agents, real task processes):
a group whose app ``b`` depends on ``a`` starts ``b`` only once ``a`` is healthy, and
``/v2/events`` tells the deployment step by step in Marathon's event shapes; the
upstream client (marathon-python) drives groups and reads the stream."""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import json
from typing import Any

import aiohttp
import pytest

from mesoslite.testing.poll import wait_for
from tests.services.conftest import Api

pytestmark = pytest.mark.asyncio
APP = {"cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 1}


class Stream:
    """An open ``/v2/events`` stream collecting (``event:`` line, decoded data)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Stream:  # noqa: PYI034 - final class
        self._task = asyncio.create_task(self._read())
        await wait_for(lambda: self.of("event_stream_attached"), 10,
                       message="the stream's own event_stream_attached")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _read(self) -> None:
        async with aiohttp.ClientSession() as s, s.get(self.url + "/v2/events") as r:
            kind = ""
            async for raw in r.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line.removeprefix("data: "))))

    def of(self, event_type: str, **fields: Any) -> list[dict[str, Any]]:
        return [d for _, d in self.events if d["eventType"] == event_type
                and all(d.get(k) == v for k, v in fields.items())]

    def index(self, event_type: str, **fields: Any) -> int:
        """Position of the first such event (a failed lookup fails the test)."""
        for i, (_, d) in enumerate(self.events):
            if d["eventType"] == event_type and all(d.get(k) == v for k, v in fields.items()):
                return i
        raise AssertionError(f"no {event_type} {fields} in {[d for _, d in self.events]}")


async def test_b_starts_only_after_a_is_healthy_and_events_tell_it(services, api: Api,
                                                                   tmp_path) -> None:
    ready = tmp_path / "a-is-ready"
    check = {"protocol": "COMMAND", "command": {"value": f"test -f {ready}"},
             "gracePeriodSeconds": 0, "intervalSeconds": 1, "timeoutSeconds": 2,
             "maxConsecutiveFailures": 1000, "delaySeconds": 0}
    group = {"id": "/chain", "apps": [{**APP, "id": "a", "healthChecks": [check]},
                                      {**APP, "id": "b", "dependencies": ["a"]}]}
    async with Stream(services.url) as stream:
        plan_id = (await api.ok("POST", "/v2/groups", group))["deploymentId"]
        await api.running("/chain/a", 1)
        await wait_for(lambda: stream.of("failed_health_check_event", appId="/chain/a"), 30,
                       message="a's health check failing")

        async def b_waits_for_a() -> bool:
            queue = (await api.ok("GET", "/v2/queue"))["queue"]
            reasons = [q["processedOffersSummary"].get("waitingReason", "") for q in queue
                       if q["app"]["id"] == "/chain/b"]
            return bool(reasons) and "/chain/a" in reasons[0]

        await wait_for(b_waits_for_a, 30, message="b queued behind its dependency a")
        assert await api.tasks("/chain/b") == [], "b launched before a was healthy"
        assert (await api.ok("GET", "/v2/deployments"))[0]["currentStep"] == 1

        ready.touch()
        await api.running("/chain/a", 1, healthy=True)
        await api.running("/chain/b", 1)
        await wait_for(lambda: stream.of("deployment_success", id=plan_id), 30,
                       message="the group's deployment to succeed")

    # Order: the change, step 1 (a) succeeded only once a was healthy, then b.
    healthy_a = stream.index("health_status_changed_event", appId="/chain/a", alive=True)
    first_b = stream.index("instance_changed_event", runSpecId="/chain/b")
    assert stream.index("group_change_success", groupId="/chain") < healthy_a < first_b
    steps = [[a["app"] for a in e["currentStep"]["actions"]]
             for e in stream.of("deployment_step_success") if e["plan"]["id"] == plan_id]
    assert steps == [["/chain/a"], ["/chain/b"]]
    assert healthy_a < stream.index("deployment_step_success") < first_b
    running = stream.of("instance_changed_event", runSpecId="/chain/a", condition="Running")
    assert running and set(running[0]) == {"instanceId", "condition", "runSpecId", "agentId",
                                           "host", "runSpecVersion", "timestamp", "eventType"}
    failed = stream.of("failed_health_check_event")[0]
    assert failed["taskId"] and failed["healthCheck"]["protocol"] == "COMMAND"
    assert all(kind == data["eventType"] for kind, data in stream.events), \
        "the SSE event: line names each event's type"
    attached = stream.of("event_stream_attached")[0]
    assert set(attached) == {"remoteAddress", "eventType", "timestamp"}
    async with Stream(services.url) as watcher:
        async with Stream(services.url):
            pass
        await wait_for(lambda: watcher.of("event_stream_detached"), 10,
                       message="event_stream_detached on the stream still open")


@pytest.fixture
def _client_py310_shim(monkeypatch) -> None:
    # marathon 0.13's JSON encoder uses collections.Iterable (gone since Python 3.10).
    monkeypatch.setattr(collections, "Iterable", collections.abc.Iterable, raising=False)


async def test_marathon_client_drives_groups_and_reads_events(services, api: Api,
                                                              _client_py310_shim) -> None:
    marathon = pytest.importorskip("marathon")
    from marathon.models import MarathonApp, MarathonGroup
    from marathon.models.events import (
        MarathonDeploymentSuccess,
        MarathonGroupChangeSuccess,
        MarathonInstanceChangedEvent,
    )

    client = marathon.MarathonClient(services.url, timeout=10)
    seen: list[Any] = []

    def read_events() -> None:
        """Until the scale's deployment succeeded (the stream ends at teardown too)."""
        for event in client.event_stream():
            seen.append(event)
            if any(isinstance(e, MarathonDeploymentSuccess) and e.id == scaled.get("id")
                   for e in seen):
                return

    scaled: dict[str, str] = {}
    reader = asyncio.create_task(asyncio.to_thread(read_events))
    await wait_for(lambda: seen, 10, message="the client's first event (attached)")
    group = MarathonGroup(id="/py", apps=[MarathonApp(id="/py/one", cmd="sleep 1000",
                                                      cpus=0.1, mem=16, instances=1)],
                          groups=[MarathonGroup(id="/py/sub", apps=[MarathonApp(
                              id="/py/sub/two", cmd="sleep 1000", cpus=0.1, mem=16)])])
    created = await asyncio.to_thread(client.create_group, group)
    assert created["deploymentId"] and created["version"]
    await api.running("/py/one", 1)
    await api.running("/py/sub/two", 1)
    fetched = await asyncio.to_thread(client.get_group, "/py")
    assert [a.id for a in fetched.apps] == ["/py/one"]
    assert [g.id for g in fetched.groups] == ["/py/sub"]
    assert [g.id for g in await asyncio.to_thread(client.list_groups)] == ["/py"]
    await api.no_deployments()

    result = await asyncio.to_thread(client.scale_group, "/py", 2)
    scaled["id"] = result["deploymentId"]
    await api.running("/py/one", 2)
    await api.running("/py/sub/two", 2)
    await asyncio.wait_for(reader, 60)
    kinds = {type(e) for e in seen}
    assert {MarathonGroupChangeSuccess, MarathonInstanceChangedEvent} <= kinds
    assert any(isinstance(e, MarathonGroupChangeSuccess) and e.group_id == "/py" for e in seen)

    update = MarathonGroup(id="/py", apps=[MarathonApp(id="/py/one", cmd="sleep 1000",
                                                       cpus=0.1, mem=16, instances=1)])
    await api.no_deployments()
    await asyncio.to_thread(client.update_group, "/py", update)
    await api.running("/py/one", 1)
    assert [a.id for a in (await asyncio.to_thread(client.get_group, "/py")).apps] == ["/py/one"]
    await api.no_deployments()
    deleted = await asyncio.to_thread(client.delete_group, "/py")
    assert deleted["deploymentId"]
    assert await asyncio.to_thread(client.list_apps) == []
