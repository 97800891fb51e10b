"""The agent's task lifecycle: launch, watch, kill, recover after a restart.

A task's life on the agent: checkpoint (task.json) -> TASK_STARTING -> container
launched, record checkpointed -> TASK_RUNNING -> ended -> terminal update
(FINISHED / FAILED / KILLED with Mesos' reasons) -> acknowledged -> forgotten (the
sandbox stays for its logs).  Every update goes through the status update manager.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mesoslite.agent.checkpoint import Checkpoints, RecoveredTask, TaskCheckpoint
from mesoslite.agent.containerizers.base import (
    Container,
    Containerizer,
    LaunchError,
    LaunchSpec,
    Termination,
)
from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.agent.task_env import task_environment
from mesoslite.clock import Clock
from mesoslite.faults import crash_point
from mesoslite.messages.agent import AgentTask
from mesoslite.messages.mesos import (
    ID,
    CapabilityType,
    ContainerStatus,
    ContainerType,
    FrameworkInfo,
    Reason,
    Source,
    TaskInfo,
    TaskState,
    TaskStatus,
    to_resources,
)

if TYPE_CHECKING:
    from mesoslite.agent.secrets import AgentSecrets
    from mesoslite.messages.agent import TaskSecrets

log = logging.getLogger(__name__)

DEFAULT_GRACE = 3.0  # seconds between SIGTERM and SIGKILL when the task sets none


@dataclass
class AgentTaskState:
    framework_id: str
    cp: TaskCheckpoint
    state: TaskState = TaskState.TASK_STAGING
    container: Container | None = None
    killing: bool = False
    kill_reason: tuple[TaskState, Reason | None, str] | None = None
    watcher: asyncio.Task[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def task_id(self) -> str:
        return self.cp.task.task_id.value

    @property
    def info(self) -> TaskInfo:
        return self.cp.task


@dataclass
class AgentIdentity:
    agent_id: Callable[[], str]
    hostname: str
    address: str
    port: int


class TaskManager:
    def __init__(
        self,
        identity: AgentIdentity,
        containerizers: dict[str, Containerizer],
        checkpoints: Checkpoints,
        updates: StatusUpdateManager,
        io: Executor,
        clock: Clock,
    ) -> None:
        self.identity = identity
        self.containerizers = containerizers
        self.cp = checkpoints
        self.updates = updates
        self.io = io
        self.clock = clock
        self.tasks: dict[tuple[str, str], AgentTaskState] = {}
        self.closing = False
        self._launching: set[asyncio.Task[None]] = set()
        self.frameworks: dict[str, FrameworkInfo] = {}
        # Hooks for health checks (set by the agent): called with the task once RUNNING.
        self.on_running: Callable[[AgentTaskState], None] | None = None
        self.on_ended: Callable[[AgentTaskState], None] | None = None
        # Set by the agent: checks and sets up a task's volumes before it launches
        # (raises LaunchError); returns the spec the containerizer runs.
        self.prepare_spec: Callable[[AgentTaskState, LaunchSpec], Awaitable[LaunchSpec]] | None = (
            None)
        # Set by the agent: secret values into the spec, secret files on a tmpfs.
        self.secrets: AgentSecrets | None = None

    # ---------------------------------------------------------------- launch

    async def launch(self, framework: FrameworkInfo, info: TaskInfo,
                     secrets: TaskSecrets | None = None) -> None:
        """``secrets``: the values of the task's secret references (from the master)."""
        assert framework.id is not None
        fid, tid = framework.id.value, info.task_id.value
        existing = self.tasks.get((fid, tid))
        if existing is not None:
            log.info("task %s already known (%s): ignoring duplicate launch", tid, existing.state)
            return
        self.frameworks[fid] = framework
        kind = _containerizer_for(info)
        container_id = str(uuid.uuid4())
        task = AgentTaskState(fid, TaskCheckpoint(
            framework_id=fid, task=info, container_id=container_id, containerizer=kind,
            launched_at=self.clock.now()))
        self.tasks[(fid, tid)] = task
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self.io, self._prepare, framework, task)
        except OSError as exc:
            # e.g. a full disk: refuse this launch, keep the agent and its tasks alive
            log.error("cannot prepare task %s: %s", tid, exc)
            await self._terminal(task, TaskState.TASK_FAILED,
                                 Reason.REASON_CONTAINER_LAUNCH_FAILED,
                                 f"The agent cannot prepare the task's sandbox: {exc.strerror}")
            return
        crash_point("agent.launch.after_checkpoint")
        await self._update(task, TaskState.TASK_STARTING)
        containerizer = self.containerizers.get(kind)
        if containerizer is None:
            await self._terminal(task, TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED,
                                 f"This agent has no {kind} containerizer")
            return
        if task.kill_reason is not None:
            await self._terminal(task, TaskState.TASK_KILLED,
                                 Reason.REASON_TASK_KILLED_DURING_LAUNCH, "Killed during launch")
            return
        try:
            spec = self._spec(task)
            if self.secrets is not None:  # see agent/secrets.py
                spec = await self.secrets.prepare(task, spec, secrets)
            if self.prepare_spec is not None:  # volumes (see agent/volumes.py)
                spec = await self.prepare_spec(task, spec)
            container = await containerizer.launch(spec)
            crash_point("agent.launch.after_start")
        except LaunchError as exc:
            await self._terminal(task, TaskState.TASK_FAILED,
                                 Reason.REASON_CONTAINER_LAUNCH_FAILED, str(exc))
            return
        except Exception as exc:
            log.exception("launch of %s failed", tid)
            await self._terminal(task, TaskState.TASK_FAILED,
                                 Reason.REASON_CONTAINER_LAUNCH_FAILED, f"launch failed: {exc}")
            return
        try:
            await self._attach(task, container)
        except OSError as exc:
            # Without its record the container could not be re-attached after a
            # restart: better not to run it at all.
            log.error("cannot checkpoint task %s: %s", tid, exc)
            task.kill_reason = (TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED,
                                f"The agent cannot checkpoint the task: {exc.strerror}")
            task.container = container
            task.watcher = asyncio.create_task(self._watch(task, container))
            await self._kill_container(task)
            return
        crash_point("agent.launch.after_record")
        await self._update(task, TaskState.TASK_RUNNING)
        if task.kill_reason is not None:
            await self._kill_container(task)
        elif self.on_running is not None:
            self.on_running(task)

    def _prepare(self, framework: FrameworkInfo, task: AgentTaskState) -> None:
        """Runs in the I/O thread: sandbox and checkpoints before anything starts."""
        sandbox = self.cp.sandbox(task.framework_id, task.task_id)
        if sandbox.exists():
            shutil.rmtree(sandbox, ignore_errors=True)  # an earlier run of the same task id
        sandbox.mkdir(parents=True, exist_ok=True)
        self.cp.save_framework(framework)
        self.cp.save_task(task.cp)

    def _spec(self, task: AgentTaskState) -> LaunchSpec:
        resources = to_resources(task.info.resources)
        sandbox = self.cp.sandbox(task.framework_id, task.task_id)
        ports = tuple(resources.port_list())
        env = task_environment(
            task.info, task.framework_id, self.identity.agent_id(), self.identity.hostname,
            self.identity.address, self.identity.port, str(sandbox), ports,
        )
        return LaunchSpec(
            container_id=task.cp.container_id, agent_id=self.identity.agent_id(),
            framework_id=task.framework_id, task=task.info, sandbox=sandbox, env=env,
            cpus=resources.scalar("cpus"), mem_mb=resources.scalar("mem"),
            disk_mb=resources.scalar("disk"), ports=ports,
            principal=getattr(self.frameworks.get(task.framework_id), "principal", None),
        )

    async def _attach(self, task: AgentTaskState, container: Container) -> None:
        task.container = container
        task.cp.record = container.record
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.io, self.cp.save_task, task.cp)
        task.watcher = asyncio.create_task(self._watch(task, container))

    async def _watch(self, task: AgentTaskState, container: Container) -> None:
        termination = await container.wait()
        await self._ended(task, termination)

    async def _ended(self, task: AgentTaskState, term: Termination) -> None:
        if task.kill_reason is not None:
            state, reason, message = task.kill_reason
        elif term.oom_killed:
            state, reason = TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LIMITATION_MEMORY
            message = term.message or "Memory limit exceeded"
        elif term.exit_code == 0:
            state, reason, message = TaskState.TASK_FINISHED, None, "Command exited with status 0"
        elif term.exit_code is not None:
            state, reason = TaskState.TASK_FAILED, Reason.REASON_COMMAND_EXECUTOR_FAILED
            message = term.message or f"Command exited with status {term.exit_code}"
        else:
            state, reason = TaskState.TASK_FAILED, Reason.REASON_COMMAND_EXECUTOR_FAILED
            message = term.message or f"Command terminated with signal {term.signal}"
        await self._terminal(task, state, reason, message)

    # ---------------------------------------------------------------- updates

    async def _update(self, task: AgentTaskState, state: TaskState, reason: Reason | None = None,
                      message: str | None = None, healthy: bool | None = None) -> None:
        task.state = state
        status = TaskStatus(
            task_id=ID(task.task_id), state=state, message=message,
            source=Source.SOURCE_EXECUTOR if state not in _AGENT_STATES else Source.SOURCE_AGENT,
            reason=reason, agent_id=ID(self.identity.agent_id()), executor_id=ID(task.task_id),
            healthy=healthy,
            container_status=ContainerStatus(container_id=ID(task.cp.container_id)),
        )
        await self.updates.add(task.framework_id, status)

    async def _terminal(self, task: AgentTaskState, state: TaskState, reason: Reason | None,
                        message: str) -> None:
        if task.state.terminal:
            return
        if self.on_ended is not None:
            self.on_ended(task)
        if self.secrets is not None:
            await self.secrets.release(task)
        await self._update(task, state, reason, message)

    async def send_health(self, task: AgentTaskState, healthy: bool) -> None:
        """A health status change: an update with ``healthy`` and the same state."""
        if task.state == TaskState.TASK_RUNNING:
            await self._update(task, TaskState.TASK_RUNNING,
                               Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED, None, healthy)

    async def acknowledged(self, framework_id: str, task_id: str, uuid_: bytes) -> None:
        done = await self.updates.acknowledge(framework_id, task_id, uuid_)
        task = self.tasks.get((framework_id, task_id))
        if done and task is not None and task.state.terminal:
            del self.tasks[(framework_id, task_id)]
            self.updates.forget(framework_id, task_id)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.io, self.cp.remove_task, framework_id, task_id)

    # ---------------------------------------------------------------- kill

    async def kill(self, framework_id: str, task_id: str, grace: float | None = None,
                   state: TaskState = TaskState.TASK_KILLED, reason: Reason | None = None,
                   message: str = "Task killed") -> None:
        task = self.tasks.get((framework_id, task_id))
        if task is None or task.state.terminal or task.kill_reason is not None:
            return
        task.kill_reason = (state, reason, message)
        task.extra["grace"] = grace
        if task.container is None:
            return  # launch in progress: it sees kill_reason and stops
        fw = self.frameworks.get(framework_id)
        if fw is not None and fw.has_capability(CapabilityType.TASK_KILLING_STATE):
            await self._update(task, TaskState.TASK_KILLING)
        await self._kill_container(task)

    async def _kill_container(self, task: AgentTaskState) -> None:
        grace = task.extra.get("grace")
        if grace is None:
            policy = task.info.kill_policy
            grace = (policy.grace_period.nanoseconds / 1e9
                     if policy and policy.grace_period else DEFAULT_GRACE)
        task.killing = True
        assert task.container is not None
        try:
            await task.container.kill(grace)
        except Exception:
            log.exception("killing task %s failed", task.task_id)

    async def shutdown_framework(self, framework_id: str) -> None:
        kills = [self.kill(fid, tid, message="Framework shut down",
                           reason=Reason.REASON_FRAMEWORK_REMOVED)
                 for (fid, tid) in list(self.tasks) if fid == framework_id]
        await asyncio.gather(*kills)

    def start_launch(self, framework: FrameworkInfo, info: TaskInfo,
                     secrets: TaskSecrets | None = None) -> None:
        """Launch in the background; ``kill_all`` waits for launches in flight."""
        if self.closing:
            return  # the master learns it never started when the agent re-registers
        task = asyncio.create_task(self.launch(framework, info, secrets))
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)

    async def kill_all(self, message: str = "Agent shut down") -> None:
        """Kill every task (``mesoslite up`` stopping): no new launch starts, launches
        in flight finish first so nothing is left running behind us."""
        self.closing = True
        if self._launching:
            await asyncio.wait(set(self._launching), timeout=30)
        await asyncio.gather(*(self.kill(fid, tid, message=message)
                               for (fid, tid) in list(self.tasks)))
        watchers = [t.watcher for t in self.tasks.values() if t.watcher is not None]
        if watchers:
            await asyncio.wait(watchers, timeout=30)

    # ---------------------------------------------------------------- recovery

    async def recover(self, recovered: list[RecoveredTask]) -> None:
        """Re-attach to tasks that kept running while the agent was down."""
        self.frameworks.update(self.cp.frameworks())
        for item in recovered:
            await self._recover_one(item)
        # Only containers we re-attached to are known: one started just before a crash
        # (no record checkpointed) is an orphan and must go.
        known = {t.cp.container_id for t in self.tasks.values() if t.container is not None}
        for name, containerizer in self.containerizers.items():
            removed = await containerizer.cleanup_orphans(known)
            if removed:
                log.warning("%s: removed %d orphaned containers: %s", name, len(removed), removed)

    async def _recover_one(self, item: RecoveredTask) -> None:
        cp = item.checkpoint
        task = AgentTaskState(cp.framework_id, cp)
        self.tasks[(cp.framework_id, task.task_id)] = task
        if item.updates is not None:
            self.updates.recover(cp.framework_id, task.task_id, item.updates)
            task.state = item.updates.latest.state
        if task.state.terminal:
            return  # waiting for the acknowledgement only
        containerizer = self.containerizers.get(cp.containerizer)
        if cp.record is None or containerizer is None:
            await self._terminal(task, TaskState.TASK_LOST, Reason.REASON_AGENT_RESTARTED,
                                 "The agent restarted while the task was being launched")
            return
        try:
            result = await containerizer.recover(self._spec(task), cp.record)
        except Exception as exc:
            log.exception("recovering task %s failed", task.task_id)
            await self._terminal(task, TaskState.TASK_LOST, Reason.REASON_AGENT_RESTARTED,
                                 f"could not re-attach after an agent restart: {exc}")
            return
        if isinstance(result, Termination):
            await self._ended(task, result)
            return
        task.container = result
        task.watcher = asyncio.create_task(self._watch(task, result))
        if task.state != TaskState.TASK_RUNNING:
            await self._update(task, TaskState.TASK_RUNNING)
        if self.on_running is not None:
            self.on_running(task)

    # ---------------------------------------------------------------- views

    def for_register(self) -> list[AgentTask]:
        out = []
        for (fid, tid), task in sorted(self.tasks.items()):
            latest = self.updates.latest(fid, tid)
            status = latest or TaskStatus(task_id=ID(tid), state=task.state)
            out.append(AgentTask(framework_id=fid, task=task.info, status=status))
        return out


_AGENT_STATES = {TaskState.TASK_LOST, TaskState.TASK_STARTING, TaskState.TASK_DROPPED}


def _containerizer_for(info: TaskInfo) -> str:
    if info.container is not None and info.container.type == ContainerType.DOCKER:
        return "docker"
    return "process"
