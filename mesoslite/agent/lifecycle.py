"""The agent's task lifecycle as a pure state machine: stimuli in, instructions out.

``TaskLifecycle.handle(key, stimulus)`` is the only place a task's state changes.
It never awaits, never reads a clock (a launch carries its time) and touches no
file, process or socket: it returns instructions, which ``TaskManager``
(``tasks.py``) carries out, feeding their outcomes back as new stimuli.

A task's phases (``Phase``) and the Mesos state it reports on the way::

    PREPARING   sandbox + task.json written           (TASK_STAGING)
    ANNOUNCING  TASK_STARTING being queued
    LAUNCHING   the containerizer starts the container
    RECORDING   the container's record being checkpointed
    READY       a group's task: watched, waiting for the rest of its group
    RUNNING     watched; health checks, checks and the deadline run   TASK_RUNNING
    KILLING     TERM sent, KILL once the grace is over (TASK_KILLING if the framework asked)
    RECOVERING  after an agent restart: re-attaching
    ENDED       terminal update queued (FINISHED / FAILED / KILLED / LOST)
    ABSENT      never launched, or forgotten once its terminal update was acknowledged

A kill before the container runs is remembered and carried out at the next step
(TASK_KILLED with REASON_TASK_KILLED_DURING_LAUNCH before the start, or when the
launch failed meanwhile - the agent abandons a fetch for a kill -; the container
stopped right after TASK_RUNNING once it started).  How a container ended decides
the terminal update (``outcome``): the kill's own state and reason when it was
killed, OOM (REASON_CONTAINER_LIMITATION_MEMORY) told apart from any other signal.

A kill is TERM, then KILL once its grace period (the KILL call's, else the kill
policy's, else DEFAULT_GRACE; 0: KILL at once) is over: ``SignalContainer(TERM)`` and
``StartGraceTimer``, then the executor's timer feeds ``GraceOver``, and
``SignalContainer(KILL)``.  A later kill may bring KILL forward, never change what the
kill reports; the exit cancels the timer (``CancelGraceTimer``; one that fired just
before is ignored).  Timers die with the agent: a task re-attached while it was being
killed runs until it is killed again.

A task of a group (LAUNCH_GROUP) is ``held``: once its container runs it waits in
READY (``AwaitGroup``) until its group releases it (``Released``: every task of the
group runs; see ``task_groups.py``), so no task of a group reports RUNNING unless
all of them started.  A held task killed before that never reports RUNNING.

Every (phase, stimulus) pair is explicit: ``_TRANSITIONS`` acts, ``_IGNORED`` names
why nothing happens, and any other pair cannot happen and raises
``InvalidTransition`` (a bug in the executor, not a runtime condition).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from mesoslite.agent.checkpoint import GroupMembership, TaskCheckpoint
from mesoslite.agent.containerizers.base import Container, StopKind, Termination
from mesoslite.messages.mesos import (
    CapabilityType,
    ContainerType,
    FrameworkInfo,
    Reason,
    TaskInfo,
    TaskState,
)
from mesoslite.messages.refused import runs_image

DEFAULT_GRACE = 3.0  # seconds between TERM and KILL when neither the kill nor the task set one
# Mesos has no dedicated "killed by its health check" reason; its checker uses this.
HEALTH_REASON = Reason.REASON_TASK_HEALTH_CHECK_STATUS_UPDATED
CHECK_REASON = Reason.REASON_TASK_CHECK_STATUS_UPDATED

TaskKey = tuple[str, str]  # (framework id, task id)


class Phase(enum.Enum):
    ABSENT = "absent"
    PREPARING = "preparing"
    ANNOUNCING = "announcing"
    LAUNCHING = "launching"
    RECORDING = "recording"
    READY = "ready"
    RUNNING = "running"
    KILLING = "killing"
    RECOVERING = "recovering"
    ENDED = "ended"


@dataclass(frozen=True)
class KillOrder:
    """What a kill reports once the container is gone."""

    state: TaskState
    reason: Reason | None
    message: str
    grace: float | None  # seconds; None: the task's kill policy, else DEFAULT_GRACE


@dataclass
class AgentTaskState:
    """One task on this agent.  ``state`` is the latest state reported for it;
    ``container`` is set once it runs (opaque here: only the executor calls it);
    ``forced``: its container was sent KILL; ``held``: a group's task whose RUNNING
    waits for its group."""

    framework_id: str
    cp: TaskCheckpoint
    state: TaskState = TaskState.TASK_STAGING
    phase: Phase = Phase.PREPARING
    container: Container | None = None
    kill: KillOrder | None = None
    forced: bool = False
    held: bool = False

    @property
    def task_id(self) -> str:
        return self.cp.task.task_id.value

    @property
    def executor_id(self) -> str:
        """Its group's executor, else its own built-in one (named after the task)."""
        return self.cp.group.executor_id if self.cp.group is not None else self.task_id

    @property
    def key(self) -> TaskKey:
        return (self.framework_id, self.task_id)

    @property
    def info(self) -> TaskInfo:
        return self.cp.task


# ---------------------------------------------------------------- stimuli


@dataclass(frozen=True)
class Launch:
    """The master asked to run ``info``; ``now`` (wall clock) is when.  ``group``: the
    task group it belongs to (the task is then held); ``kill``: a kill that came
    before the launch (its group failed first)."""

    framework: FrameworkInfo
    info: TaskInfo
    container_id: str
    now: float
    group: GroupMembership | None = None
    kill: KillRequested | None = None


@dataclass(frozen=True)
class Recovered:
    """A checkpointed task found when the agent starts; ``latest``: the state of its
    latest checkpointed update (None: none was)."""

    checkpoint: TaskCheckpoint
    latest: TaskState | None
    held: bool = False  # a group's task whose group has not reported RUNNING


@dataclass(frozen=True)
class Checkpointed:
    """The checkpoint asked for is on disk."""


@dataclass(frozen=True)
class CheckpointFailed:
    error: str


@dataclass(frozen=True)
class Announced:
    """TASK_STARTING is queued (and checkpointed)."""


@dataclass(frozen=True)
class Started:
    container: Container


@dataclass(frozen=True)
class LaunchFailed:
    message: str  # shown to the user


@dataclass(frozen=True)
class Reattached:
    container: Container


@dataclass(frozen=True)
class ReattachFailed:
    message: str


@dataclass(frozen=True)
class Exited:
    termination: Termination


@dataclass(frozen=True)
class KillRequested:
    grace: float | None = None
    state: TaskState = TaskState.TASK_KILLED
    reason: Reason | None = None
    message: str = "Task killed"


@dataclass(frozen=True)
class GraceOver:
    """The grace timer started by ``StartGraceTimer`` ran out."""


@dataclass(frozen=True)
class HealthVerdict:
    """The health checker's decision: ``healthy`` changed (None: nothing to report),
    and/or the task must be killed (``kill_message``)."""

    healthy: bool | None
    kill_message: str | None = None


@dataclass(frozen=True)
class CheckUpdated:
    """The task's generic check (``TaskInfo.check``) has a new result: report it (the
    executor attaches the result to the update; see agent/checks.py)."""


@dataclass(frozen=True)
class TerminalAcknowledged:
    """The framework acknowledged the terminal update; nothing else is pending."""


@dataclass(frozen=True)
class Released:
    """Every task of the held task's group runs: it may report RUNNING."""


Stimulus = (Launch | Recovered | Checkpointed | CheckpointFailed | Announced | Started
            | LaunchFailed | Reattached | ReattachFailed | Exited | KillRequested | GraceOver
            | HealthVerdict | CheckUpdated | TerminalAcknowledged | Released)
STIMULI: tuple[type, ...] = Stimulus.__args__  # every stimulus type


# ---------------------------------------------------------------- instructions


@dataclass(frozen=True)
class CheckpointTask:
    """Write task.json; ``fresh``: first create the sandbox (an old one of the same
    task id is removed) and write framework.json.  Outcome: Checkpointed or
    CheckpointFailed."""

    fresh: bool


@dataclass(frozen=True)
class SendUpdate:
    """Queue a status update through the status update manager; then, if ``then``
    is set, feed it."""

    state: TaskState
    reason: Reason | None = None
    message: str | None = None
    healthy: bool | None = None
    then: Stimulus | None = None


@dataclass(frozen=True)
class StartContainer:
    """Build the launch spec and start it.  Outcome: Started or LaunchFailed."""


@dataclass(frozen=True)
class RecoverContainer:
    """Re-attach to the checkpointed container.  Outcome: Reattached, Exited (it
    ended while the agent was down) or ReattachFailed."""


@dataclass(frozen=True)
class WatchContainer:
    """Wait for the container to end in the background.  Outcome: Exited."""


@dataclass(frozen=True)
class SignalContainer:
    """Send the container ``kind`` (``Container.signal``), not waiting for its end: that
    arrives as Exited."""

    kind: StopKind


@dataclass(frozen=True)
class StartGraceTimer:
    """Feed GraceOver ``seconds`` from now, unless a grace timer already running for
    the task ends sooner (then that one stays: a later kill only brings KILL forward)."""

    seconds: float


@dataclass(frozen=True)
class CancelGraceTimer:
    """Stop the task's grace timer if one runs (a GraceOver already on its way may
    still arrive)."""


@dataclass(frozen=True)
class StartHealthChecks:
    pass


@dataclass(frozen=True)
class StopHealthChecks:
    pass


@dataclass(frozen=True)
class ReleaseSecrets:
    """Unmount the task's secret files."""


@dataclass(frozen=True)
class AwaitGroup:
    """Tell the task's group that its container runs.  Outcome: Released, for this
    task and the group's others, once all of them run."""


@dataclass(frozen=True)
class Forget:
    """Drop the task's update stream and checkpoint (its sandbox stays)."""


@dataclass(frozen=True)
class Ignore:
    """Nothing to do, and why (``notable``: worth an operator's attention)."""

    reason: str
    notable: bool = False


Instruction = (CheckpointTask | SendUpdate | StartContainer | RecoverContainer | WatchContainer
               | SignalContainer | StartGraceTimer | CancelGraceTimer | StartHealthChecks
               | StopHealthChecks | ReleaseSecrets | AwaitGroup | Forget | Ignore)


class InvalidTransition(Exception):
    """A stimulus that cannot arrive in the task's phase."""


# ---------------------------------------------------------------- the machine


class TaskLifecycle:
    """Every task on the agent and the frameworks they belong to.

    ``containerizers``: the names of the containerizers this agent has.
    """

    def __init__(self, containerizers: Collection[str]) -> None:
        self.containerizers = frozenset(containerizers)
        self.tasks: dict[TaskKey, AgentTaskState] = {}
        self.frameworks: dict[str, FrameworkInfo] = {}

    def phase(self, key: TaskKey) -> Phase:
        task = self.tasks.get(key)
        return task.phase if task is not None else Phase.ABSENT

    def handle(self, key: TaskKey, stimulus: Stimulus) -> list[Instruction]:
        """Apply ``stimulus`` to the task ``key``; the instructions to carry out, in
        order.  Raises InvalidTransition for a pair that cannot happen."""
        pair = (self.phase(key), type(stimulus))
        ignored = _IGNORED.get(pair)
        if ignored is not None:
            return [ignored]
        if pair[0] is Phase.ABSENT:
            create = _CREATE.get(pair[1])
            if create is None:
                raise InvalidTransition(f"{pair[1].__name__} for unknown task {key[1]}")
            return create(self, key, stimulus)
        step = _TRANSITIONS.get(pair)
        if step is None:
            raise InvalidTransition(f"{pair[1].__name__} for task {key[1]} in {pair[0].name}")
        return step(self, self.tasks[key], stimulus)


def containerizer_for(info: TaskInfo) -> str:
    """A DOCKER container, and a MESOS one with an image, run through the Docker
    engine; everything else as processes."""
    if info.container is not None and (info.container.type == ContainerType.DOCKER
                                       or runs_image(info.container)):
        return "docker"
    return "process"


def outcome(kill: KillOrder | None, term: Termination) -> tuple[TaskState, Reason | None, str]:
    """The terminal update for a container that ended as ``term``."""
    if kill is not None:
        return kill.state, kill.reason, kill.message
    if term.oom_killed:
        return (TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LIMITATION_MEMORY,
                term.message or "Memory limit exceeded")
    if term.exit_code == 0:
        return TaskState.TASK_FINISHED, None, "Command exited with status 0"
    if term.exit_code is not None:
        return (TaskState.TASK_FAILED, Reason.REASON_COMMAND_EXECUTOR_FAILED,
                term.message or f"Command exited with status {term.exit_code}")
    return (TaskState.TASK_FAILED, Reason.REASON_COMMAND_EXECUTOR_FAILED,
            term.message or f"Command terminated with signal {term.signal}")


def grace_period(info: TaskInfo, requested: float | None) -> float:
    """The kill's grace period (``requested``), else the task's kill policy's, else
    DEFAULT_GRACE."""
    if requested is not None:
        return requested
    policy = info.kill_policy
    if policy is not None and policy.grace_period is not None:
        return policy.grace_period.nanoseconds / 1e9
    return DEFAULT_GRACE


# ---------------------------------------------------------------- steps


def _update(task: AgentTaskState, state: TaskState, reason: Reason | None = None,
            message: str | None = None, healthy: bool | None = None,
            then: Stimulus | None = None) -> SendUpdate:
    task.state = state
    return SendUpdate(state, reason, message, healthy, then)


def _end(task: AgentTaskState, state: TaskState, reason: Reason | None,
         message: str) -> list[Instruction]:
    timer: list[Instruction] = [CancelGraceTimer()] if _timing(task) else []
    task.phase = Phase.ENDED
    return [*timer, StopHealthChecks(), ReleaseSecrets(), _update(task, state, reason, message)]


def _timing(task: AgentTaskState) -> bool:
    """Whether a grace timer runs for the task: TERM was sent, KILL not yet."""
    return task.phase is Phase.KILLING and not task.forced


def _terminate(task: AgentTaskState) -> list[Instruction]:
    """Start killing the watched container: TERM and the grace timer (KILL at once
    without a grace period)."""
    assert task.kill is not None
    grace = grace_period(task.info, task.kill.grace)
    out = _force(task) if grace <= 0 else [SignalContainer(StopKind.TERM),
                                           StartGraceTimer(grace)]
    task.phase = Phase.KILLING
    return out


def _force(task: AgentTaskState) -> list[Instruction]:
    """KILL; no grace timer is left running (a later kill may have started another
    after the one that fired)."""
    timer: list[Instruction] = [CancelGraceTimer()] if _timing(task) else []
    task.forced = True
    return [*timer, SignalContainer(StopKind.KILL)]


def _stop(c: TaskLifecycle, task: AgentTaskState, order: KillOrder) -> list[Instruction]:
    """Kill a task whose container runs and is watched."""
    task.kill = order
    out: list[Instruction] = []
    framework = c.frameworks.get(task.framework_id)
    if framework is not None and framework.has_capability(CapabilityType.TASK_KILLING_STATE):
        out.append(_update(task, TaskState.TASK_KILLING))
    return out + _terminate(task)


def _running(task: AgentTaskState) -> list[Instruction]:
    """The container is watched and reported RUNNING: run it, or stop it if a kill
    came meanwhile."""
    if task.kill is not None:
        return _terminate(task)
    task.phase = Phase.RUNNING
    return [StartHealthChecks()]


def _launch(c: TaskLifecycle, key: TaskKey, s: Launch) -> list[Instruction]:
    c.frameworks[key[0]] = s.framework
    cp = TaskCheckpoint(framework_id=key[0], task=s.info, container_id=s.container_id,
                        containerizer=containerizer_for(s.info), launched_at=s.now,
                        group=s.group)
    task = c.tasks[key] = AgentTaskState(key[0], cp, held=s.group is not None)
    if s.kill is not None:
        task.kill = KillOrder(s.kill.state, s.kill.reason, s.kill.message, s.kill.grace)
    return [CheckpointTask(fresh=True)]


def _recovered(c: TaskLifecycle, key: TaskKey, s: Recovered) -> list[Instruction]:
    cp = s.checkpoint
    task = c.tasks[key] = AgentTaskState(cp.framework_id, cp, phase=Phase.RECOVERING,
                                         held=s.held)
    if s.latest is not None:
        task.state = s.latest
    if task.state.terminal:
        task.phase = Phase.ENDED  # waiting for the acknowledgement only
        return []
    if cp.record is None or cp.containerizer not in c.containerizers:
        return _end(task, TaskState.TASK_LOST, Reason.REASON_AGENT_RESTARTED,
                    "The agent restarted while the task was being launched")
    return [RecoverContainer()]


def _prepared(c: TaskLifecycle, task: AgentTaskState, s: Checkpointed) -> list[Instruction]:
    task.phase = Phase.ANNOUNCING
    return [_update(task, TaskState.TASK_STARTING, then=Announced())]


def _prepare_failed(c: TaskLifecycle, task: AgentTaskState,
                    s: CheckpointFailed) -> list[Instruction]:
    # e.g. a full disk: refuse this launch, keep the agent and its tasks alive
    return _end(task, TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED,
                f"The agent cannot prepare the task's sandbox: {s.error}")


def _announced(c: TaskLifecycle, task: AgentTaskState, s: Announced) -> list[Instruction]:
    kind = task.cp.containerizer
    if kind not in c.containerizers:
        return _end(task, TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED,
                    f"This agent has no {kind} containerizer")
    if task.kill is not None:  # a group's task says why its group went
        return _end(task, TaskState.TASK_KILLED, Reason.REASON_TASK_KILLED_DURING_LAUNCH,
                    task.kill.message if task.held else "Killed during launch")
    task.phase = Phase.LAUNCHING
    return [StartContainer()]


def _started(c: TaskLifecycle, task: AgentTaskState, s: Started) -> list[Instruction]:
    task.container = s.container
    task.cp.record = s.container.record
    task.phase = Phase.RECORDING
    return [CheckpointTask(fresh=False)]


def _launch_failed(c: TaskLifecycle, task: AgentTaskState, s: LaunchFailed) -> list[Instruction]:
    if task.kill is not None:  # what was asked for happened: nothing runs
        return _end(task, TaskState.TASK_KILLED, Reason.REASON_TASK_KILLED_DURING_LAUNCH,
                    "Killed during launch")
    return _end(task, TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED, s.message)


def _recorded(c: TaskLifecycle, task: AgentTaskState, s: Checkpointed) -> list[Instruction]:
    if task.held:
        return [WatchContainer(), *_await_group(task)]
    return [WatchContainer(), _update(task, TaskState.TASK_RUNNING), *_running(task)]


def _await_group(task: AgentTaskState) -> list[Instruction]:
    """A held task's container is watched: wait for the group, or stop it at once
    (never reported RUNNING) if a kill came meanwhile."""
    if task.kill is not None:
        return _terminate(task)
    task.phase = Phase.READY
    return [AwaitGroup()]


def _released(c: TaskLifecycle, task: AgentTaskState, s: Released) -> list[Instruction]:
    task.held = False
    return [_update(task, TaskState.TASK_RUNNING), *_running(task)]


def _record_failed(c: TaskLifecycle, task: AgentTaskState,
                   s: CheckpointFailed) -> list[Instruction]:
    # Without its record the container could not be re-attached after a restart:
    # better not to run it at all.
    grace = task.kill.grace if task.kill is not None else None
    task.kill = KillOrder(TaskState.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED,
                          f"The agent cannot checkpoint the task: {s.error}", grace)
    return [WatchContainer(), *_terminate(task)]


def _exited(c: TaskLifecycle, task: AgentTaskState, s: Exited) -> list[Instruction]:
    return _end(task, *outcome(task.kill, s.termination))


def _kill_later(c: TaskLifecycle, task: AgentTaskState, s: KillRequested) -> list[Instruction]:
    """No container to stop yet: the launch (or re-attachment) sees the kill next."""
    if task.kill is not None:
        return [Ignore("already being killed")]
    task.kill = KillOrder(s.state, s.reason, s.message, s.grace)
    return []


def _kill_now(c: TaskLifecycle, task: AgentTaskState, s: KillRequested) -> list[Instruction]:
    return _stop(c, task, KillOrder(s.state, s.reason, s.message, s.grace))


def _kill_again(c: TaskLifecycle, task: AgentTaskState, s: KillRequested) -> list[Instruction]:
    """A kill while TERM's grace runs: its own grace period may bring KILL forward
    (the executor keeps whichever timer ends first); what the kill reports stays the
    first kill's."""
    if task.forced:
        return [Ignore("already being killed")]
    grace = grace_period(task.info, s.grace)
    if grace <= 0:
        return _force(task)
    return [StartGraceTimer(grace)]


def _grace_over(c: TaskLifecycle, task: AgentTaskState, s: GraceOver) -> list[Instruction]:
    if task.forced:  # a timer that fired just before a later kill sent KILL
        return [Ignore("KILL already sent")]
    return _force(task)


def _verdict(c: TaskLifecycle, task: AgentTaskState, s: HealthVerdict) -> list[Instruction]:
    out: list[Instruction] = []
    if s.healthy is not None:
        out.append(_update(task, TaskState.TASK_RUNNING, HEALTH_REASON, None, s.healthy))
    if s.kill_message is not None:
        out += _stop(c, task, KillOrder(TaskState.TASK_FAILED, HEALTH_REASON, s.kill_message,
                                        None))
    return out


def _check_updated(c: TaskLifecycle, task: AgentTaskState, s: CheckUpdated
                   ) -> list[Instruction]:
    return [_update(task, TaskState.TASK_RUNNING, CHECK_REASON)]


def _reattached(c: TaskLifecycle, task: AgentTaskState, s: Reattached) -> list[Instruction]:
    task.container = s.container
    out: list[Instruction] = [WatchContainer()]
    if task.held and task.state != TaskState.TASK_RUNNING:
        return out + _await_group(task)
    if task.state != TaskState.TASK_RUNNING:
        out.append(_update(task, TaskState.TASK_RUNNING))
    return out + _running(task)


def _reattach_failed(c: TaskLifecycle, task: AgentTaskState,
                     s: ReattachFailed) -> list[Instruction]:
    return _end(task, TaskState.TASK_LOST, Reason.REASON_AGENT_RESTARTED,
                f"could not re-attach after an agent restart: {s.message}")


def _acknowledged(c: TaskLifecycle, task: AgentTaskState,
                  s: TerminalAcknowledged) -> list[Instruction]:
    del c.tasks[task.key]
    return [Forget()]


# ---------------------------------------------------------------- the table

_P = Phase
_LIVE = (_P.PREPARING, _P.ANNOUNCING, _P.LAUNCHING, _P.RECORDING, _P.READY, _P.RUNNING,
         _P.KILLING, _P.RECOVERING, _P.ENDED)
_BEFORE_CONTAINER = (_P.PREPARING, _P.ANNOUNCING, _P.LAUNCHING, _P.RECORDING, _P.RECOVERING)

_CREATE: dict[type, Callable[[TaskLifecycle, TaskKey, Any], list[Instruction]]] = {
    Launch: _launch,
    Recovered: _recovered,
}

_TRANSITIONS: dict[tuple[Phase, type], Callable[[TaskLifecycle, AgentTaskState, Any],
                                                list[Instruction]]] = {
    (_P.PREPARING, Checkpointed): _prepared,
    (_P.PREPARING, CheckpointFailed): _prepare_failed,
    (_P.ANNOUNCING, Announced): _announced,
    (_P.LAUNCHING, Started): _started,
    (_P.LAUNCHING, LaunchFailed): _launch_failed,
    (_P.RECORDING, Checkpointed): _recorded,
    (_P.RECORDING, CheckpointFailed): _record_failed,
    (_P.RUNNING, Exited): _exited,
    (_P.READY, Exited): _exited,
    (_P.READY, KillRequested): _kill_now,
    (_P.READY, Released): _released,
    (_P.KILLING, Exited): _exited,
    (_P.RECOVERING, Exited): _exited,
    (_P.RUNNING, KillRequested): _kill_now,
    (_P.KILLING, KillRequested): _kill_again,
    (_P.KILLING, GraceOver): _grace_over,
    (_P.RUNNING, HealthVerdict): _verdict,
    (_P.RUNNING, CheckUpdated): _check_updated,
    (_P.RECOVERING, Reattached): _reattached,
    (_P.RECOVERING, ReattachFailed): _reattach_failed,
    (_P.ENDED, TerminalAcknowledged): _acknowledged,
    **{(phase, KillRequested): _kill_later for phase in _BEFORE_CONTAINER},
}

_IGNORED: dict[tuple[Phase, type], Ignore] = {
    (_P.ABSENT, KillRequested): Ignore("no such task"),
    (_P.ABSENT, HealthVerdict): Ignore("no such task"),
    (_P.ABSENT, CheckUpdated): Ignore("no such task"),
    (_P.ABSENT, TerminalAcknowledged): Ignore("no such task"),
    (_P.ENDED, KillRequested): Ignore("already ended"),
    # A grace timer that fired just before the container's exit cancelled it.
    (_P.ENDED, GraceOver): Ignore("the container has ended"),
    (_P.ABSENT, GraceOver): Ignore("no such task"),
    (_P.ABSENT, Released): Ignore("no such task"),
    **{(phase, Released): Ignore("not waiting for its group")
       for phase in _LIVE if phase is not _P.READY},
    **{(phase, Launch): Ignore("duplicate launch: the task is already known", notable=True)
       for phase in _LIVE},
    **{(phase, HealthVerdict): Ignore("the task is not running")
       for phase in _LIVE if phase is not _P.RUNNING},
    **{(phase, CheckUpdated): Ignore("the task is not running")
       for phase in _LIVE if phase is not _P.RUNNING},
    # The update manager reports only a terminal update acknowledged; keep going if not.
    **{(phase, TerminalAcknowledged): Ignore("the task has not ended")
       for phase in _LIVE if phase is not _P.ENDED},
}
