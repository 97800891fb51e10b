"""The agent's task lifecycle (``mesoslite/agent/lifecycle.py``): every stimulus in
every phase against a table written here, then the sequences Mesos users rely on."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from mesoslite.agent.checkpoint import GroupMembership, TaskCheckpoint
from mesoslite.agent.containerizers.base import Container, StopKind, Termination
from mesoslite.agent.lifecycle import (
    DEFAULT_GRACE,
    HEALTH_REASON,
    STIMULI,
    Announced,
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
    InvalidTransition,
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
    StopHealthChecks,
    TaskLifecycle,
    TerminalAcknowledged,
    WatchContainer,
    outcome,
)
from mesoslite.messages.mesos import (
    ID,
    CapabilityType,
    CommandInfo,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DurationInfo,
    FrameworkCapability,
    FrameworkInfo,
    KillPolicy,
    Reason,
    TaskInfo,
    TaskState,
)

FW = "fw-1"
KEY = (FW, "t1")
S = TaskState
TERM = SignalContainer(StopKind.TERM)
KILL = SignalContainer(StopKind.KILL)


class FakeContainer(Container):
    """A container the core can hold; the core never calls it."""

    def __init__(self, name: str = "c") -> None:
        self.record: dict[str, Any] = {"name": name}

    async def wait(self) -> Termination:
        raise AssertionError("the core never waits")

    async def signal(self, kind: StopKind) -> None:
        raise AssertionError("the core never signals")


def framework(killing_state: bool = False) -> FrameworkInfo:
    caps = [FrameworkCapability(type=CapabilityType.TASK_KILLING_STATE)] if killing_state else []
    return FrameworkInfo(user="u", name="f", id=ID(FW), capabilities=caps)


def task_info(task_id: str = "t1", grace: float | None = None, docker: bool = False) -> TaskInfo:
    info = TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("a"),
                    command=CommandInfo(value="sleep 60"))
    if grace is not None:
        info.kill_policy = KillPolicy(grace_period=DurationInfo(int(grace * 1e9)))
    if docker:
        info.container = ContainerInfo(type=ContainerType.DOCKER, docker=DockerInfo(image="x"))
    return info


def launch(info: TaskInfo | None = None, killing_state: bool = False,
           group: GroupMembership | None = None) -> Launch:
    return Launch(framework(killing_state), info or task_info(), "cid-1", 1000.0, group)


GROUP = GroupMembership(executor_id="e1", members=["t1", "t2"])


def checkpoint(record: bool = True) -> TaskCheckpoint:
    return TaskCheckpoint(framework_id=FW, task=task_info(), container_id="cid-1",
                          containerizer="process", record={"name": "c"} if record else None,
                          launched_at=1000.0)


# Stimuli that bring a fresh core's task "t1" to each phase.
TO_RUNNING = [launch(), Checkpointed(), Announced(), Started(FakeContainer()), Checkpointed()]
TO_READY = [launch(group=GROUP), *TO_RUNNING[1:]]
PATHS: dict[Phase, list[Any]] = {
    Phase.ABSENT: [],
    Phase.PREPARING: [launch()],
    Phase.ANNOUNCING: TO_RUNNING[:2],
    Phase.LAUNCHING: TO_RUNNING[:3],
    Phase.RECORDING: TO_RUNNING[:4],
    Phase.READY: TO_READY,
    Phase.RUNNING: TO_RUNNING,
    Phase.KILLING: [*TO_RUNNING, KillRequested()],
    Phase.RECOVERING: [Recovered(checkpoint(), S.TASK_RUNNING)],
    Phase.ENDED: [*TO_RUNNING, Exited(Termination(exit_code=0))],
}


def core_in(phase: Phase) -> TaskLifecycle:
    core = TaskLifecycle(["process"])
    for stimulus in PATHS[phase]:
        core.handle(KEY, stimulus)
    assert core.phase(KEY) is phase
    return core


SAMPLES: dict[str, Any] = {
    "Launch": launch(),
    "Recovered": Recovered(checkpoint(), S.TASK_RUNNING),
    "Checkpointed": Checkpointed(),
    "CheckpointFailed": CheckpointFailed("No space left on device"),
    "Announced": Announced(),
    "Started": Started(FakeContainer()),
    "LaunchFailed": LaunchFailed("no such image"),
    "Reattached": Reattached(FakeContainer()),
    "ReattachFailed": ReattachFailed("gone"),
    "Exited": Exited(Termination(exit_code=0)),
    "KillRequested": KillRequested(),
    "GraceOver": GraceOver(),
    "HealthVerdict": HealthVerdict(False),
    "CheckUpdated": CheckUpdated(),
    "TerminalAcknowledged": TerminalAcknowledged(),
    "Released": Released(),
}

# The phase after each stimulus; "-": ignored (nothing changes), "x": cannot happen.
PHASES = {"absent": Phase.ABSENT, "prep": Phase.PREPARING, "annc": Phase.ANNOUNCING,
          "lnch": Phase.LAUNCHING, "rcrd": Phase.RECORDING, "redy": Phase.READY,
          "run": Phase.RUNNING,
          "kill": Phase.KILLING, "rcvr": Phase.RECOVERING, "end": Phase.ENDED}
TABLE = """
stimulus             absent prep annc lnch rcrd redy run  kill rcvr end
Launch               prep   -    -    -    -    -    -    -    -    -
Recovered            rcvr   x    x    x    x    x    x    x    x    x
Checkpointed         x      annc x    x    run  x    x    x    x    x
CheckpointFailed     x      end  x    x    kill x    x    x    x    x
Announced            x      x    lnch x    x    x    x    x    x    x
Started              x      x    x    rcrd x    x    x    x    x    x
LaunchFailed         x      x    x    end  x    x    x    x    x    x
Reattached           x      x    x    x    x    x    x    x    run  x
ReattachFailed       x      x    x    x    x    x    x    x    end  x
Exited               x      x    x    x    x    end  end  end  end  x
KillRequested        -      prep annc lnch rcrd kill kill kill rcvr -
GraceOver            -      x    x    x    x    x    x    kill x    -
HealthVerdict        -      -    -    -    -    -    run  -    -    -
CheckUpdated         -      -    -    -    -    -    run  -    -    -
TerminalAcknowledged -      -    -    -    -    -    -    -    -    absent
Released             -      -    -    -    -    run  -    -    -    -
"""


def table() -> list[tuple[Phase, str, str]]:
    header, *rows = TABLE.strip().splitlines()
    phases = [PHASES[name] for name in header.split()[1:]]
    return [(phase, name, cell) for name, *cells in (row.split() for row in rows)
            for phase, cell in zip(phases, cells, strict=True)]


def test_the_table_covers_every_stimulus_in_every_phase():
    assert {type(s) for s in SAMPLES.values()} == set(STIMULI)
    cells = {(phase, name) for phase, name, _ in table()}
    assert cells == {(phase, name) for phase in Phase for name in SAMPLES}


@pytest.mark.parametrize("phase, name, expected", table(),
                         ids=[f"{p.name}-{n}" for p, n, _ in table()])
def test_every_stimulus_in_every_phase(phase: Phase, name: str, expected: str):
    core = core_in(phase)
    stimulus = SAMPLES[name]
    if expected == "x":
        with pytest.raises(InvalidTransition):
            core.handle(KEY, stimulus)
        return
    before = core.tasks.get(KEY)
    snapshot = (before.phase, before.state, before.kill, before.forced) if before else None
    instructions = core.handle(KEY, stimulus)
    if expected == "-":
        assert len(instructions) == 1 and isinstance(instructions[0], Ignore)
        after = core.tasks.get(KEY)
        assert ((after.phase, after.state, after.kill, after.forced) if after else None
                ) == snapshot
    else:
        assert core.phase(KEY) is PHASES[expected]
        assert not any(isinstance(i, Ignore) for i in instructions)


# ---------------------------------------------------------------- sequences


def updates(instructions: list[Any]) -> list[tuple[TaskState, Reason | None, str | None]]:
    return [(i.state, i.reason, i.message) for i in instructions if isinstance(i, SendUpdate)]


def test_a_task_runs_to_completion_and_is_forgotten_once_acknowledged():
    core = TaskLifecycle(["process"])
    assert core.handle(KEY, launch()) == [CheckpointTask(fresh=True)]
    assert core.tasks[KEY].state == S.TASK_STAGING
    assert core.handle(KEY, Checkpointed()) == [SendUpdate(S.TASK_STARTING, then=Announced())]
    assert core.handle(KEY, Announced()) == [StartContainer()]
    container = FakeContainer("one")
    assert core.handle(KEY, Started(container)) == [CheckpointTask(fresh=False)]
    assert core.tasks[KEY].cp.record == {"name": "one"}  # what task.json now holds
    assert core.handle(KEY, Checkpointed()) == [
        WatchContainer(), SendUpdate(S.TASK_RUNNING), StartHealthChecks()]
    assert core.handle(KEY, Exited(Termination(exit_code=0))) == [
        StopHealthChecks(), ReleaseSecrets(),
        SendUpdate(S.TASK_FINISHED, None, "Command exited with status 0")]
    assert core.handle(KEY, TerminalAcknowledged()) == [Forget()]
    assert KEY not in core.tasks


@pytest.mark.parametrize("term, expected", [
    (Termination(exit_code=0), (S.TASK_FINISHED, None, "Command exited with status 0")),
    (Termination(exit_code=3), (S.TASK_FAILED, Reason.REASON_COMMAND_EXECUTOR_FAILED,
                                "Command exited with status 3")),
    (Termination(signal=signal.SIGKILL), (S.TASK_FAILED, Reason.REASON_COMMAND_EXECUTOR_FAILED,
                                          "Command terminated with signal 9")),
    (Termination(signal=signal.SIGKILL, oom_killed=True),
     (S.TASK_FAILED, Reason.REASON_CONTAINER_LIMITATION_MEMORY, "Memory limit exceeded")),
    (Termination(exit_code=1, message="supervisor lost"),
     (S.TASK_FAILED, Reason.REASON_COMMAND_EXECUTOR_FAILED, "supervisor lost")),
])
def test_how_a_container_ended_decides_the_terminal_update(term, expected):
    assert outcome(None, term) == expected


def test_a_killed_task_reports_the_kill_whatever_its_exit_status():
    core = core_in(Phase.RUNNING)
    core.handle(KEY, KillRequested(message="bye"))
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGTERM)))
    assert updates(out) == [(S.TASK_KILLED, None, "bye")]


def test_kill_of_a_running_task_sends_killing_only_when_the_framework_asked():
    for capable, expected in ((False, []), (True, [(S.TASK_KILLING, None, None)])):
        core = TaskLifecycle(["process"])
        for stimulus in [launch(killing_state=capable), *TO_RUNNING[1:]]:
            core.handle(KEY, stimulus)
        out = core.handle(KEY, KillRequested())
        assert updates(out) == expected
        assert out[-2:] == [TERM, StartGraceTimer(DEFAULT_GRACE)]


def running(policy: float | None = None) -> TaskLifecycle:
    core = TaskLifecycle(["process"])
    for stimulus in [launch(task_info(grace=policy)), *TO_RUNNING[1:]]:
        core.handle(KEY, stimulus)
    return core


@pytest.mark.parametrize("policy, requested, grace", [
    (None, None, DEFAULT_GRACE), (7.5, None, 7.5), (7.5, 1.0, 1.0), (None, 0.5, 0.5)])
def test_grace_period_the_kill_then_the_kill_policy_then_the_default(policy, requested, grace):
    core = running(policy)
    assert core.handle(KEY, KillRequested(grace=requested)) == [TERM, StartGraceTimer(grace)]


@pytest.mark.parametrize("policy, requested", [(None, 0.0), (0.0, None), (7.5, 0.0)])
def test_a_kill_without_a_grace_period_sends_kill_at_once(policy, requested):
    core = running(policy)
    assert core.handle(KEY, KillRequested(grace=requested)) == [KILL]
    assert core.phase(KEY) is Phase.KILLING
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGKILL)))
    assert CancelGraceTimer() not in out  # no timer was started
    assert updates(out) == [(S.TASK_KILLED, None, "Task killed")]


def test_kill_is_sent_when_the_grace_is_over_and_the_kill_is_reported():
    core = core_in(Phase.KILLING)
    # (the cancel: a later kill may have started a timer after this one fired)
    assert core.handle(KEY, GraceOver()) == [CancelGraceTimer(), KILL]
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGKILL)))
    assert CancelGraceTimer() not in out  # none runs after KILL
    assert updates(out) == [(S.TASK_KILLED, None, "Task killed")]


def test_a_later_kill_starts_its_own_timer_and_keeps_what_the_first_reports():
    core = core_in(Phase.KILLING)
    # The executor keeps whichever timer ends first: a shorter one brings KILL forward.
    assert core.handle(KEY, KillRequested(grace=1.0, message="again")) == [StartGraceTimer(1.0)]
    assert core.handle(KEY, KillRequested(message="and again")) == [
        StartGraceTimer(DEFAULT_GRACE)]
    assert core.handle(KEY, GraceOver()) == [CancelGraceTimer(), KILL]
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGKILL)))
    assert updates(out) == [(S.TASK_KILLED, None, "Task killed")]


def test_a_later_kill_without_a_grace_period_brings_kill_forward_at_once():
    core = core_in(Phase.KILLING)
    assert core.handle(KEY, KillRequested(grace=0.0)) == [CancelGraceTimer(), KILL]
    assert isinstance(core.handle(KEY, KillRequested(grace=0.0))[0], Ignore)
    # a timer that fired just before: KILL is not sent twice
    assert isinstance(core.handle(KEY, GraceOver())[0], Ignore)


def test_the_exit_cancels_the_timer_and_a_timer_that_fired_meanwhile_is_ignored():
    core = core_in(Phase.KILLING)
    out = core.handle(KEY, Exited(Termination(exit_code=0)))
    assert out[0] == CancelGraceTimer()
    assert updates(out) == [(S.TASK_KILLED, None, "Task killed")]
    [ignored] = core.handle(KEY, GraceOver())
    assert isinstance(ignored, Ignore) and not ignored.notable
    core.handle(KEY, TerminalAcknowledged())
    assert isinstance(core.handle(KEY, GraceOver())[0], Ignore)


def test_an_oom_while_being_killed_reports_the_kill():
    core = core_in(Phase.KILLING)
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGKILL, oom_killed=True)))
    assert updates(out) == [(S.TASK_KILLED, None, "Task killed")]


def test_kill_before_the_start_reports_killed_during_launch_and_starts_nothing():
    core = core_in(Phase.PREPARING)
    assert core.handle(KEY, KillRequested()) == []
    core.handle(KEY, Checkpointed())
    out = core.handle(KEY, Announced())
    assert StartContainer() not in out
    assert updates(out) == [(S.TASK_KILLED, Reason.REASON_TASK_KILLED_DURING_LAUNCH,
                             "Killed during launch")]


def test_kill_while_the_container_starts_stops_it_once_it_is_recorded():
    core = core_in(Phase.LAUNCHING)
    core.handle(KEY, KillRequested(grace=2.0, reason=Reason.REASON_FRAMEWORK_REMOVED,
                                   message="Framework shut down"))
    core.handle(KEY, Started(FakeContainer()))
    out = core.handle(KEY, Checkpointed())
    assert out == [WatchContainer(), SendUpdate(S.TASK_RUNNING), TERM, StartGraceTimer(2.0)]
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGTERM)))
    assert updates(out) == [(S.TASK_KILLED, Reason.REASON_FRAMEWORK_REMOVED,
                             "Framework shut down")]


def test_a_launch_abandoned_for_a_kill_reports_the_kill():
    core = core_in(Phase.LAUNCHING)
    assert core.handle(KEY, KillRequested()) == []
    out = core.handle(KEY, LaunchFailed("Fetching the task's URIs was cancelled"))
    assert updates(out) == [(S.TASK_KILLED, Reason.REASON_TASK_KILLED_DURING_LAUNCH,
                             "Killed during launch")]


def test_a_duplicate_launch_is_ignored_and_changes_nothing():
    core = core_in(Phase.RUNNING)
    [ignored] = core.handle(KEY, launch(task_info(docker=True)))
    assert isinstance(ignored, Ignore) and ignored.notable
    assert core.tasks[KEY].cp.containerizer == "process"


def test_a_sandbox_that_cannot_be_prepared_fails_the_launch():
    core = core_in(Phase.PREPARING)
    out = core.handle(KEY, CheckpointFailed("No space left on device"))
    why = "The agent cannot prepare the task's sandbox: No space left on device"
    assert updates(out) == [(S.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED, why)]


def test_a_record_that_cannot_be_checkpointed_stops_the_container_and_fails_the_task():
    core = core_in(Phase.RECORDING)
    out = core.handle(KEY, CheckpointFailed("No space left on device"))
    assert out == [WatchContainer(), TERM, StartGraceTimer(DEFAULT_GRACE)]
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGTERM)))
    assert updates(out) == [(S.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED,
                             "The agent cannot checkpoint the task: No space left on device")]


def test_a_task_for_a_missing_containerizer_fails_after_starting():
    core = TaskLifecycle(["process"])
    core.handle(KEY, launch(task_info(docker=True)))
    core.handle(KEY, Checkpointed())
    assert updates(core.handle(KEY, Announced())) == [
        (S.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED,
         "This agent has no docker containerizer")]


def test_a_launch_failure_is_reported_with_its_message():
    core = core_in(Phase.LAUNCHING)
    assert updates(core.handle(KEY, LaunchFailed("no such user"))) == [
        (S.TASK_FAILED, Reason.REASON_CONTAINER_LAUNCH_FAILED, "no such user")]


def test_health_changes_are_reported_and_a_failing_check_kills_the_task():
    core = core_in(Phase.RUNNING)
    out = core.handle(KEY, HealthVerdict(True))
    assert out == [SendUpdate(S.TASK_RUNNING, HEALTH_REASON, None, True)]
    out = core.handle(KEY, HealthVerdict(False, "Health check failed 3 consecutive times"))
    assert out == [SendUpdate(S.TASK_RUNNING, HEALTH_REASON, None, False),
                   TERM, StartGraceTimer(DEFAULT_GRACE)]
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGTERM)))
    assert updates(out) == [(S.TASK_FAILED, HEALTH_REASON,
                             "Health check failed 3 consecutive times")]


# ---------------------------------------------------------------- after a restart


def test_a_task_that_ended_before_the_restart_only_waits_for_its_acknowledgement():
    core = TaskLifecycle(["process"])
    assert core.handle(KEY, Recovered(checkpoint(), S.TASK_FINISHED)) == []
    assert core.phase(KEY) is Phase.ENDED
    assert core.handle(KEY, TerminalAcknowledged()) == [Forget()]


@pytest.mark.parametrize("record, kinds", [(False, ["process"]), (True, ["docker"])])
def test_a_task_without_a_container_record_is_lost(record, kinds):
    core = TaskLifecycle(kinds)
    out = core.handle(KEY, Recovered(checkpoint(record=record), S.TASK_STARTING))
    assert updates(out) == [(S.TASK_LOST, Reason.REASON_AGENT_RESTARTED,
                             "The agent restarted while the task was being launched")]


@pytest.mark.parametrize("latest, sent", [
    (S.TASK_RUNNING, []), (S.TASK_STARTING, [(S.TASK_RUNNING, None, None)]),
    (None, [(S.TASK_RUNNING, None, None)])])
def test_a_reattached_task_is_reported_running_once(latest, sent):
    core = TaskLifecycle(["process"])
    assert core.handle(KEY, Recovered(checkpoint(), latest)) == [RecoverContainer()]
    out = core.handle(KEY, Reattached(FakeContainer()))
    assert updates(out) == sent
    assert out[0] == WatchContainer() and out[-1] == StartHealthChecks()


def test_a_task_that_ended_while_the_agent_was_down_reports_how():
    core = core_in(Phase.RECOVERING)
    out = core.handle(KEY, Exited(Termination(exit_code=2)))
    assert updates(out) == [(S.TASK_FAILED, Reason.REASON_COMMAND_EXECUTOR_FAILED,
                             "Command exited with status 2")]


def test_a_task_that_cannot_be_reattached_is_lost():
    core = core_in(Phase.RECOVERING)
    assert updates(core.handle(KEY, ReattachFailed("no such process"))) == [
        (S.TASK_LOST, Reason.REASON_AGENT_RESTARTED,
         "could not re-attach after an agent restart: no such process")]


def test_a_task_being_killed_when_the_agent_restarted_is_killed_again_on_request():
    """The grace timer died with the agent: the re-attached task runs until a new kill,
    which is carried out in full."""
    core = TaskLifecycle(["process"])
    core.frameworks[FW] = framework(killing_state=True)
    core.handle(KEY, Recovered(checkpoint(), S.TASK_KILLING))
    out = core.handle(KEY, Reattached(FakeContainer()))
    assert core.phase(KEY) is Phase.RUNNING and out[-1] == StartHealthChecks()
    out = core.handle(KEY, KillRequested(grace=5.0))
    assert out == [SendUpdate(S.TASK_KILLING), TERM, StartGraceTimer(5.0)]
    assert core.handle(KEY, GraceOver()) == [CancelGraceTimer(), KILL]
    out = core.handle(KEY, Exited(Termination(signal=signal.SIGKILL)))
    assert updates(out) == [(S.TASK_KILLED, None, "Task killed")]


def test_a_kill_while_reattaching_is_carried_out_once_reattached():
    core = core_in(Phase.RECOVERING)
    assert core.handle(KEY, KillRequested(grace=2.0)) == []
    out = core.handle(KEY, Reattached(FakeContainer()))
    assert out == [WatchContainer(), TERM, StartGraceTimer(2.0)]
    assert core.phase(KEY) is Phase.KILLING
