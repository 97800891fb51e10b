"""Wiring: store + state + workload + the framework kit's runner + HTTP API.

``ServicesServer`` is a hosted framework (``frameworks.common.hosting``): ``mesoslite
up`` starts it in-process; ``run_services`` runs it alone until SIGINT/SIGTERM (the
``mesoslite services`` command).  The HTTP API starts even while no master answers;
the driver keeps trying.  If the master removed the framework (its failover timeout
passed), the stale id is forgotten and the framework registers afresh: its old tasks
were killed by the master, reconciliation reports them lost and they are replaced.
"""

from __future__ import annotations

import asyncio
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
from frameworks.services.api_groups import GroupsApi
from frameworks.services.api_pods import PodsApi
from frameworks.services.api_usage import UsageApi
from frameworks.services.apiutil import ApiContext, marathon_errors
from frameworks.services.autoscaler import Autoscaler, AutoscaleSettings, MasterUsage
from frameworks.services.discovery import Discovery
from frameworks.services.events import events_route
from frameworks.services.health import HealthProber
from frameworks.services.observe import ServicesObserver
from frameworks.services.observe import install as install_observer
from frameworks.services.openapi_doc import services_openapi
from frameworks.services.readiness import ReadinessProber
from frameworks.services.state import SERVICE_PORTS, ServicesState
from frameworks.services.store import ServicesStore
from frameworks.services.workload import ServicesSettings, ServicesWorkload
from mesoslite.auth import Auth, api_guard
from mesoslite.clock import Clock, SystemClock
from mesoslite.framework import FrameworkRunner
from mesoslite.httpapi import json_response, make_app
from mesoslite.messages.mesos import CapabilityType, FrameworkCapability, FrameworkInfo
from mesoslite.scheduler import Driver
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
    settings: ServicesSettings = field(default_factory=ServicesSettings)
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
        self.clock = clock or SystemClock()
        self.url = ""
        self.store: ServicesStore | None = None
        self.state = ServicesState(service_ports=SERVICE_PORTS)
        self.workload = ServicesWorkload(self.state, config.settings, config.role,
                                         config.principal)
        self.bus = SseBroadcaster(replay=config.sse_replay, keepalive=config.sse_keepalive)
        self.discovery = Discovery(self.state, self.bus, self.clock, config.dns_host,
                                   config.dns_port, config.dns_domain)
        self.readiness = ReadinessProber()
        self.health = HealthProber(self.now)
        self.runner: FrameworkRunner | None = None
        self.autoscaler: Autoscaler | None = None
        self.observer: ServicesObserver | None = None
        self._runner: web.AppRunner | None = None
        self._background: list[asyncio.Task[None]] = []

    @property
    def store_url(self) -> str:
        return self.config.store_url or sqlite_url(
            self.config.work_dir.expanduser() / "services.db")

    @property
    def driver(self) -> Driver | None:
        return self.runner.driver if self.runner is not None else None

    @property
    def framework_id(self) -> str | None:
        return self.runner.framework_id if self.runner is not None else None

    @property
    def reconciled(self) -> bool:
        """Subscribed, and the master has answered for every task the framework knows."""
        return self.runner is not None and self.runner.core.reconciled

    def now(self) -> float:
        return self.clock.now()

    async def start(self) -> str:
        config = self.config
        self.store = await asyncio.to_thread(ServicesStore, self.store_url)
        snapshot = await asyncio.to_thread(self.store.load)
        self.state.load(snapshot.apps, snapshot.versions, snapshot.deployments,
                        snapshot.tasks, snapshot.reservations, snapshot.pods,
                        snapshot.pod_versions)
        self.state.load_groups(snapshot.groups, snapshot.group_versions, snapshot.plans)
        self.runner = FrameworkRunner(
            self.workload, self._framework_info, config.masters, journal=self.state.journal,
            store=self.store, settings=config.settings.kit(), clock=self.clock,
            tick_s=config.settings.tick_s, on_commit=self._publish,
            driver_options=config.driver_options, backoff=self.workload.backoff,
            framework_id=snapshot.meta.get("framework_id") or None)
        ctx = ApiContext(self.workload, self.runner, self.readiness, self.bus,
                         self._info(f"{config.host}:{config.port}"), role=config.role)
        self.autoscaler = Autoscaler(ctx, config.autoscale, MasterUsage(
            ctx, config.driver_options.get("authorization"),
            config.driver_options.get("ssl_context")))
        await self.discovery.start()
        await self._serve_http(ctx)
        await self.runner.start()
        self._background = [
            asyncio.create_task(self._probe_loop(), name="services-probes"),
            asyncio.create_task(self.autoscaler.run(), name="services-autoscale")]
        log.info("services framework listening on %s (store %s, %d apps)", self.url,
                 self.store.describe(), len(self.state.apps))
        return self.url

    def _publish(self, notes: list[Any]) -> None:
        """Events noted with a generation of writes, once it is durable."""
        for event_type, payload, subject in notes:
            self.bus.publish(event_type, payload)
            if self.observer is not None:
                self.observer.notice(event_type, payload, subject)
        self.discovery.refresh()  # after every commit: endpoints, their events, DNS

    async def _probe_loop(self) -> None:
        """Readiness and framework-run health checks, started when due; their results
        change the state and wake the framework (a failed check marks a kill)."""
        assert self.runner is not None
        runner = self.runner

        async def killed(task_id: str, reason: str) -> None:
            runner.kick()  # the kill is marked; the next plan sends it

        while True:
            await asyncio.sleep(self.config.settings.tick_s)
            if not runner.core.reconciled:
                continue
            try:
                now = self.now()
                self.readiness.schedule(self.state, self.workload.last_plan, now, runner.kick)
                self.health.schedule(self.state, now, runner.kick, killed)
            except Exception:  # one bad round must not end probing
                log.exception("scheduling probes failed; retrying")

    async def _serve_http(self, ctx: ApiContext) -> None:
        config = self.config
        guard = api_guard(config.auth or Auth(), "services", write="manage_app",
                          public={"/ping", "/health"})
        app = make_app(middlewares=[*guard, marathon_errors])
        assert self.autoscaler is not None
        app.add_routes(UsageApi(ctx, self.autoscaler).routes()  # before /v2/apps/{path}
                       + AppsApi(ctx).routes() + ClusterApi(ctx).routes()
                       + GroupsApi(ctx).routes() + PodsApi(ctx).routes()
                       + [events_route(self.bus, self.now)] + self.discovery.routes()
                       + [web.get("/openapi.json", _openapi)])
        self.observer = install_observer(app, self)  # /metrics, dashboard views, GET /
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
                "reconciliation_interval": int(c.settings.reconcile_interval_s * 1000),
                "task_launch_timeout": int(c.settings.staging_timeout_s * 1000),
                "decline_offer_duration": int(c.settings.refuse_idle_s * 1000),
            },
            "http_config": {"http_port": c.port},
            "event_subscriber": None,
            "zookeeper_config": {},  # no ZooKeeper; clients expect the object
        }

    def _framework_info(self) -> FrameworkInfo:
        """What the framework subscribes with (the runner adds the id)."""
        return FrameworkInfo(
            user=getpass.getuser(), name=self.config.name,
            failover_timeout=self.config.failover_timeout, checkpoint=True,
            role=self.config.role, hostname=socket.gethostname(), webui_url=self.url,
            principal=self.config.principal,
            # UNREACHABLE rather than LOST: its instances are replaced at once, and
            # it kills a returning one itself (state.apply_status, docs/services.md).
            capabilities=[FrameworkCapability(type=CapabilityType.PARTITION_AWARE)],
        )

    async def stop(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.autoscaler is not None:
            await self.autoscaler.close()
        if self.runner is not None:
            await self.runner.stop()  # the last changes are made durable first
        await self.discovery.stop()
        await self.bus.close()
        await self.readiness.close()
        await self.health.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.runner is None and self.store is not None:
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
