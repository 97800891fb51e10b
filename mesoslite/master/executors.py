"""Executors in the master (docs/executors.md): custom executors and the built-in
default executor of task groups, each holding resources apart from its tasks'.

An executor's resources are taken from the offer that launches its first task on an
agent and stay allocated to the framework until the executor is gone: a custom one
when its agent reports ``ExecutorExited`` (or no longer lists it on re-registration),
a task group's default executor when the group's last task is terminal.  The
allocator, the offers (``executor_ids``), ``/state`` and the operator API read them
from here.  Executors are not stored: agents report them when they (re-)register.
"""

from __future__ import annotations

from mesoslite.master.frameworks import FrameworkOps
from mesoslite.master.model import AgentState, ExecutorRecord, TaskRecord
from mesoslite.master.reservations import Ledger, is_plain
from mesoslite.master.validation import validate_executor
from mesoslite.messages.agent import (
    ExecutorExited,
    ExecutorToFramework,
    Register,
    ShutdownExecutor,
)
from mesoslite.messages.mesos import ID, ExecutorInfo, TaskInfo, same_executor, to_resources
from mesoslite.messages.scheduler import Event, EventMessage, EventType, Failure
from mesoslite.resources import ResourceError, Resources


def executor_resources(info: ExecutorInfo) -> tuple[Resources, str | None]:
    """The executor's resources (plain ones only), or why they cannot be used."""
    if not is_plain(info.resources):
        return Resources(), ("Executor 'resources' must be unreserved resources without "
                             "volumes (reserve them for its tasks instead)")
    try:
        return to_resources(info.resources, "executor.resources"), None
    except ResourceError as exc:
        return Resources(), f"Executor uses invalid resources: {exc} (at {exc.path})"


class ExecutorOps(FrameworkOps):
    # ---------------------------------------------------------------- launch

    def take_executor(self, framework_id: str, executor: ExecutorInfo, agent_id: str,
                      ledger: Ledger, containerizers: list[str]) -> tuple[
                          ExecutorRecord | None, str | None]:
        """Check a task's executor: the running one (same ExecutorInfo), or a new one
        whose resources come out of ``ledger``.  Returns (a new record to add once the
        task is accepted, None) or (None, why the task is refused)."""
        error = validate_executor(executor, framework_id, containerizers)
        if error is not None:
            return None, error
        return self.claim_executor(framework_id, executor, agent_id, ledger)

    def claim_executor(self, framework_id: str, executor: ExecutorInfo, agent_id: str,
                       ledger: Ledger) -> tuple[ExecutorRecord | None, str | None]:
        """A valid executor: the running one (same ExecutorInfo: nothing to take), or
        a new one whose resources come out of ``ledger`` (its record is returned)."""
        assert executor.executor_id is not None
        running = self.executors.get((agent_id, framework_id, executor.executor_id.value))
        if running is not None:
            if not same_executor(running.info, executor):
                return None, (f"ExecutorInfo of executor '{running.id}' differs from the "
                              f"one it runs with on agent {agent_id}")
            return None, None
        resources, error = executor_resources(executor)
        if error is not None:
            return None, error
        if not ledger.unreserved.contains(resources):
            return None, (f"Executor uses more resources {resources} than available "
                          f"{ledger.unreserved}")
        ledger.unreserved = ledger.unreserved - resources
        return ExecutorRecord(agent_id, framework_id, executor, ledger.role, resources), None

    def add_executor(self, record: ExecutorRecord) -> None:
        self.executors[record.key] = record
        self.changed_agents.add(record.agent_id)

    # ---------------------------------------------------------------- the end of one

    def _release(self, task: TaskRecord, mono: float) -> None:
        released = task.released
        super()._release(task, mono)
        if not released and task.group_id is not None:
            self.task_group_done(task.framework_id, task.agent_id, task.info, mono)

    def release_executor(self, record: ExecutorRecord, mono: float) -> None:
        """Forget an executor and give its resources back."""
        self.executors.pop(record.key, None)
        if record.released:
            return
        record.released = True
        if record.agent_id in self.in_allocator and record.resources:
            self.allocator.recover(record.framework_id, record.role, record.agent_id,
                                   record.resources, mono)
            self.changed_agents.add(record.agent_id)

    def executor_exited(self, agent_id: str, message: ExecutorExited, mono: float) -> None:
        record = self.executors.get((agent_id, message.framework_id, message.executor_id))
        if record is not None:
            self.release_executor(record, mono)
        if message.framework_id in self.frameworks:
            self.to_framework(message.framework_id, Event(type=EventType.FAILURE,
                failure=Failure(agent_id=ID(agent_id), executor_id=ID(message.executor_id),
                                status=message.status)))

    def executor_message(self, agent_id: str, message: ExecutorToFramework) -> None:
        if message.framework_id in self.frameworks:
            self.to_framework(message.framework_id, Event(
                type=EventType.MESSAGE, message=EventMessage(
                    agent_id=ID(agent_id), executor_id=ID(message.executor_id),
                    data=message.data)))

    def task_group_done(self, task_framework_id: str, agent_id: str, info: TaskInfo,
                        mono: float) -> None:
        """A task ended: its group's default executor goes once no task needs it."""
        executor_id = self.task_executor_id(info, task_framework_id, agent_id)
        if executor_id is None:
            return
        record = self.executors.get((agent_id, task_framework_id, executor_id))
        if record is None or not record.default:
            return
        for key in self.tasks_by_agent.get(agent_id, ()):
            task = self.tasks[key]
            if (task.framework_id == task_framework_id and not task.latest_state.terminal
                    and task.group_id == executor_id):
                return
        self.release_executor(record, mono)

    def task_executor_id(self, info: TaskInfo, framework_id: str, agent_id: str
                         ) -> str | None:
        if info.executor is not None and info.executor.executor_id is not None:
            return info.executor.executor_id.value
        task = self.tasks.get((framework_id, info.task_id.value))
        return task.group_id if task is not None else None

    # ---------------------------------------------------------------- re-registration

    def adopt_executors(self, agent_id: str, msg: Register, mono: float) -> None:
        """The executors an agent reports replace what the master believed runs there
        (a master failover learns them here; one no longer reported is gone)."""
        reported = {(agent_id, e.framework_id, e.executor.executor_id.value): e
                    for e in msg.executors if e.executor.executor_id is not None
                    and e.framework_id not in self.removed_framework_ids}
        for key, record in list(self.executors.items()):
            if key[0] == agent_id and key not in reported and not record.default:
                self.release_executor(record, mono)
        for key, item in reported.items():
            if key in self.executors:
                continue
            resources, error = executor_resources(item.executor)
            fw = self.frameworks.get(item.framework_id)
            role = fw.roles[0] if fw is not None and fw.roles else "*"
            self.executors[key] = ExecutorRecord(agent_id, item.framework_id, item.executor,
                                                 role, resources if error is None
                                                 else Resources())

    def agent_executors_allocated(self, agent_id: str) -> dict[tuple[str, str], Resources]:
        """(framework, role) -> the resources the agent's executors hold."""
        out: dict[tuple[str, str], Resources] = {}
        for record in self.executors.values():
            if record.agent_id == agent_id and not record.released:
                key = (record.framework_id, record.role)
                out[key] = out.get(key, Resources()) + record.resources
        return out

    def forget_agent_executors(self, agent_id: str) -> None:
        for key in [k for k in self.executors if k[0] == agent_id]:
            del self.executors[key]

    # ---------------------------------------------------------------- calls

    def shutdown_executor(self, framework_id: str, agent_id: str, executor_id: str) -> bool:
        """The SHUTDOWN call for a custom executor; False when none runs there."""
        record = self.executors.get((agent_id, framework_id, executor_id))
        if record is None or record.default:
            return False
        agent = self.agents.get(agent_id)
        if agent is not None and agent.state == AgentState.ACTIVE:
            self.to_agent(agent_id, ShutdownExecutor(framework_id=framework_id,
                                                     executor_id=executor_id))
        return True

    def framework_executors(self, framework_id: str) -> list[ExecutorRecord]:
        return [r for r in self.executors.values() if r.framework_id == framework_id]
