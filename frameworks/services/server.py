"""Wiring: store + state + controller + launcher + driver + HTTP API.

``ServicesServer`` is a hosted framework (``frameworks.common.hosting``): ``mesoslite
up`` starts it in-process; ``run_services`` runs it alone until SIGINT/SIGTERM (the
``mesoslite services`` command).  The HTTP API starts even while no master answers;
the driver keeps trying.  If the master removed the framework (its failover timeout
passed), the stale id is forgotten and the framework registers afresh: its old tasks
were killed by the master, reconciliation reports them lost and they are replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from frameworks.common.sse import SseBroadcaster
from frameworks.services.api import AppsApi
from frameworks.services.api_cluster import ClusterApi
from frameworks.services.api_usage import UsageApi
from frameworks.services.apiutil import ApiContext, marathon_errors
from frameworks.services.autoscaler import Autoscaler, AutoscaleSettings, MasterUsage
from frameworks.services.controller import Controller, ControllerSettings
from frameworks.services.discovery import Discovery
from frameworks.services.events import events_route
from frameworks.services.launcher import Launcher, LauncherSettings
from frameworks.services.observe import install as install_observer
from frameworks.services.openapi_doc import services_openapi
from frameworks.services.scheduler import ServicesScheduler
from frameworks.services.state import SERVICE_PORTS, ServicesState
from frameworks.services.store import Committer, ServicesStore
from mesoslite.auth import Auth, api_guard
from mesoslite.clock import Clock
from mesoslite.httpapi import json_response, make_app
from mesoslite.messages.mesos import ID, CapabilityType, FrameworkCapability, FrameworkInfo
from mesoslite.scheduler import Driver, DriverAborted
from mesoslite.store.db import sqlite_url

log = logging.getLogger(__name__)

API_VERSION = "1.11.0"  # the Marathon API level followed (reported by /v2/info)


@dataclass
class ServicesConfig:
    masters: list[str]
    work_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    store_url: str | None = None
    name: str = "mesoslite-services"
    role: str = "*"
    principal: str | None = None
    failover_timeout: float = 7 * 24 * 3600.0
    controller: ControllerSettings = field(default_factory=ControllerSettings)
    launcher: LauncherSettings = field(default_factory=LauncherSettings)
    sse_replay: int = 4096
    sse_keepalive: float = 15.0
    driver_options: dict[str, Any] = field(default_factory=dict)
    auth: Auth | None = None  # who may call the API (None: anyone; loopback only)
    ssl_context: ssl.SSLContext | None = None  # serve HTTPS
    autoscale: AutoscaleSettings = field(default_factory=AutoscaleSettings)
    dns_host: str = "127.0.0.1"  # the DNS responder (docs/discovery.md)
    dns_port: int | None = None  # None: no DNS responder; 0: any free port
    dns_domain: str = "mesoslite."


class ServicesServer:
    """The services framework as one object with ``start() -> url`` and ``stop()``."""

    name = "services"

    def __init__(self, config: ServicesConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock
        self.url = ""
        self.store: ServicesStore | None = None
        self.state = ServicesState(service_ports=SERVICE_PORTS)
        self.bus = SseBroadcaster(replay=config.sse_replay, keepalive=config.sse_keepalive)
        self.discovery = Discovery(self.state, self.bus, clock, config.dns_host,
                                   config.dns_port, config.dns_domain)
        self.controller: Controller | None = None
        self.autoscaler: Autoscaler | None = None
        self.launcher: Launcher | None = None
        self.scheduler: ServicesScheduler | None = None
        self.driver: Driver | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def store_url(self) -> str:
        return self.config.store_url or sqlite_url(
            self.config.work_dir.expanduser() / "services.db")

    async def start(self) -> str:
        config = self.config
        self.store = await asyncio.to_thread(ServicesStore, self.store_url)
        snapshot = await asyncio.to_thread(self.store.load)
        self.state.load(snapshot.apps, snapshot.versions, snapshot.deployments,
                        snapshot.tasks, snapshot.meta, snapshot.reservations)
        committer = Committer(self.store, self.state, self._publish)
        self.controller = Controller(self.state, committer, config.controller, self.clock)
        self.autoscaler = Autoscaler(self.controller, config.autoscale, MasterUsage(
            self.controller, config.driver_options.get("authorization"),
            config.driver_options.get("ssl_context")))
        self.launcher = Launcher(self.controller, config.launcher)
        self.scheduler = ServicesScheduler(self.controller, self.launcher)
        await self.discovery.start()
        await self._serve_http()
        self._tasks.append(asyncio.create_task(self.controller.run(), name="services-control"))
        self._tasks.append(asyncio.create_task(self._drive(), name="services-driver"))
        self._tasks.append(asyncio.create_task(self.autoscaler.run(), name="services-autoscale"))
        log.info("services framework listening on %s (store %s, %d apps)", self.url,
                 self.store_url.split("@")[-1], len(self.state.apps))
        return self.url

    def _publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for event_type, payload in events:
            self.bus.publish(event_type, payload)
        self.discovery.refresh()  # after every commit: endpoints, their events, DNS

    async def _serve_http(self) -> None:
        config = self.config
        assert self.controller is not None
        leader = f"{config.host}:{config.port}"
        ctx = ApiContext(self.controller, self.bus, self._info(leader), role=config.role)
        guard = api_guard(config.auth or Auth(), "services", write="manage_app",
                          public={"/ping", "/health"})
        app = make_app(middlewares=[*guard, marathon_errors])
        assert self.autoscaler is not None
        app.add_routes(UsageApi(ctx, self.autoscaler).routes()  # before /v2/apps/{path}
                       + AppsApi(ctx).routes() + ClusterApi(ctx).routes()
                       + [events_route(self.bus)] + self.discovery.routes()
                       + [web.get("/openapi.json", _openapi)])
        install_observer(app, self)  # /metrics, dashboard views, GET / redirect
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, config.host, config.port,
                           ssl_context=config.ssl_context)
        await site.start()
        port = config.port
        if port == 0:
            server = site._server  # the bound port when 0 was asked for
            assert server is not None
            port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            ctx.info["leader"] = f"{config.host}:{port}"
            ctx.info["http_config"]["http_port"] = port
        scheme = "https" if config.ssl_context else "http"
        self.url = f"{scheme}://{config.host}:{port}"

    def _info(self, leader: str) -> dict[str, Any]:
        c = self.config
        return {
            "name": c.name, "version": API_VERSION, "buildref": "mesoslite", "elected": True,
            "leader": leader,
            "marathon_config": {
                "master": ",".join(c.masters), "framework_name": c.name,
                "hostname": socket.gethostname(), "failover_timeout": int(c.failover_timeout),
                "mesos_role": c.role, "local_port_min": SERVICE_PORTS[0],
                "local_port_max": SERVICE_PORTS[1],
                "reconciliation_interval": int(c.controller.reconcile_interval_s * 1000),
                "task_launch_timeout": int(c.controller.staging_timeout_s * 1000),
                "decline_offer_duration": int(c.launcher.refuse_idle_s * 1000),
            },
            "http_config": {"http_port": c.port},
            "event_subscriber": None,
            "zookeeper_config": {},  # no ZooKeeper; clients expect the object
        }

    def _framework_info(self) -> FrameworkInfo:
        fid = self.state.framework_id
        return FrameworkInfo(
            user=getpass.getuser(), name=self.config.name, id=ID(fid) if fid else None,
            failover_timeout=self.config.failover_timeout, checkpoint=True,
            role=self.config.role, hostname=socket.gethostname(), webui_url=self.url,
            principal=self.config.principal,
            # UNREACHABLE rather than LOST: its instances are replaced at once, and
            # it kills a returning one itself (state.apply_status, docs/services.md).
            capabilities=[FrameworkCapability(type=CapabilityType.PARTITION_AWARE)],
        )

    async def _drive(self) -> None:
        """Run the driver; start afresh if the master no longer knows our framework."""
        assert self.scheduler is not None
        while not self._stopping:
            self.driver = Driver(self.scheduler, self._framework_info(), self.config.masters,
                                 implicit_acknowledgements=False,
                                 **self.config.driver_options)
            try:
                await self.driver.run()
                return
            except DriverAborted as exc:
                if self._stopping:
                    return
                log.error("the master aborted the framework (%s); registering afresh", exc)
                self.state.framework_id = None
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        self._stopping = True
        if self.driver is not None:
            self.driver.stop()
        for task in reversed(self._tasks):
            if task.get_name() == "services-driver":
                with contextlib.suppress(asyncio.TimeoutError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), 10)
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.discovery.stop()
        await self.bus.close()
        if self.controller is not None:
            await self.controller.readiness.close()
            if self.autoscaler is not None:
                await self.autoscaler.close()
            await self.controller.health.close()
            with contextlib.suppress(Exception):
                await self.controller.committer.commit()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.store is not None:
            self.store.close()


async def _openapi(request: web.Request) -> web.Response:
    return json_response(services_openapi())


def run_services(config: ServicesConfig) -> None:
    """Run the services framework in the foreground until SIGINT/SIGTERM."""
    import click

    from mesoslite.cli.runtime import run_until_signalled

    server = ServicesServer(config)

    async def start() -> None:
        url = await server.start()
        click.echo(f"mesoslite services listening on {url} (master {', '.join(config.masters)})",
                   err=True)

    run_until_signalled(start, server.stop)


def hosted(master: str, work_dir: Path, port: int = 8080, host: str = "127.0.0.1",
           dns_port: int | None = None) -> ServicesServer:
    """The services framework as ``mesoslite up`` hosts it (store in ``work_dir/services``)."""
    # A named role, so apps with persistent volumes can reserve (Mesos reserves for
    # named roles only).
    return ServicesServer(ServicesConfig(masters=[master], work_dir=work_dir / "services",
                                         host=host, port=port, dns_port=dns_port,
                                         role="services"))
