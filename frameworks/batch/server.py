"""Wiring: store + state + workload + the framework kit's runner + HTTP API.

``BatchServer`` is both what ``mesoslite batch server`` runs and the hosted
framework ``mesoslite up`` starts in its own event loop (it has the ``name`` /
``start() -> url`` / ``stop()`` shape of ``frameworks.common.hosting``).

Start-up order matters for "never launch an attempt twice": the store is loaded
(framework id, jobs, active runs with every recorded attempt) *before* the driver
subscribes with that framework id, so the first reconciliation already knows every
attempt that may be running.  A framework id the master has removed (its failover
timeout passed while the framework was down) is dropped by the kit and the framework
subscribes afresh; the attempts it had are then answered "unknown" and replaced.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from frameworks.batch.api import build_app
from frameworks.batch.observe import BatchObserver
from frameworks.batch.openapi_doc import batch_openapi
from frameworks.batch.state import BatchState
from frameworks.batch.store import BatchStore
from frameworks.batch.workload import BatchSettings, BatchWorkload
from frameworks.common.sse import SseBroadcaster
from mesoslite.auth import Auth
from mesoslite.clock import Clock, SystemClock
from mesoslite.framework import FrameworkCore, FrameworkRunner
from mesoslite.httpapi import json_response
from mesoslite.messages.mesos import FrameworkInfo
from mesoslite.scheduler import Driver
from mesoslite.store.db import sqlite_url

log = logging.getLogger(__name__)
WEEK = 7 * 24 * 3600.0
Doc = dict[str, Any]


@dataclass
class BatchConfig:
    masters: list[str]
    work_dir: Path
    host: str = "127.0.0.1"
    port: int = 8090  # 0: any free port
    store_url: str | None = None  # default: SQLite in work_dir/batch.db
    name: str = "batch"
    role: str = "*"
    user: str = field(default_factory=getpass.getuser)
    failover_timeout: float = WEEK  # how long the master keeps our tasks while we are down
    settings: BatchSettings = field(default_factory=BatchSettings)
    driver_backoff_max: float = 5.0
    driver_options: dict[str, Any] = field(default_factory=dict)  # authorization, TLS
    auth: Auth | None = None  # who may call the API (None: anyone; loopback only)
    ssl_context: ssl.SSLContext | None = None  # serve HTTPS


class BatchServer:
    """The batch framework; ``await start()`` returns the API's URL."""

    def __init__(self, config: BatchConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.name = config.name
        self.clock = clock or SystemClock()
        self.store = BatchStore(config.store_url or sqlite_url(config.work_dir / "batch.db"))
        self.events = SseBroadcaster()
        self.state = BatchState()
        self.workload = BatchWorkload(self.state, config.settings)
        self.runner: FrameworkRunner | None = None
        self.observer: BatchObserver | None = None
        self.url = ""
        self._runner: web.AppRunner | None = None

    @property
    def master_url(self) -> str:
        return self.config.masters[0]

    @property
    def driver(self) -> Driver | None:
        return self.runner.driver if self.runner is not None else None

    @property
    def core(self) -> FrameworkCore:
        """The offer cycle's state (held offers, suppression); after ``start``."""
        assert self.runner is not None, "the batch framework has not started"
        return self.runner.core

    @property
    def framework_id(self) -> str | None:
        return self.runner.framework_id if self.runner is not None else None

    @property
    def subscribed(self) -> bool:
        return self.driver is not None and self.driver.subscribed

    def kick(self) -> None:
        if self.runner is not None:
            self.runner.kick()

    async def commit(self) -> None:
        """Return once every change made so far is durable (then plan again)."""
        if self.runner is not None:
            await self.runner.commit()
            self.runner.kick()

    async def start(self) -> str:
        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        fid, jobs, active = await asyncio.to_thread(self._load)
        self.state.load(jobs, active)
        log.info("batch: %d jobs, %d active runs, framework id %s", len(jobs), len(active),
                 fid or "(new)")
        self.workload.settings = settings = self.config.settings
        self.runner = FrameworkRunner(
            self.workload, self._framework_info, self.config.masters,
            journal=self.state.journal, store=self.store, settings=settings.kit(),
            clock=self.clock, tick_s=settings.tick, on_commit=self._publish,
            driver_options={"backoff_max": self.config.driver_backoff_max,
                            **self.config.driver_options}, framework_id=fid or None)
        app = build_app(self)
        app.router.add_get("/openapi.json", _openapi)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port,
                           ssl_context=self.config.ssl_context)
        await site.start()
        port = self._runner.addresses[0][1]
        scheme = "https" if self.config.ssl_context else "http"
        self.url = f"{scheme}://{self.config.host}:{port}"
        await self.runner.start()
        return self.url

    def _publish(self, notes: list[Any]) -> None:
        """Events noted with a generation of writes, once it is durable."""
        for event_type, payload in notes:
            self.events.publish(event_type, payload)
            if self.observer is not None:
                self.observer.notice(event_type, payload)

    def _load(self) -> tuple[str | None, list[Doc], list[tuple[Doc, list[Doc]]]]:
        return (self.store.get_meta("framework_id"), self.store.load_jobs(),
                self.store.load_active_runs())

    def _framework_info(self) -> FrameworkInfo:
        """What the framework subscribes with (the runner adds the id)."""
        return FrameworkInfo(user=self.config.user, name=self.config.name,
                             failover_timeout=self.config.failover_timeout,
                             role=self.config.role, webui_url=self.url or None)

    async def stop(self) -> None:
        """Stop serving and unsubscribe (the master keeps our tasks running until the
        failover timeout, so a restart adopts them)."""
        if self.runner is not None:
            await self.runner.stop()  # the last changes are made durable first
        else:
            await asyncio.to_thread(self.store.close)
        await self.events.close()
        if self._runner is not None:
            await self._runner.cleanup()


async def _openapi(request: web.Request) -> web.Response:
    return json_response(batch_openapi())


def hosted(master_url: str, work_dir: Path, port: int = 8090) -> BatchServer:
    """The batch framework as ``mesoslite up`` hosts it: state in ``work_dir/batch``."""
    return BatchServer(BatchConfig(masters=[master_url], work_dir=work_dir / "batch",
                                   port=port))
