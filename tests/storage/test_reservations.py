"""Dynamic reservations and persistent volumes in the master, through a real master
and real agents (process tasks): RESERVE + CREATE + LAUNCH in one ACCEPT, reserved
resources offered to their role only (also while no task uses them), kept across a
master restart, given back by DESTROY + UNRESERVE, and bad operations refused with
an OPERATION_ERROR that says why."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from mesoslite.messages.mesos import (
    Create,
    Destroy,
    DiskInfo,
    DiskVolume,
    Launch,
    Offer,
    Operation,
    OperationState,
    OperationType,
    Persistence,
    ReservationInfo,
    Reserve,
    Resource,
    TaskState,
    Unreserve,
    from_resources,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import task_info
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import cluster_factory, framework_factory

__all__ = ["cluster_factory", "framework_factory"]

pytestmark = pytest.mark.asyncio

RESERVED = "cpus:1;mem:256;disk:128"


def reserved(text: str, role: str) -> list[Resource]:
    """Resources reserved for ``role`` (Mesos' post-refinement form)."""
    return [msgspec.structs.replace(r, role=None, allocation_info=None,
                                    reservations=[ReservationInfo(role=role)])
            for r in from_resources(Resources.parse(text))]


def volume(vid: str, size: float, role: str, path: str = "data") -> Resource:
    (disk,) = reserved(f"disk:{size}", role)
    return msgspec.structs.replace(disk, disk=DiskInfo(
        persistence=Persistence(id=vid), volume=DiskVolume(container_path=path)))


def is_reserved(resource: Any) -> bool:
    return bool(resource.reservations) or resource.role not in (None, "*")


def offered(offer: Offer, reserved_part: bool) -> Resources:
    plain = [msgspec.structs.replace(r, role=None, reservations=[], disk=None)
             for r in offer.resources if is_reserved(r) == reserved_part]
    return Resources.from_json(msgspec.to_builtins(plain))


def volumes_of(offer: Offer) -> list[str]:
    return [r.disk.persistence.id for r in offer.resources
            if r.disk is not None and r.disk.persistence is not None]


async def offer_with(fw: RecordingFramework, pred: Any, message: str) -> Offer:
    return await wait_for(lambda: next((o for o in fw.sched.open_offers.values()
                                        if pred(o)), None), 15, message=message)


async def accept(fw: RecordingFramework, offer: Offer, ops: list[Operation]) -> None:
    fw.sched.open_offers.pop(offer.id.value, None)
    await fw.driver.accept([offer.id.value], ops)


async def operation_error(fw: RecordingFramework, since: int) -> str:
    status = await wait_for(lambda: next((s for s in fw.sched.operations[since:]
                                          if s.state == OperationState.OPERATION_ERROR), None),
                            10, message="an OPERATION_ERROR")
    return status.message or ""


def reserve_op(text: str, role: str) -> Operation:
    return Operation(type=OperationType.RESERVE, reserve=Reserve(resources=reserved(text, role)))


def create_op(*volumes: Resource) -> Operation:
    return Operation(type=OperationType.CREATE, create=Create(volumes=list(volumes)))


def destroy_op(*volumes: Resource) -> Operation:
    return Operation(type=OperationType.DESTROY, destroy=Destroy(volumes=list(volumes)))


def unreserve_op(text: str, role: str) -> Operation:
    return Operation(type=OperationType.UNRESERVE,
                     unreserve=Unreserve(resources=reserved(text, role)))


def resident_task(task_id: str, agent_id: str, role: str, cmd: str) -> Any:
    """A task on reserved cpus/mem and the volume ``v1`` (64 MB of the reserved disk)."""
    info = task_info(task_id, task_id, agent_id, cmd=cmd, cpus=0.5, mem=64)
    return msgspec.structs.replace(info, resources=[*reserved("cpus:0.5;mem:64", role),
                                                    volume("v1", 64, role)])


async def reserve_and_launch(db: RecordingFramework, cmd: str = "sleep 60") -> Offer:
    """RESERVE + CREATE + LAUNCH in one ACCEPT on ``db``'s first offer."""
    offer = await db.offer()
    task = resident_task("t1", offer.agent_id.value, "db", cmd)
    await accept(db, offer, [reserve_op(RESERVED, "db"), create_op(volume("v1", 64, "db")),
                             Operation(type=OperationType.LAUNCH,
                                       launch=Launch(task_infos=[task]))])
    return offer


async def test_reservation_is_offered_only_to_its_role(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    db = await framework_factory(cluster.master_url, name="db", roles=["db"])
    offer = await reserve_and_launch(db, cmd="echo kept > data/f && sleep 60")
    agent_id = offer.agent_id.value
    await db.wait_state("t1", TaskState.TASK_RUNNING)

    state = await get_json(cluster.master_url + "/master/state")
    (agent,) = state["slaves"]
    assert agent["reserved_resources"]["db"]["cpus"] == 1
    assert agent["reserved_resources"]["db"]["disk"] == 128
    assert agent["unreserved_resources"]["cpus"] == 1
    full = agent["reserved_resources_full"]["db"]
    (vol,) = [r for r in full if r.get("disk")]
    assert vol["disk"]["persistence"]["id"] == "v1" and vol["scalar"]["value"] == 64
    assert all(r["reservations"] == [{"type": "DYNAMIC", "role": "db"}] for r in full)

    # Another role: only the unreserved rest, never the reservation.
    web = await framework_factory(cluster.master_url, name="web", roles=["web"])
    seen = await web.offer(agent_id)
    assert offered(seen, True) == Resources()
    assert offered(seen, False).scalar("cpus") == 1

    # The instance goes down: its reserved resources and volume come back to db only.
    await db.driver.kill("t1")
    await db.wait_state("t1", TaskState.TASK_KILLED)
    back = await offer_with(db, lambda o: "v1" in volumes_of(o), "db offered its volume")
    assert offered(back, True) == Resources.parse(RESERVED)
    await db.driver.decline([back.id.value], refuse_seconds=3600)
    db.sched.open_offers.clear()
    await web.driver.decline([o for o in web.sched.open_offers], refuse_seconds=0)
    web.sched.open_offers.clear()
    rounds = cluster.master.state.counters["allocation_rounds"]
    await wait_for(lambda: cluster.master.state.counters["allocation_rounds"] > rounds + 10)
    await offer_with(web, lambda o: True, "web offered the unreserved part again")
    for o in web.sched.all_offers:
        assert not any(is_reserved(r) for r in o.resources), o
        assert offered(o, False).scalar("cpus") <= 1
    # The data stayed on the agent's volume.
    work = cluster.agents[0].config.work_dir
    assert (work / "volumes" / "v1" / "data" / "f").read_text() == "kept\n"


async def test_master_restart_keeps_reservation_and_unreserve_frees_it(
        cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    db = await framework_factory(cluster.master_url, name="db", roles=["db"])
    await reserve_and_launch(db, cmd="sleep 60")
    await db.wait_state("t1", TaskState.TASK_RUNNING)
    await db.driver.kill("t1")
    await db.wait_state("t1", TaskState.TASK_KILLED)

    await cluster.stop_master()
    db.sched.open_offers.clear()
    await cluster.start_master()
    await wait_for(lambda: len(db.sched.framework_ids) >= 2, 15, message="re-subscription")
    state = await get_json(cluster.master_url + "/master/state")
    assert state["slaves"][0]["reserved_resources"]["db"]["mem"] == 256
    back = await offer_with(db, lambda o: "v1" in volumes_of(o), "the volume offered again")
    assert offered(back, True) == Resources.parse(RESERVED)

    # DESTROY + UNRESERVE in one ACCEPT: everything is unreserved again.
    before = len(db.sched.operations)
    await accept(db, back, [destroy_op(volume("v1", 64, "db")),
                            unreserve_op(RESERVED, "db")])
    await wait_for(lambda: not cluster.agents[0].config.work_dir.joinpath(
        "volumes", "v1").exists(), 10, message="volume removed on the agent")
    assert [s.state for s in db.sched.operations[before:]] == []  # no errors
    state = await get_json(cluster.master_url + "/master/state")
    assert state["slaves"][0]["reserved_resources"] == {}
    web = await framework_factory(cluster.master_url, name="web", roles=["web"])
    whole = await offer_with(web, lambda o: offered(o, False).scalar("cpus") == 2,
                             "the whole agent offered to another role")
    assert offered(whole, True) == Resources()


async def test_bad_operations_are_refused_with_a_reason(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    db = await framework_factory(cluster.master_url, name="db", roles=["db"])

    async def refused(ops: list[Operation]) -> str:
        offer = await db.offer()
        since = len(db.sched.operations)
        await accept(db, offer, ops)
        return await operation_error(db, since)

    assert "more than the offer's unreserved" in await refused([reserve_op("cpus:5", "db")])
    assert "is not reserved" in await refused([create_op(msgspec.structs.replace(
        volume("v9", 10, "db"), reservations=[]))])
    assert "role 'other'" in await refused([reserve_op("cpus:1", "other")])
    # A volume in use by a live task cannot be destroyed, nor its disk unreserved.
    await reserve_and_launch(db)
    await db.wait_state("t1", TaskState.TASK_RUNNING)
    assert "in use by task 't1'" in await refused([destroy_op(volume("v1", 64, "db"))])
    assert "destroyed (DESTROY) before" in await refused([Operation(
        type=OperationType.UNRESERVE, unreserve=Unreserve(resources=[volume("v1", 64, "db")]))])
    assert "already exists" in await refused([create_op(volume("v1", 64, "db"))])
    state = await get_json(cluster.master_url + "/master/state")
    assert state["slaves"][0]["reserved_resources"]["db"]["cpus"] == 1

    # A framework in role '*' cannot reserve at all.
    anyone = await framework_factory(cluster.master_url, name="anyone")
    offer = await anyone.offer()
    await accept(anyone, offer, [reserve_op("cpus:0.1", "*")])
    status = await wait_for(lambda: next(iter(anyone.sched.operations), None), 10,
                            message="an OPERATION_ERROR for role '*'")
    assert status.state == OperationState.OPERATION_ERROR
    assert "'*'" in (status.message or "")
