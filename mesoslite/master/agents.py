"""Agent lifecycle in the master: register, re-register (with task reconciliation),
messages on the link, disconnect, ping timeouts, unreachable and back."""

from __future__ import annotations

import hmac

import msgspec

from mesoslite.master import operator_agents
from mesoslite.master.allocator.offer_constraints import AgentFacts
from mesoslite.master.maintenance_ops import MAINTENANCE_META, refuse_registration
from mesoslite.master.model import (
    AgentRecord,
    AgentState,
    CloseAgentLink,
    FrameworkRecord,
    FrameworkState,
    SendToAgent,
    TaskRecord,
)
from mesoslite.master.stimuli import (
    Admitted,
    AgentLinkClosed,
    AgentRegisters,
    AgentSent,
    Refusal,
)
from mesoslite.master.tasks import TaskOps
from mesoslite.messages.agent import (
    AgentTask,
    ExecutorExited,
    ExecutorToFramework,
    KillTask,
    Register,
    Registered,
    StatusUpdates,
    Usage,
)
from mesoslite.messages.mesos import (
    ID,
    FrameworkInfo,
    Reason,
    TaskState,
    to_resources,
)
from mesoslite.resources import ResourceError, Resources


class AgentOps(TaskOps):
    def register_agent(self, stimulus: AgentRegisters, now: float, mono: float
                       ) -> Admitted | Refusal:
        """Admit an agent on a new link; reconcile the tasks it reports; answer its id
        (or why it is refused: a wrong agent secret, invalid resources).

        A known ``agent_id`` re-registers (after an agent restart, a link drop, a
        partition or a master failover); an unknown one is admitted with its id.
        ``Registered`` is queued for the agent ahead of any command this causes.
        """
        msg = stimulus.message
        if not self._secret_matches(msg.secret):
            return Refusal(403, "agent authentication failed")
        if msg.agent_id is not None and msg.agent_id in self.gone_agents:
            return Refusal(403, f"Agent {msg.agent_id} was marked gone by the operator: it "
                                "may not register again")
        try:
            total = to_resources(msg.resources)
        except ResourceError as exc:
            return Refusal(400, f"invalid resources: {exc} (at {exc.path})", exc.path)
        refusal = refuse_registration(self.maintenance, msg.hostname, msg.address)
        if refusal is not None:
            return refusal
        first_command = len(self.outbox)
        agent_id = msg.agent_id or self.next_id("S")
        agent = self.agents.get(agent_id)
        previous = agent.state if agent is not None else None
        removed = agent is None and self.maintenance.forget_removed(agent_id)
        if removed:
            self.meta_writes[MAINTENANCE_META] = self.maintenance.to_store()
        if agent is not None:
            self.rescind_agent_offers(agent_id, mono)
            agent.reregistered_time = now
        else:
            agent = AgentRecord(id=agent_id, hostname=msg.hostname, address=msg.address,
                                port=msg.port, total=total, registered_time=now)
            self.agents[agent_id] = agent
        agent.hostname, agent.address, agent.port = msg.hostname, msg.address, msg.port
        agent.total = total
        agent.attributes = dict(msg.attributes)
        agent.containerizers = list(msg.containerizers)
        agent.version = msg.version
        agent.state = AgentState.ACTIVE
        agent.connection = stimulus.connection
        agent.last_seen = mono
        agent.unreachable_time = None
        if removed:
            # Removed when its machine went DOWN, its tasks reported LOST: whatever it
            # still runs is killed, and nothing of it is adopted.
            kill_ids = [t.task.task_id.value for t in msg.tasks if not t.status.state.terminal]
        else:
            kill_ids = self._reconcile_agent_tasks(agent, msg, previous, now, mono)
        self.adopt_executors(agent_id, msg, mono)
        self._readd_to_allocator(agent)
        self.dirty_agents.add(agent_id)
        self.changed_agents.add(agent_id)
        for task in self.agent_tasks(agent_id):
            if task.kill_pending and not task.latest_state.terminal:
                task.kill_pending = False
                self.to_agent(agent_id, KillTask(framework_id=task.framework_id, task_id=task.id))
        operator_agents.agent_registered(self, agent)  # type: ignore[arg-type]
        registered = Registered(
            agent_id=agent_id, master_id=self.master_id, epoch=self.epoch,
            ping_interval_seconds=self.config.agent_ping_timeout, kill_task_ids=kill_ids,
            link_timeout_seconds=self.config.agent_ping_timeout
            * self.config.max_agent_ping_timeouts,
        )
        self.outbox.insert(first_command, SendToAgent(agent_id, registered))
        return Admitted(agent_id)

    def _secret_matches(self, secret: str | None) -> bool:
        expected = self.config.agent_secret
        if expected is None:
            return True
        return secret is not None and hmac.compare_digest(secret.encode(), expected.encode())

    def _readd_to_allocator(self, agent: AgentRecord) -> None:
        if agent.id in self.in_allocator:
            self.allocator.remove_agent(agent.id)
        allocated: dict[tuple[str, str], Resources] = {}
        reserved_used: dict[tuple[str, str], Resources] = {}
        for task in self.agent_tasks(agent.id):
            if not task.released:
                key = (task.framework_id, task.role)
                unreserved = task.resources - task.reserved if task.reserved else task.resources
                allocated[key] = allocated.get(key, Resources()) + unreserved
                if task.reserved:
                    reserved_used[key] = reserved_used.get(key, Resources()) + task.reserved
        for key, resources in self.agent_executors_allocated(agent.id).items():
            allocated[key] = allocated.get(key, Resources()) + resources
        self.allocator.add_agent(agent.id, agent.total, allocated,
                                 reserved=agent.reservations.reserved,
                                 reserved_allocated=reserved_used,
                                 facts=AgentFacts(agent.hostname, self.offer_attributes(agent)))
        self.in_allocator.add(agent.id)
        if not agent.offerable:  # the operator turned its offers off (deactivated, draining)
            self.allocator.deactivate_agent(agent.id)

    def _reconcile_agent_tasks(
        self,
        agent: AgentRecord,
        msg: Register,
        previous: AgentState | None,
        now: float,
        mono: float,
    ) -> list[str]:
        """Merge the agent's view of its tasks into ours; returns task ids to kill."""
        infos = {f.id.value: f for f in msg.frameworks if f.id is not None}
        reported: set[tuple[str, str]] = set()
        kill_ids: list[str] = []
        for item in msg.tasks:
            key = (item.framework_id, item.task.task_id.value)
            reported.add(key)
            if not self._keep_reported_task(agent, item, infos, previous, now, mono):
                kill_ids.append(item.task.task_id.value)
        for key in sorted(self.tasks_by_agent.get(agent.id, set()) - reported):
            self._task_missing_on_agent(self.tasks[key], now, mono)
        return kill_ids

    def _keep_reported_task(
        self,
        agent: AgentRecord,
        item: AgentTask,
        infos: dict[str, FrameworkInfo],
        previous: AgentState | None,
        now: float,
        mono: float,
    ) -> bool:
        fid = item.framework_id
        if fid in self.removed_framework_ids:
            return False
        if fid not in self.frameworks:
            self._recover_framework(fid, infos.get(fid), now, mono)
        task = self.tasks.get((fid, item.task.task_id.value))
        if task is not None and task.agent_id != agent.id:
            return True  # the master placed it elsewhere; leave the agent's copy alone
        was_unreachable = previous == AgentState.UNREACHABLE
        if was_unreachable and not self.partition_aware(fid):
            # It was reported LOST; Mesos shuts such tasks down when the agent returns.
            if task is not None:
                self.retire_task(task, mono)
            return item.status.state.terminal
        if task is None:
            self.add_task(TaskRecord(
                framework_id=fid, agent_id=agent.id, info=item.task,
                role=_task_role(item, self.frameworks[fid].roles),
                resources=to_resources(item.task.resources), status=item.status,
                statuses=[(item.status.state.value, item.status.timestamp or now)],
                latest_state=item.status.state, released=item.status.state.terminal,
            ))
            return True
        returning = task.status.state == TaskState.TASK_UNREACHABLE
        self.transition(task, item.status, mono, at=now if returning else None)
        if returning and not item.status.state.terminal:
            # A task that ended meanwhile is told by the agent itself (its terminal
            # update is unacknowledged, so it is re-sent, with the exit status).
            self.send_update(fid, self.master_update(
                fid, task.id, agent.id, item.status.state, Reason.REASON_AGENT_REREGISTERED,
                f"Agent {agent.id} re-registered", now, healthy=item.status.healthy))
        return True

    def _recover_framework(self, framework_id: str, info: FrameworkInfo | None, now: float,
                           mono: float) -> None:
        """A framework the master doesn't know but an agent runs tasks for (the
        master's store was lost): keep it, disconnected, until it re-subscribes."""
        info = info or FrameworkInfo(user="", name=framework_id, id=ID(framework_id))
        fw = FrameworkRecord(id=framework_id, info=info, state=FrameworkState.RECOVERED,
                             registered_time=now, disconnected_at=mono)
        self.frameworks[framework_id] = fw
        self.allocator.add_framework(framework_id, fw.roles, set(), False)
        self.dirty_frameworks.add(framework_id)

    def _task_missing_on_agent(self, task: TaskRecord, now: float, mono: float) -> None:
        """The agent does not know a task we placed there."""
        if not task.latest_state.terminal:
            # Never heard of from the agent (launch lost on the way): DROPPED;
            # known to it once and gone since: GONE.
            reached = any(s not in (TaskState.TASK_STAGING.value,
                                    TaskState.TASK_UNREACHABLE.value)
                          for s, _ in task.statuses)
            pa_state = TaskState.TASK_GONE if reached else TaskState.TASK_DROPPED
            self.send_update(task.framework_id, self.master_update(
                task.framework_id, task.id, task.agent_id,
                self.lost_state(task.framework_id, pa_state), Reason.REASON_AGENT_REREGISTERED,
                "Task is unknown to the agent after it re-registered", now))
        self.retire_task(task, mono)

    # ---------------------------------------------------------------- liveness

    def agent_sent(self, stimulus: AgentSent, now: float, mono: float) -> Refusal | None:
        """A frame on an agent's link; any frame on its current link is a sign of
        life, frames on a stale link are ignored."""
        agent = self.agents.get(stimulus.agent_id)
        if agent is None or agent.connection != stimulus.connection or (
                agent.state != AgentState.ACTIVE):
            return None
        agent.last_seen = mono
        message = stimulus.message
        if isinstance(message, StatusUpdates):
            self.status_updates(agent.id, message.updates, now, mono)
        elif isinstance(message, Usage):
            self.usage[agent.id] = message
        elif isinstance(message, ExecutorExited):
            self.executor_exited(agent.id, message, mono)
        elif isinstance(message, ExecutorToFramework):
            self.executor_message(agent.id, message)
        elif isinstance(message, Register):
            return Refusal(400, "register sent twice on one link")
        return None

    def agent_link_closed(self, stimulus: AgentLinkClosed, now: float, mono: float) -> None:
        agent = self.agents.get(stimulus.agent_id)
        if agent is None or agent.connection != stimulus.connection or (
                agent.state != AgentState.ACTIVE):
            return
        agent.state = AgentState.DISCONNECTED
        self.dirty_agents.add(agent.id)  # not stored, but the event stream reports it
        self.rescind_agent_offers(agent.id, mono)
        self.allocator.deactivate_agent(agent.id)

    def check_agents(self, now: float, mono: float) -> None:
        """Mark agents unreachable once they've been silent for too long."""
        limit = self.config.agent_ping_timeout * self.config.max_agent_ping_timeouts
        for agent in list(self.agents.values()):
            silent = agent.state in (AgentState.ACTIVE, AgentState.DISCONNECTED) and (
                mono - agent.last_seen >= limit)
            not_back = agent.state == AgentState.RECOVERED and (
                mono - self.start_mono >= self.config.agent_reregister_timeout)
            if silent or not_back:
                self.mark_unreachable(agent, now, mono)

    def mark_unreachable(self, agent: AgentRecord, now: float, mono: float) -> None:
        if agent.state == AgentState.ACTIVE:
            self.outbox.append(CloseAgentLink(agent.id, agent.connection))
        self.rescind_agent_offers(agent.id, mono)
        if agent.id in self.in_allocator:
            self.allocator.remove_agent(agent.id)
            self.in_allocator.discard(agent.id)
        agent.state = AgentState.UNREACHABLE
        agent.unreachable_time = now
        self.dirty_agents.add(agent.id)
        for task in self.agent_tasks(agent.id):
            if task.latest_state.terminal:
                continue
            status = self.master_update(
                task.framework_id, task.id, agent.id, TaskState.TASK_UNREACHABLE,
                Reason.REASON_AGENT_REMOVED, f"Agent {agent.id} is unreachable", now,
                unreachable_time=now,
            )
            self.transition(task, status, mono, at=now)
            if self.partition_aware(task.framework_id):
                self.send_update(task.framework_id, status)
            else:
                self.send_update(
                    task.framework_id, msgspec.structs.replace(status, state=TaskState.TASK_LOST)
                )


def _task_role(item: AgentTask, roles: list[str]) -> str:
    for resource in item.task.resources:
        if resource.allocation_info is not None and resource.allocation_info.role:
            return resource.allocation_info.role
    return roles[0] if roles else "*"
