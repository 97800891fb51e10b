"""The operator's calls on agents (Mesos' ``DRAIN_AGENT``, ``DEACTIVATE_AGENT``,
``REACTIVATE_AGENT``, ``MARK_AGENT_GONE``) and what follows from them.

* **Deactivated**: no offers for the agent (outstanding ones are rescinded); its
  tasks keep running.  Kept in the store with the agent.
* **Draining**: deactivated, and every task on it is killed, its kill policy's grace
  capped by ``max_grace_period``.  Once no task is left (each terminal, its terminal
  update acknowledged) the agent is DRAINED, or, with ``mark_gone``, marked gone.
  Kills for an agent that is away are sent when it registers again.  While an agent
  drains, its tasks' KILLING/KILLED updates carry ``REASON_AGENT_DRAINING`` (and
  become TASK_GONE_BY_OPERATOR for PARTITION_AWARE frameworks when the drain marks it
  gone), as Mesos' agent reports them.
* **Reactivated**: offers again; a finished drain is forgotten (one still DRAINING
  cannot be cancelled, as in Mesos).
* **Gone**: its live tasks become TASK_GONE_BY_OPERATOR (TASK_LOST for frameworks
  without PARTITION_AWARE), a connected agent is told to shut its frameworks down,
  and the agent is removed; it is refused if it registers again.

Each call's handler changes the state only when it succeeds and returns None, or
returns a ``Refusal`` (404: no such agent; 409: not possible now) and changes
nothing.  They are the handlers of the ``Operator*Agent*`` stimuli
(``MasterState.handle``).  No I/O.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import msgspec

from mesoslite.master.model import AgentRecord, AgentState, DrainRecord, DrainState
from mesoslite.master.stimuli import (
    OperatorDeactivatesAgent,
    OperatorDrainsAgent,
    OperatorMarksAgentGone,
    OperatorReactivatesAgent,
    Refusal,
)
from mesoslite.messages.agent import KillTask, Refused, ShutdownFramework
from mesoslite.messages.mesos import Reason, TaskState, TaskStatus

if TYPE_CHECKING:
    from mesoslite.master.model import TaskRecord
    from mesoslite.master.state import MasterState

GONE_MESSAGE = "Agent was marked gone by the operator"


def _known(state: MasterState, agent_id: str) -> AgentRecord | Refusal:
    agent = state.agents.get(agent_id)
    if agent is not None:
        return agent
    if agent_id in state.gone_agents:
        return Refusal(404, f"Agent {agent_id} was marked gone", "agent_id")
    return Refusal(404, f"Agent {agent_id} is not known to this master", "agent_id")


# ---------------------------------------------------------------- the calls


def deactivate(state: MasterState, stimulus: OperatorDeactivatesAgent, now: float,
               mono: float) -> Refusal | None:
    """No more offers for the agent; its tasks keep running (idempotent)."""
    agent = _known(state, stimulus.agent_id)
    if isinstance(agent, Refusal):
        return agent
    _deactivate(state, agent, mono)
    return None


def reactivate(state: MasterState, stimulus: OperatorReactivatesAgent, now: float,
               mono: float) -> Refusal | None:
    """Offers again (once the agent is connected); ends a finished drain."""
    agent = _known(state, stimulus.agent_id)
    if isinstance(agent, Refusal):
        return agent
    if agent.drain is not None and agent.drain.state == DrainState.DRAINING:
        return Refusal(409, f"Agent {agent.id} is still DRAINING: it can be reactivated "
                            "once it is DRAINED", "agent_id")
    if not agent.deactivated:
        return Refusal(409, f"Agent {agent.id} is not deactivated", "agent_id")
    agent.deactivated = False
    agent.drain = None
    state.dirty_agents.add(agent.id)
    if agent.state == AgentState.ACTIVE and agent.id in state.in_allocator:
        state.allocator.activate_agent(agent.id)
        state.changed_agents.add(agent.id)
    return None


def drain(state: MasterState, stimulus: OperatorDrainsAgent, now: float, mono: float
          ) -> Refusal | None:
    """Deactivate the agent and kill its tasks (see the module docstring).  Draining
    again replaces the configuration and re-sends the kills with the new cap."""
    agent = _known(state, stimulus.agent_id)
    if isinstance(agent, Refusal):
        return agent
    _deactivate(state, agent, mono)
    agent.drain = DrainRecord(DrainState.DRAINING, stimulus.max_grace_period,
                              stimulus.mark_gone)
    send_drain_kills(state, agent)
    state.drain_candidates.add(agent.id)
    return None


def mark_gone(state: MasterState, stimulus: OperatorMarksAgentGone, now: float,
              mono: float) -> Refusal | None:
    """Remove the agent for good (idempotent: an agent already gone is fine)."""
    if stimulus.agent_id in state.gone_agents:
        return None
    agent = _known(state, stimulus.agent_id)
    if isinstance(agent, Refusal):
        return agent
    remove_gone(state, agent, now, mono)
    return None


# ---------------------------------------------------------------- what follows


def _deactivate(state: MasterState, agent: AgentRecord, mono: float) -> None:
    agent.deactivated = True
    state.dirty_agents.add(agent.id)
    state.rescind_agent_offers(agent.id, mono)
    if agent.id in state.in_allocator:
        state.allocator.deactivate_agent(agent.id)


def drain_grace(own: float | None, cap: float | None) -> float | None:
    """The grace period a drain's kill asks for: ``cap`` where the task has none or a
    longer one, else None (the agent then uses the task's own kill policy)."""
    if cap is not None and (own is None or cap < own):
        return cap
    return None


def send_drain_kills(state: MasterState, agent: AgentRecord) -> None:
    """Kill every live task of a draining agent that is connected (an agent that is
    away gets them when it registers again: ``agent_registered``)."""
    if agent.drain is None or agent.drain.state != DrainState.DRAINING or (
            agent.state != AgentState.ACTIVE):
        return
    for task in state.agent_tasks(agent.id):
        if task.latest_state.terminal:
            continue
        policy = task.info.kill_policy
        own = (policy.grace_period.nanoseconds / 1e9
               if policy is not None and policy.grace_period is not None else None)
        state.to_agent(agent.id, KillTask(
            framework_id=task.framework_id, task_id=task.id,
            grace_period_seconds=drain_grace(own, agent.drain.max_grace_period)))


def agent_registered(state: MasterState, agent: AgentRecord) -> None:
    """An agent (re-)registered: a drain under way goes on (its kills again).

    A DRAINED agent can come back with live tasks: ones it ran while it was
    unreachable and the master had written off (Mesos adopts them on re-registration).
    It is DRAINING again, so those are killed and it is DRAINED only once they end
    and their ends are acknowledged."""
    if agent.drain is None:
        return
    if agent.drain.state == DrainState.DRAINED and state.tasks_by_agent.get(agent.id):
        agent.drain = dataclasses.replace(agent.drain, state=DrainState.DRAINING)
        state.dirty_agents.add(agent.id)
    if agent.drain.state == DrainState.DRAINING:
        send_drain_kills(state, agent)
        state.drain_candidates.add(agent.id)


def finish_drains(state: MasterState, now: float, mono: float) -> None:
    """Draining agents that are connected and have no task left become DRAINED, or
    are marked gone when their drain says so."""
    candidates, state.drain_candidates = state.drain_candidates, set()
    for agent_id in sorted(candidates):
        agent = state.agents.get(agent_id)
        if (agent is None or agent.drain is None or agent.drain.state != DrainState.DRAINING
                or agent.state != AgentState.ACTIVE or state.tasks_by_agent.get(agent_id)):
            continue
        if agent.drain.mark_gone:
            remove_gone(state, agent, now, mono)
        else:
            agent.drain = dataclasses.replace(agent.drain, state=DrainState.DRAINED)
            state.dirty_agents.add(agent_id)


def draining_state(agent: AgentRecord | None, state: TaskState, partition_aware: bool
                   ) -> TaskState:
    """What a draining agent reports for a task in ``state`` (see the module docstring)."""
    if (agent is not None and agent.drain is not None and agent.drain.mark_gone
            and partition_aware and state in _KILL_STATES):
        return TaskState.TASK_GONE_BY_OPERATOR
    return state


def draining_status(agent: AgentRecord | None, status: TaskStatus, partition_aware: bool
                    ) -> TaskStatus:
    """``status`` as a draining agent reports it: KILLING and KILLED carry
    ``REASON_AGENT_DRAINING`` (and may become GONE_BY_OPERATOR); others unchanged."""
    if agent is None or agent.drain is None or status.state not in _KILL_STATES:
        return status
    return msgspec.structs.replace(
        status, reason=Reason.REASON_AGENT_DRAINING,
        state=draining_state(agent, status.state, partition_aware))


_KILL_STATES = (TaskState.TASK_KILLING, TaskState.TASK_KILLED)


def remove_gone(state: MasterState, agent: AgentRecord, now: float, mono: float) -> None:
    """Mark the agent gone: its live tasks end as GONE_BY_OPERATOR, a connected agent
    shuts its frameworks down and is refused, and the agent leaves the books."""
    if agent.state == AgentState.ACTIVE:
        frameworks = {t.framework_id for t in state.agent_tasks(agent.id)}
        frameworks |= {key[1] for key in state.executors if key[0] == agent.id}
        for framework_id in sorted(frameworks):
            state.to_agent(agent.id, ShutdownFramework(framework_id=framework_id))
        state.to_agent(agent.id, Refused(message=f"{GONE_MESSAGE}: it may not register again"))
    state.rescind_agent_offers(agent.id, mono)
    if agent.id in state.in_allocator:  # first, so that no task's resources go back
        state.allocator.remove_agent(agent.id)
        state.in_allocator.discard(agent.id)
    for task in state.agent_tasks(agent.id):
        _task_gone(state, task, now, mono)
    state.forget_agent_executors(agent.id)
    del state.agents[agent.id]
    state.tasks_by_agent.pop(agent.id, None)
    state.usage.pop(agent.id, None)
    state.changed_agents.discard(agent.id)
    state.drain_candidates.discard(agent.id)
    agent.gone_time = now
    state.gone_agents[agent.id] = agent
    state.dirty_agents.add(agent.id)


def _task_gone(state: MasterState, task: TaskRecord, now: float, mono: float) -> None:
    if not task.latest_state.terminal:
        fid = task.framework_id
        status = state.master_update(
            fid, task.id, task.agent_id, state.lost_state(fid, TaskState.TASK_GONE_BY_OPERATOR),
            Reason.REASON_AGENT_REMOVED_BY_OPERATOR, GONE_MESSAGE, now)
        state.transition(task, status, mono, at=now)
        state.send_update(fid, status)
    state.retire_task(task, mono)
