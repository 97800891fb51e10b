"""``MasterState``: the master's sans-I/O state machine.

Every input is a stimulus (``stimuli.py``) handed to ``handle(stimulus, now, mono)``
with the current time (``now`` wall seconds for timestamps users see, ``mono``
monotonic seconds for timeouts); a table maps each stimulus type to its handler, and
scheduler calls to theirs.  Outputs are the commands in ``outbox`` (taken with
``drain()``) and the records that changed (``take_writes()``), which the server
commits before it executes the commands of the same flush.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from mesoslite.master import (
    maintenance_ops,
    operations,
    operator_agents,
    operator_quota,
    operator_reservations,
    operator_teardown,
)
from mesoslite.master.agents import AgentOps
from mesoslite.master.allocator import Allocator
from mesoslite.master.core import MasterConfig, SecretsCheck
from mesoslite.master.model import (
    AgentRecord,
    AgentState,
    DrainRecord,
    FrameworkRecord,
    FrameworkState,
    TaskRecord,
)
from mesoslite.master.reservations import AgentReservations
from mesoslite.master.stimuli import (
    AgentLinkClosed,
    AgentRegisters,
    AgentSent,
    AllocationRound,
    FrameworkCalls,
    FrameworkStreamClosed,
    FrameworkSubscribes,
    MalformedCall,
    OperatorDeactivatesAgent,
    OperatorDrainsAgent,
    OperatorMarksAgentGone,
    OperatorReactivatesAgent,
    OperatorReserves,
    OperatorSchedulesMaintenance,
    OperatorStartsMaintenance,
    OperatorStopsMaintenance,
    OperatorUnreserves,
    Recover,
    Refusal,
    Result,
    Stimulus,
    Tick,
)
from mesoslite.messages.mesos import FrameworkInfo, TaskInfo, TaskState, TaskStatus
from mesoslite.messages.scheduler import Call, CallType
from mesoslite.resources import Resources


class MasterState(AgentOps):
    def __init__(self, master_id: str, config: MasterConfig | None = None,
                 allocator: Allocator | None = None,
                 secrets_check: SecretsCheck | None = None) -> None:
        """``secrets_check``: whether a task's secret references resolve, asked at
        ACCEPT (None: not checked; the values are resolved on the way to the agent)."""
        config = config or MasterConfig()
        super().__init__(master_id, config, allocator or Allocator(config.role_weights),
                         secrets_check)
        self._init_offers()

    def handle(self, stimulus: Stimulus, now: float, mono: float) -> Result:
        """The one entry point: apply ``stimulus`` at this time and answer it."""
        result = _HANDLERS[type(stimulus)](self, stimulus, now, mono)
        if self.drain_candidates:
            operator_agents.finish_drains(self, now, mono)
        return result

    def tick(self, stimulus: Tick, now: float, mono: float) -> None:
        """Timeouts: offers, agents that went silent, frameworks past failover."""
        self.expire_offers(mono)
        operations.resend_due(self, mono)
        self.check_agents(now, mono)
        self.check_failovers(now, mono)

    def allocation_round(self, stimulus: AllocationRound, now: float, mono: float) -> None:
        self.allocate(now, mono, stimulus.full)
        if stimulus.full:
            maintenance_ops.make_inverse_offers(self, now, mono)

    def malformed_call(self, stimulus: MalformedCall, now: float, mono: float) -> None:
        self.counters["calls_invalid"] += 1

    # ---------------------------------------------------------------- scheduler calls

    def caller_refusal(self, call: Call, stream_id: str | None) -> Refusal | None:
        """Why a (non-SUBSCRIBE) call cannot be taken from this caller: the framework
        is not subscribed (403), or the call is not on its current stream (400).
        Read-only, so the HTTP layer asks it before it checks the principal."""
        framework_id = call.framework_id.value  # type: ignore[union-attr]
        fw = self.frameworks.get(framework_id)
        if fw is None or not fw.connected:
            return Refusal(403, "Framework is not subscribed")
        if stream_id is None:
            return Refusal(400, "All non-subscribe calls should include the"
                                " 'Mesos-Stream-Id' header")
        if stream_id != fw.stream_id:
            return Refusal(400, f"The stream ID '{stream_id}' included in this request didn't"
                                f" match the stream ID currently associated with framework ID"
                                f" {framework_id}")
        return None

    def framework_call(self, stimulus: FrameworkCalls, now: float, mono: float
                       ) -> Refusal | None:
        call = stimulus.call
        refusal = self.caller_refusal(call, stimulus.stream_id)
        if refusal is not None:
            return refusal
        handler = _CALLS.get(call.type)
        # REQUEST and operation calls are accepted and ignored, as Mesos' built-in
        # allocator ignores REQUEST.
        if handler is None:
            return None
        return handler(self, call.framework_id.value, call, now, mono)  # type: ignore[union-attr]

    def _acknowledge(self, framework_id: str, call: Call, mono: float) -> Refusal | None:
        ack = call.acknowledge
        if ack is None or len(ack.uuid) != 16:
            return Refusal(400, "'acknowledge.uuid' is not a valid UUID")
        self.acknowledge(framework_id, ack.agent_id.value, ack.task_id.value, ack.uuid, mono)
        return None

    # ---------------------------------------------------------------- recovery

    def recover(self, stimulus: Recover, now: float, mono: float) -> None:
        """Load what the store kept (after a master restart or a failover).

        Agents come back RECOVERED (not offered until they re-register), frameworks
        RECOVERED with their failover timers started now, tasks with their latest
        status.  Nothing is sent: agents and frameworks reconnect on their own.
        """
        snapshot = stimulus.snapshot
        self.epoch = stimulus.epoch
        self.start_mono = mono
        for item in snapshot.get("meta", []):
            if item["key"] == maintenance_ops.MAINTENANCE_META:
                self.maintenance.load(item["value"])
            elif item["key"] == operations.OPERATIONS_META:
                operations.recover(self, item["value"], mono)
        for data in snapshot.get("agents", []):
            agent = AgentRecord(
                id=data["id"], hostname=data["hostname"], address=data["address"],
                port=data["port"], total=Resources.from_mapping(data["total"]),
                attributes=data.get("attributes", {}),
                containerizers=data.get("containerizers", []), version=data.get("version", ""),
                registered_time=data.get("registered_time", 0.0),
                state=AgentState.UNREACHABLE if data.get("unreachable") else AgentState.RECOVERED,
                unreachable_time=data.get("unreachable_time"), last_seen=mono,
                reservations=AgentReservations.from_store(data.get("reservations")),
                deactivated=bool(data.get("deactivated")),
                drain=DrainRecord.from_store(data.get("drain")),
                gone_time=data.get("gone_time"),
            )
            if agent.gone_time is not None:
                self.gone_agents[agent.id] = agent
                continue
            self.agents[agent.id] = agent
        for data in snapshot.get("frameworks", []):
            info = msgspec.convert(data["info"], FrameworkInfo)
            fw = FrameworkRecord(
                id=data["id"], info=info, state=FrameworkState.RECOVERED,
                suppressed_roles=set(data.get("suppressed_roles", [])),
                registered_time=data.get("registered_time", 0.0), disconnected_at=mono,
            )
            if data.get("removed"):
                self.removed_framework_ids.add(fw.id)
                self.completed_frameworks.append(fw)
                continue
            self.frameworks[fw.id] = fw
            self.allocator.add_framework(fw.id, fw.roles, fw.suppressed_roles, False)
        for data in snapshot.get("tasks", []):
            if data["framework_id"] not in self.frameworks:
                continue
            info = msgspec.convert(data["info"], TaskInfo)
            status = msgspec.convert(data["status"], TaskStatus)
            latest = TaskState(data.get("latest_state", status.state.value))
            task = TaskRecord(
                framework_id=data["framework_id"], agent_id=data["agent_id"], info=info,
                role=data["role"], resources=Resources.from_json(
                    msgspec.to_builtins(info.resources)),
                status=status, statuses=[tuple(s) for s in data.get("statuses", [])],
                latest_state=latest, group_id=data.get("group_id"),
                released=latest.terminal,
            )
            self.add_task(task)
        self.dirty_tasks.clear()
        operator_quota.recover(self, snapshot.get("meta", []))

    # ---------------------------------------------------------------- views

    def used_resources(self, agent_id: str | None = None, framework_id: str | None = None
                       ) -> Resources:
        keys = (self.tasks_by_agent.get(agent_id, set()) if agent_id is not None
                else self.tasks_by_framework.get(framework_id or "", set()))
        total = Resources()
        for key in keys:
            task = self.tasks[key]
            if not task.released:
                total = total + task.resources
        for record in self.executors.values():  # executors hold resources apart
            if (agent_id is not None and record.agent_id == agent_id) or (
                    agent_id is None and record.framework_id == framework_id):
                total = total + record.resources
        return total

    def tasks_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task.latest_state.value] = counts.get(task.latest_state.value, 0) + 1
        return counts


# Each call's handler: (state, framework id, call, now, mono) -> a refusal or None.
# The call's body is there: ``decode_call`` refuses a call without its type's body.
_Call = Callable[[MasterState, str, Call, float, float], Refusal | None]
_CALLS: dict[CallType, _Call] = {
    CallType.TEARDOWN: lambda s, fid, c, now, mono: s.teardown(fid, now, mono),
    CallType.ACCEPT: lambda s, fid, c, now, mono: s.accept(fid, c.accept, now, mono),
    CallType.DECLINE: lambda s, fid, c, now, mono: s.decline(fid, c.decline, mono),
    CallType.ACCEPT_INVERSE_OFFERS: maintenance_ops.answer,
    CallType.DECLINE_INVERSE_OFFERS: maintenance_ops.answer,
    CallType.REVIVE: lambda s, fid, c, now, mono: s.revive(
        fid, c.revive.roles if c.revive else []) or maintenance_ops.revive(s, fid),
    CallType.SUPPRESS: lambda s, fid, c, now, mono: s.suppress(
        fid, c.suppress.roles if c.suppress else []),
    CallType.KILL: lambda s, fid, c, now, mono: s.kill(fid, c.kill, now),
    CallType.SHUTDOWN: lambda s, fid, c, now, mono: s.shutdown(fid, c.shutdown, now),
    CallType.ACKNOWLEDGE: lambda s, fid, c, now, mono: s._acknowledge(fid, c, mono),
    CallType.RECONCILE: lambda s, fid, c, now, mono: s.reconcile(fid, c.reconcile, now),
    CallType.ACKNOWLEDGE_OPERATION_STATUS: lambda s, fid, c, now, mono:
        operations.acknowledge(s, fid, c, mono),
    CallType.RECONCILE_OPERATIONS: lambda s, fid, c, now, mono:
        operations.reconcile(s, fid, c, now),
    CallType.MESSAGE: lambda s, fid, c, now, mono: s.message(fid, c.message),
    CallType.UPDATE_FRAMEWORK: lambda s, fid, c, now, mono: s.update_framework(
        fid, c.update_framework, mono),
}

# Each stimulus type's handler: (state, stimulus, now, mono) -> its answer.
_HANDLERS: dict[type, Callable[[MasterState, Any, float, float], Result]] = {
    AgentRegisters: MasterState.register_agent,
    AgentSent: MasterState.agent_sent,
    AgentLinkClosed: MasterState.agent_link_closed,
    FrameworkSubscribes: MasterState.subscribe,
    FrameworkCalls: MasterState.framework_call,
    FrameworkStreamClosed: MasterState.stream_closed,
    MalformedCall: MasterState.malformed_call,
    OperatorReserves: operator_reservations.reserve,
    OperatorUnreserves: operator_reservations.unreserve,
    operator_quota.OperatorUpdatesWeights: operator_quota.update_weights,
    operator_quota.OperatorUpdatesQuota: operator_quota.update_quota,
    OperatorSchedulesMaintenance: maintenance_ops.update_schedule,
    OperatorStartsMaintenance: maintenance_ops.start,
    OperatorStopsMaintenance: maintenance_ops.stop,
    OperatorDrainsAgent: operator_agents.drain,
    OperatorDeactivatesAgent: operator_agents.deactivate,
    OperatorReactivatesAgent: operator_agents.reactivate,
    OperatorMarksAgentGone: operator_agents.mark_gone,
    operator_teardown.OperatorTearsDown: operator_teardown.teardown,
    Tick: MasterState.tick,
    AllocationRound: MasterState.allocation_round,
    Recover: MasterState.recover,
}
