"""The batch framework's ``Scheduler``: offers -> fair order -> placement -> launches.

Everything runs on one event loop.  Callbacks only record what happened (status
updates go to ``BatchState``, offers into a pool) and wake the *pass*; one pass at a
time (``_pass``) then:

1. starts the scheduled runs that are due (``state.cron_tick``);
2. re-plans the runs that changed (``state.replan``) and sends the kills it asks for
   (the kill reason is made durable first, so after a restart a killed attempt is not
   mistaken for a failure);
3. orders the ready units fairly, asks the placement engine (gangs all-or-nothing,
   a small time limit, in a worker thread) where the admitted ones go in the held
   offers, records the new attempts as LAUNCHING, **commits them**, and only then
   sends one ACCEPT per agent;
4. holds unused offers a moment while work waits (a gang may need the next agent's
   offer too), declines them after that with a short filter, and suppresses offers
   when nothing waits (reviving when something does).

Status updates are acknowledged explicitly, after the change they caused is
committed (group commit), so an acknowledged update is never lost.  On every
(re-)subscription the scheduler reconciles: explicitly for every active attempt
(including LAUNCHING ones whose ACCEPT may never have arrived: the master answers
"unknown" and the attempt is LOST, never launched again), implicitly to find tasks it
does not know (killed).  It reconciles again periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from frameworks.batch import placing
from frameworks.batch.fairshare import Waiting, fair_order, shares
from frameworks.batch.reconcile import NO_DOCKER
from frameworks.batch.records import Attempt, AttemptState
from frameworks.batch.state import BatchState
from mesoslite.framework.offers import group_offers, placement_agents
from mesoslite.clock import Clock
from mesoslite.messages.mesos import Filters, MasterInfo, Offer, TaskInfo, TaskStatus
from mesoslite.placement import Placement, place
from mesoslite.scheduler import (
    CallError,
    Driver,
    MasterConnectionError,
    NotSubscribedError,
    Scheduler,
)
from mesoslite.scheduler.errors import DriverError

log = logging.getLogger(__name__)


@dataclass
class SchedulerConfig:
    placement_time_limit: float = 0.2  # seconds the engine may take per pass
    offer_hold_s: float = 1.0  # keep unused offers this long while work waits
    decline_refuse_s: float = 2.0  # filter on offers declined while work waits
    idle_refuse_s: float = 30.0  # filter on offers declined when nothing waits
    reconcile_interval: float = 30.0  # explicit reconciliation of active attempts
    launching_grace: float = 5.0  # reconcile a LAUNCHING attempt after this long
    tick: float = 0.5  # longest pause between passes
    coalesce: float = 0.02  # let a burst of events land before a pass


@dataclass
class HeldOffer:
    offer: Offer
    since: float  # monotonic time received


class BatchScheduler(Scheduler):
    def __init__(self, state: BatchState, clock: Clock, config: SchedulerConfig | None = None
                 ) -> None:
        self.state = state
        self.clock = clock
        self.config = config or SchedulerConfig()
        self.driver: Driver | None = None
        self.held: dict[str, HeldOffer] = {}
        self.no_docker: set[str] = set()
        self.capacity: dict[str, dict[str, float]] = {}  # agent id -> total seen
        self.queue_reasons: dict[str, str] = {}  # unit key -> why it has not started
        self.queue_order: list[Waiting] = []
        self.suppressed = False
        self.passes = 0
        self._kick = asyncio.Event()
        self._last_reconcile = 0.0
        self._asked: dict[str, float] = {}  # LAUNCHING attempt -> when we last asked
        # Recorded attempts whose ACCEPT this process is sending: never reconcile them
        # (the master would call them unknown before the ACCEPT reaches it).
        self._sending: set[str] = set()
        self._loop_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="batch-passes")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None

    def kick(self) -> None:
        """Ask for a pass soon (after the current one, if one runs)."""
        self._kick.set()

    async def _loop(self) -> None:
        while True:
            wake = self.state.next_wake()
            timeout = self.config.tick
            if wake is not None:
                timeout = max(0.0, min(timeout, wake - self.clock.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout)
            await asyncio.sleep(self.config.coalesce)
            self._kick.clear()
            try:
                await self._pass()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must survive a bad pass; the next retries
                log.exception("batch scheduling pass failed")

    # ------------------------------------------------------------ callbacks

    async def subscribed(self, driver: Driver, framework_id: str,
                         master_info: MasterInfo | None) -> None:
        self.driver = driver
        if self.state.framework_id != framework_id:
            self.state.framework_id = framework_id
            self.state.journal.put_meta("framework_id", framework_id)
            await self.state.journal.flush()
        self.suppressed = False
        await self._reconcile(everything=True)
        self.kick()

    async def disconnected(self, driver: Driver) -> None:
        self.held.clear()  # offers die with the subscription

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        now = time.monotonic()
        for offer in offers:
            self.held[offer.id.value] = HeldOffer(offer, now)
        self.kick()

    async def rescinded(self, driver: Driver, offer_id: str) -> None:
        self.held.pop(offer_id, None)

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        aid = status.task_id.value
        agent = status.agent_id.value if status.agent_id else None
        message = status.message or ""
        if status.state.value == "TASK_ERROR" and NO_DOCKER in message and agent:
            self.no_docker.add(agent)
        run = self.state.run_of(aid)
        if run is None or (not run.attempts[aid].state.active and not status.state.terminal):
            # A task we do not know, or one we have written off (LOST): whatever it
            # is, it must not run unobserved.
            if not status.state.terminal:
                log.warning("killing task %s on %s: not an active attempt", aid, agent)
                await self._call(driver.kill(aid, agent))
        elif self.state.apply_status(aid, status.state.value, message, self.clock.now()):
            self.kick()
        if status.uuid and agent:
            uuid = status.uuid
            ack = lambda: self._call(driver.acknowledge(agent, aid, uuid))
            if status.state.terminal:
                # The master forgets a task once its terminal update is acknowledged:
                # it must be durable here first, or a crash would lose how it ended.
                self.state.journal.after_commit(ack)
            else:
                # A lost STARTING/RUNNING is harmless (reconciliation reports the
                # latest state), and the agent sends the next update only after this
                # acknowledgement: do not make every task wait for a commit.
                self.state.journal.spawn(ack())

    async def error(self, driver: Driver, message: str) -> None:
        log.error("the master reported an error: %s", message)

    # ------------------------------------------------------------ the pass

    async def _pass(self) -> None:
        self.passes += 1
        now = self.clock.now()
        self.state.cron_tick(now)
        driver = self.driver
        if driver is None or not driver.subscribed:
            # Plan only with a subscription: the reconciliation that follows it may
            # change what the records say, and kills could not be sent anyway.
            await self.state.journal.flush()
            return
        kills = self.state.replan(now)
        for aid, reason in kills:
            self.state.note_kill(aid, reason, now)
        await self.state.journal.flush()
        for aid, _ in kills:
            run = self.state.run_of(aid)
            agent = run.attempts[aid].agent_id if run else None
            await self._call(driver.kill(aid, agent))
        await self._launch(driver, now)
        if time.monotonic() - self._last_reconcile >= self.config.reconcile_interval:
            await self._reconcile(everything=False)
        else:
            await self._reconcile_launching()

    async def _launch(self, driver: Driver, now: float) -> None:
        self._sending.clear()
        units = self.state.waiting_units()
        if not units:
            self.queue_order, self.queue_reasons = [], {}
            await self._release_offers(driver, everything=True)
            await self._suppress(driver, True)
            return
        await self._suppress(driver, False)
        ordered = fair_order(placing.waiting(units), self._usage(), self._total())
        self.queue_order = ordered
        if not self.held:
            self.queue_reasons = {w.key: "no offers held: waiting for the master to offer "
                                  "resources" for w in ordered}
            return
        groups = group_offers(h.offer for h in self.held.values())
        agents = placement_agents(groups.values())
        self._note_capacity(agents)
        admitted, reasons = placing.admit(ordered, placing.offered_total(agents))
        launches: dict[str, list[tuple[Attempt, TaskInfo]]] = {}
        if admitted:
            question = placing.problem(admitted, agents, self.no_docker, self._running_groups(),
                                       self.config.placement_time_limit)
            answer = await asyncio.to_thread(place, question.problem)
            launches = self._record(admitted, question.task_ids, answer, groups, reasons)
        self.queue_reasons = reasons
        if launches:
            try:
                await self.state.journal.flush()  # attempts are durable before any ACCEPT
                await self._accept(driver, launches, groups)
            finally:
                self._sending.clear()
        await self._release_offers(driver, everything=False)

    def _record(self, admitted: list[Waiting], ids: dict[str, list[str]], answer: Placement,
                groups: dict[str, Any], reasons: dict[str, str]
                ) -> dict[str, list[tuple[Attempt, TaskInfo]]]:
        """Record placed units as LAUNCHING attempts; returns (attempt, TaskInfo) per agent."""
        out: dict[str, list[tuple[Attempt, TaskInfo]]] = {}
        now = self.clock.now()
        for entry in admitted:
            run, unit = entry.payload
            names = ids[unit.key]
            if not all(n in answer.assignments for n in names):
                why = next((answer.unplaced[n] for n in names if n in answer.unplaced),
                           "not placed")
                reasons[entry.key] = placing.explain(why)
                continue
            if run.state.terminal or any(n in run.attempts for n in names):
                continue  # the run changed while the engine thought
            step = run.spec.step(unit.step)
            where = {i: (answer.assignments[n], groups[answer.assignments[n]].hostname)
                     for i, n in zip(unit.indices, names, strict=True)}
            for a in self.state.record_launch(unit, where, now):
                self._sending.add(a.id)
                info = placing.task_info_for(run, step, a.index, a.number, a.agent_id or "")
                out.setdefault(a.agent_id or "", []).append((a, info))
        return out

    async def _accept(self, driver: Driver, launches: dict[str, list[tuple[Attempt, TaskInfo]]],
                      groups: dict[str, Any]) -> None:
        for agent_id, items in launches.items():
            offer_ids = groups[agent_id].offer_ids
            for oid in offer_ids:
                self.held.pop(oid, None)
            try:
                await driver.launch(offer_ids, [info for _, info in items],
                                    Filters(refuse_seconds=0))
            except (CallError, NotSubscribedError) as exc:
                log.warning("launch on %s refused: %s", agent_id, exc)
                self.state.launch_failed([a for a, _ in items], str(exc), self.clock.now())
                self.kick()
            except MasterConnectionError as exc:
                # It may or may not have arrived: reconciliation will tell.
                log.warning("launch on %s: master unreachable (%s)", agent_id, exc)

    async def _release_offers(self, driver: Driver, everything: bool) -> None:
        """Decline held offers: all of them when nothing waits, else those held longer
        than ``offer_hold_s`` (with a short filter, so they come back soon)."""
        mono = time.monotonic()
        old = [oid for oid, h in self.held.items()
               if everything or mono - h.since >= self.config.offer_hold_s]
        if not old:
            return
        for oid in old:
            self.held.pop(oid, None)
        refuse = self.config.idle_refuse_s if everything else self.config.decline_refuse_s
        await self._call(driver.decline(old, refuse_seconds=refuse))

    async def _suppress(self, driver: Driver, suppress: bool) -> None:
        if suppress == self.suppressed:
            return
        self.suppressed = suppress
        await self._call(driver.suppress() if suppress else driver.revive())

    # ------------------------------------------------------------ shares

    def _usage(self) -> dict[str, dict[str, float]]:
        """Per user, what their active attempts hold."""
        usage: dict[str, dict[str, float]] = {}
        for run in self.state.active_runs():
            mine = usage.setdefault(run.spec.user, {})
            for a in run.attempts.values():
                if a.state.active:
                    for k, v in placing.demand(run.spec.step(a.step)).items():
                        mine[k] = mine.get(k, 0.0) + v
        return usage

    def _total(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for resources in self.capacity.values():
            for k, v in resources.items():
                total[k] = total.get(k, 0.0) + v
        return total

    def _note_capacity(self, agents: list[Any]) -> None:
        """An agent's capacity is at least what it offers plus what we run on it."""
        ours: dict[str, dict[str, float]] = {}
        for run in self.state.active_runs():
            for a in run.attempts.values():
                if a.state.active and a.agent_id:
                    slot = ours.setdefault(a.agent_id, {})
                    for k, v in placing.demand(run.spec.step(a.step)).items():
                        slot[k] = slot.get(k, 0.0) + v
        for agent in agents:
            seen = self.capacity.setdefault(agent.id, {})
            for k, v in agent.resources.items():
                seen[k] = max(seen.get(k, 0.0), v + ours.get(agent.id, {}).get(k, 0.0))

    def _running_groups(self) -> list[tuple[str, str]]:
        return [(f"{run.id}/{a.step}", a.agent_id) for run in self.state.active_runs()
                if any(s.constraints for s in run.spec.steps)
                for a in run.attempts.values() if a.state.active and a.agent_id]

    def user_shares(self) -> dict[str, float]:
        return shares(self._usage(), self._total())

    # ------------------------------------------------------------ reconciliation

    async def _reconcile(self, everything: bool) -> None:
        driver = self.driver
        if driver is None:
            return
        self._last_reconcile = time.monotonic()
        known = [(a.id, a.agent_id) for run in self.state.active_runs()
                 for a in run.attempts.values() if a.state.active and a.id not in self._sending]
        if known:
            await self._call(driver.reconcile(known))
        if everything:
            await self._call(driver.reconcile())  # implicit: surfaces tasks we do not know

    async def _reconcile_launching(self) -> None:
        """LAUNCHING attempts with no news for a while: ask the master about them."""
        driver = self.driver
        if driver is None:
            return
        now = self.clock.now()
        stale = [(a.id, a.agent_id) for run in self.state.active_runs()
                 for a in run.attempts.values()
                 if a.state == AttemptState.LAUNCHING
                 and now - a.created_at >= self.config.launching_grace
                 and now - self._asked.get(a.id, 0.0) >= self.config.launching_grace]
        for aid, _ in stale:
            self._asked[aid] = now
        if stale:
            await self._call(driver.reconcile(stale))

    async def _call(self, call: Any) -> None:
        """Await a driver call; failures are logged (the next pass or reconciliation
        repairs whatever they left undone)."""
        try:
            await call
        except DriverError as exc:
            log.info("driver call failed: %s", exc)

