"""The batch framework on the framework kit: fair order -> placement -> launches.

``BatchWorkload`` is what the kit's core calls (``mesoslite.framework``); it does no
I/O.  The kit brings the offer cycle (reconciliation first, kill-unknown, holding and
declining offers, revive/suppress, acknowledgements after the write); this module
brings the batch semantics:

* ``plan``: the scheduled runs that are due start (``state.cron_tick``); once ready,
  the runs that changed are planned again (``state.replan``), the kills they ask for
  are marked (the reason is durable before the KILL goes out, so after a restart a
  killed attempt is not mistaken for a failure), and the ready units are put in fair
  order; the demand is their tasks;
* ``question``: the fair-ordered prefix the held offers could hold in aggregate is
  admitted (backfilling) and becomes the placement engine's question (gangs
  all-or-nothing, constraints, Docker steps only where Docker runs);
* ``placed``: the placed units become LAUNCHING attempts (durable before the ACCEPT),
  one launch per agent; why the others wait is kept for ``GET /mesoslite/v1/queue``;
* ``on_update``: a status update folded into its attempt; a task this framework does
  not know, or one it wrote off (LOST), must not run unobserved: the kit kills it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from frameworks.batch import placing
from frameworks.batch.fairshare import Waiting, fair_order, shares
from frameworks.batch.reconcile import NO_DOCKER
from frameworks.batch.records import Attempt
from frameworks.batch.state import BatchState
from mesoslite.framework import (
    AgentLaunch,
    AgentOffers,
    KitSettings,
    LaunchBackoff,
    Outcome,
    Plan,
    Round,
    Workload,
    placement_agents,
)
from mesoslite.framework.instructions import Kill
from mesoslite.messages.mesos import TaskInfo, TaskState, TaskStatus
from mesoslite.placement import Placement
from mesoslite.scheduler import calls

log = logging.getLogger(__name__)


@dataclass
class BatchSettings:
    """The batch framework's tunables (seconds)."""

    placement_time_limit: float = 0.2  # the placement engine's per round
    offer_hold_s: float = 1.0  # keep unused offers this long while work waits
    decline_refuse_s: float = 2.0  # filter on offers declined while work waits
    idle_refuse_s: float = 30.0  # filter on offers declined when nothing waits
    reconcile_interval: float = 30.0  # explicit and implicit reconciliation
    launching_grace: float = 5.0  # ask about a launched attempt with no word after this
    tick: float = 0.5  # longest pause between two plans

    def kit(self) -> KitSettings:
        return KitSettings(
            reconcile_interval_s=self.reconcile_interval, launch_grace_s=self.launching_grace,
            offer_hold_s=self.offer_hold_s, refuse_waiting_s=self.decline_refuse_s,
            refuse_idle_s=self.idle_refuse_s, accept_refuse_s=0.0)


@dataclass
class _Question:
    admitted: list[Waiting]
    task_ids: dict[str, list[str]]  # unit key -> attempt ids (engine task ids)
    groups: dict[str, AgentOffers]
    reasons: dict[str, str]


class BatchWorkload(Workload):
    def __init__(self, state: BatchState, settings: BatchSettings | None = None) -> None:
        self.state = state
        self.settings = settings or BatchSettings()
        self.no_docker: set[str] = set()  # agents that refused a Docker task
        self.capacity: dict[str, dict[str, float]] = {}  # agent id -> the most seen
        self.queue_reasons: dict[str, str] = {}  # unit key -> why it has not started
        self.queue_order: list[Waiting] = []
        self.passes = 0

    def known_tasks(self) -> Iterable[tuple[str, str | None]]:
        return [(a.id, a.agent_id) for run in self.state.active_runs()
                for a in run.attempts.values() if a.state.active]

    # ------------------------------------------------------------ updates

    def on_update(self, status: TaskStatus, now: float) -> Outcome:
        aid = status.task_id.value
        agent = status.agent_id.value if status.agent_id else None
        message = status.message or ""
        if status.state == TaskState.TASK_ERROR and NO_DOCKER in message and agent:
            self.no_docker.add(agent)
        run = self.state.run_of(aid)
        if run is None or (not run.attempts[aid].state.active and not status.state.terminal):
            return Outcome(known=False)
        self.state.apply_status(aid, status.state.value, message, now,
                                status.reason.value if status.reason else None)
        return Outcome()

    # ------------------------------------------------------------ planning

    def plan(self, now: float, ready: bool, backoff: LaunchBackoff) -> Plan:
        self.passes += 1
        state = self.state
        state.cron_tick(now)
        if not ready:
            # Plan only once reconciled: what the master reports may change what the
            # records say, and kills could not be sent anyway.
            return Plan(wake_at=state.next_wake())
        kills = []
        for aid, reason in state.replan(now):
            state.note_kill(aid, reason, now)
            run = state.run_of(aid)
            agent = run.attempts[aid].agent_id if run else None
            kills.append(Kill(aid, agent, reason))
        units = state.waiting_units()
        self.queue_order = fair_order(placing.waiting(units), self._usage(), self._total())
        waiting = {w.key for w in self.queue_order}
        self.queue_reasons = {k: v for k, v in self.queue_reasons.items() if k in waiting}
        demand = sum(len(unit.indices) for _, unit in units)
        return Plan(kills=kills, demand=demand, wake_at=state.next_wake())

    # ------------------------------------------------------------ offers

    def question(self, offers: Sequence[AgentOffers], now: float) -> Round | None:
        groups = {g.agent_id: g for g in offers}
        agents = placement_agents(groups.values())
        self._note_capacity(agents)
        admitted, reasons = placing.admit(self.queue_order, placing.offered_total(agents))
        self.queue_reasons.update(reasons)
        if not admitted:
            return None
        q = placing.problem(admitted, agents, self.no_docker, self._running_groups(),
                            self.settings.placement_time_limit)
        return Round(q.problem, _Question(admitted, q.task_ids, groups, reasons))

    def placed(self, round: Round, answer: Placement, now: float) -> Sequence[AgentLaunch]:
        q: _Question = round.context
        by_agent: dict[str, list[TaskInfo]] = {}
        for entry in q.admitted:
            run, unit = entry.payload
            names = q.task_ids[unit.key]
            if not all(n in answer.assignments for n in names):
                why = next((answer.unplaced[n] for n in names if n in answer.unplaced),
                           "not placed")
                self.queue_reasons[entry.key] = placing.explain(why)
                continue
            if run.state.terminal or any(n in run.attempts for n in names):
                continue  # the run changed while the engine thought
            step = run.spec.step(unit.step)
            where = {i: (answer.assignments[n], q.groups[answer.assignments[n]].hostname)
                     for i, n in zip(unit.indices, names, strict=True)}
            for a in self.state.record_launch(unit, where, now):
                info = placing.task_info_for(run, step, a.index, a.number, a.agent_id or "")
                by_agent.setdefault(a.agent_id or "", []).append(info)
        return [AgentLaunch(agent, (calls.launch_operation(infos),))
                for agent, infos in by_agent.items()]

    def launch_refused(self, launch: AgentLaunch, message: str, now: float) -> None:
        """The ACCEPT carrying these attempts was refused: they never ran."""
        log.warning("launch on %s refused: %s", launch.agent_id, message)
        attempts: list[Attempt] = []
        for aid in launch.task_ids:
            run = self.state.run_of(aid)
            if run is not None:
                attempts.append(run.attempts[aid])
        self.state.launch_failed(attempts, message, now)

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
