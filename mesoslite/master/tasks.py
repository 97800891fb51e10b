"""Task lifecycle in the master: ACCEPT (launch), status updates from agents,
acknowledgements, KILL, SHUTDOWN, MESSAGE and RECONCILE.

Semantics follow Mesos: invalid tasks get TASK_ERROR, launches on invalid offers get
TASK_DROPPED (TASK_LOST for frameworks without PARTITION_AWARE), the unused part of
accepted offers goes back to the allocator with the call's filter, a terminal task
stays in the master until its terminal update is acknowledged.
"""

from __future__ import annotations

import msgspec

from mesoslite.master import operations
from mesoslite.master.executors import ExecutorOps
from mesoslite.master.frameworks import DEFAULT_REFUSE_SECONDS
from mesoslite.master.model import (
    AgentRecord,
    AgentState,
    OfferRecord,
    TaskRecord,
)
from mesoslite.master.operator_agents import draining_state, draining_status
from mesoslite.master.reservations import (
    Ledger,
    container_volume_ids,
    create,
    destroy,
    is_plain,
    mount_volumes,
    normalize,
    reserve,
    take_for_task,
    task_volume_ids,
    unreserve,
)
from mesoslite.master.validation import task_resources, validate_group, validate_task
from mesoslite.messages.agent import (
    Ack,
    AckUpdates,
    DestroyVolumes,
    FrameworkMessage,
    KillTask,
    LaunchTasks,
    RunTasks,
    StatusUpdate,
)
from mesoslite.messages.mesos import (
    ID,
    Operation,
    OperationState,
    OperationType,
    Reason,
    Source,
    TaskInfo,
    TaskState,
    TaskStatus,
)
from mesoslite.messages.scheduler import (
    Accept,
    Kill,
    Message,
    Reconcile,
    ReconcileTask,
    Shutdown,
)
from mesoslite.resources import Resources


class TaskOps(ExecutorOps):
    # ---------------------------------------------------------------- launch

    def accept(self, framework_id: str, accept: Accept, now: float, mono: float) -> None:
        """Consume the offers and launch what the operations ask for."""
        refuse = accept.filters.refuse_seconds if accept.filters else DEFAULT_REFUSE_SECONDS
        launches = [op for op in accept.operations if op.type in _LAUNCH_TYPES]
        offers, error = self._take_offers(framework_id, [o.value for o in accept.offer_ids], mono)
        if error is not None:
            self.counters["calls_invalid"] += 1
            for task in _tasks_of(launches):
                self.counters["tasks_dropped"] += 1
                self.send_update(framework_id, self.master_update(
                    framework_id, task.task_id.value, task.agent_id.value,
                    self.lost_state(framework_id, TaskState.TASK_DROPPED),
                    Reason.REASON_INVALID_OFFERS, error, now,
                ))
            return
        self.counters["offers_accepted"] += len(offers)
        agent = self.agents[offers[0].agent_id]
        role = offers[0].role
        fw_info = self.frameworks[framework_id].info
        ledger = Ledger(role=role, principal=fw_info.principal, unreserved=Resources(),
                        reserved=Resources(), volumes=set())
        for offer in offers:
            ledger.unreserved = ledger.unreserved + offer.resources
            ledger.reserved = ledger.reserved + offer.reserved
            ledger.volumes.update(offer.volumes)
        seen: set[str] = set()
        run: list[LaunchTasks] = []
        destroyed: list[str] = []
        for op in accept.operations:
            if op.type in _LAUNCH_TYPES:
                accepted = self._launch_operation(framework_id, op, agent, ledger, seen, now)
                if accepted:
                    group = op.launch_group if op.type == OperationType.LAUNCH_GROUP else None
                    run.append(LaunchTasks(framework=fw_info, tasks=accepted, group=bool(group),
                                           executor=group.executor if group else None))
            else:
                destroyed += self._reservation_operation(framework_id, op, agent, ledger, mono)
        if ledger.unreserved:
            self.allocator.recover(framework_id, role, agent.id, ledger.unreserved, mono, refuse)
            self.changed_agents.add(agent.id)
        if ledger.reserved:
            self.allocator.recover(framework_id, role, agent.id, ledger.reserved, mono, refuse,
                                   reservation=role)
            self.changed_agents.add(agent.id)
        if destroyed:  # local persistent volumes: the agent removes them (and their data)
            self.to_agent(agent.id, DestroyVolumes(framework_id=framework_id, role=role,
                                                   volume_ids=destroyed))
        if run:
            self.to_agent(agent.id, RunTasks(launches=run))

    def _reservation_operation(self, framework_id: str, op: Operation, agent: AgentRecord,
                               ledger: Ledger, mono: float) -> list[str]:
        """RESERVE / UNRESERVE / CREATE / DESTROY on the accepted offers, in the
        ACCEPT's order (docs/storage.md).  A refused operation changes nothing and is
        answered with OPERATION_ERROR; one with an ``id`` that succeeds with
        OPERATION_FINISHED (tracked until acknowledged: ``operations``).  Returns the
        volume ids a DESTROY removed."""
        book = agent.reservations
        destroyed: list[str] = []
        error: str | None
        if op.type == OperationType.RESERVE:
            moved, error = reserve(ledger, book, op.reserve.resources if op.reserve else [])
            if error is None:
                self.allocator.reserve(framework_id, ledger.role, agent.id, moved)
        elif op.type == OperationType.UNRESERVE:
            moved, error = unreserve(ledger, book,
                                     op.unreserve.resources if op.unreserve else [])
            if error is None:
                self.allocator.unreserve(framework_id, ledger.role, agent.id, moved)
        elif op.type == OperationType.CREATE:
            _, error = create(ledger, book, op.create.volumes if op.create else [])
        elif op.type == OperationType.DESTROY:
            destroyed, error = destroy(ledger, book, op.destroy.volumes if op.destroy else [],
                                       self.volumes_in_use(agent.id))
        else:
            error = f"Operation {op.type.value} is not supported by mesoslite"
        if error is None:
            self.dirty_agents.add(agent.id)  # the books are stored with the agent
        self.counters["operations_invalid" if error else "operations_finished"] += 1
        if error is not None or op.id is not None:
            state = OperationState.OPERATION_ERROR if error else OperationState.OPERATION_FINISHED
            operations.report(self, framework_id, agent.id, op, state, error, mono)
        return destroyed

    def _take_offers(
        self, framework_id: str, offer_ids: list[str], mono: float
    ) -> tuple[list[OfferRecord], str | None]:
        """Pop the offers of an ACCEPT, or return them all and explain what's wrong."""
        error = None
        if not offer_ids:
            error = "No offers specified"
        elif len(set(offer_ids)) != len(offer_ids):
            error = "Offers contain duplicates"
        else:
            for offer_id in offer_ids:
                offer = self.offers.get(offer_id)
                if offer is None or offer.framework_id != framework_id:
                    error = f"Offer {offer_id} is no longer valid"
                    break
        if error is None:
            offers = [self.offers[o] for o in offer_ids]
            if len({o.agent_id for o in offers}) > 1:
                error = "Aggregated offers must belong to the same agent"
            elif len({o.role for o in offers}) > 1:
                error = "Aggregated offers must be allocated to the same role"
            elif self.agents[offers[0].agent_id].state != AgentState.ACTIVE:
                error = f"Agent {offers[0].agent_id} is not active"
        if error is not None:
            # Valid offers named alongside an invalid one go back untouched (no filter).
            for offer_id in offer_ids:
                offer = self.offers.get(offer_id)
                if offer is not None and offer.framework_id == framework_id:
                    self.release_offer(offer_id, mono)
            return [], error
        return [self.pop_offer(o) for o in offer_ids], None  # type: ignore[misc]

    def _launch_operation(
        self,
        framework_id: str,
        op: Operation,
        agent: AgentRecord,
        ledger: Ledger,
        seen: set[str],
        now: float,
    ) -> list[TaskInfo]:
        """Validate one LAUNCH / LAUNCH_GROUP; returns the tasks accepted (taken out
        of ``ledger``, reserved resources and persistent volumes included).  Each
        refused task is answered with TASK_ERROR at once.

        A LAUNCH_GROUP is all-or-nothing: one invalid task fails the whole group.
        """
        is_group = op.type == OperationType.LAUNCH_GROUP
        infos = op.launch_group.task_group.tasks if is_group and op.launch_group else (
            op.launch.task_infos if op.launch else []
        )
        accepted: list[tuple[TaskInfo, Resources]] = []
        errors: dict[str, str] = {}
        before = ledger.copy()
        group_error = validate_group(framework_id, op.launch_group) if (
            is_group and op.launch_group) else None
        for info in infos if group_error is None else []:
            info, resources, error = self._take_task(framework_id, info, agent, ledger, seen)
            seen.add(info.task_id.value)
            if error is not None:
                errors[info.task_id.value] = error
            else:
                accepted.append((info, resources))
        group_executor = None
        if is_group and not errors and group_error is None and op.launch_group is not None:
            # (validate_group checked the executor: DEFAULT, with an id)
            group_executor, group_error = self.claim_executor(
                framework_id, op.launch_group.executor, agent.id, ledger)
        if is_group and (errors or group_error):
            reason = Reason.REASON_TASK_GROUP_INVALID
            first = group_error or next(iter(errors.values()))
            errors = {i.task_id.value: errors.get(i.task_id.value, first) for i in infos}
            accepted = []
            ledger.unreserved, ledger.reserved = before.unreserved, before.reserved
            ledger.volumes = before.volumes
        else:
            reason = Reason.REASON_TASK_INVALID
        for tid, error in errors.items():
            self.counters["tasks_error"] += 1
            self.send_update(framework_id, self.master_update(
                framework_id, tid, agent.id, TaskState.TASK_ERROR, reason, error, now))
        group_id = f"group-{infos[0].task_id.value}" if is_group and infos else None
        if is_group and op.launch_group and op.launch_group.executor.executor_id:
            group_id = op.launch_group.executor.executor_id.value
        if group_executor is not None and accepted:
            self.add_executor(group_executor)
        for info, resources in accepted:
            self._add_launched_task(framework_id, agent.id, ledger.role, info, resources,
                                    group_id, now)
        return [info for info, _ in accepted]

    def _take_task(
        self, framework_id: str, info: TaskInfo, agent: AgentRecord, ledger: Ledger,
        seen: set[str],
    ) -> tuple[TaskInfo, Resources, str | None]:
        """Check one task of a launch and take its resources out of ``ledger``:
        (the task as it will run, its resources, None) or (..., why it is invalid),
        the ledger untouched.  Its secrets must resolve now (``secrets_check``); a
        race with a deletion after this is caught where the values are added."""
        tid = info.task_id.value
        if not is_plain(info.resources):
            info = mount_volumes(msgspec.structs.replace(
                info, resources=normalize(info.resources)), agent.reservations)
        resources, error = task_resources(info)
        if error is None:
            error = validate_task(info, agent.id, ledger.role, agent.containerizers)
        if error is None and (tid in seen or (framework_id, tid) in self.tasks):
            error = f"Task has duplicate ID: {tid}"
        if error is None:
            error = _unmanaged_volume(info)
        if error is None and self.secrets_check is not None:
            problem = self.secrets_check(self.frameworks[framework_id].info, info)
            error = f"Secrets: {problem}" if problem else None
        before = ledger.copy()  # put back if the task's executor cannot be had
        if error is None:
            error = "Task uses no resources" if not resources else take_for_task(
                ledger, agent.reservations, info.resources, resources)  # type: ignore[arg-type]
        if error is None and info.executor is not None:
            record, error = self.take_executor(framework_id, info.executor, agent.id, ledger,
                                               agent.containerizers)
            if error is not None:
                ledger.unreserved, ledger.reserved = before.unreserved, before.reserved
                ledger.volumes = before.volumes
            elif record is not None:
                self.add_executor(record)
        return info, resources or Resources(), error

    def _add_launched_task(
        self,
        framework_id: str,
        agent_id: str,
        role: str,
        info: TaskInfo,
        resources: Resources,
        group_id: str | None,
        now: float,
    ) -> None:
        status = TaskStatus(
            task_id=info.task_id, state=TaskState.TASK_STAGING,
            source=Source.SOURCE_MASTER, agent_id=ID(agent_id), timestamp=now,
        )
        task = TaskRecord(
            framework_id=framework_id, agent_id=agent_id, info=info, role=role,
            resources=resources, status=status, statuses=[(TaskState.TASK_STAGING.value, now)],
            group_id=group_id,
        )
        self.add_task(task)
        self.counters["tasks_launched"] += 1

    # ---------------------------------------------------------------- updates

    def status_updates(
        self, agent_id: str, updates: list[StatusUpdate], now: float, mono: float
    ) -> None:
        """Record and forward updates from an agent (at-least-once: duplicates are fine)."""
        immediate_acks: list[Ack] = []
        agent = self.agents.get(agent_id)
        for update in updates:
            status = update.status
            fid, tid = update.framework_id, status.task_id.value
            self.counters["status_updates"] += 1
            if fid in self.removed_framework_ids or fid not in self.frameworks:
                # Nobody will ever acknowledge it: stop the agent from retrying.
                if status.uuid:
                    immediate_acks.append(Ack(framework_id=fid, task_id=tid, uuid=status.uuid))
                continue
            latest = update.latest_state
            if agent is not None and agent.drain is not None:
                aware = self.partition_aware(fid)
                status = draining_status(agent, status, aware)
                latest = None if latest is None else draining_state(agent, latest, aware)
            task = self.tasks.get((fid, tid))
            if task is not None and task.agent_id == agent_id:
                self.transition(task, status, mono, latest=latest,
                                at=status.timestamp or 0.0)
            self.send_update(fid, status)
        if immediate_acks:
            self.to_agent(agent_id, AckUpdates(acks=immediate_acks))

    def acknowledge(self, framework_id: str, agent_id: str, task_id: str, uuid: bytes,
                    mono: float) -> None:
        """Forward an acknowledgement to the agent; a terminal one retires the task."""
        task = self.tasks.get((framework_id, task_id))
        self.to_agent(
            agent_id, AckUpdates(acks=[Ack(framework_id=framework_id, task_id=task_id, uuid=uuid)])
        )
        if task is not None and task.terminal_uuid == uuid and task.agent_id == agent_id:
            self.retire_task(task, mono)

    # ---------------------------------------------------------------- kill

    def kill(self, framework_id: str, kill: Kill, now: float) -> None:
        task = self.tasks.get((framework_id, kill.task_id.value))
        if task is None:
            # Mesos: an unknown task is answered by reconciling it.
            self.reconcile(framework_id, Reconcile(tasks=[
                ReconcileTask(task_id=kill.task_id, agent_id=kill.agent_id)]), now)
            return
        if kill.agent_id is not None and kill.agent_id.value != task.agent_id:
            return
        grace = None
        policy = kill.kill_policy or task.info.kill_policy
        if policy is not None and policy.grace_period is not None:
            grace = policy.grace_period.nanoseconds / 1e9
        agent = self.agents.get(task.agent_id)
        if agent is not None and agent.state == AgentState.ACTIVE:
            self.to_agent(task.agent_id, KillTask(
                framework_id=framework_id, task_id=task.id, grace_period_seconds=grace))
        else:
            task.kill_pending = True  # sent when the agent re-registers

    def shutdown(self, framework_id: str, shutdown: Shutdown, now: float) -> None:
        """Stop a custom executor; a task group's default executor goes with its tasks
        (all killed); for a command task, whose built-in executor's id is the task id,
        kill the task."""
        agent_id, executor_id = shutdown.agent_id.value, shutdown.executor_id.value
        if self.shutdown_executor(framework_id, agent_id, executor_id):
            return
        record = self.executors.get((agent_id, framework_id, executor_id))
        if record is not None and record.default:
            for task in self.agent_tasks(agent_id):
                if (task.framework_id == framework_id and task.group_id == executor_id
                        and not task.latest_state.terminal):
                    self.kill(framework_id, Kill(task_id=ID(task.id),
                                                 agent_id=shutdown.agent_id), now)
            return
        self.kill(framework_id, Kill(task_id=shutdown.executor_id, agent_id=shutdown.agent_id), now)

    def message(self, framework_id: str, message: Message) -> None:
        self.to_agent(message.agent_id.value, FrameworkMessage(
            framework_id=framework_id, executor_id=message.executor_id.value, data=message.data))

    # ---------------------------------------------------------------- reconcile

    def reconcile(self, framework_id: str, reconcile: Reconcile, now: float) -> None:
        """Mesos' explicit and implicit task reconciliation."""
        if not reconcile.tasks:
            for task in self.framework_tasks(framework_id):
                self.send_update(framework_id, self._reconcile_known(task, now))
            return
        for item in reconcile.tasks:
            status = self._reconcile_one(framework_id, item, now)
            if status is not None:
                self.send_update(framework_id, status)

    def _reconcile_known(self, task: TaskRecord, now: float) -> TaskStatus:
        state = task.status.state
        if state == TaskState.TASK_UNREACHABLE:
            state = self.lost_state(task.framework_id, state)
        return self.master_update(
            task.framework_id, task.id, task.agent_id, state, Reason.REASON_RECONCILIATION,
            "Reconciliation: Latest task state", now, healthy=task.status.healthy,
            unreachable_time=self.agents[task.agent_id].unreachable_time
            if state == TaskState.TASK_UNREACHABLE and task.agent_id in self.agents else None,
        )

    def _reconcile_one(self, framework_id: str, item: ReconcileTask, now: float
                       ) -> TaskStatus | None:
        task = self.tasks.get((framework_id, item.task_id.value))
        if task is not None:
            return self._reconcile_known(task, now)
        agent_id = item.agent_id.value if item.agent_id else None
        agent = self.agents.get(agent_id) if agent_id else None
        recovering = any(a.state == AgentState.RECOVERED for a in self.agents.values())
        if (agent is not None and agent.state == AgentState.RECOVERED) or (
            agent_id is None and recovering
        ):
            return None  # Mesos: wait until the agent has re-registered
        if agent_id is not None and agent_id in self.gone_agents:
            state, message = TaskState.TASK_GONE_BY_OPERATOR, "Reconciliation: Agent is gone"
        elif agent is not None and agent.state == AgentState.UNREACHABLE:
            state, message = TaskState.TASK_UNREACHABLE, "Reconciliation: Task is unreachable"
        elif agent is not None:
            state, message = TaskState.TASK_GONE, "Reconciliation: Task is unknown to the agent"
        else:
            state, message = TaskState.TASK_UNKNOWN, "Reconciliation: Task is unknown"
        return self.master_update(
            framework_id, item.task_id.value, agent_id, self.lost_state(framework_id, state),
            Reason.REASON_RECONCILIATION, message, now,
            unreachable_time=agent.unreachable_time if agent is not None
            and state == TaskState.TASK_UNREACHABLE else None,
        )


_LAUNCH_TYPES = (OperationType.LAUNCH, OperationType.LAUNCH_GROUP)


def _unmanaged_volume(info: TaskInfo) -> str | None:
    """A ``PERSISTENT`` container volume must be one of the task's disk resources
    (a volume made with CREATE on reserved disk)."""
    named = set(task_volume_ids(info.resources))
    for vid in container_volume_ids(info):
        if vid not in named:
            return (f"Task mounts persistent volume '{vid}' without its disk resource:"
                    " CREATE the volume on reserved disk and list it in the task's resources")
    return None


def _tasks_of(operations: list[Operation]) -> list[TaskInfo]:
    out: list[TaskInfo] = []
    for op in operations:
        if op.type == OperationType.LAUNCH and op.launch:
            out.extend(op.launch.task_infos)
        elif op.type == OperationType.LAUNCH_GROUP and op.launch_group:
            out.extend(op.launch_group.task_group.tasks)
    return out
