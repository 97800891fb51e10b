"""The autoscaler loop: reads usage from the master, decides, scales, records.

Every ``interval_s`` (when the framework is reconciled and some app has a policy or
a persistent volume):

1. reads the ``usage`` part of the leading master's public ``/master/state`` (the
   agents' latest samples; no other channel), keeping this framework's task samples
   no older than ``stale_s`` and every volume's disk use (for ``/v2/apps/{id}/volumes``);
2. for every app with a policy (``autoscale.policy_of``), builds an ``Observation``
   from its running tasks and their samples and calls the pure ``autoscale.decide``;
3. carries out a scaling decision as ``PUT /v2/apps/{id} {"instances": n}`` would (a
   scale deployment, ``lastScalingAt`` updated, which starts the cooldown);
4. records the decision with its reason in the app's history (the last ``history``
   per app, ``GET /v2/apps/{id}/autoscale``) and publishes it as an
   ``autoscale_decision`` event on ``/v2/events``.  Every scaling decision is
   recorded; a hold only when its reason changes (so an idle app does not fill the
   history with "within the band").

The history lives in memory (a restarted framework starts a new one); the cooldown
does not, since it counts from the app's durable ``lastScalingAt``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from frameworks.services import operations
from frameworks.services.apiutil import ApiContext
from frameworks.services.autoscale import (
    DEFAULT_TOLERANCE,
    Decision,
    Observation,
    Policy,
    decide,
    policy_of,
)
from frameworks.services.model import App, parse_timestamp
from frameworks.services.state import Conflict, NotFound

log = logging.getLogger(__name__)

EVENT = "autoscale_decision"

UsageFetch = Callable[[], Awaitable[dict[str, Any] | None]]


@dataclass
class AutoscaleSettings:
    interval_s: float = 5.0  # between two reads of the master's usage
    stale_s: float = 30.0  # samples older than this do not count
    tolerance: float = DEFAULT_TOLERANCE  # the band around the target
    history: int = 100  # decisions kept per app


class MasterUsage:
    """``usage`` of the leading master's ``/master/state`` (None when unreachable).
    The framework's principal needs ``view_state`` on the master under ACLs."""

    def __init__(self, ctx: ApiContext, authorization: str | None = None,
                 ssl_context: ssl.SSLContext | None = None, timeout_s: float = 10.0) -> None:
        self.ctx = ctx
        self.authorization = authorization
        self.ssl_context = ssl_context
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self) -> dict[str, Any] | None:
        driver = self.ctx.runner.driver
        leader = driver.leader if driver is not None else None
        if not leader:
            return None
        base = leader.split("/api/v1/scheduler")[0].rstrip("/")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"Authorization": self.authorization} if self.authorization else None,
                connector=aiohttp.TCPConnector(ssl=self.ssl_context)
                if self.ssl_context else None,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        try:
            async with self._session.get(base + "/master/state") as response:
                if response.status != 200:
                    log.warning("master state answered %d; no usage this round",
                                response.status)
                    return None
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.debug("master state not read: %s", exc)
            return None
        usage = data.get("usage") if isinstance(data, dict) else None
        return usage if isinstance(usage, dict) else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Autoscaler:
    def __init__(self, ctx: ApiContext, settings: AutoscaleSettings | None = None,
                 fetch: UsageFetch | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        """``fetch`` returns the master's ``usage`` object; ``wall`` is the clock the
        agents' sample timestamps are compared with (decisions use the framework's)."""
        self.ctx = ctx
        self.settings = settings or AutoscaleSettings()
        self.fetch: UsageFetch = fetch or MasterUsage(ctx)
        self.wall = wall
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self.observations: dict[str, dict[str, Any]] = {}
        self.volume_disk: dict[str, dict[str, Any]] = {}
        self._last_kind: dict[str, str] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval_s)
            try:
                await self.step()
            except Exception:  # one bad round must not end autoscaling
                log.exception("autoscaler step failed; retrying next interval")

    async def close(self) -> None:
        close = getattr(self.fetch, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    # ---------------------------------------------------------------- one round

    async def step(self) -> list[dict[str, Any]]:
        """One round; returns the decisions recorded."""
        ctx, state = self.ctx, self.ctx.state
        if not ctx.reconciled:
            return []
        policies = {a.id: p for a in state.apps.values() if (p := policy_of(a)) is not None}
        if not policies and not state.reservations:
            return []
        usage = await self.fetch()
        if usage is None:
            return []
        samples = self._ingest(usage)
        now, recorded, scaled = ctx.now(), [], False
        for app_id, policy in policies.items():
            app = state.apps.get(app_id)
            if app is None:
                continue
            obs = self.observe(app, samples)
            decision = decide(policy, obs, now, self.settings.tolerance)
            if decision.scales:
                decision, done = self._scale(app_id, decision, now)
                scaled = scaled or done
            entry = self._record(app_id, policy, obs, decision, now)
            if entry is not None:
                recorded.append(entry)
        for app_id in [a for a in self.history if a not in state.apps]:
            self.history.pop(app_id, None)
            self.observations.pop(app_id, None)
            self._last_kind.pop(app_id, None)
        if recorded or scaled:
            await ctx.commit()
        return recorded

    def _ingest(self, usage: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """This framework's fresh task samples by task id; volumes' disk use kept."""
        framework_id = self.ctx.runner.framework_id
        oldest = self.wall() - self.settings.stale_s
        samples: dict[str, dict[str, Any]] = {}
        disk: dict[str, dict[str, Any]] = {}
        for agent_id, report in usage.items():
            if not isinstance(report, dict):
                continue
            for t in report.get("tasks", []):
                if t.get("framework_id") == framework_id and t.get("timestamp", 0) >= oldest:
                    samples[t["task_id"]] = t
            for v in report.get("volumes", []):
                disk[v["volume_id"]] = {**v, "agent_id": agent_id}
        self.volume_disk = disk
        return samples

    def observe(self, app: App, samples: dict[str, dict[str, Any]]) -> Observation:
        state = self.ctx.state
        tasks = [t for t in state.app_tasks(app.id) if t.kill_requested_at is None]
        running = [t for t in tasks if t.running]
        fresh = [samples[t.id] for t in running
                 if t.id in samples and samples[t.id].get("cpus_used") is not None]
        assert app.version_info is not None
        return Observation(
            instances=app.instances, running=len(running), sampled=len(fresh),
            cpus_used=sum(float(s["cpus_used"]) for s in fresh),
            cpus_allocated=sum(float(s.get("cpus_limit") or app.cpus) for s in fresh),
            deploying=bool(state.deployments_of(app.id)),
            last_scaled_at=parse_timestamp(app.version_info.last_scaling_at))

    def _scale(self, app_id: str, decision: Decision, now: float) -> tuple[Decision, bool]:
        try:
            operations.scale_app(self.ctx.state, app_id, decision.desired, now)
        except (Conflict, NotFound) as exc:
            reason = getattr(exc, "message", str(exc))
            return Decision("hold", decision.current, decision.current, "refused",
                            f"could not scale: {reason}", decision.utilization), False
        log.info("autoscaling %s: %s", app_id, decision.reason)
        return decision, True

    def _record(self, app_id: str, policy: Policy, obs: Observation, decision: Decision,
                now: float) -> dict[str, Any] | None:
        self.observations[app_id] = {**obs.to_json(), "at": now}
        if not decision.scales and self._last_kind.get(app_id) == decision.kind:
            return None
        self._last_kind[app_id] = decision.kind
        entry = {**decision.to_json(app_id, now, policy.target),
                 "observation": obs.to_json()}
        self.history.setdefault(app_id, deque(maxlen=self.settings.history)).append(entry)
        self.ctx.state.emit(EVENT, entry, now)
        return entry
