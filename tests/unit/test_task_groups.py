"""Task groups' decisions (``mesoslite/agent/task_groups.py``): examples of each rule,
then a Hypothesis machine that runs a group through the task lifecycle as
``TaskManager`` does, with launches failing, containers exiting, kills and
acknowledgements in any order.  Whatever happens:

* no task of the group reports TASK_RUNNING before every task's container started;
* once a task ends other than FINISHED, every task of the group ends, those killed
  for it say which task it was, and none of them FINISHES afterwards;
* a task that FINISHES alone takes nobody with it.
"""

from __future__ import annotations

import getpass
from typing import Any

import hypothesis.strategies as st
import msgspec
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mesoslite.agent.checkpoint import GroupMembership, TaskCheckpoint
from mesoslite.agent.containerizers.base import Container, StopKind, Termination
from mesoslite.agent.lifecycle import (
    Announced,
    AwaitGroup,
    CancelGraceTimer,
    Checkpointed,
    CheckpointTask,
    Exited,
    Forget,
    GraceOver,
    KillRequested,
    Launch,
    LaunchFailed,
    Released,
    SendUpdate,
    SignalContainer,
    StartContainer,
    Started,
    StartGraceTimer,
    TaskLifecycle,
    TerminalAcknowledged,
    WatchContainer,
)
from mesoslite.agent.task_groups import (
    GroupBook,
    container_id_for,
    joined_container,
    membership_for,
    network_owner,
)
from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    ContainerInfo,
    ContainerType,
    DockerInfo,
    DockerNetwork,
    ExecutorInfo,
    ExecutorType,
    FrameworkInfo,
    TaskInfo,
    TaskState,
)

FW = "fw"
S = TaskState


def info(task_id: str, network: DockerNetwork | None = None) -> TaskInfo:
    task = TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("a"),
                    command=CommandInfo(value="sleep 60"))
    if network is not None:
        task.container = ContainerInfo(type=ContainerType.DOCKER,
                                       docker=DockerInfo(image="x", network=network))
    return task


def book_with(*members: str, executor: str = "pod") -> GroupBook:
    book = GroupBook()
    book.add(FW, GroupMembership(executor_id=executor, members=list(members)))
    for member in members:
        book.launching((FW, member))
    return book


# ---------------------------------------------------------------- examples


def test_the_group_is_released_once_every_task_started():
    book = book_with("a", "b", "c")
    assert book.held((FW, "a"))
    assert book.started((FW, "a")) == []
    assert book.started((FW, "c")) == []
    assert book.started((FW, "b")) == [(FW, "a"), (FW, "b"), (FW, "c")]
    assert not book.held((FW, "a"))


def test_a_failure_kills_the_others_once_and_names_the_task():
    book = book_with("a", "b", "c")
    kill = book.ended((FW, "b"), S.TASK_FAILED, "Command exited with status 2")
    assert kill is not None and kill.keys == ((FW, "a"), (FW, "c"))
    assert kill.message == ("Killed with its task group (executor 'pod'): task 'b' failed: "
                            "Command exited with status 2")
    assert book.ended((FW, "a"), S.TASK_KILLED, kill.message) is None  # already going down
    assert book.started((FW, "c")) == []  # a failed group is never released


def test_a_finished_task_kills_nobody_and_counts_as_started():
    book = book_with("a", "b")
    book.started((FW, "a"))
    assert book.ended((FW, "a"), S.TASK_FINISHED, None) is None
    assert book.started((FW, "b")) == [(FW, "b")]  # the finished one stays finished


def test_a_kill_takes_the_group_but_spares_the_killed_one_its_message():
    book = book_with("a", "b", "c")
    kill = book.killed((FW, "b"))
    assert kill is not None and kill.keys == ((FW, "a"), (FW, "c"))
    assert "task 'b' was killed" in kill.message
    assert book.killed((FW, "a")) is None


def test_the_first_bridge_or_none_docker_task_owns_the_network():
    tasks = [info("proc"), info("host", DockerNetwork.HOST), info("web", DockerNetwork.BRIDGE),
             info("side", DockerNetwork.BRIDGE)]
    membership = membership_for(ExecutorInfo(type=ExecutorType.DEFAULT,
                                             executor_id=ID("pod")), tasks, "cid-web")
    assert membership.network_owner == "web"
    assert container_id_for(membership, "web") == "cid-web"
    assert container_id_for(membership, "side") is None
    assert [joined_container(membership, t) for t in tasks] == [None, None, None, "cid-web"]
    book = GroupBook()
    assert book.add(FW, membership).launch_waves() == [["web"], ["proc", "host", "side"]]
    assert network_owner(tasks[:3]) is None  # one task alone shares with nobody


def test_an_executor_without_an_id_is_named_after_the_first_task():
    membership = membership_for(None, [info("a"), info("b")], "cid")
    assert membership.executor_id == "group-a" and membership.network_owner is None


def test_the_group_is_forgotten_with_its_last_task():
    book = book_with("a", "b")
    book.forget((FW, "a"))
    assert book.group_of((FW, "b")) is not None
    book.forget((FW, "b"))
    assert book.group_of((FW, "a")) is None and not book.groups


def test_task_and_executor_ids_may_not_name_the_same_sandbox():
    book = book_with("a", "b", executor="pod")
    assert book.sandbox_clash((FW, "a"), live_tasks=set()) is None
    assert "executor id of a live task group" in book.sandbox_clash((FW, "pod"), set())
    assert "id of a live task" in book.sandbox_clash((FW, "a"), {(FW, "pod")})
    assert book.sandbox_clash(("other-fw", "pod"), set()) is None


def test_only_the_first_task_of_a_new_executor_makes_its_sandbox_afresh():
    book = book_with("a", "b", executor="pod")
    assert book.claim_sandbox((FW, "a")) and not book.claim_sandbox((FW, "b"))
    book.add(FW, GroupMembership(executor_id="pod", members=["c"]))
    assert not book.claim_sandbox((FW, "c"))  # the live group's sandbox is shared


def checkpoint(task_id: str, membership: GroupMembership) -> TaskCheckpoint:
    """As read back from disk: each task's own copy of the membership."""
    return TaskCheckpoint(framework_id=FW, task=info(task_id), container_id=f"c-{task_id}",
                          containerizer="process", group=msgspec.structs.replace(membership))


def test_restore_a_released_group_whose_finished_task_was_forgotten():
    membership = GroupMembership(executor_id="pod", members=["a", "b", "c"])
    book = GroupBook()
    book.restore([(checkpoint("a", membership), S.TASK_RUNNING),
                  (checkpoint("b", membership), S.TASK_RUNNING)])
    assert not book.held((FW, "a")) and book.failing() == []


def test_restore_a_group_that_never_started_whole_fails_it():
    membership = GroupMembership(executor_id="pod", members=["a", "b"])
    book = GroupBook()
    book.restore([(checkpoint("a", membership), S.TASK_STARTING)])
    [kill] = book.failing()
    assert kill.keys == ((FW, "a"),)
    assert "task 'b' was lost" in kill.message


def test_restore_keeps_a_failure_recorded_before_the_restart():
    membership = GroupMembership(executor_id="pod", members=["a", "b"], failure="task 'b' failed")
    book = GroupBook()
    book.restore([(checkpoint("a", membership), S.TASK_RUNNING),
                  (checkpoint("b", membership), S.TASK_FAILED)])
    [kill] = book.failing()
    assert kill.keys == ((FW, "a"),) and kill.message.endswith("task 'b' failed")


# ---------------------------------------------------------------- the machine


class FakeContainer(Container):
    def __init__(self) -> None:
        self.record: dict[str, Any] = {"pid": 1}

    async def wait(self) -> Termination:
        raise AssertionError("not called")

    async def signal(self, kind: StopKind) -> None:
        raise AssertionError("not called")


MEMBERS = ["a", "b", "c"]
FRAMEWORK = FrameworkInfo(user=getpass.getuser(), name="f", id=ID(FW))


class GroupMachine(RuleBasedStateMachine):
    """One group of three process tasks carried through lifecycle + book.  The world:
    a container may die at any time; its exit is delivered (Exited) once watched."""

    def __init__(self) -> None:
        super().__init__()
        self.core = TaskLifecycle(["process"])
        self.book = GroupBook()
        membership = GroupMembership(executor_id="pod", members=list(MEMBERS))
        self.book.add(FW, membership)
        self.work: list[tuple[str, str]] = []  # (task, what): awaiting its outcome
        self.alive: set[str] = set()  # containers running
        self.started: set[str] = set()  # containers that ever started
        self.watched: set[str] = set()
        self.exits: dict[str, Termination] = {}  # died, exit not delivered yet
        self.updates: dict[str, list[SendUpdate]] = {m: [] for m in MEMBERS}
        self.ends: list[tuple[str, SendUpdate]] = []  # terminal updates, in order
        self.forgotten: set[str] = set()
        for member in MEMBERS:
            self.book.launching((FW, member))
            self.feed(member, Launch(FRAMEWORK, info(member), f"c-{member}", 0.0, membership))

    def feed(self, member: str, stimulus: Any) -> None:
        for instruction in self.core.handle((FW, member), stimulus):
            self.execute(member, instruction)

    def execute(self, member: str, instruction: Any) -> None:
        match instruction:
            case CheckpointTask():
                self.work.append((member, "checkpoint"))
            case SendUpdate(state=state, then=then):
                assert not any(u.state.terminal for u in self.updates[member])
                self.updates[member].append(instruction)
                if state.terminal:
                    self.ends.append((member, instruction))
                    kill = self.book.ended((FW, member), state, instruction.message)
                    for key in kill.keys if kill else ():
                        self.feed(key[1], KillRequested(message=kill.message))
                if then is not None:
                    self.work.append((member, "announce"))
            case StartContainer():
                self.work.append((member, "start"))
            case WatchContainer():
                self.watched.add(member)
                if member in self.exits:
                    self.work.append((member, "deliver"))
            case SignalContainer():
                self.work.append((member, "die"))  # it goes, on TERM or KILL
            case StartGraceTimer():
                self.work.append((member, "grace"))
            case CancelGraceTimer():
                self.work = [w for w in self.work if w != (member, "grace")]
            case AwaitGroup():
                for key in self.book.started((FW, member)):
                    self.feed(key[1], Released())
            case Forget():
                self.forgotten.add(member)
                self.book.forget((FW, member))

    def die(self, member: str, term: Termination) -> None:
        if member in self.alive:
            self.alive.discard(member)
            self.exits[member] = term
            if member in self.watched:
                self.work.append((member, "deliver"))

    def complete(self, member: str, what: str, starts: bool = True) -> None:
        if what == "checkpoint":
            self.feed(member, Checkpointed())
        elif what == "announce":
            self.feed(member, Announced())
        elif what == "start" and starts:
            self.alive.add(member)
            self.started.add(member)
            self.feed(member, Started(FakeContainer()))
        elif what == "start":
            self.feed(member, LaunchFailed("no such image"))
        elif what == "die":
            self.die(member, Termination(signal=15))
        elif what == "deliver" and member in self.exits:
            self.feed(member, Exited(self.exits.pop(member)))
        elif what == "grace":
            self.feed(member, GraceOver())

    def states(self, member: str) -> list[TaskState]:
        return [u.state for u in self.updates[member]]

    @rule(data=st.data())
    @precondition(lambda self: self.work)
    def finish_work(self, data: st.DataObject) -> None:
        member, what = self.work.pop(data.draw(st.integers(0, len(self.work) - 1)))
        starts = what != "start" or data.draw(st.booleans(), label=f"{member} starts")
        self.complete(member, what, starts)

    @rule(member=st.sampled_from(MEMBERS), code=st.sampled_from([0, 0, 1]))
    def a_container_exits(self, member: str, code: int) -> None:
        self.die(member, Termination(exit_code=code))

    @rule(member=st.sampled_from(MEMBERS))
    def the_framework_kills(self, member: str) -> None:
        self.feed(member, KillRequested())
        kill = self.book.killed((FW, member))
        for key in kill.keys if kill else ():
            self.feed(key[1], KillRequested(message=kill.message))

    @rule(member=st.sampled_from(MEMBERS))
    def the_framework_acknowledges(self, member: str) -> None:
        if any(s.terminal for s in self.states(member)) and member not in self.forgotten:
            self.feed(member, TerminalAcknowledged())

    @invariant()
    def running_only_once_every_task_started(self) -> None:
        if any(S.TASK_RUNNING in self.states(m) for m in MEMBERS):
            assert self.started == set(MEMBERS)

    def teardown(self) -> None:
        """Let every piece of work finish (launches succeed now), then judge."""
        while self.work:
            self.complete(*self.work.pop(0))
        self.running_only_once_every_task_started()
        taken = [(m, u) for m, u in self.ends if "task group" in (u.message or "")]
        causes = [m for m, u in self.ends
                  if u.state != S.TASK_FINISHED and "task group" not in (u.message or "")]
        if not causes:
            assert not taken, "a group was taken down though no task failed"
            return
        assert {m for m, _ in self.ends} == set(MEMBERS), "a failed group left a task behind"
        first = next(i for i, (m, _) in enumerate(self.ends) if m in causes)
        assert all(u.state != S.TASK_FINISHED for _, u in self.ends[first:])
        for _, update in taken:
            assert update.state == S.TASK_KILLED
            assert any(f"task '{m}'" in update.message for m in causes)


TestGroupMachine = GroupMachine.TestCase
TestGroupMachine.settings = settings(max_examples=300, stateful_step_count=40)
