"""Offer filters: refuse_seconds with an injected clock, Mesos' RefusedOfferFilter rules."""

from __future__ import annotations

import math

import pytest

from mesoslite.master.allocator import (
    AGENT_FULL,
    DEFAULT_REFUSE_SECONDS,
    FILTERED,
    MAX_REFUSE_SECONDS,
    Allocator,
    refuse_duration,
)
from mesoslite.resources import Resources

R = Resources.of
AGENT = R(cpus=4, mem=1024, ports=[(31000, 31099)])


def one_framework(*agents: str) -> Allocator:
    allocator = Allocator()
    allocator.add_framework("fw", ["*"])
    for agent in agents or ("s0",):
        allocator.add_agent(agent, AGENT)
    return allocator


def decline_all(allocator: Allocator, now: float, refuse: float | None) -> None:
    for a in allocator.allocate(now):
        allocator.recover(a.framework_id, a.role, a.agent_id, a.resources, now, refuse)


@pytest.mark.parametrize(
    ("given", "seconds"),
    [(None, 0.0), (0, 0.0), (0.0, 0.0), (2.5, 2.5), (-1, DEFAULT_REFUSE_SECONDS),
     (math.nan, DEFAULT_REFUSE_SECONDS), (math.inf, MAX_REFUSE_SECONDS),
     (1e12, MAX_REFUSE_SECONDS)],
)
def test_refuse_duration(given: float | None, seconds: float) -> None:
    assert refuse_duration(given) == seconds


def test_filter_lasts_refuse_seconds_of_injected_time() -> None:
    allocator = one_framework()
    decline_all(allocator, now=100.0, refuse=10.0)
    assert allocator.allocate(100.0) == []
    assert allocator.allocate(109.999) == []
    assert allocator.is_filtered("fw", "*", "s0", 105.0)
    assert allocator.next_filter_expiry(100.0) == 110.0
    (offer,) = allocator.allocate(110.0)  # expired at exactly now + refuse_seconds
    assert offer.resources == AGENT


def test_filtered_agent_goes_to_the_next_framework() -> None:
    allocator = one_framework()
    allocator.add_framework("other", ["*"])
    (offer,) = allocator.allocate(0.0)
    assert offer.framework_id == "fw"  # equal shares: by name ("fw" < "other")
    allocator.recover("fw", "*", "s0", offer.resources, 0.0, 60.0)
    (offer,) = allocator.allocate(1.0)
    assert offer.framework_id == "other"
    assert allocator.why_not("fw", "*", "s0", 1.0) == AGENT_FULL  # "other" holds it
    allocator.recover("other", "*", "s0", offer.resources, 1.0)
    assert allocator.why_not("fw", "*", "s0", 1.0) == FILTERED


def test_decline_with_zero_seconds_is_offered_again_next_round() -> None:
    allocator = one_framework()
    decline_all(allocator, now=0.0, refuse=0.0)
    assert [a.framework_id for a in allocator.allocate(0.0)] == ["fw"]


def test_no_refuse_seconds_installs_no_filter() -> None:
    allocator = one_framework()
    decline_all(allocator, now=0.0, refuse=None)
    assert allocator.next_filter_expiry(0.0) is None
    assert len(allocator.allocate(0.0)) == 1


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_negative_or_nan_refuse_means_five_seconds(bad: float) -> None:
    allocator = one_framework()
    decline_all(allocator, now=50.0, refuse=bad)
    assert allocator.next_filter_expiry(50.0) == 55.0
    assert allocator.allocate(54.9) == []
    assert len(allocator.allocate(55.0)) == 1


def test_refuse_seconds_is_capped_at_a_year() -> None:
    allocator = one_framework()
    decline_all(allocator, now=0.0, refuse=2**31 - 1)
    assert allocator.next_filter_expiry(0.0) == MAX_REFUSE_SECONDS
    assert allocator.allocate(MAX_REFUSE_SECONDS - 1) == []
    assert len(allocator.allocate(MAX_REFUSE_SECONDS)) == 1


def test_filter_ignored_when_more_resources_become_available() -> None:
    allocator = one_framework()
    (offer,) = allocator.allocate(0.0)
    task = R(cpus=1, mem=256)
    # accept one task, return the rest with a long filter
    allocator.recover("fw", "*", "s0", offer.resources - task, 0.0, 3600.0)
    assert allocator.allocate(1.0) == []
    # the task ends: available (all of the agent) is no longer within what was refused
    allocator.recover("fw", "*", "s0", task, 2.0)
    (again,) = allocator.allocate(2.0)
    assert again.resources == AGENT


def test_filter_applies_again_when_available_shrinks_back() -> None:
    allocator = one_framework()
    allocator.add_framework("zz", ["*"])
    allocator.allocate_used("zz", "*", "s0", R(cpus=2, mem=512))
    (offer,) = allocator.allocate(0.0)
    assert offer.framework_id == "fw"
    refused = offer.resources
    allocator.recover("fw", "*", "s0", refused, 0.0, 3600.0)
    (offer,) = allocator.allocate(0.0)
    assert offer.framework_id == "zz"  # fw filters it
    allocator.recover("zz", "*", "s0", offer.resources, 0.0)
    allocator.recover("zz", "*", "s0", R(cpus=2, mem=512), 0.0)  # zz's task ends
    assert not allocator.is_filtered("fw", "*", "s0", 1.0)  # more than refused now
    allocator.allocate_used("zz", "*", "s0", R(cpus=2, mem=512))
    assert allocator.available("s0") == refused
    assert allocator.is_filtered("fw", "*", "s0", 1.0)  # within what was refused again


def test_smaller_offer_stays_filtered() -> None:
    allocator = one_framework()
    (offer,) = allocator.allocate(0.0)
    allocator.recover("fw", "*", "s0", offer.resources, 0.0, 100.0)
    allocator.allocate_used("fw", "*", "s0", R(cpus=1))  # available shrinks
    assert allocator.allocate(1.0) == []


def test_revive_clears_filters() -> None:
    allocator = one_framework("s0", "s1")
    decline_all(allocator, now=0.0, refuse=1000.0)
    assert allocator.allocate(1.0) == []
    allocator.revive("fw")
    assert len(allocator.allocate(1.0)) == 2
    assert allocator.next_filter_expiry(1.0) is None


def test_filters_are_per_role() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["a", "b"])
    allocator.add_agent("s0", AGENT)
    (offer,) = allocator.allocate(0.0)
    assert offer.role == "a"
    allocator.recover("fw", "a", "s0", offer.resources, 0.0, 100.0)
    (offer,) = allocator.allocate(0.0)
    assert offer.role == "b"
    allocator.recover("fw", "b", "s0", offer.resources, 0.0, 50.0)
    assert allocator.allocate(0.0) == []
    allocator.revive("fw", ["b"])  # clears b's filter only
    (offer,) = allocator.allocate(0.0)
    assert offer.role == "b"
    allocator.recover("fw", "b", "s0", offer.resources, 0.0)
    assert allocator.is_filtered("fw", "a", "s0", 0.0)


def test_deactivation_and_removal_clear_filters() -> None:
    allocator = one_framework("s0", "s1")
    decline_all(allocator, now=0.0, refuse=1000.0)
    allocator.deactivate_framework("fw")
    allocator.activate_framework("fw")
    assert len(allocator.allocate(1.0)) == 2  # Mesos drops filters on deactivation
    decline_all(allocator, now=1.0, refuse=1000.0)
    allocator.remove_agent("s0")
    allocator.add_agent("s0", AGENT)
    assert [a.agent_id for a in allocator.allocate(2.0)] == ["s0"]


def test_newer_decline_replaces_the_filter() -> None:
    allocator = one_framework()
    decline_all(allocator, now=0.0, refuse=1000.0)
    allocator.revive("fw")
    decline_all(allocator, now=1.0, refuse=2.0)
    assert allocator.next_filter_expiry(1.0) == 3.0
    assert len(allocator.allocate(3.0)) == 1


def test_next_filter_expiry_tracks_the_earliest_live_filter() -> None:
    allocator = one_framework("s0", "s1", "s2")
    offers = allocator.allocate(0.0)
    for offer, refuse in zip(offers, [30.0, 10.0, 20.0]):
        allocator.recover("fw", "*", offer.agent_id, offer.resources, 0.0, refuse)
    assert allocator.next_filter_expiry(0.0) == 10.0
    assert allocator.next_filter_expiry() == 10.0
    assert allocator.next_filter_expiry(10.0) == 20.0
    assert allocator.next_filter_expiry(25.0) == 30.0
    assert allocator.next_filter_expiry(30.0) is None
    assert [a.agent_id for a in allocator.allocate(20.0)] == ["s1", "s2"]


def test_many_distinct_refusals_on_one_agent() -> None:
    # More distinct refused bags than the per-agent table holds before compaction.
    allocator = Allocator()
    frameworks = [f"f{i:02d}" for i in range(40)]
    for fid in frameworks:
        allocator.add_framework(fid, ["*"])
    allocator.add_agent("s0", R(cpus=100, mem=100))
    now = 0.0
    for i, fid in enumerate(frameworks):
        # each framework is offered a slightly different bag and refuses it
        allocator.allocate_used("holder", "*", "s0", R(cpus=1))
        (offer,) = allocator.allocate(now)
        assert offer.framework_id == fid
        allocator.recover(fid, "*", "s0", offer.resources, now, refuse_seconds=5.0 + i)
        now += 1.0
    # at now=40: filters of frameworks with 5 + i > 40 - i still apply, if the agent's
    # available (cpus 60) is within what they refused (cpus 99 - i): all i.
    for i, fid in enumerate(frameworks):
        assert allocator.is_filtered(fid, "*", "s0", 40.0) == (i + 5.0 + i > 40.0)
    (offer,) = allocator.allocate(40.0)
    assert offer.framework_id == "f00"


def test_filter_installed_while_the_agent_is_fully_offered() -> None:
    # A refusal recorded while all of the agent is out on an offer must be checked
    # against what comes back, even when the offered object returns unchanged.
    allocator = one_framework()
    allocator.add_framework("other", ["*"])
    (offer,) = allocator.allocate(0.0)
    assert offer.framework_id == "fw"
    allocator.recover("fw", "*", "s0", offer.resources, 0.0, 100.0)
    (offer,) = allocator.allocate(0.0)
    assert offer.framework_id == "other"
    # fw now refuses just 1 cpu there (a newer filter replaces the older one)
    allocator.recover("fw", "*", "s0", R(cpus=1), 0.0, 100.0)
    allocator.recover("other", "*", "s0", offer.resources, 0.0)
    assert not allocator.is_filtered("fw", "*", "s0", 1.0)  # all of it > the 1 refused
    (again,) = allocator.allocate(1.0)
    assert again.framework_id == "fw"  # equal shares and counts: by name
