"""Custom executors on the agent (docs/executors.md): start one per (framework,
executor id), hand it its tasks over the v1 executor API (``executor_api.py``),
carry its updates through the agent's reliable path, and stop it.

Contracts:

* a task with ``TaskInfo.executor`` goes to that executor; the first such task starts
  it (sandbox, checkpoint, fetch, container) and it must SUBSCRIBE within
  ``registration_timeout`` or it is killed and its tasks fail with
  REASON_EXECUTOR_REGISTRATION_TIMEOUT;
* updates from the executor keep their uuid, are checkpointed and resent until the
  scheduler acknowledges them; the acknowledgement reaches the executor as an
  ACKNOWLEDGED event; a task is forgotten once its terminal update is acknowledged;
* when the executor's container ends, every unfinished task gets a terminal update
  from the agent (TASK_FAILED, REASON_EXECUTOR_TERMINATED, or what the stop asked)
  and the master hears ``ExecutorExited`` (the scheduler a FAILURE event);
* after an agent restart a running executor is re-attached and must re-subscribe
  within ``reregistration_timeout``; its unacknowledged updates and tasks come with
  the SUBSCRIBE, so nothing is lost; one that does not re-subscribe is killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import logging
import secrets
import shutil
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Executor as ThreadPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesoslite.agent.checkpoint import (
    Checkpoints,
    ExecutorCheckpoint,
    ExecutorTaskCheckpoint,
)
from mesoslite.agent.containerizers.base import (
    Containerizer,
    LaunchError,
    LaunchSpec,
    StopKind,
    Termination,
)
from mesoslite.agent.executor_runs import (
    ExecutorKey,
    ExecutorPhase,
    ExecutorRun,
    ExecutorTask,
    duration_text,
    executor_stop_outcome,
)
from mesoslite.agent.lifecycle import containerizer_for
from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.agent.task_env import BASE_PATH
from mesoslite.agent.task_user import task_user
from mesoslite.agent.tasks import AgentIdentity
from mesoslite.clock import Clock
from mesoslite.messages import executor as ex
from mesoslite.messages.agent import (
    AgentExecutor,
    AgentMessage,
    AgentTask,
    ExecutorExited,
    ExecutorToFramework,
)
from mesoslite.messages.mesos import (
    ID,
    AgentInfo,
    CommandURI,
    ContainerID,
    ContainerStatus,
    ExecutorInfo,
    FrameworkInfo,
    Reason,
    Source,
    TaskInfo,
    TaskState,
    TaskStatus,
    same_executor,
    to_resources,
)

log = logging.getLogger(__name__)

TaskKey = tuple[str, str]
Fetch = Callable[[list[CommandURI], Path], Awaitable[None]]


class ExecutorCallError(Exception):
    """A call the executor API refuses (400); the text says why."""




@dataclass
class ExecutorSettings:
    registration_timeout: float = 60.0  # Mesos' --executor_registration_timeout (1 min)
    # After an agent restart.  Mesos' default is 2 s; client libraries back off up to
    # 15 s between attempts (pymesos), so a shorter wait kills healthy executors.
    reregistration_timeout: float = 30.0
    heartbeat_interval: float = 30.0
    subscription_backoff_max: float = 2.0  # told to the executor
    recovery_timeout: float = 900.0  # told to the executor: how long it waits for us
    switch_user: bool = True  # run it as its framework's user (agent/task_user.py)


class ExecutorManager:
    def __init__(self, address: AgentIdentity, containerizers: dict[str, Containerizer],
                 checkpoints: Checkpoints, updates: StatusUpdateManager, io: ThreadPool,
                 clock: Clock, to_master: Callable[[AgentMessage], bool],
                 settings: ExecutorSettings | None = None) -> None:
        """``to_master`` sends a message on the master link (False: no link)."""
        self.address = address
        self.containerizers = containerizers
        self.cp = checkpoints
        self.updates = updates
        self.io = io
        self.clock = clock
        self.to_master = to_master
        self.settings = settings or ExecutorSettings()
        self.runs: dict[ExecutorKey, ExecutorRun] = {}
        # every task handed to an executor and not yet forgotten, with its executor
        self.tasks: dict[TaskKey, tuple[ExecutorKey, ExecutorTask]] = {}
        self.fetch: Fetch | None = None  # set by the agent (docs/fetcher.md)
        self.closing = False
        self._timers: dict[ExecutorKey, asyncio.TimerHandle] = {}
        self._jobs: set[asyncio.Task[Any]] = set()
        self._outboxes: dict[ExecutorKey, asyncio.Queue[ex.Event | None]] = {}

    # ---------------------------------------------------------------- queries

    def owns(self, framework_id: str, task_id: str) -> bool:
        return (framework_id, task_id) in self.tasks

    def for_register(self) -> tuple[list[AgentTask], list[AgentExecutor]]:
        tasks = []
        for (fid, tid), (_, task) in sorted(self.tasks.items()):
            status = self.updates.latest(fid, tid) or TaskStatus(task_id=ID(tid),
                                                                 state=task.state)
            tasks.append(AgentTask(framework_id=fid, task=task.info, status=status))
        executors = [AgentExecutor(framework_id=key[0], executor=run.info)
                     for key, run in sorted(self.runs.items())
                     if run.phase != ExecutorPhase.TERMINATED]
        return tasks, executors

    def container_ids(self) -> set[str]:
        return {run.cp.container_id for run in self.runs.values()}

    def state_view(self) -> list[dict[str, Any]]:
        return [{"framework_id": fid, "id": eid, "phase": run.phase.value,
                 "container_id": run.cp.container_id, "containerizer": run.cp.containerizer,
                 "sandbox": run.sandbox_path,
                 "tasks": sorted(run.tasks)} for (fid, eid), run in sorted(self.runs.items())]

    # ---------------------------------------------------------------- from the master

    async def launch(self, framework: FrameworkInfo, info: TaskInfo) -> None:
        """Hand ``info`` to its executor, starting the executor if it is not running."""
        assert info.executor is not None and info.executor.executor_id is not None
        fid = framework.id.value if framework.id else ""
        key = (fid, info.executor.executor_id.value)
        run = self.runs.get(key)
        if run is not None and not same_executor(run.info, info.executor):
            await self._agent_update(fid, info, TaskState.TASK_FAILED,
                                     Reason.REASON_TASK_INVALID,
                                     f"Executor '{key[1]}' is running with another ExecutorInfo")
            return
        if run is not None and not run.live:
            await self._agent_update(fid, info, TaskState.TASK_FAILED,
                                     Reason.REASON_EXECUTOR_TERMINATED,
                                     f"Executor '{key[1]}' is shutting down")
            return
        task = ExecutorTask(info)
        self.tasks[(fid, task.task_id)] = (key, task)
        starting = run is None
        if run is None:
            run = self._new_run(framework, info)
        run.tasks[task.task_id] = task
        # One write: marked sent at once when it goes straight out (the common case).
        task.sent = run.phase == ExecutorPhase.SUBSCRIBED
        await self._in_io(self.cp.save_executor_task, ExecutorTaskCheckpoint(
            framework_id=fid, executor_id=key[1], task=info, sent=task.sent))
        if starting:
            await self._start(run)
            return
        await self._resize(run)
        if task.sent:
            if run.phase == ExecutorPhase.SUBSCRIBED:
                self._push(run, ex.Event(type=ex.EventType.LAUNCH,
                                         launch=ex.Launch(task=task.info)))
            else:  # its stream broke meanwhile: it goes out on re-subscription
                task.sent = False

    async def kill(self, framework_id: str, task_id: str) -> None:
        entry = self.tasks.get((framework_id, task_id))
        if entry is None:
            return
        key, task = entry
        run = self.runs.get(key)
        if task.state.terminal or run is None or not run.live:
            return  # its executor ending reports it
        if not task.sent:
            task.state = TaskState.TASK_KILLED
            await self._agent_update(framework_id, task.info, TaskState.TASK_KILLED,
                                     Reason.REASON_TASK_KILLED_DURING_LAUNCH,
                                     "Task killed before it was sent to its executor")
            return
        self._push(run, ex.Event(type=ex.EventType.KILL, kill=ex.Kill(
            task_id=ID(task_id), kill_policy=task.info.kill_policy)))

    async def acknowledged(self, framework_id: str, task_id: str, uuid_: bytes) -> None:
        entry = self.tasks.get((framework_id, task_id))
        if entry is None:
            return
        key = entry[0]
        head = self.updates.streams.get((framework_id, task_id))
        from_executor = bool(head and head.pending and head.pending[0].status.uuid == uuid_
                             and head.pending[0].status.source == Source.SOURCE_EXECUTOR)
        done = await self.updates.acknowledge(framework_id, task_id, uuid_)
        run = self.runs.get(key)
        if from_executor and run is not None:
            self._push(run, ex.Event(type=ex.EventType.ACKNOWLEDGED, acknowledged=ex.Acknowledged(
                task_id=ID(task_id), uuid=uuid_)))
        if done:
            await self._forget(framework_id, task_id)

    def message_to_executor(self, framework_id: str, executor_id: str, data: bytes) -> bool:
        """A scheduler's MESSAGE; False when no such executor runs (best effort)."""
        run = self.runs.get((framework_id, executor_id))
        if run is None or not run.live:
            return False
        self._push(run, ex.Event(type=ex.EventType.MESSAGE, message=ex.Message(data=data)))
        return True

    async def shutdown(self, framework_id: str, executor_id: str,
                       message: str = "Executor shut down by its framework") -> None:
        """SHUTDOWN event, then its grace period, then killed; unfinished tasks end
        TASK_KILLED."""
        run = self.runs.get((framework_id, executor_id))
        if run is None or not run.live:
            return
        launching = run.phase == ExecutorPhase.LAUNCHING
        self._stopping(run, TaskState.TASK_KILLED, Reason.REASON_EXECUTOR_TERMINATED, message)
        if launching:
            return  # _start sees it is no longer live and stops what it started
        if self._outboxes.get(run.key) is not None:
            self._push(run, ex.SHUTDOWN)
        else:
            self._background(self._signal(run, StopKind.TERM))
        self._set_timer(run, run.grace_seconds(), self._grace_over)

    async def shutdown_framework(self, framework_id: str) -> None:
        await asyncio.gather(*(self.shutdown(fid, eid, "Framework shut down")
                               for (fid, eid) in list(self.runs) if fid == framework_id))

    async def kill_all(self) -> None:
        """Stop every executor (``mesoslite up`` stopping) and wait for them to end."""
        self.closing = True
        await asyncio.gather(*(self.shutdown(fid, eid, "Agent shut down")
                               for (fid, eid) in list(self.runs)))
        watchers = [j for j in self._jobs if not j.done()]
        if watchers:
            await asyncio.wait(watchers, timeout=30)

    def close_streams(self) -> None:
        """End every executor's event stream (the agent is stopping: its executors
        keep running and re-subscribe to the next agent)."""
        for outbox in self._outboxes.values():
            outbox.put_nowait(None)

    # ---------------------------------------------------------------- from the executor

    def subscribe(self, call: ex.Call) -> tuple[ExecutorRun, asyncio.Queue[ex.Event | None]]:
        """A SUBSCRIBE: returns the run and the queue its stream drains (SUBSCRIBED
        first).  The previous stream, if any, is closed."""
        run = self._run_of(call)
        if not run.live:
            raise ExecutorCallError(f"Executor '{run.key[1]}' is shutting down")
        # A SUBSCRIBE while LAUNCHING is fine: the container runs before its start
        # is recorded, and a quick executor subscribes in between.
        old = self._outboxes.pop(run.key, None)
        if old is not None:
            old.put_nowait(None)
        outbox: asyncio.Queue[ex.Event | None] = asyncio.Queue()
        self._outboxes[run.key] = outbox
        self._cancel_timer(run.key)
        run.phase = ExecutorPhase.SUBSCRIBED
        run.stream_id = str(uuid.uuid4())
        outbox.put_nowait(ex.Event(type=ex.EventType.SUBSCRIBED, subscribed=ex.Subscribed(
            executor_info=run.info, framework_info=run.cp.framework,
            agent_info=AgentInfo(hostname=self.address.hostname,
                                 id=ID(self.address.agent_id()), port=self.address.port),
            container_id=ContainerID(value=run.cp.container_id))))
        self._background(self._resubscribed(run, call.subscribe or ex.Subscribe()))
        log.info("executor %s of framework %s subscribed", run.key[1], run.key[0])
        return run, outbox

    def unsubscribed(self, run: ExecutorRun, outbox: asyncio.Queue[ex.Event | None]) -> None:
        """The stream ``outbox`` fed has ended (the executor or the agent closed it)."""
        if self._outboxes.get(run.key) is outbox:
            del self._outboxes[run.key]
            if run.phase == ExecutorPhase.SUBSCRIBED:
                run.phase = ExecutorPhase.DISCONNECTED
                log.info("executor %s of framework %s disconnected", run.key[1], run.key[0])

    async def update(self, call: ex.Call) -> None:
        """An UPDATE: checkpointed and queued for the scheduler before it returns."""
        run = self._run_of(call)
        assert call.update is not None
        status = call.update.status
        tid = status.task_id.value
        entry = self.tasks.get((run.key[0], tid))
        if entry is None or entry[0] != run.key:
            raise ExecutorCallError(f"Task '{tid}' is not a task of executor '{run.key[1]}'")
        if status.state == TaskState.TASK_STAGING:
            raise ExecutorCallError("An executor cannot send TASK_STAGING")
        await self._executor_update(run, entry[1], status)

    def message(self, call: ex.Call) -> None:
        run = self._run_of(call)
        assert call.message is not None
        if len(call.message.data) > ex.MAX_MESSAGE_BYTES:
            raise ExecutorCallError(f"'message.data' is larger than the limit of "
                                    f"{ex.MAX_MESSAGE_BYTES} bytes")
        if not self.to_master(ExecutorToFramework(framework_id=run.key[0],
                                                  executor_id=run.key[1],
                                                  data=call.message.data)):
            log.info("dropping a message of executor %s: no master link", run.key[1])

    def check_stream(self, call: ex.Call, stream_id: str | None) -> None:
        """A call naming a ``Mesos-Stream-Id`` must name the executor's current
        subscription (one from an earlier subscription is stale).  A call without one
        is accepted, as Mesos' agent does."""
        run = self.runs.get((call.framework_id.value, call.executor_id.value))
        if stream_id and run is not None and stream_id != run.stream_id:
            raise ExecutorCallError(f"'Mesos-Stream-Id' {stream_id} is not the executor's "
                                    "current subscription")

    def known_token(self, token: str | None) -> bool:
        """Whether ``token`` is one of the running executors' (compared in constant
        time)."""
        found = False
        for run in self.runs.values():
            if token and run.cp.token and hmac.compare_digest(token, run.cp.token):
                found = True
        return found

    def check_token(self, call: ex.Call, token: str | None) -> None:
        """Executors authenticate with the token in their environment (when the
        agent's API requires authentication)."""
        run = self.runs.get((call.framework_id.value, call.executor_id.value))
        if run is None:
            return  # refused as unknown (400) where it is used
        expected = run.cp.token
        if not expected or token is None or not hmac.compare_digest(token, expected):
            raise ExecutorCallError("Executor authentication failed")

    # ---------------------------------------------------------------- recovery

    async def recover(self) -> None:
        """Re-attach to executors that kept running while the agent was down."""
        for item in self.cp.executors():
            cp = item.checkpoint
            run = ExecutorRun(cp, str(self.cp.executor_sandbox(cp.framework_id,
                                                               cp.executor_id)))
            self.runs[run.key] = run
            for task_cp, updates in item.tasks:
                task = ExecutorTask(task_cp.task, sent=task_cp.sent)
                if updates is not None:
                    self.updates.recover(cp.framework_id, task.task_id, updates)
                    task.state = updates.latest.state
                run.tasks[task.task_id] = task
                self.tasks[(cp.framework_id, task.task_id)] = (run.key, task)
            result: Any = None
            if cp.record is not None:
                try:
                    result = await self.containerizers[cp.containerizer].recover(
                        self._spec(run), cp.record)
                except Exception:
                    log.exception("recovering executor %s failed", cp.executor_id)
            if result is None or isinstance(result, Termination):
                run.phase = ExecutorPhase.TERMINATING
                self._background(self._ended(run, result or Termination(
                    message="Executor was not running after the agent restarted")))
                continue
            run.container = result
            run.phase = ExecutorPhase.RECOVERING
            self._watch(run)
            self._set_timer(run, self.settings.reregistration_timeout, self._registration_over)
            log.info("executor %s of framework %s recovered with %d tasks", cp.executor_id,
                     cp.framework_id, len(run.tasks))

    # ---------------------------------------------------------------- internals

    def _run_of(self, call: ex.Call) -> ExecutorRun:
        run = self.runs.get((call.framework_id.value, call.executor_id.value))
        if run is None or run.phase == ExecutorPhase.TERMINATED:
            raise ExecutorCallError(f"Executor '{call.executor_id.value}' of framework "
                                    f"'{call.framework_id.value}' is not running here")
        return run

    def _new_run(self, framework: FrameworkInfo, info: TaskInfo) -> ExecutorRun:
        assert info.executor is not None
        executor = info.executor
        cp = ExecutorCheckpoint(framework=framework, info=executor,
                                container_id=f"mesoslite-executor-{uuid.uuid4()}",
                                containerizer=containerizer_for(_executor_task(executor)),
                                launched_at=self.clock.now(), token=secrets.token_urlsafe(24))
        run = ExecutorRun(cp, str(self.cp.executor_sandbox(cp.framework_id, cp.executor_id)))
        self.runs[run.key] = run
        return run

    async def _start(self, run: ExecutorRun) -> None:
        """Sandbox, checkpoint, fetch, container; then wait for SUBSCRIBE."""
        try:
            await self._in_io(self._prepare, run)
            uris = run.info.command.uris if run.info.command else []
            if uris and self.fetch is not None:
                await self.fetch(list(uris), Path(run.sandbox_path))
            if run.cp.containerizer not in self.containerizers:
                raise LaunchError(f"The agent has no {run.cp.containerizer} containerizer")
            if not run.live:
                raise LaunchError(run.stop_message or "Executor shut down while launching")
            user = task_user(run.cp.framework, run.info.command, self.settings.switch_user)
            run.container = await self.containerizers[run.cp.containerizer].launch(
                dataclasses.replace(self._spec(run), user=user))
        except Exception as exc:  # noqa: BLE001 - LaunchError, FetchError, OSError: tasks fail
            if not isinstance(exc, LaunchError | OSError):
                log.warning("executor %s failed to launch: %s", run.key[1], exc)
            self._stopping(run, TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED,
                           f"Executor failed to launch: {exc}")
            await self._ended(run, None)
            return
        run.limits = self._limits(run)
        run.cp.record = run.container.record
        await self._in_io(self.cp.save_executor, run.cp)
        if not run.live:  # shut down while starting: stop what just started
            self._background(self._signal(run, StopKind.KILL))
        elif run.phase == ExecutorPhase.LAUNCHING:  # not subscribed already
            run.phase = ExecutorPhase.REGISTERING
            self._set_timer(run, self.settings.registration_timeout, self._registration_over)
        self._watch(run)

    def _prepare(self, run: ExecutorRun) -> None:
        sandbox = Path(run.sandbox_path)
        if sandbox.exists():
            shutil.rmtree(sandbox, ignore_errors=True)  # an earlier run of this executor id
        sandbox.mkdir(parents=True, exist_ok=True)
        self.cp.save_executor(run.cp)

    def _spec(self, run: ExecutorRun) -> LaunchSpec:
        info = _executor_task(run.info, self.address.agent_id())
        resources = to_resources(run.info.resources, "executor.resources")
        cpus, mem_mb = self._limits(run)
        return LaunchSpec(
            container_id=run.cp.container_id, agent_id=self.address.agent_id(),
            framework_id=run.key[0], task=info, sandbox=Path(run.sandbox_path),
            env=self._environment(run), cpus=cpus, mem_mb=mem_mb,
            disk_mb=resources.scalar("disk"), principal=run.cp.framework.principal)

    def _limits(self, run: ExecutorRun) -> tuple[float, float]:
        """The executor's container limits: its own resources and its unfinished
        tasks' (its tasks run inside it), as Mesos sizes an executor's container."""
        total = to_resources(run.info.resources, "executor.resources")
        for task in run.unfinished():
            total = total + to_resources(task.info.resources, "task.resources")
        return total.scalar("cpus"), total.scalar("mem")

    async def _resize(self, run: ExecutorRun) -> None:
        """Follow the executor's tasks with its container's limits.  One change at a
        time per executor, each computed when its turn comes, so the last one
        applied is always the latest."""
        async with run.resizing:
            if run.container is None or not run.live:
                return
            cpus, mem_mb = self._limits(run)
            if (cpus, mem_mb) != run.limits:
                run.limits = (cpus, mem_mb)
                await run.container.update_limits(cpus, mem_mb)

    def _environment(self, run: ExecutorRun) -> dict[str, str]:
        s = self.settings
        env = {
            "PATH": BASE_PATH, "LANG": "C.UTF-8", "HOME": run.sandbox_path,
            "MESOS_FRAMEWORK_ID": run.key[0], "MESOS_EXECUTOR_ID": run.key[1],
            "MESOS_AGENT_ID": self.address.agent_id(), "MESOS_SLAVE_ID": self.address.agent_id(),
            "MESOS_AGENT_ENDPOINT": f"{self.address.address}:{self.address.port}",
            "MESOS_DIRECTORY": run.sandbox_path, "MESOS_SANDBOX": run.sandbox_path,
            "MESOS_CHECKPOINT": "1", "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": duration_text(run.grace_seconds()),
            "MESOS_RECOVERY_TIMEOUT": duration_text(s.recovery_timeout),
            "MESOS_SUBSCRIPTION_BACKOFF_MAX": duration_text(s.subscription_backoff_max),
            "MESOS_EXECUTOR_AUTHENTICATION_TOKEN": run.cp.token,
            "HOST": self.address.address, "MESOSLITE_HOSTNAME": self.address.hostname,
        }
        command = run.info.command
        if command is not None and command.environment is not None:
            for var in command.environment.variables:
                if var.value is not None:
                    env[var.name] = var.value
        return env

    async def _resubscribed(self, run: ExecutorRun, subscribe: ex.Subscribe) -> None:
        """Merge what a (re-)subscribing executor holds, then send what it lacks."""
        for update in subscribe.unacknowledged_updates:
            entry = self.tasks.get((run.key[0], update.status.task_id.value))
            if entry is not None and entry[0] == run.key and update.status.uuid is not None:
                await self._executor_update(run, entry[1], update.status)
        known = {t.task_id.value for t in subscribe.unacknowledged_tasks}
        for task in list(run.tasks.values()):
            if task.state.terminal or task.task_id in known:
                continue
            if not task.sent or task.state == TaskState.TASK_STAGING:
                # never sent, or sent and not received (no word from it, not listed)
                await self._send_launch(run, task)

    async def _executor_update(self, run: ExecutorRun, task: ExecutorTask,
                               status: TaskStatus) -> None:
        fid = run.key[0]
        assert status.uuid is not None
        if self.updates.knows(fid, task.task_id, status.uuid):
            return  # a re-sent update the agent already holds
        if task.state.terminal:
            log.info("executor %s: ignoring %s for task %s, already %s", run.key[1],
                     status.state.value, task.task_id, task.state.value)
            return
        status = TaskStatus(
            task_id=status.task_id, state=status.state, message=status.message,
            source=Source.SOURCE_EXECUTOR, reason=status.reason, data=status.data,
            agent_id=ID(self.address.agent_id()), executor_id=ID(run.key[1]),
            timestamp=status.timestamp, uuid=status.uuid, healthy=status.healthy,
            labels=status.labels,
            container_status=ContainerStatus(container_id=ID(run.cp.container_id)))
        task.state = status.state
        task.sent = True
        await self.updates.add(fid, status, keep_uuid=True)
        if status.state.terminal:  # shrinking can wait: the UPDATE is answered first
            self._background(self._resize(run))

    async def _send_launch(self, run: ExecutorRun, task: ExecutorTask) -> None:
        if not task.sent:
            task.sent = True
            await self._in_io(self.cp.save_executor_task, ExecutorTaskCheckpoint(
                framework_id=run.key[0], executor_id=run.key[1], task=task.info, sent=True))
        self._push(run, ex.Event(type=ex.EventType.LAUNCH, launch=ex.Launch(task=task.info)))

    def _push(self, run: ExecutorRun, event: ex.Event) -> None:
        outbox = self._outboxes.get(run.key)
        if outbox is not None:
            outbox.put_nowait(event)

    def _watch(self, run: ExecutorRun) -> None:
        assert run.container is not None
        container = run.container

        async def watch() -> None:
            await self._ended(run, await container.wait())

        self._background(watch())

    async def _ended(self, run: ExecutorRun, term: Termination | None) -> None:
        """Its container ended (or never started): report its unfinished tasks, tell
        the master, forget it."""
        if run.phase == ExecutorPhase.TERMINATED:
            return
        run.phase = ExecutorPhase.TERMINATED
        self._cancel_timer(run.key)
        outbox = self._outboxes.pop(run.key, None)
        if outbox is not None:
            outbox.put_nowait(None)
        exit_code = term.exit_code if term is not None else None
        signal = term.signal if term is not None else None
        state, reason, message = executor_stop_outcome(run, exit_code, signal)
        for task in run.unfinished():
            task.state = state
            await self._agent_update(run.key[0], task.info, state, reason, message)
        if self.runs.get(run.key) is run:
            del self.runs[run.key]
        await self._in_io(self.cp.remove_executor, *run.key)
        log.info("executor %s of framework %s ended: %s", run.key[1], run.key[0], message)
        self.to_master(ExecutorExited(framework_id=run.key[0], executor_id=run.key[1],
                                      status=_wait_status(exit_code, signal),
                                      message=message))

    def _stopping(self, run: ExecutorRun, state: TaskState, reason: Reason,
                  message: str) -> None:
        """The first stop decides what its unfinished tasks report."""
        if run.stop_reason is None:
            run.stop_state, run.stop_reason, run.stop_message = state, reason, message
        run.phase = ExecutorPhase.TERMINATING

    def _registration_over(self, run: ExecutorRun) -> None:
        if run.phase not in (ExecutorPhase.REGISTERING, ExecutorPhase.RECOVERING):
            return
        recovering = run.phase == ExecutorPhase.RECOVERING
        reason = (Reason.REASON_EXECUTOR_REREGISTRATION_TIMEOUT if recovering
                  else Reason.REASON_EXECUTOR_REGISTRATION_TIMEOUT)
        timeout = (self.settings.reregistration_timeout if recovering
                   else self.settings.registration_timeout)
        verb = "re-subscribe" if recovering else "subscribe"
        log.warning("executor %s did not %s within %.1fs: killing it", run.key[1], verb,
                    timeout)
        self._stopping(run, TaskState.TASK_FAILED, reason,
                       f"Executor did not {verb} within {timeout:g}s")
        self._background(self._signal(run, StopKind.KILL))

    def _grace_over(self, run: ExecutorRun) -> None:
        if run.phase == ExecutorPhase.TERMINATING:
            self._background(self._signal(run, StopKind.KILL))

    def _set_timer(self, run: ExecutorRun, seconds: float,
                   action: Callable[[ExecutorRun], None]) -> None:
        self._cancel_timer(run.key)

        def fire() -> None:
            self._timers.pop(run.key, None)
            action(run)

        self._timers[run.key] = asyncio.get_running_loop().call_later(seconds, fire)

    def _cancel_timer(self, key: ExecutorKey) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    async def _signal(self, run: ExecutorRun, kind: StopKind) -> None:
        if run.container is None:
            return
        try:
            await run.container.signal(kind)
        except Exception:
            log.exception("sending %s to executor %s failed", kind.name, run.key[1])

    async def _agent_update(self, framework_id: str, info: TaskInfo, state: TaskState,
                            reason: Reason, message: str) -> None:
        """An update the agent itself sends for a task of an executor."""
        executor_id = info.executor.executor_id if info.executor else None
        await self.updates.add(framework_id, TaskStatus(
            task_id=info.task_id, state=state, message=message, source=Source.SOURCE_AGENT,
            reason=reason, agent_id=ID(self.address.agent_id()), executor_id=executor_id))
        if (framework_id, info.task_id.value) not in self.tasks:
            # never recorded (refused at once): forgotten with its acknowledgement
            self.tasks[(framework_id, info.task_id.value)] = (
                (framework_id, executor_id.value if executor_id else ""),
                ExecutorTask(info, state=state))

    async def _forget(self, framework_id: str, task_id: str) -> None:
        key, _ = self.tasks.pop((framework_id, task_id))
        run = self.runs.get(key)
        if run is not None:
            run.tasks.pop(task_id, None)
        self.updates.forget(framework_id, task_id)
        await self._in_io(self.cp.remove_task, framework_id, task_id)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        job = asyncio.create_task(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _in_io(self, fn: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)


def _executor_task(executor: ExecutorInfo, agent_id: str = "") -> TaskInfo:
    """The executor as the TaskInfo a containerizer runs (validated: it has an id)."""
    assert executor.executor_id is not None
    return TaskInfo(name=executor.name or executor.executor_id.value,
                    task_id=ID(executor.executor_id.value),
                    agent_id=ID(agent_id),
                    resources=executor.resources, command=executor.command,
                    container=executor.container)


def _wait_status(exit_code: int | None, signal: int | None) -> int | None:
    """A wait(2)-style status, as Mesos' FAILURE event carries."""
    if exit_code is not None:
        return exit_code << 8
    if signal is not None:
        return signal
    return None
