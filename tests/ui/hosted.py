"""The services and batch frameworks hosted on an in-process cluster, as ``mesoslite up``
hosts them (``frameworks/common/hosting.py``, each framework's ``hosted(...)``), with
short timers, for the browser tests of their dashboard pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from frameworks.batch.server import BatchServer
from frameworks.batch.server import hosted as hosted_batch
from frameworks.common.hosting import FrameworkHost
from frameworks.services.server import ServicesServer
from frameworks.services.server import hosted as hosted_services
from frameworks.services.workload import ServicesSettings
from mesoslite.auth import Auth
from mesoslite.testing.cluster import LocalCluster
from mesoslite.testing.poll import wait_for
from tests.batch.conftest import fast_scheduler


class Client:
    """JSON over HTTP to a framework's API (the test's own event loop)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self.url = url
        self.headers = headers or {}

    async def call(self, method: str, path: str, body: Any = None,
                   **params: Any) -> tuple[int, Any]:
        query = {k: str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in params.items()}
        async with aiohttp.ClientSession(headers=self.headers) as s, s.request(
                method, self.url + path, json=body, params=query,
                allow_redirects=False) as r:
            raw = await r.read()
            try:
                return r.status, (await r.json(content_type=None)) if raw else None
            except ValueError:
                return r.status, raw.decode()

    async def ok(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        status, data = await self.call(method, path, body, **params)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {data}"
        return data


@dataclass
class Hosted:
    master_url: str
    services: ServicesServer
    batch: BatchServer
    headers: dict[str, str] = field(default_factory=dict)  # for the frameworks' APIs

    @property
    def svc(self) -> Client:
        return Client(self.services.url, self.headers)

    @property
    def jobs(self) -> Client:
        return Client(self.batch.url, self.headers)

    @property
    def services_id(self) -> str:
        fid = self.services.framework_id
        assert fid, "the services framework has subscribed"
        return fid

    @property
    def batch_id(self) -> str:
        fid = self.batch.framework_id
        assert fid, "the batch framework has subscribed"
        return fid


@asynccontextmanager
async def host_frameworks(cluster: LocalCluster | str, work_dir: Path,
                          driver_options: dict[str, Any] | None = None,
                          auth: Auth | None = None, headers: dict[str, str] | None = None
                          ) -> AsyncIterator[Hosted]:
    """Both frameworks on ``cluster`` (a ``LocalCluster`` or a master's URL; any free
    ports), subscribed; ``auth`` guards their APIs, ``headers`` are what the test's
    clients send them.  On exit the apps are removed and (on a ``LocalCluster``) the
    tasks killed first (the frameworks still acknowledge), then the frameworks stop."""
    master_url = cluster if isinstance(cluster, str) else cluster.master_url
    services = hosted_services(master_url, work_dir, port=0)
    services.config.settings = ServicesSettings(
        tick_s=0.1, reconcile_interval_s=2.0, reconcile_wait_s=3.0, kill_retry_s=3.0,
        staging_timeout_s=60.0, time_limit_s=0.1, refuse_waiting_s=0.5, refuse_idle_s=5.0)
    batch = hosted_batch(master_url, work_dir, port=0)
    # offers are held for a while when work waits, so a step no agent can hold keeps
    # its placement reason ("needs ... the offers held have ...") between page reads
    batch.config.settings = fast_scheduler(offer_hold_s=5.0)
    batch.config.driver_backoff_max = 0.5
    for framework in (services, batch):
        framework.config.driver_options = dict(driver_options or {})
        framework.config.auth = auth
    host = FrameworkHost()
    try:
        for framework in (services, batch):
            assert await host.start(framework), host.failed
        await wait_for(lambda: services.reconciled
                       and services.framework_id, 15, message="services subscribed")
        await wait_for(lambda: batch.subscribed and batch.framework_id, 15,
                       message="batch subscribed")
        yield Hosted(master_url, services, batch, dict(headers or {}))
    finally:
        if services.reconciled:
            for app in list(services.state.apps):  # nothing is relaunched meanwhile
                await Client(services.url, headers).call("DELETE", f"/v2/apps{app}",
                                                         force=True)
        if not isinstance(cluster, str):
            await cluster.kill_tasks()
        await host.stop()
