"""The agent's task lifecycle, carried out: ``TaskManager`` feeds stimuli to the pure
state machine (``lifecycle.py``) and executes the instructions it returns - the
checkpoint writes (in the agent's I/O thread), the containerizer calls, the status
updates (through the status update manager), the health-check hooks and the kills'
grace timers (on the event loop's clock: the lifecycle reads none).

A task's life on the agent: checkpoint (task.json) -> TASK_STARTING -> container
launched, record checkpointed -> TASK_RUNNING -> ended -> terminal update
(FINISHED / FAILED / KILLED with Mesos' reasons) -> acknowledged -> forgotten (the
sandbox stays for its logs).  The decisions are all in ``lifecycle.py``, and for the
tasks of a LAUNCH_GROUP in ``task_groups.py``; this module only waits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mesoslite.agent.checkpoint import Checkpoints, RecoveredTask
from mesoslite.agent.checks import empty_status
from mesoslite.agent.containerizers.base import (
    Container,
    Containerizer,
    LaunchError,
    LaunchSpec,
    StopKind,
    Termination,
)
from mesoslite.agent.lifecycle import (
    AgentTaskState,
    AwaitGroup,
    CancelGraceTimer,
    Checkpointed,
    CheckpointFailed,
    CheckpointTask,
    CheckUpdated,
    Exited,
    Forget,
    GraceOver,
    HealthVerdict,
    Ignore,
    Instruction,
    KillRequested,
    Launch,
    LaunchFailed,
    Phase,
    Reattached,
    ReattachFailed,
    RecoverContainer,
    Recovered,
    Released,
    ReleaseSecrets,
    SendUpdate,
    SignalContainer,
    StartContainer,
    Started,
    StartGraceTimer,
    StartHealthChecks,
    Stimulus,
    StopHealthChecks,
    TaskKey,
    TaskLifecycle,
    TerminalAcknowledged,
    WatchContainer,
)
from mesoslite.agent.observer import AgentObserver, NoObserver
from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.agent.task_env import task_environment
from mesoslite.agent.task_groups import (
    GroupBook,
    KillMembers,
    TaskGroup,
    container_id_for,
    joined_container,
    membership_for,
)
from mesoslite.agent.task_user import task_user
from mesoslite.clock import Clock
from mesoslite.faults import crash_point
from mesoslite.messages.agent import AgentExecutor, AgentTask, LaunchTasks
from mesoslite.messages.mesos import (
    ID,
    CheckStatusInfo,
    ContainerStatus,
    FrameworkInfo,
    Reason,
    Source,
    TaskInfo,
    TaskState,
    TaskStatus,
    to_resources,
)
from mesoslite.messages.refused import task_limits

if TYPE_CHECKING:
    from mesoslite.agent.checkpoint import GroupMembership
    from mesoslite.agent.secrets import AgentSecrets
    from mesoslite.messages.agent import TaskSecrets

log = logging.getLogger(__name__)
# A signal the runtime could not take is sent again after 0.5 s, 1 s, 2 s, ... 10 s.
SIGNAL_RETRY_FIRST = 0.5
SIGNAL_RETRY_MAX = 10.0

_AGENT_STATES = {TaskState.TASK_LOST, TaskState.TASK_STARTING, TaskState.TASK_DROPPED}


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
        observer: AgentObserver | None = None,
    ) -> None:
        self.identity = identity
        self.containerizers = containerizers
        self.cp = checkpoints
        self.updates = updates
        self.io = io
        self.clock = clock
        self.observer: AgentObserver = observer or NoObserver()
        self.lifecycle = TaskLifecycle(containerizers)
        self.groups = GroupBook()
        self.closing = False
        self._launching: set[asyncio.Task[None]] = set()
        self._watchers: dict[TaskKey, asyncio.Task[None]] = {}
        self._background_jobs: set[asyncio.Task[None]] = set()
        self._grace_timers: dict[TaskKey, asyncio.TimerHandle] = {}
        self._fetches: dict[TaskKey, asyncio.Task[None]] = {}  # fetches a kill abandons
        self._deadlines: dict[TaskKey, asyncio.TimerHandle] = {}  # max_completion_time
        self._check_status: dict[TaskKey, CheckStatusInfo] = {}  # latest TaskInfo.check
        # Mesos' --switch_user: run tasks as their (framework's) user (agent/task_user.py)
        self.switch_user = True
        # Hooks for health checks (set by the agent): called with the task once RUNNING,
        # and once it ended.
        self.on_running: Callable[[AgentTaskState], None] | None = None
        self.on_ended: Callable[[AgentTaskState], None] | None = None
        # Set by the agent: checks and sets up a task's volumes before it launches
        # (raises LaunchError); returns the spec the containerizer runs.
        self.prepare_spec: Callable[[AgentTaskState, LaunchSpec], Awaitable[LaunchSpec]] | None = (
            None)
        # Set by the agent: secret values into the spec, secret files on a tmpfs.
        self.secrets: AgentSecrets | None = None
        # Set by the agent: puts the task's CommandInfo.uris into its fresh sandbox
        # (raises LaunchError; see agent/fetcher.py).
        self.fetch: Callable[[AgentTaskState, LaunchSpec], Awaitable[None]] | None = None

    @property
    def tasks(self) -> dict[TaskKey, AgentTaskState]:
        """Every task on this agent (read only: the lifecycle owns it)."""
        return self.lifecycle.tasks

    @property
    def frameworks(self) -> dict[str, FrameworkInfo]:
        return self.lifecycle.frameworks

    # ---------------------------------------------------------------- stimuli in

    async def launch(self, framework: FrameworkInfo, info: TaskInfo,
                     secrets: TaskSecrets | None = None,
                     group: GroupMembership | None = None) -> None:
        """Run ``info``; returns once it runs or failed.  ``secrets``: the values of
        the task's secret references (from the master); ``group``: the task group it
        belongs to (see ``start_group``)."""
        assert framework.id is not None
        key = (framework.id.value, info.task_id.value)
        kill = None
        if group is not None and (failure := self.groups.launching(key)) is not None:
            kill = KillRequested(message=failure)  # its group failed first: never to run
        container_id = container_id_for(group, key[1]) or str(uuid.uuid4())
        launch = Launch(framework, info, container_id, self.clock.now(), group, kill)
        await self._feed(key, launch, secrets)

    def start_launch(self, framework: FrameworkInfo, info: TaskInfo,
                     secrets: TaskSecrets | None = None) -> None:
        """Launch in the background; ``kill_all`` waits for launches in flight."""
        if self.closing:
            return  # the master learns it never started when the agent re-registers
        self._in_flight(self.launch(framework, info, secrets))

    def start_group(self, launch: LaunchTasks,
                    secrets: Mapping[TaskKey, TaskSecrets] | None = None) -> None:
        """Launch a LAUNCH_GROUP's tasks as one group (``task_groups.py``) in the
        background: the one owning the group's network namespace first, then the
        others together.  ``secrets``: by (framework id, task id)."""
        if self.closing or not launch.tasks:
            return
        assert launch.framework.id is not None
        fid = launch.framework.id.value
        group = self.groups.add(fid, membership_for(launch.executor, launch.tasks,
                                                    str(uuid.uuid4())))
        self._in_flight(self._launch_group(group, launch, secrets or {}))

    async def _launch_group(self, group: TaskGroup, launch: LaunchTasks,
                            secrets: Mapping[TaskKey, TaskSecrets]) -> None:
        infos = {t.task_id.value: t for t in launch.tasks}
        owner = (group.framework_id, group.membership.network_owner or "")
        for n, wave in enumerate(group.launch_waves()):
            if n > 0 and self.lifecycle.phase(owner) not in (Phase.READY, Phase.RUNNING):
                await self._kill_members(self.groups.network_gone(owner))
            await asyncio.gather(*(self.launch(launch.framework, infos[tid],
                                               secrets.get((group.framework_id, tid)),
                                               group.membership) for tid in wave))

    def _in_flight(self, launch: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(launch)
        self._launching.add(task)
        task.add_done_callback(self._launching.discard)

    async def kill(self, framework_id: str, task_id: str, grace: float | None = None,
                   state: TaskState = TaskState.TASK_KILLED, reason: Reason | None = None,
                   message: str = "Task killed") -> None:
        """Ask the task to stop; its terminal update follows once it is gone.  A task
        group goes as a whole: its other tasks are killed too (each with its own
        grace period).  A fetch under way for it is abandoned (as Mesos' agent does):
        no waiting for a download only to stop what it was for."""
        key = (framework_id, task_id)
        await self._feed(key, KillRequested(grace, state, reason, message))
        fetch = self._fetches.get(key)
        if fetch is not None:
            fetch.cancel()
        await self._kill_members(self.groups.killed(key))

    async def health_verdict(self, key: TaskKey, healthy: bool | None,
                             kill_message: str | None = None) -> None:
        """The health checker's decision (see ``HealthVerdict``)."""
        await self._feed(key, HealthVerdict(healthy, kill_message))

    async def check_result(self, key: TaskKey, status: CheckStatusInfo) -> None:
        """A new result of the task's generic check (agent/checks.py): reported at once,
        and carried by every later update of the task."""
        self._check_status[key] = status
        await self._feed(key, CheckUpdated())

    async def acknowledged(self, framework_id: str, task_id: str, uuid_: bytes) -> None:
        if await self.updates.acknowledge(framework_id, task_id, uuid_):
            await self._feed((framework_id, task_id), TerminalAcknowledged())

    async def shutdown_framework(self, framework_id: str) -> None:
        order = KillRequested(message="Framework shut down", reason=Reason.REASON_FRAMEWORK_REMOVED)
        kills = [self._feed(key, order) for key in list(self.tasks) if key[0] == framework_id]
        await asyncio.gather(*kills)

    async def kill_all(self, message: str = "Agent shut down") -> None:
        """Kill every task (``mesoslite up`` stopping): no new launch starts, launches
        in flight finish first so nothing is left running behind us."""
        self.closing = True
        if self._launching:
            await asyncio.wait(set(self._launching), timeout=30)
        await asyncio.gather(*(self._feed(key, KillRequested(message=message))
                               for key in list(self.tasks)))
        watchers = [w for w in self._watchers.values() if not w.done()]
        if watchers:
            await asyncio.wait(watchers, timeout=30)

    async def recover(self, recovered: list[RecoveredTask],
                      also_known: set[str] | None = None) -> None:
        """Re-attach to tasks that kept running while the agent was down; containers
        neither theirs nor in ``also_known`` (the executors') are orphans."""
        self.frameworks.update(self.cp.frameworks())
        latest = [(item.checkpoint, item.updates.latest.state if item.updates else None)
                  for item in recovered]
        self.groups.restore(latest)
        for item, (cp, state) in zip(recovered, latest, strict=True):
            key = (cp.framework_id, cp.task.task_id.value)
            if item.updates is not None:
                self.updates.recover(*key, item.updates)
            await self._feed(key, Recovered(cp, state, self.groups.held(key)))
        for kill in self.groups.failing():  # members re-attached after their group failed
            await self._kill_members(kill)
        # Only containers we re-attached to are known: one started just before a crash
        # (no record checkpointed) is an orphan and must go.
        known = {t.cp.container_id for t in self.tasks.values() if t.container is not None}
        known |= also_known or set()
        for name, containerizer in self.containerizers.items():
            removed = await containerizer.cleanup_orphans(known)
            if removed:
                log.warning("%s: removed %d orphaned containers: %s", name, len(removed), removed)

    # ---------------------------------------------------------------- instructions out

    async def _feed(self, key: TaskKey, stimulus: Stimulus,
                    secrets: TaskSecrets | None = None) -> None:
        """Apply ``stimulus`` and carry out what it calls for, in order.  ``secrets``
        travel along a launch until the container starts (never stored)."""
        before = self.tasks.get(key)
        instructions = self.lifecycle.handle(key, stimulus)
        task = self.tasks.get(key) or before
        for instruction in instructions:
            if isinstance(instruction, Ignore):
                log.log(logging.INFO if instruction.notable else logging.DEBUG,
                        "task %s: ignoring %s: %s", key[1], type(stimulus).__name__,
                        instruction.reason)
                continue
            assert task is not None
            await self._execute(task, instruction, secrets)

    async def _execute(self, task: AgentTaskState, instruction: Instruction,
                       secrets: TaskSecrets | None) -> None:
        match instruction:
            case CheckpointTask(fresh=fresh):
                await self._checkpoint(task, fresh, secrets)
            case SendUpdate():
                await self._send(task, instruction)
                if instruction.state.terminal:  # a group's other tasks may go with it
                    await self._kill_members(self.groups.ended(
                        task.key, instruction.state, instruction.message))
                if instruction.then is not None:
                    await self._feed(task.key, instruction.then, secrets)
            case StartContainer():
                await self._feed(task.key, await self._start(task, secrets), secrets)
            case RecoverContainer():
                await self._feed(task.key, await self._reattach(task))
            case WatchContainer():
                assert task.container is not None
                self._watchers[task.key] = asyncio.create_task(
                    self._watch(task.key, task.container))
            case SignalContainer(kind=kind):
                self._background(self._signal(task, kind))
            case StartGraceTimer(seconds=seconds):
                self._start_grace_timer(task.key, seconds)
            case CancelGraceTimer():
                timer = self._grace_timers.pop(task.key, None)
                if timer is not None:
                    timer.cancel()
            case StartHealthChecks():
                self._arm_deadline(task)
                if self.on_running is not None:
                    self.on_running(task)
            case StopHealthChecks():
                deadline = self._deadlines.pop(task.key, None)
                if deadline is not None:
                    deadline.cancel()
                if self.on_ended is not None:
                    self.on_ended(task)
            case ReleaseSecrets():
                if self.secrets is not None:
                    await self.secrets.release(task)
            case AwaitGroup():
                for key in self.groups.started(task.key):
                    await self._feed(key, Released())
            case Forget():
                self.groups.forget(task.key)
                self._watchers.pop(task.key, None)
                self._check_status.pop(task.key, None)
                self.updates.forget(*task.key)
                await self._in_io(self.cp.remove_task, *task.key)

    async def _kill_members(self, kill: KillMembers | None) -> None:
        """Kill a group's tasks, its failure saved first with each live one (so a
        restarted agent kills them too)."""
        if kill is None:
            return
        for key in kill.keys:
            member = self.tasks.get(key)
            if member is not None and member.phase is not Phase.ENDED:
                await self._in_io(self.cp.save_task, member.cp)
        for key in kill.keys:
            await self._feed(key, KillRequested(message=kill.message))

    async def _checkpoint(self, task: AgentTaskState, fresh: bool,
                          secrets: TaskSecrets | None) -> None:
        try:
            if fresh:
                clash = self.groups.sandbox_clash(task.key, self.tasks.keys() - {task.key})
                if clash is not None:
                    await self._feed(task.key, CheckpointFailed(clash), secrets)
                    return
                await self._in_io(self._prepare, task, self.groups.claim_sandbox(task.key))
            else:
                await self._in_io(self.cp.save_task, task.cp)
        except OSError as exc:
            log.error("cannot checkpoint task %s: %s", task.task_id, exc)
            await self._feed(task.key, CheckpointFailed(exc.strerror or str(exc)), secrets)
            return
        crash_point("agent.launch.after_checkpoint" if fresh else "agent.launch.after_record")
        await self._feed(task.key, Checkpointed(), secrets)

    def _prepare(self, task: AgentTaskState, fresh_group: bool) -> None:
        """Runs in the I/O thread: sandbox and checkpoints before anything starts.
        ``fresh_group``: the task's group's shared sandbox is made afresh."""
        sandbox = self.cp.sandbox(task.framework_id, task.task_id)
        if task.cp.group is not None:
            self.cp.prepare_group_sandbox(task.framework_id, task.executor_id, task.task_id,
                                          fresh_group)
        elif sandbox.is_symlink():  # an earlier run of the same task id in a group
            sandbox.unlink()
        elif sandbox.exists():
            shutil.rmtree(sandbox, ignore_errors=True)  # an earlier run of the same task id
        sandbox.mkdir(parents=True, exist_ok=True)
        self.cp.save_framework(self.frameworks[task.framework_id])
        self.cp.save_task(task.cp)

    async def _start(self, task: AgentTaskState, secrets: TaskSecrets | None
                     ) -> Started | LaunchFailed:
        kind = task.cp.containerizer
        try:
            framework = self.frameworks.get(task.framework_id)
            spec = dataclasses.replace(self._spec(task), user=task_user(
                framework, task.info.command, self.switch_user))
            if self.fetch is not None:  # first: only the fetch writes into the sandbox
                await self._fetch(task, spec, self.fetch)
            if self.secrets is not None:  # see agent/secrets.py
                spec = await self.secrets.prepare(task, spec, secrets)
            if self.prepare_spec is not None:  # volumes (see agent/volumes.py)
                spec = await self.prepare_spec(task, spec)
            container = await self._timed_launch(kind, self.containerizers[kind], spec)
            crash_point("agent.launch.after_start")
        except LaunchError as exc:
            return LaunchFailed(str(exc))
        except Exception as exc:
            log.exception("launch of %s failed", task.task_id)
            return LaunchFailed(f"launch failed: {exc}")
        return Started(container)

    async def _fetch(self, task: AgentTaskState, spec: LaunchSpec,
                     fetch: Callable[[AgentTaskState, LaunchSpec], Awaitable[None]]) -> None:
        """Run ``fetch`` where ``kill`` can cancel it; cancelled so, it raises
        ``LaunchError`` (the lifecycle reports the kill)."""
        job = asyncio.ensure_future(fetch(task, spec))
        self._fetches[task.key] = job
        try:
            await job
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not job.cancelled() or (current is not None and current.cancelling()):
                raise
            raise LaunchError("Fetching the task's URIs was cancelled") from None
        finally:
            del self._fetches[task.key]

    async def _timed_launch(self, kind: str, containerizer: Containerizer,
                            spec: LaunchSpec) -> Container:
        self.observer.on_launch_started(kind)
        start = self.clock.monotonic()
        failed = True
        try:
            container = await containerizer.launch(spec)
            failed = False
            return container
        finally:
            self.observer.on_launch_finished(kind, self.clock.monotonic() - start, failed)

    async def _reattach(self, task: AgentTaskState) -> Stimulus:
        assert task.cp.record is not None
        try:
            result = await self.containerizers[task.cp.containerizer].recover(
                self._spec(task), task.cp.record)
        except Exception as exc:
            log.exception("recovering task %s failed", task.task_id)
            return ReattachFailed(str(exc))
        return Exited(result) if isinstance(result, Termination) else Reattached(result)

    async def _watch(self, key: TaskKey, container: Container) -> None:
        await self._feed(key, Exited(await container.wait()))

    async def _signal(self, task: AgentTaskState, kind: StopKind) -> None:
        """Send ``kind`` to the task's container.  When the runtime cannot take it
        (the Docker engine restarting), ask again with backoff until it does, the
        container ends, or a KILL takes over from a TERM: a container that outlives an
        engine restart (live-restore) must still be stopped, and the grace timer's
        KILL would have failed the same way."""
        delay = SIGNAL_RETRY_FIRST
        while True:
            assert task.container is not None
            try:
                await task.container.signal(kind)
                return
            except Exception as exc:  # noqa: BLE001 - the runtime's own errors, retried
                log.warning("sending %s to task %s failed (%s); asking again in %g s",
                            kind.name, task.task_id, exc, delay)
            await asyncio.sleep(delay)
            if (self.tasks.get(task.key) is not task or task.phase is not Phase.KILLING
                    or (kind is StopKind.TERM and task.forced)):
                return
            delay = min(2 * delay, SIGNAL_RETRY_MAX)

    def _start_grace_timer(self, key: TaskKey, seconds: float) -> None:
        """GraceOver for ``key`` in ``seconds``, unless its running timer ends sooner."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        running = self._grace_timers.get(key)
        if running is not None:
            if running.when() <= deadline:
                return
            running.cancel()
        self._grace_timers[key] = loop.call_at(deadline, self._grace_over, key)

    def _arm_deadline(self, task: AgentTaskState) -> None:
        """Kill the task at its ``max_completion_time``, counted from the launch's
        arrival here (checkpointed: a restarted agent keeps the same deadline)."""
        limit = task.info.max_completion_time
        if limit is None or task.key in self._deadlines:
            return
        seconds = limit.nanoseconds / 1e9
        delay = max(0.0, task.cp.launched_at + seconds - self.clock.now())
        self._deadlines[task.key] = asyncio.get_running_loop().call_later(
            delay, self._deadline_reached, task.key, seconds)

    def _deadline_reached(self, key: TaskKey, seconds: float) -> None:
        self._deadlines.pop(key, None)
        self._background(self.kill(
            *key, state=TaskState.TASK_FAILED, reason=Reason.REASON_MAX_COMPLETION_TIME_REACHED,
            message=f"Task did not complete within its max_completion_time of {seconds:g}s"))

    def _grace_over(self, key: TaskKey) -> None:
        del self._grace_timers[key]
        self._background(self._feed(key, GraceOver()))

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        job = asyncio.create_task(coro)
        self._background_jobs.add(job)
        job.add_done_callback(self._background_jobs.discard)

    async def _in_io(self, fn: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)

    async def _send(self, task: AgentTaskState, update: SendUpdate) -> None:
        state = update.state
        status = TaskStatus(
            task_id=ID(task.task_id), state=state, message=update.message,
            source=Source.SOURCE_EXECUTOR if state not in _AGENT_STATES else Source.SOURCE_AGENT,
            reason=update.reason, agent_id=ID(self.identity.agent_id()),
            executor_id=ID(task.executor_id), healthy=update.healthy,
            container_status=ContainerStatus(container_id=ID(task.cp.container_id)),
            check_status=self._latest_check(task),
        )
        await self.updates.add(task.framework_id, status)
        launch_seconds = None
        if state == TaskState.TASK_RUNNING and update.reason is None and task.cp.launched_at:
            launch_seconds = max(0.0, self.clock.now() - task.cp.launched_at)
        self.observer.on_update(status, launch_seconds)

    def _latest_check(self, task: AgentTaskState) -> CheckStatusInfo | None:
        """The latest result of the task's generic check, for every update once it
        runs (after an agent restart: the one last sent)."""
        if task.info.check is None:
            return None
        status = self._check_status.get(task.key)
        if status is None and (latest := self.updates.latest(*task.key)) is not None:
            status = latest.check_status
        if status is None and task.state in (TaskState.TASK_RUNNING, TaskState.TASK_KILLING):
            status = empty_status(task.info.check.type)
        return status

    def _spec(self, task: AgentTaskState) -> LaunchSpec:
        resources = to_resources(task.info.resources)
        sandbox = self.cp.sandbox(task.framework_id, task.task_id)
        group = task.cp.group
        group_sandbox = None
        if group is not None:  # see agent/task_groups.py
            group_sandbox = self.cp.sandbox(task.framework_id, group.executor_id)
            sandbox = self.cp.group_task_sandbox(task.framework_id, group.executor_id,
                                                 task.task_id)
        ports = tuple(resources.port_list())
        limits = task_limits(task.info)
        env = task_environment(
            task.info, task.framework_id, self.identity.agent_id(), self.identity.hostname,
            self.identity.address, self.identity.port, str(sandbox), ports,
            executor_id=task.executor_id, group_sandbox=group_sandbox,
        )
        return LaunchSpec(
            container_id=task.cp.container_id, agent_id=self.identity.agent_id(),
            framework_id=task.framework_id, task=task.info, sandbox=sandbox, env=env,
            cpus=resources.scalar("cpus"), mem_mb=resources.scalar("mem"),
            disk_mb=resources.scalar("disk"), ports=ports,
            principal=getattr(self.frameworks.get(task.framework_id), "principal", None),
            group_sandbox=group_sandbox, network_owner=joined_container(group, task.info),
            cpu_limit=limits.get("cpus"), mem_limit_mb=limits.get("mem"),
        )

    # ---------------------------------------------------------------- views

    def group_executors(self) -> list[AgentExecutor]:
        """The default executors of the task groups with a task still running here
        (for registration: the master accounts their resources)."""
        seen: dict[tuple[str, str], AgentExecutor] = {}
        for (fid, _), task in sorted(self.tasks.items()):
            group = task.cp.group
            if group is None or group.executor is None or task.state.terminal:
                continue
            seen.setdefault((fid, group.executor_id),
                            AgentExecutor(framework_id=fid, executor=group.executor))
        return list(seen.values())

    def for_register(self) -> list[AgentTask]:
        out = []
        for (fid, tid), task in sorted(self.tasks.items()):
            latest = self.updates.latest(fid, tid)
            status = latest or TaskStatus(task_id=ID(tid), state=task.state)
            out.append(AgentTask(framework_id=fid, task=task.info, status=status))
        return out
