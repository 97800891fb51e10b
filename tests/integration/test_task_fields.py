"""TaskInfo fields Mesos' agent acts on, end to end through a real cluster: generic
checks reported in ``check_status``, ``max_completion_time``, ``limits`` refused with
the field named, MESOS images refused where they cannot run, the framework's user
(tasks run as it where the agent switches users) and offer constraints."""

from __future__ import annotations

import os
from collections.abc import Callable

import msgspec
import pytest

from mesoslite.messages.mesos import (
    CheckCommand,
    CheckHttp,
    CheckInfo,
    CheckType,
    CommandInfo,
    ContainerInfo,
    ContainerType,
    DurationInfo,
    Image,
    ImageType,
    LimitScalar,
    MesosInfo,
    Reason,
    TaskInfo,
    TaskState,
    TaskStatus,
)
from mesoslite.messages.scheduler import (
    Call,
    CallType,
    OfferConstraints,
    UpdateFramework,
)
from mesoslite.scheduler import CallError, calls, offer_resources, task_info
from mesoslite.testing.poll import wait_for
from tests.conftest import require


async def launch(fw, task_id: str, cmd: str, change: Callable[[TaskInfo], None] = lambda t: None,
                 ports: int = 0, agent_id: str | None = None) -> TaskInfo:
    """One shell task into the next offer (of ``agent_id``), changed by ``change``."""
    offer = await fw.offer(agent_id)
    chosen = offer_resources(offer).take_ports(ports).port_list() if ports else []
    task = task_info(task_id, task_id, offer.agent_id, cmd=cmd, ports=chosen)
    change(task)
    await fw.launch(offer, [task], refuse_seconds=0)
    return task


def updates(fw, task_id: str) -> list[TaskStatus]:
    return [s for s in fw.sched.updates if s.task_id.value == task_id]


def check_results(fw, task_id: str) -> list[int | None]:
    """The exit codes reported by the task's COMMAND check, in order, each once (the
    agent resends unacknowledged updates)."""
    seen, out = set(), []
    for status in updates(fw, task_id):
        if status.reason == Reason.REASON_TASK_CHECK_STATUS_UPDATED and status.uuid not in seen:
            seen.add(status.uuid)
            out.append(status.check_status.command.exit_code)
    return out


# -- checks (TaskInfo.check -> TaskStatus.check_status) --------------------------------


async def test_a_command_check_reports_its_result_and_each_change(cluster_factory,
                                                                  framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    check = CheckInfo(type=CheckType.COMMAND, delay_seconds=0, interval_seconds=0.1,
                      command=CheckCommand(command=CommandInfo(value="test -e ready")))
    await launch(fw, "checked", "sleep 60", lambda t: setattr(t, "check", check))
    running = await fw.wait_state("checked", TaskState.TASK_RUNNING)
    # The first RUNNING carries the check with no result yet.
    assert msgspec.to_builtins(running.check_status) == {"type": "COMMAND", "command": {}}
    await wait_for(lambda: check_results(fw, "checked") == [1], message="the first result")
    sandbox = cluster.agents[0].cp.sandbox(fw.id, "checked")
    (sandbox / "ready").touch()
    await wait_for(lambda: check_results(fw, "checked") == [1, 0], message="the change to 0")
    assert {s.state for s in updates(fw, "checked")} == {TaskState.TASK_STARTING,
                                                         TaskState.TASK_RUNNING}


async def test_an_http_check_reports_the_status_code(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    offer = await fw.offer()
    port = offer_resources(offer).take_ports(1).port_list()[0]
    task = task_info("web", "web", offer.agent_id, ports=[port],
                     cmd=f"exec python3 -m http.server {port} --bind 127.0.0.1")
    task.check = CheckInfo(type=CheckType.HTTP, delay_seconds=0, interval_seconds=0.2,
                           http=CheckHttp(port=port, path="/"))
    await fw.launch(offer, [task], refuse_seconds=0)
    status = await wait_for(lambda: next(
        (s for s in updates(fw, "web") if s.check_status and s.check_status.http
         and s.check_status.http.status_code), None), message="an HTTP check result")
    assert status.check_status.http.status_code == 200
    assert status.reason == Reason.REASON_TASK_CHECK_STATUS_UPDATED


# -- max_completion_time ----------------------------------------------------------------


def deadline(seconds: float) -> Callable[[TaskInfo], None]:
    def change(task: TaskInfo) -> None:
        task.max_completion_time = DurationInfo(nanoseconds=int(seconds * 1e9))
    return change


async def test_a_task_past_its_max_completion_time_fails(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    await launch(fw, "late", "sleep 60", deadline(0.3))
    await launch(fw, "quick", "true", deadline(60))
    failed = await fw.wait_state("late", TaskState.TASK_FAILED)
    assert failed.reason == Reason.REASON_MAX_COMPLETION_TIME_REACHED
    assert "max_completion_time" in failed.message
    assert TaskState.TASK_RUNNING in fw.sched.states("late")
    await fw.wait_state("quick", TaskState.TASK_FINISHED)


async def test_the_deadline_survives_an_agent_restart(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    await launch(fw, "late", "sleep 60", deadline(2.0))
    await fw.wait_state("late", TaskState.TASK_RUNNING)
    await cluster.stop_agent(0)  # the task keeps running, its timer dies with the agent
    await cluster.start_agent(0)
    failed = await fw.wait_state("late", TaskState.TASK_FAILED)
    assert failed.reason == Reason.REASON_MAX_COMPLETION_TIME_REACHED


# -- refusals naming the field ------------------------------------------------------------


def limits(**values: float | str) -> Callable[[TaskInfo], None]:
    def change(task: TaskInfo) -> None:
        task.limits = {k: LimitScalar(value=v) for k, v in values.items()}
    return change


def mesos_image(image: Image) -> Callable[[TaskInfo], None]:
    def change(task: TaskInfo) -> None:
        task.container = ContainerInfo(type=ContainerType.MESOS, mesos=MesosInfo(image=image))
    return change


@pytest.mark.parametrize("change, field", [
    (limits(gpus=1), "task.limits.gpus: unsupported"),
    (limits(cpus=0.01), "task.limits.cpus: 0.01 is below the task's request of 0.1"),
    (limits(mem="lots"), "task.limits.mem: 'lots' is not a number"),
    (mesos_image(Image(type=ImageType.APPC)), "task.container.mesos.image.appc: APPC"),
    (mesos_image(Image(type=ImageType.DOCKER)), "task.container.mesos.image.docker.name"),
    (mesos_image(msgspec.convert({"type": "DOCKER", "docker": {"name": "busybox"}},
                                 Image)), "'container.mesos.image': the agent has no docker"),
])
async def test_what_cannot_be_honoured_is_a_task_error_naming_the_field(
        cluster_factory, framework_factory, change, field):
    cluster = await cluster_factory(agents=1)  # process containerizer only
    fw = await framework_factory(cluster.master_url)
    await launch(fw, "refused", "true", change)
    error = await fw.wait_state("refused", TaskState.TASK_ERROR)
    assert field in error.message


async def test_limits_above_the_request_run(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    await launch(fw, "roomy", "true", limits(cpus=0.5, mem="Infinity"))
    await fw.wait_state("roomy", TaskState.TASK_FINISHED)


# -- the framework's user ---------------------------------------------------------------


async def test_the_framework_user_runs_the_task_and_command_user_overrides(
        cluster_factory, framework_factory):
    require(os.geteuid() == 0, "an agent running as root (it switches users)")
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url, user="nobody")
    await launch(fw, "as-fw", "id -un")
    await launch(fw, "as-cmd", "id -un", lambda t: setattr(t.command, "user", "root"))
    for task_id, user in (("as-fw", "nobody"), ("as-cmd", "root")):
        await fw.wait_state(task_id, TaskState.TASK_FINISHED)
        out = cluster.agents[0].cp.sandbox(fw.id, task_id) / "stdout"
        assert out.read_text().strip() == user


async def test_a_user_missing_on_the_agent_fails_the_task_naming_it(cluster_factory,
                                                                   framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url, user="no-such-user-x1")
    await launch(fw, "nobody-here", "true")
    failed = await fw.wait_state("nobody-here", TaskState.TASK_FAILED)
    assert "framework_info.user 'no-such-user-x1'" in failed.message
    assert failed.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED


# -- offer constraints --------------------------------------------------------------------


def rack_constraints(role: str, predicate: dict) -> OfferConstraints:
    return msgspec.convert({"role_constraints": {role: {"groups": [{"attribute_constraints": [
        {"selector": {"attribute_name": "rack"}, "predicate": predicate}]}]}}},
        OfferConstraints)


async def update_constraints(fw, constraints: OfferConstraints) -> None:
    info = fw.driver.framework_info
    await fw.driver.send(Call(type=CallType.UPDATE_FRAMEWORK, update_framework=UpdateFramework(
        framework_info=info, offer_constraints=constraints)))


async def test_update_framework_offer_constraints_choose_the_agents(cluster_factory,
                                                                   framework_factory):
    cluster = await cluster_factory(agents=3, agent_attributes=[
        {"rack": "a"}, {"rack": "b"}, {"rack": "a"}])
    fw = await framework_factory(cluster.master_url)
    # Every agent held by an offer: any offer after the update is the update's doing.
    await wait_for(lambda: len({o.agent_id.value for o in fw.sched.open_offers.values()}) == 3,
                   message="offers of all three agents")
    await update_constraints(fw, rack_constraints("*", {"text_equals": {"value": "b"}}))
    start = len(fw.sched.all_offers)
    earlier = list(fw.sched.open_offers.values())  # made before the update: give back
    fw.sched.open_offers.clear()
    await fw.driver.send(calls.decline(earlier, refuse_seconds=0))
    rack_b = cluster.agents[1].agent_id
    await launch(fw, "on-b", "true")  # into the next offer: only rack b's agent is offered
    await fw.wait_state("on-b", TaskState.TASK_FINISHED)
    await wait_for(lambda: len(fw.sched.all_offers) > start + 1, message="more offers")
    assert {o.agent_id.value for o in fw.sched.all_offers[start:]} == {rack_b}


async def test_an_invalid_regex_is_a_400_naming_the_field(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    with pytest.raises(CallError) as error:
        await update_constraints(fw, rack_constraints("*", {"text_matches": {"regex": "("}}))
    assert "update_framework.offer_constraints.role_constraints[*]" in str(error.value)
    assert "regex" in str(error.value)
