"""Offers through a real master: DRF between frameworks, decline filters (with an
injected clock), SUPPRESS and REVIVE, offer timeout with RESCIND, no double booking."""

from __future__ import annotations

import pytest

from mesoslite.clock import ManualClock
from mesoslite.scheduler import offer_resources
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio


async def rounds_pass(cluster, n: int = 5) -> None:
    """Wait until the master has run ``n`` more allocation rounds."""
    counters = cluster.master.state.counters
    target = counters["allocation_rounds"] + n
    await wait_for(lambda: counters["allocation_rounds"] >= target)


async def test_each_agent_is_offered_once_with_all_its_resources(cluster, framework):
    await wait_for(lambda: len(framework.sched.open_offers) == 3)
    offers = list(framework.sched.open_offers.values())
    assert len({o.agent_id.value for o in offers}) == 3
    for offer in offers:
        res = offer_resources(offer)
        assert res.scalar("cpus") == 2 and res.scalar("mem") == 1024
        assert offer.allocation_info.role == "*"
    await rounds_pass(cluster)
    assert len(framework.sched.all_offers) == 3  # held offers are not offered again


async def test_the_framework_with_the_lower_share_is_offered_first(cluster, framework_factory):
    a = await framework_factory(cluster.master_url, name="a")
    await wait_for(lambda: len(a.sched.open_offers) == 3)
    used = await a.run_task("big", "sleep 30", cpus=2, mem=1024)  # a whole agent: share 1/3
    a.sched.open_offers.clear()
    b = await framework_factory(cluster.master_url, name="b")
    free = next(o for o in a.sched.all_offers if o.agent_id != used.agent_id)
    await a.driver.decline([free], refuse_seconds=0)
    # b's dominant share (0) is below a's (1/3): the freed agent goes to b, not back to a
    await b.offer(agent_id=free.agent_id.value)
    assert not a.sched.open_offers


async def test_decline_filter_holds_until_refuse_seconds_pass(cluster_factory,
                                                              framework_factory):
    clock = ManualClock()
    cluster = await cluster_factory(agents=1, clock=clock)
    fw = await framework_factory(cluster.master_url)
    offer = await fw.offer()
    fw.sched.open_offers.clear()
    await fw.driver.decline([offer], refuse_seconds=30)
    await rounds_pass(cluster, 10)
    assert not fw.sched.open_offers, "a declined agent came back before its filter expired"
    clock.advance(31)
    again = await fw.offer()
    assert again.agent_id == offer.agent_id and again.id != offer.id


async def test_decline_with_zero_seconds_is_offered_again(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    offer = await fw.offer()
    fw.sched.open_offers.clear()
    await fw.driver.decline([offer], refuse_seconds=0)
    again = await fw.offer()
    assert again.id != offer.id


async def test_suppress_stops_offers_and_revive_brings_them_back(cluster_factory,
                                                                 framework_factory):
    clock = ManualClock()
    cluster = await cluster_factory(agents=1, clock=clock)
    fw = await framework_factory(cluster.master_url)
    offer = await fw.offer()
    fw.sched.open_offers.clear()
    await fw.driver.suppress()
    await fw.driver.decline([offer], refuse_seconds=0)
    await rounds_pass(cluster, 10)
    assert not fw.sched.open_offers
    await fw.driver.revive()
    await fw.offer()


async def test_revive_clears_decline_filters(cluster_factory, framework_factory):
    clock = ManualClock()
    cluster = await cluster_factory(agents=1, clock=clock)
    fw = await framework_factory(cluster.master_url)
    offer = await fw.offer()
    fw.sched.open_offers.clear()
    await fw.driver.decline([offer], refuse_seconds=3600)
    await rounds_pass(cluster)
    assert not fw.sched.open_offers
    await fw.driver.revive()
    await fw.offer()


async def test_unanswered_offers_are_rescinded_after_the_offer_timeout(cluster_factory,
                                                                       framework_factory):
    clock = ManualClock()
    cluster = await cluster_factory(agents=1, clock=clock, offer_timeout=10.0)
    fw = await framework_factory(cluster.master_url)
    offer = await fw.offer()
    clock.advance(11)
    await wait_for(lambda: offer.id.value in fw.sched.rescinds, message="RESCIND")
    again = await fw.offer()  # the resources come back in a new offer
    assert again.id != offer.id


async def test_accepting_part_of_an_offer_returns_the_rest(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=1)
    fw = await framework_factory(cluster.master_url)
    await fw.run_task("half", "sleep 30", cpus=1, mem=512)

    def remainder():
        return next((o for o in fw.sched.open_offers.values()
                     if offer_resources(o).scalar("cpus") == 1), None)

    # refuse_seconds defaults to 5 s on the unused part; revive clears that filter
    await fw.driver.revive()
    rest = await wait_for(remainder, message="the unused half re-offered")
    assert offer_resources(rest).scalar("mem") == 512
