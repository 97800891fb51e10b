"""Readiness checks: Marathon probes new tasks over HTTP during deployments and counts
them toward the healthy floor only once they answer with a ready status.

Probes run in the background, off the offer cycle: ``schedule`` starts
the probes that are due, each result marks the task ready (or records the failure for
``readinessCheckResults``) and wakes the framework.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from frameworks.services.model import App, ReadinessCheck
from frameworks.services.reconcile import Plan
from frameworks.services.state import ServicesState
from frameworks.services.tasks import TaskRecord

log = logging.getLogger(__name__)


class ReadinessProber:
    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._last: dict[str, float] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self._session: aiohttp.ClientSession | None = None

    def schedule(self, state: ServicesState, plan: Plan, now: float,
                 on_change: Callable[[], None]) -> None:
        """Start the probes due now: tasks of apps with a readiness check and a running
        deployment, of the app's current configuration, running and healthy."""
        deploying = {d.app_id for d in state.deployments.values()}
        for app_id in deploying:
            app = state.apps.get(app_id)
            if app is None or not app.readiness_checks:
                continue
            check = app.readiness_checks[0]
            for task in state.app_tasks(app_id):
                if self._due(app, check, task, now):
                    self._last[task.id] = now
                    self._inflight[task.id] = asyncio.create_task(
                        self._probe(state, app, check, task, now, on_change))
        for task_id in set(self._last) - set(state.tasks):
            self._last.pop(task_id, None)
            self.results.pop(task_id, None)

    def _due(self, app: App, check: ReadinessCheck, task: TaskRecord, now: float) -> bool:
        return (task.config_version == app.config_version and task.running and not task.ready
                and (task.healthy is True or not app.has_health_checks)
                and task.id not in self._inflight
                and now - self._last.get(task.id, -1e18) >= check.interval_seconds)

    async def _probe(self, state: ServicesState, app: App, check: ReadinessCheck,
                     task: TaskRecord, now: float, on_change: Callable[[], None]) -> None:
        try:
            index = app.port_names.index(check.port_name)
            url = (f"{check.protocol.lower()}://{task.address or task.hostname}:"
                   f"{task.ports[index]}{check.path}")
            if self._session is None:
                self._session = aiohttp.ClientSession()
            timeout = aiohttp.ClientTimeout(total=max(check.timeout_seconds, 0.1))
            async with self._session.get(url, timeout=timeout) as resp:
                ready = resp.status in check.http_status_codes_for_ready
                self.results[task.id] = {"name": check.name, "taskId": task.id,
                                         "ready": ready, "lastResponse": {"status": resp.status}}
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, IndexError) as exc:
            ready = False
            self.results[task.id] = {"name": check.name, "taskId": task.id, "ready": False,
                                     "lastResponse": {"error": str(exc) or type(exc).__name__}}
        finally:
            self._inflight.pop(task.id, None)
        current = state.tasks.get(task.id)
        if ready and current is not None and not current.ready:
            current.ready = True
            state.put_task(current)
            on_change()

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
