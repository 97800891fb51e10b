"""Properties of the agent's task lifecycle under any interleaving (Hypothesis).

The test plays the executor and the world around the pure core: it carries out the
instructions as ``TaskManager`` does, but finishes each piece of work (a checkpoint,
the STARTING update, a container start, a re-attachment, a container's exit, a
grace timer firing and its GraceOver arriving) when Hypothesis says so; kills, health
verdicts and acknowledgements arrive at any point; and the agent may restart at any
point (a fresh core recovering from what was on disk, containers running on, timers
gone).  Whatever happens:

* no update follows a task's terminal update, and there is at most one;
* every launched task that was checkpointed reaches exactly one terminal update
  once the work is done and the containers have exited;
* a kill is carried out as soon as the container runs; a task killed while it runs
  ends with the kill's state, and a killed task never reports FINISHED (unless an
  agent restart dropped the kill);
* a container being killed is sent TERM then, when a grace timer ran out, KILL (or
  KILL at once without a grace period): one TERM, one KILL at most, none after its
  exit was seen; while TERM's grace runs a timer runs, and none is left behind;
* an acknowledged terminal update is never sent again, and the task is forgotten;
* health checks run only while the task runs or is being killed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesoslite.agent.checkpoint import TaskCheckpoint
from mesoslite.agent.containerizers.base import Container, StopKind, Termination
from mesoslite.agent.lifecycle import (
    Announced,
    CancelGraceTimer,
    Checkpointed,
    CheckpointFailed,
    CheckpointTask,
    Exited,
    Forget,
    GraceOver,
    HealthVerdict,
    Ignore,
    KillRequested,
    Launch,
    LaunchFailed,
    Phase,
    Reattached,
    ReattachFailed,
    RecoverContainer,
    Recovered,
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
)
from mesoslite.messages.mesos import (
    ID,
    CapabilityType,
    CommandInfo,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    FrameworkCapability,
    FrameworkInfo,
    TaskInfo,
    TaskState,
)

FW = "fw"
TASKS = ["a", "b", "docker"]  # "docker": this agent has no docker containerizer
EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "500"))
TERMINATIONS = [Termination(exit_code=0), Termination(exit_code=2), Termination(signal=9),
                Termination(signal=9, oom_killed=True), Termination(signal=15)]
WORK = ("checkpoint", "record", "announce", "start", "reattach")


class FakeContainer(Container):
    def __init__(self) -> None:
        self.record: dict[str, Any] = {"pid": 1}

    async def wait(self) -> Termination:
        raise AssertionError("not called by the core")

    async def signal(self, kind: StopKind) -> None:
        raise AssertionError("not called by the core")


def info(task_id: str) -> TaskInfo:
    task = TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("agent"),
                    command=CommandInfo(value="sleep 1"))
    if task_id == "docker":
        task.container = ContainerInfo(type=ContainerType.DOCKER, docker=DockerInfo(image="x"))
    return task


@dataclass
class Sim:
    """One launch of a task as the world sees it."""

    task_id: str
    updates: list[TaskState] = field(default_factory=list)  # what the framework got
    work: str | None = None  # the piece of work under way (one of WORK)
    container: str | None = None  # None, "alive", "exited"
    termination: Termination | None = None
    watched: bool = False
    signals: list[StopKind] = field(default_factory=list)  # sent since the last restart
    timer: bool = False  # a grace timer runs
    grace_over: int = 0  # timers that fired whose GraceOver has not arrived yet
    exit_delivered: bool = False
    health: bool = False
    on_disk: bool = False  # task.json written
    record_on_disk: bool = False
    acked: bool = False
    forgotten: bool = False
    kill_running: TaskState | None = None  # a kill accepted while it ran
    killed: bool = False  # some kill was accepted (since the last restart)

    @property
    def terminal(self) -> list[TaskState]:
        return [s for s in self.updates if s.terminal]


def some(want: Callable[[Sim], bool]) -> Callable[[Any], bool]:
    """A precondition: some task the machine knows is as ``want``."""
    return lambda machine: any(want(s) for s in machine.sims.values())


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = TaskLifecycle(["process"])
        self.sims: dict[str, Sim] = {}
        self.done: list[Sim] = []  # forgotten launches
        self.vanished: list[Sim] = []  # never checkpointed, then the agent restarted
        self.killing_capable = False

    # ------------------------------------------------------------ the executor

    def feed(self, sim: Sim, stimulus: Any) -> list[Any]:
        key = (FW, sim.task_id)
        out = self.core.handle(key, stimulus)
        for instruction in out:
            self.execute(sim, instruction)
        return out

    def execute(self, sim: Sim, instruction: Any) -> None:
        assert not sim.forgotten, f"{instruction} after the task was forgotten"
        match instruction:
            case Ignore():
                pass
            case CheckpointTask(fresh=fresh):
                self.start_work(sim, "checkpoint" if fresh else "record")
            case SendUpdate(state=state, then=then):
                assert not sim.acked, "an update after the acknowledged terminal one"
                sim.updates.append(state)
                if then is not None:
                    self.start_work(sim, "announce")
            case StartContainer():
                self.start_work(sim, "start")
            case RecoverContainer():
                self.start_work(sim, "reattach")
            case WatchContainer():
                assert sim.container is not None and not sim.watched
                sim.watched = True
            case SignalContainer(kind=kind):
                self.signal(sim, kind)
            case StartGraceTimer():
                assert sim.signals == [StopKind.TERM], sim.signals
                sim.timer = True  # a running one ending sooner stays: the same here
            case CancelGraceTimer():
                sim.timer = False
            case StartHealthChecks():
                sim.health = True
            case StopHealthChecks():
                sim.health = False
            case Forget():
                assert sim.acked and not sim.forgotten
                sim.forgotten = True
                sim.on_disk = sim.record_on_disk = False
                self.done.append(self.sims.pop(sim.task_id))

    def signal(self, sim: Sim, kind: StopKind) -> None:
        assert sim.watched, "signalling a container nobody watches"
        assert not sim.exit_delivered, f"{kind} after the container's exit was seen"
        assert kind not in sim.signals, f"{kind} twice"
        assert StopKind.KILL not in sim.signals, f"{kind} after KILL"
        sim.signals.append(kind)
        if kind is StopKind.KILL and sim.container == "alive":
            sim.container, sim.termination = "exited", Termination(signal=9)

    def start_work(self, sim: Sim, work: str) -> None:
        assert sim.work is None, f"{work} while {sim.work} is under way"
        sim.work = work

    # ------------------------------------------------------------ the world

    def pick(self, data: st.DataObject, want: Callable[[Sim], bool]) -> Sim:
        return data.draw(st.sampled_from([s for _, s in sorted(self.sims.items()) if want(s)]))

    @rule(task_id=st.sampled_from(TASKS), killing_capable=st.booleans())
    def launch(self, task_id: str, killing_capable: bool) -> None:
        sim = self.sims.get(task_id)
        if sim is not None:  # the same framework again: a duplicate changes nothing
            out = self.feed(sim, Launch(self.framework(), info(task_id), "cid-new", 0.0))
            assert len(out) == 1 and isinstance(out[0], Ignore) and out[0].notable
            return
        self.killing_capable = killing_capable  # the framework as it launches this one
        sim = self.sims[task_id] = Sim(task_id)
        out = self.feed(sim, Launch(self.framework(), info(task_id), f"cid-{task_id}", 0.0))
        assert out == [CheckpointTask(fresh=True)]

    @precondition(lambda machine: len(machine.sims) < len(TASKS))
    @rule(data=st.data(), killing_capable=st.booleans())
    def launch_and_run(self, data: st.DataObject, killing_capable: bool) -> None:
        """A launch whose work all succeeds at once: kills, exits and timers then
        often meet a running container."""
        task_id = data.draw(st.sampled_from([t for t in TASKS if t not in self.sims]))
        self.launch(task_id, killing_capable)
        sim = self.sims[task_id]
        while sim.work is not None:
            self.finish_work(sim, True)

    def framework(self) -> FrameworkInfo:
        caps = ([FrameworkCapability(type=CapabilityType.TASK_KILLING_STATE)]
                if self.killing_capable else [])
        return FrameworkInfo(user="u", name="f", id=ID(FW), capabilities=caps)

    @precondition(some(lambda s: s.work is not None))
    @rule(data=st.data(), ok=st.sampled_from([True, True, True, False]))
    def work_done(self, data: st.DataObject, ok: bool) -> None:
        self.finish_work(self.pick(data, lambda s: s.work is not None), ok)

    def finish_work(self, sim: Sim, ok: bool) -> None:
        work, sim.work = sim.work, None
        if work == "checkpoint":
            sim.on_disk = ok
            self.feed(sim, Checkpointed() if ok else CheckpointFailed("disk full"))
        elif work == "record":
            sim.record_on_disk = ok
            self.feed(sim, Checkpointed() if ok else CheckpointFailed("disk full"))
        elif work == "announce":
            self.feed(sim, Announced())
        elif work == "start":
            if ok:
                sim.container = "alive"
            self.feed(sim, Started(FakeContainer()) if ok else LaunchFailed("no"))
        elif sim.container == "exited":  # reattach to a container that ended meanwhile
            assert sim.termination is not None
            sim.exit_delivered = True
            self.feed(sim, Exited(sim.termination))
        else:
            self.feed(sim, Reattached(FakeContainer()) if ok else ReattachFailed("gone"))

    @precondition(some(lambda s: s.container == "alive"))
    @rule(data=st.data(), term=st.sampled_from(TERMINATIONS))
    def container_exits(self, data: st.DataObject, term: Termination) -> None:
        sim = self.pick(data, lambda s: s.container == "alive")
        sim.container, sim.termination = "exited", term

    @precondition(some(lambda s: s.watched and s.container == "exited" and not s.exit_delivered))
    @rule(data=st.data())
    def watcher_sees_the_exit(self, data: st.DataObject) -> None:
        self.deliver_exit(self.pick(
            data, lambda s: s.watched and s.container == "exited" and not s.exit_delivered))

    def deliver_exit(self, sim: Sim) -> None:
        assert sim.termination is not None
        sim.exit_delivered = True
        self.feed(sim, Exited(sim.termination))

    @precondition(some(lambda s: s.timer))
    @rule(data=st.data())
    def grace_timer_fires(self, data: st.DataObject) -> None:
        sim = self.pick(data, lambda s: s.timer)
        sim.timer = False
        sim.grace_over += 1

    @precondition(some(lambda s: s.grace_over > 0))
    @rule(data=st.data())
    def grace_over_arrives(self, data: st.DataObject) -> None:
        sim = self.pick(data, lambda s: s.grace_over > 0)
        self.deliver_grace_over(sim)

    def deliver_grace_over(self, sim: Sim) -> None:
        sim.grace_over -= 1
        forced = StopKind.KILL in sim.signals
        out = self.feed(sim, GraceOver())
        if forced or sim.exit_delivered:
            assert len(out) == 1 and isinstance(out[0], Ignore), out
        else:
            assert out[-1] == SignalContainer(StopKind.KILL), out

    @rule(grace=st.sampled_from([None, 0.0, 5.0]))
    def kill_unknown(self, grace: float | None) -> None:
        assert isinstance(self.feed(Sim("unknown"), KillRequested(grace=grace))[0], Ignore)

    @precondition(some(lambda s: True))
    @rule(data=st.data(), grace=st.sampled_from([None, 0.0, 5.0]))
    def kill(self, data: st.DataObject, grace: float | None) -> None:
        sim = self.pick(data, lambda s: True)
        phase = self.core.phase((FW, sim.task_id))
        timing = sim.signals == [StopKind.TERM]
        out = self.feed(sim, KillRequested(grace=grace))
        if any(isinstance(i, SignalContainer) for i in out) and phase is Phase.RUNNING:
            sim.kill_running = TaskState.TASK_KILLED
            killing = [i for i in out if isinstance(i, SendUpdate)]
            assert bool(killing) == self.killing_capable
        if phase is Phase.KILLING and timing:  # a later kill may bring KILL forward
            assert sim.signals[-1] is StopKind.KILL if grace == 0 else sim.timer, out
        if not any(isinstance(i, Ignore) for i in out):
            sim.killed = True

    @precondition(some(lambda s: True))
    @rule(data=st.data(), healthy=st.sampled_from([None, True, False]), kill=st.booleans())
    def health_verdict(self, data: st.DataObject, healthy: bool | None, kill: bool) -> None:
        sim = self.pick(data, lambda s: True)
        phase = self.core.phase((FW, sim.task_id))
        out = self.feed(sim, HealthVerdict(healthy, "check failed" if kill else None))
        if kill and phase is Phase.RUNNING:
            assert any(isinstance(i, SignalContainer) for i in out)
            sim.kill_running = TaskState.TASK_FAILED
            sim.killed = True

    @precondition(some(lambda s: bool(s.terminal)))
    @rule(data=st.data())
    def acknowledge(self, data: st.DataObject) -> None:
        self.acknowledge_terminal(self.pick(data, lambda s: bool(s.terminal)))

    def acknowledge_terminal(self, sim: Sim) -> None:
        sim.acked = True
        self.feed(sim, TerminalAcknowledged())
        assert sim.forgotten

    @rule()
    def agent_restarts(self) -> None:
        """kill -9 of the agent: work under way is lost, containers run on."""
        self.core = TaskLifecycle(["process"])
        self.core.frameworks[FW] = self.framework()  # framework.json
        for task_id, sim in list(self.sims.items()):
            sim.work, sim.watched, sim.health, sim.exit_delivered = None, False, False, False
            sim.kill_running, sim.killed, sim.signals = None, False, []
            sim.timer, sim.grace_over = False, 0  # timers live in the agent process
            if sim.container == "alive" and not sim.record_on_disk:
                sim.container = "exited"  # an orphan: removed by cleanup_orphans
                sim.termination = Termination(signal=9)
            if not sim.on_disk:
                self.vanished.append(self.sims.pop(task_id))
                continue
            cp = TaskCheckpoint(framework_id=FW, task=info(task_id),
                                container_id=f"cid-{task_id}", containerizer="process",
                                record={"pid": 1} if sim.record_on_disk else None)
            self.feed(sim, Recovered(cp, sim.updates[-1] if sim.updates else None))

    # ------------------------------------------------------------ properties

    @invariant()
    def updates_end_with_at_most_one_terminal(self) -> None:
        for sim in [*self.sims.values(), *self.done, *self.vanished]:
            terminal = sim.terminal
            assert len(terminal) <= 1, sim.updates
            if terminal:
                assert sim.updates[-1] == terminal[0], sim.updates
            assert TaskState.TASK_STARTING not in sim.updates[1:], sim.updates
            if sim.kill_running is not None and terminal:
                assert terminal[0] == sim.kill_running, (sim.updates, sim.kill_running)
            if sim.killed and terminal:
                assert terminal[0] != TaskState.TASK_FINISHED, sim.updates

    @invariant()
    def the_core_and_the_world_agree(self) -> None:
        assert set(self.core.tasks) == {(FW, t) for t in self.sims}
        for task_id, sim in self.sims.items():
            phase = self.core.phase((FW, task_id))
            assert (phase is Phase.ENDED) == bool(sim.terminal), (phase, sim.updates)
            if sim.health:
                assert phase in (Phase.RUNNING, Phase.KILLING), phase
            if phase in (Phase.RUNNING, Phase.KILLING):
                assert sim.watched and sim.container is not None
                # a kill accepted is carried out as soon as there is a container
                assert sim.signals or not sim.killed, "a killed task left running"
            if phase is Phase.KILLING:
                # KILL sent, or on its way: the container ends whatever it does
                assert StopKind.KILL in sim.signals or sim.timer or sim.grace_over, sim
            if sim.timer:  # only while TERM's grace runs
                assert phase is Phase.KILLING and sim.signals == [StopKind.TERM], sim

    def teardown(self) -> None:
        """Finish all work, let every container exit, acknowledge every terminal
        update: every task still known reaches exactly one terminal update."""
        for _ in range(20):
            if not self.sims:
                break
            for sim in list(self.sims.values()):
                if sim.grace_over:
                    self.deliver_grace_over(sim)
                elif sim.work is not None:
                    self.finish_work(sim, True)
                elif sim.container == "alive":
                    sim.container, sim.termination = "exited", Termination(exit_code=0)
                elif sim.watched and not sim.exit_delivered:
                    self.deliver_exit(sim)
                elif sim.terminal:
                    self.acknowledge_terminal(sim)
        assert not self.sims, {t: (s, self.core.phase((FW, t))) for t, s in self.sims.items()}
        assert not self.core.tasks
        for sim in self.done:
            assert len(sim.terminal) == 1, sim.updates
            assert not sim.timer, "a grace timer left running"


LifecycleMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestLifecycle = LifecycleMachine.TestCase
