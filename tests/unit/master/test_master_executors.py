"""The master's accounting of executors (pure: ``MasterState`` with no I/O).

An executor's resources are taken once, from the offer that launches its first task
on an agent, and held apart from its tasks' until the agent reports it gone (or no
longer lists it when it registers again); a task group's default executor goes with
its group's last task."""

from __future__ import annotations

import msgspec

from mesoslite.master.model import SendToAgent, SendToFramework
from mesoslite.master.state import MasterState
from mesoslite.master.stimuli import (
    Admitted,
    AgentRegisters,
    AgentSent,
    AllocationRound,
    FrameworkCalls,
    FrameworkSubscribes,
)
from mesoslite.messages.agent import (
    AgentExecutor,
    ExecutorExited,
    Register,
    RunTasks,
    StatusUpdate,
    StatusUpdates,
)
from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    ExecutorInfo,
    ExecutorType,
    FrameworkInfo,
    Launch,
    LaunchGroup,
    Operation,
    OperationType,
    TaskGroupInfo,
    TaskInfo,
    TaskState,
    TaskStatus,
    from_resources,
)
from mesoslite.messages.scheduler import Accept, Call, CallType, EventType, Subscribe
from mesoslite.resources import Resources

AGENT = Resources.of(cpus=4, mem=4096)
EXECUTOR = Resources.of(cpus=0.5, mem=128)
TASK = Resources.of(cpus=1, mem=256)


class World:
    def __init__(self) -> None:
        self.master = MasterState("m")
        self.now = 1000.0
        self.mono = 0.0
        self.register = Register(hostname="a1", address="127.0.0.1", port=5051,
                                 resources=from_resources(AGENT))
        answer = self.master.handle(AgentRegisters(self.register, 1), self.now, 0.0)
        assert isinstance(answer, Admitted)
        self.agent_id = answer.id
        info = FrameworkInfo(user="u", name="fw")
        answer = self.master.handle(FrameworkSubscribes(Subscribe(framework_info=info), "s"),
                                    self.now, 0.0)
        assert isinstance(answer, Admitted)
        self.framework_id = answer.id
        self.master.drain()

    def offer_id(self) -> str:
        self.mono += 10.0  # past the last ACCEPT's refuse filter
        self.master.handle(AllocationRound(full=True), self.now, self.mono)
        for command in self.master.drain():
            if isinstance(command, SendToFramework) and command.event.type == EventType.OFFERS:
                return command.event.offers.offers[0].id.value  # type: ignore[union-attr]
        raise AssertionError("no offer")

    def accept(self, *operations: Operation) -> list[object]:
        call = Call(type=CallType.ACCEPT, framework_id=ID(self.framework_id),
                    accept=Accept(offer_ids=[ID(self.offer_id())],
                                  operations=list(operations)))
        self.master.handle(FrameworkCalls(call, "s"), self.now, self.mono)
        return self.master.drain()

    def used(self) -> Resources:
        return self.master.used_resources(agent_id=self.agent_id)

    def from_agent(self, message: object) -> list[object]:
        self.master.handle(AgentSent(self.agent_id, 1, message), self.now, 0.0)  # type: ignore[arg-type]
        return self.master.drain()


def executor(executor_id: str = "e", cmd: str = "run-executor",
             type_: ExecutorType | None = None) -> ExecutorInfo:
    return ExecutorInfo(executor_id=ID(executor_id), type=type_,
                        command=CommandInfo(value=cmd), resources=from_resources(EXECUTOR))


def task(task_id: str, agent_id: str, exec_info: ExecutorInfo | None) -> TaskInfo:
    return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID(agent_id),
                    resources=from_resources(TASK), executor=exec_info,
                    command=None if exec_info else CommandInfo(value="true"))


def launch(*tasks: TaskInfo) -> Operation:
    return Operation(type=OperationType.LAUNCH, launch=Launch(task_infos=list(tasks)))


def errors(commands: list[object]) -> dict[str, str]:
    out = {}
    for c in commands:
        if isinstance(c, SendToFramework) and c.event.type == EventType.UPDATE:
            status = c.event.update.status  # type: ignore[union-attr]
            if status.state == TaskState.TASK_ERROR:
                out[status.task_id.value] = status.message or ""
    return out


def test_an_executors_resources_are_taken_once_and_held_until_it_exits():
    w = World()
    e = executor()
    commands = w.accept(launch(task("t1", w.agent_id, e), task("t2", w.agent_id, e)))
    assert errors(commands) == {}
    assert w.used() == TASK + TASK + EXECUTOR
    # a later task for the running executor takes only its own resources
    w.accept(launch(task("t3", w.agent_id, e)))
    assert w.used() == TASK + TASK + TASK + EXECUTOR
    w.mono += 10.0
    w.master.handle(AllocationRound(full=True), w.now, w.mono)
    [offers] = [c.event.offers.offers for c in w.master.drain()
                if isinstance(c, SendToFramework) and c.event.type == EventType.OFFERS]
    assert [x.value for x in offers[0].executor_ids] == ["e"]
    commands = w.from_agent(ExecutorExited(framework_id=w.framework_id, executor_id="e",
                                           status=3 << 8))
    failures = [c.event.failure for c in commands if isinstance(c, SendToFramework)
                and c.event.type == EventType.FAILURE]
    assert failures and failures[0].executor_id == ID("e") and failures[0].status == 768
    assert w.used() == TASK + TASK + TASK  # the tasks' ends are the agent's to report


def test_a_different_executor_info_under_a_running_id_is_refused():
    w = World()
    w.accept(launch(task("t1", w.agent_id, executor())))
    commands = w.accept(launch(task("t2", w.agent_id, executor(cmd="something-else"))))
    assert "differs from the one it runs with" in errors(commands)["t2"]
    assert w.used() == TASK + EXECUTOR


def test_an_executor_the_offer_cannot_cover_refuses_the_task_and_takes_nothing():
    w = World()
    big = msgspec.structs.replace(executor(), resources=from_resources(
        Resources.of(cpus=3.5, mem=64)))
    commands = w.accept(launch(task("t1", w.agent_id, big)))
    assert "Executor uses more resources" in errors(commands)["t1"]
    assert w.used() == Resources()
    assert w.master.executors == {}


def test_an_agent_that_no_longer_lists_an_executor_releases_it():
    w = World()
    w.accept(launch(task("t1", w.agent_id, executor())))
    listed = msgspec.structs.replace(w.register, agent_id=w.agent_id, executors=[
        AgentExecutor(framework_id=w.framework_id, executor=executor())])
    w.master.handle(AgentRegisters(listed, 2), w.now, 0.0)
    assert w.used() == EXECUTOR  # t1 unknown to the agent: gone; the executor stays
    gone = msgspec.structs.replace(w.register, agent_id=w.agent_id)
    w.master.handle(AgentRegisters(gone, 3), w.now, 0.0)
    assert w.used() == Resources() and w.master.executors == {}


def test_a_task_groups_default_executor_goes_with_its_last_task():
    w = World()
    group_executor = ExecutorInfo(executor_id=ID("g"), type=ExecutorType.DEFAULT,
                                  resources=from_resources(EXECUTOR))
    group = TaskGroupInfo(tasks=[task("g1", w.agent_id, None), task("g2", w.agent_id, None)])
    commands = w.accept(Operation(type=OperationType.LAUNCH_GROUP, launch_group=LaunchGroup(
        executor=group_executor, task_group=group)))
    [run] = [c.message for c in commands if isinstance(c, SendToAgent)
             and isinstance(c.message, RunTasks)]
    assert run.launches[0].executor == group_executor
    assert w.used() == TASK + TASK + EXECUTOR
    for i, tid in enumerate(("g1", "g2")):
        w.from_agent(StatusUpdates(updates=[StatusUpdate(
            framework_id=w.framework_id, status=TaskStatus(
                task_id=ID(tid), state=TaskState.TASK_FINISHED, uuid=bytes([i + 1]) * 16))]))
        expected = TASK + EXECUTOR if tid == "g1" else Resources()
        assert w.used() == expected


def test_a_custom_executor_cannot_run_a_task_group():
    w = World()
    group = TaskGroupInfo(tasks=[task("g1", w.agent_id, None)])
    commands = w.accept(Operation(type=OperationType.LAUNCH_GROUP, launch_group=LaunchGroup(
        executor=executor("c", type_=ExecutorType.CUSTOM), task_group=group)))
    assert "must be DEFAULT" in errors(commands)["g1"]
