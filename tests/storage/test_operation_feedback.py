"""Operation feedback as in Mesos, over a real cluster: an offer operation with an id
gets a status update with a uuid, resent until the framework acknowledges it;
RECONCILE_OPERATIONS answers without a uuid; GET_OPERATIONS lists what is tracked."""

from __future__ import annotations

import aiohttp
import pytest
from google.protobuf import json_format

from mesoslite.clock import ManualClock
from mesoslite.master.operations import FIRST_RESEND
from mesoslite.messages.mesos import ID, Operation, OperationState, OperationType, Reserve
from mesoslite.proto.mesos.v1.master import master_pb2
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import cluster_factory, framework_factory
from tests.storage.test_reservations import reserved

__all__ = ["cluster_factory", "framework_factory"]
pytestmark = pytest.mark.asyncio


async def test_a_tracked_operation_is_resent_until_acknowledged(cluster_factory,
                                                                framework_factory):
    clock = ManualClock()
    cluster = await cluster_factory(agents=1, clock=clock)
    fw = await framework_factory(cluster.master_url, name="db", roles=["db"],
                                 implicit_acks=False)
    offer = await fw.offer()
    fw.sched.open_offers.pop(offer.id.value, None)
    await fw.driver.accept([offer.id.value], [Operation(
        type=OperationType.RESERVE, id=ID("r1"), reserve=Reserve(resources=reserved(
            "cpus:1", "db")))])
    first = await wait_for(lambda: next(iter(fw.sched.operations), None), 10,
                           message="the reservation's status update")
    assert first.state == OperationState.OPERATION_FINISHED
    assert first.operation_id == ID("r1") and first.uuid is not None

    # not acknowledged: it comes again once the resend interval has passed
    clock.advance(FIRST_RESEND + 1)
    again = await wait_for(lambda: fw.sched.operations[1:] and fw.sched.operations[1], 10,
                           message="the update resent")
    assert again.uuid == first.uuid

    async with aiohttp.ClientSession() as http, http.post(
            cluster.master_url + "/api/v1", json={"type": "GET_OPERATIONS"}) as response:
        answer = await response.json()
    # the answer fits Mesos' schema whole (strict: an unknown field raises)
    json_format.ParseDict(answer, master_pb2.Response())
    listed = answer["get_operations"]["operations"]
    assert [o["info"]["id"]["value"] for o in listed] == ["r1"]
    assert listed[0]["latest_status"]["state"] == "OPERATION_FINISHED"

    # reconciliation answers without a uuid, and unknown operations are UNKNOWN
    seen = len(fw.sched.operations)
    await fw.driver.reconcile_operations([("r1", None), ("nope", None)])
    answers = await wait_for(lambda: len(fw.sched.operations) >= seen + 2 and
                             fw.sched.operations[seen:], 10, message="two reconcile answers")
    assert [(a.operation_id.value, a.state, a.uuid) for a in answers[:2]] == [
        ("r1", OperationState.OPERATION_FINISHED, None),
        ("nope", OperationState.OPERATION_UNKNOWN, None)]

    # acknowledged: a terminal operation is forgotten, so nothing is resent any more
    await fw.driver.acknowledge_operation_status(first)

    async def forgotten() -> bool:
        async with aiohttp.ClientSession() as http, http.post(
                cluster.master_url + "/api/v1", json={"type": "GET_OPERATIONS"}) as response:
            return not (await response.json())["get_operations"].get("operations")

    await wait_for(forgotten, 10, message="the acknowledged operation to be forgotten")


async def test_acknowledging_an_unknown_operation_is_refused(cluster_factory,
                                                             framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url, implicit_acks=False)
    async with aiohttp.ClientSession() as http, http.post(
            cluster.master_url + "/api/v1/scheduler",
            headers={"Mesos-Stream-Id": fw.driver.stream_id},
            json={"type": "ACKNOWLEDGE_OPERATION_STATUS", "framework_id": {"value": fw.id},
                  "acknowledge_operation_status": {
                      "uuid": "AAAAAAAAAAAAAAAAAAAAAA==", "operation_id": {"value": "x"}}}
            ) as response:
        body = await response.json()
    assert response.status == 400 and "Unknown operation 'x'" in body["message"]
