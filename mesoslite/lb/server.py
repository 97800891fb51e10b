"""The load balancer as one object: watcher + proxy + status endpoint.

``LoadBalancer`` has ``name``, ``async start() -> url`` and ``async stop()``, so
``mesoslite up`` hosts it like a framework (``frameworks.common.hosting``);
``run_lb`` runs it alone until SIGINT/SIGTERM (``mesoslite lb``).

Listen addresses are a security decision: by default only 127.0.0.1 (this host's
processes) and, with ``docker_bridge``, the Docker bridge gateway (this host's
containers on the default bridge -- what ``host-gateway`` host entries point at).
Any other address exposes every app's service port to that network and must be
asked for explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field

from aiohttp import web

from mesoslite.lb.gateway import docker_bridge_gateway
from mesoslite.lb.proxy import Proxy
from mesoslite.lb.status import status_app
from mesoslite.lb.watcher import EndpointsWatcher

log = logging.getLogger(__name__)

DEFAULT_STATUS_PORT = 8075


@dataclass
class LbConfig:
    services: str  # the services framework's URL
    listen: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    docker_bridge: bool = False  # also listen on the Docker bridge gateway
    status_host: str = "127.0.0.1"
    status_port: int = DEFAULT_STATUS_PORT  # 0: any free port
    poll_interval: float = 2.0
    resync_interval: float = 60.0
    connect_timeout: float = 2.0
    eject_s: float = 2.0
    authorization: str | None = None
    ssl_context: ssl.SSLContext | None = None


class LoadBalancer:
    name = "lb"

    def __init__(self, config: LbConfig) -> None:
        self.config = config
        self.addresses = list(config.listen)
        self.proxy = Proxy(self.addresses, config.connect_timeout, config.eject_s)
        self.watcher = EndpointsWatcher(
            config.services, self._table_changed, poll_interval=config.poll_interval,
            resync_interval=config.resync_interval, authorization=config.authorization,
            ssl_context=config.ssl_context)
        self.url = ""
        self.gateway: str | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()

    async def start(self) -> str:
        """Serve the status endpoint and start following; returns the status URL.
        Listeners open as the table fills (the framework may not answer yet)."""
        if self.config.docker_bridge:
            self.gateway = await asyncio.to_thread(docker_bridge_gateway)
            if self.gateway is None:
                log.warning("no Docker bridge found: containers cannot reach this proxy")
            elif self.gateway not in self.proxy.addresses:
                self.proxy.addresses.append(self.gateway)
        self._runner = web.AppRunner(status_app(self), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.status_host, self.config.status_port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self.config.status_host}:{port}"
        self._tasks = [asyncio.create_task(self.watcher.run(), name="lb-watch"),
                       asyncio.create_task(self._retry_listeners(), name="lb-listen")]
        log.info("load balancer on %s following %s (status %s)",
                 ", ".join(self.proxy.addresses), self.config.services, self.url)
        return self.url

    async def _table_changed(self) -> None:
        async with self._lock:
            routes, _ = self.watcher.table.by_port()
            await self.proxy.update(routes)

    async def _retry_listeners(self) -> None:
        """A service port another process held may be free later."""
        while True:
            await asyncio.sleep(max(self.config.poll_interval, 1.0))
            if self.proxy.listen_errors:
                async with self._lock:
                    await self.proxy.listen()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.proxy.close()
        if self._runner is not None:
            await self._runner.cleanup()


def run_lb(config: LbConfig) -> None:
    """Run the load balancer in the foreground until SIGINT/SIGTERM."""
    import click

    from mesoslite.cli.runtime import run_until_signalled

    lb = LoadBalancer(config)

    async def start() -> None:
        url = await lb.start()
        click.echo(f"mesoslite lb: listening on {', '.join(lb.proxy.addresses)}, "
                   f"following {config.services}; status {url}", err=True)

    run_until_signalled(start, lb.stop)
