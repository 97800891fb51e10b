"""How ``mesoslite up`` hosts frameworks in its own process and event loop.

A hosted framework is anything with a ``name`` and ``async start() -> url`` /
``async stop()``: it subscribes to the master through the public scheduler API and
serves its own HTTP API, exactly as it would as a separate process.  ``FrameworkHost``
starts them in order, stops them in reverse order, and keeps one that fails to start
from taking the cluster down (the failure is reported, the others run).
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)


@runtime_checkable
class HostedFramework(Protocol):
    name: str

    async def start(self) -> str:
        """Subscribe and start serving; returns the URL of the framework's API."""
        ...

    async def stop(self) -> None:
        """Stop serving and close the subscription (the framework stays registered
        with the master until its failover timeout, so its tasks keep running)."""
        ...


class FrameworkHost:
    """Starts and stops a list of hosted frameworks on the running event loop."""

    def __init__(self) -> None:
        self.running: list[tuple[HostedFramework, str]] = []
        self.failed: dict[str, str] = {}

    async def start(self, framework: HostedFramework) -> str | None:
        """Start one; returns its URL, or None (logged, recorded in ``failed``)."""
        try:
            url = await framework.start()
        except Exception as exc:  # one framework must not stop the others
            log.exception("framework %s failed to start", framework.name)
            self.failed[framework.name] = str(exc) or exc.__class__.__name__
            return None
        self.running.append((framework, url))
        return url

    async def stop(self) -> None:
        """Stop every started framework, last started first."""
        while self.running:
            framework, _ = self.running.pop()
            try:
                await framework.stop()
            except Exception:  # keep stopping the rest
                log.exception("framework %s failed to stop cleanly", framework.name)
