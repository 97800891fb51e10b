"""``MasterState``: the master's sans-I/O state machine.

Inputs are method calls carrying typed messages and the current time (``now`` wall
seconds for timestamps users see, ``mono`` monotonic seconds for timeouts).  Outputs
are the commands in ``outbox`` (drained by the server with ``drain()``) and the sets
of records that changed (``dirty_*``), which the server writes to the store before
executing the commands of the same tick.
"""

from __future__ import annotations

import msgspec

from mesoslite.master.agents import AgentOps
from mesoslite.master.allocator import Allocator
from mesoslite.master.core import MasterConfig
from mesoslite.master.model import (
    AgentRecord,
    AgentState,
    FrameworkRecord,
    FrameworkState,
    TaskRecord,
)
from mesoslite.master.reservations import AgentReservations
from mesoslite.messages.mesos import FrameworkInfo, TaskInfo, TaskState, TaskStatus
from mesoslite.resources import Resources


class MasterState(AgentOps):
    def __init__(self, master_id: str, config: MasterConfig | None = None,
                 allocator: Allocator | None = None) -> None:
        config = config or MasterConfig()
        super().__init__(master_id, config, allocator or Allocator(config.role_weights))
        self._init_offers()

    def tick(self, now: float, mono: float) -> None:
        """Timeouts: offers, agents that went silent, frameworks past failover."""
        self.expire_offers(mono)
        self.check_agents(now, mono)
        self.check_failovers(now, mono)

    # ---------------------------------------------------------------- recovery

    def recover(self, snapshot: dict, mono: float) -> None:
        """Load what the store kept (after a master restart).

        Agents come back RECOVERED (not offered until they re-register), frameworks
        RECOVERED with their failover timers started now, tasks with their latest
        status.  Nothing is sent: agents and frameworks reconnect on their own.
        """
        self.start_mono = mono
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
            )
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
            self.index_task(task)
        self.dirty_tasks.clear()

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
        return total

    def tasks_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks.values():
            counts[task.latest_state.value] = counts.get(task.latest_state.value, 0) + 1
        return counts
