"""Quota in the allocator: limits cut offers, guarantees come first, headroom is held.

The state machines in ``test_alloc_properties.py`` check every staged round against
the naive model; these pin the behaviour a user would notice, with small clusters.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from mesoslite.master.allocator import Allocator, check_quota
from mesoslite.resources import Resources

AGENT = Resources.parse("cpus:4;mem:1024;ports:[31000-31009]")


def cluster(agents: int, roles: dict[str, str]) -> Allocator:
    allocator = Allocator()
    for framework_id, role in roles.items():
        allocator.add_framework(framework_id, [role])
    for i in range(agents):
        allocator.add_agent(f"s{i}", AGENT)
    return allocator


def held(offers, framework_id: str, name: str) -> float:
    return sum(o.resources.scalar(name) for o in offers if o.framework_id == framework_id)


def test_a_limit_cuts_the_offer_and_the_rest_goes_to_the_next_framework() -> None:
    allocator = cluster(3, {"dev-fw": "dev", "prod-fw": "prod"})
    allocator.set_quota("dev", {}, {"cpus": 5})
    offers = allocator.allocate(0.0)
    assert held(offers, "dev-fw", "cpus") == 5
    assert held(offers, "prod-fw", "cpus") == 4 + 3  # with the 3 cpus dev could not have
    # the cut offer keeps the agent's memory and ports: it can still launch a task
    cut = next(o for o in offers if o.framework_id == "dev-fw" and o.resources.scalar(
        "cpus") == 1)
    assert cut.resources.scalar("mem") == 1024 and cut.resources.ports()


def test_a_role_at_its_limit_is_offered_nothing_more_until_resources_return() -> None:
    allocator = cluster(3, {"dev-fw": "dev"})
    allocator.set_quota("dev", {}, {"cpus": 4})
    first = allocator.allocate(0.0)
    assert [o.agent_id for o in first] == ["s0"]
    assert allocator.allocate(1.0) == []  # two idle agents, but dev is at its limit
    allocator.recover("dev-fw", "dev", "s0", first[0].resources, 1.0)
    assert [o.agent_id for o in allocator.allocate(2.0)] == ["s0"]


def test_removing_the_quota_lifts_the_limit_at_the_next_round() -> None:
    allocator = cluster(3, {"dev-fw": "dev"})
    allocator.set_quota("dev", {}, {"cpus": 4})
    allocator.allocate(0.0)
    allocator.set_quota("dev", {}, {})
    assert allocator.quotas() == {}
    assert sorted(o.agent_id for o in allocator.allocate(1.0)) == ["s1", "s2"]


def test_the_limit_covers_sub_roles() -> None:
    allocator = cluster(3, {"web": "eng/web", "db": "eng/db"})
    allocator.set_quota("eng", {}, {"cpus": 8})
    offers = allocator.allocate(0.0)
    assert sum(o.resources.scalar("cpus") for o in offers) == 8


def test_a_guarantee_is_met_before_a_bigger_fair_share() -> None:
    # "big" has weight 10 and would take every agent in plain DRF; "small" is
    # guaranteed 6 cpus and gets them first.
    allocator = cluster(3, {"big-fw": "big", "small-fw": "small"})
    allocator.set_role_weight("big", 10.0)
    allocator.set_quota("small", {"cpus": 6}, {})
    offers = allocator.allocate(0.0)
    assert held(offers, "small-fw", "cpus") >= 6
    assert held(offers, "big-fw", "cpus") + held(offers, "small-fw", "cpus") == 12


def test_headroom_is_held_back_for_a_guarantee_nobody_can_take_now() -> None:
    allocator = cluster(3, {"other-fw": "other", "idle-fw": "reserved-for-later"})
    allocator.suppress("idle-fw")
    allocator.set_quota("reserved-for-later", {"cpus": 6}, {})
    offers = allocator.allocate(0.0)
    assert held(offers, "other-fw", "cpus") == 6  # 12 - the 6 the guarantee needs
    allocator.set_quota("reserved-for-later", {}, {})
    assert held(allocator.allocate(1.0), "other-fw", "cpus") == 6  # the rest, now


def test_weights_change_the_shares_at_the_next_round() -> None:
    allocator = cluster(0, {"a-fw": "a", "b-fw": "b"})
    for i in range(8):
        allocator.add_agent(f"s{i}", Resources.of(cpus=1))
    allocator.set_role_weight("a", 3.0)
    offers = allocator.allocate(0.0)
    assert held(offers, "a-fw", "cpus") == 6 and held(offers, "b-fw", "cpus") == 2
    for o in offers:
        allocator.recover(o.framework_id, o.role, o.agent_id, o.resources, 0.0)
    allocator.set_role_weight("a", 1.0)
    offers = allocator.allocate(1.0)
    assert held(offers, "a-fw", "cpus") == 4 and held(offers, "b-fw", "cpus") == 4


@st.composite
def guaranteed_clusters(draw: st.DrawFn) -> dict:
    """Agents of whole cpus and memory; guarantees that fit in the cluster's total."""
    agents = draw(st.lists(st.tuples(st.integers(0, 8), st.sampled_from([0, 512, 2048])),
                           min_size=1, max_size=8))
    total_cpus = sum(c for c, _ in agents)
    total_mem = sum(m for _, m in agents)
    roles = draw(st.lists(st.sampled_from(["a", "b", "c", "*"]), min_size=1, max_size=4,
                          unique=True))
    guarantees, cpus_left, mem_left = {}, total_cpus, total_mem
    for role in roles:
        cpus = draw(st.integers(0, cpus_left))
        mem = draw(st.sampled_from([m for m in (0, 256, 1000, 4000) if m <= mem_left]))
        cpus_left, mem_left = cpus_left - cpus, mem_left - mem
        guarantees[role] = {"cpus": cpus, "mem": mem}
    weights = {r: draw(st.sampled_from([1.0, 5.0])) for r in ["a", "b", "c", "d", "*"]}
    return {"agents": agents, "guarantees": guarantees, "weights": weights}


@settings(max_examples=200, deadline=None)
@given(spec=guaranteed_clusters())
def test_guarantees_that_fit_the_cluster_are_all_met_in_one_round(spec: dict) -> None:
    """Every role's guarantee is met after one round when the guarantees fit in the
    cluster, whatever the weights and whoever else wants the resources."""
    allocator = Allocator(spec["weights"])
    for role in ["a", "b", "c", "d", "*"]:
        allocator.add_framework(f"fw-{role}", [role])
    for i, (cpus, mem) in enumerate(spec["agents"]):
        allocator.add_agent(f"s{i}", Resources.of(cpus=cpus, mem=mem))
    for role, guarantee in spec["guarantees"].items():
        allocator.set_quota(role, guarantee, {})
    offers = allocator.allocate(0.0)
    for role, guarantee in spec["guarantees"].items():
        for name, amount in guarantee.items():
            assert held(offers, f"fw-{role}", name) >= amount, (role, name)


@pytest.mark.parametrize(("role", "guarantees", "limits", "message"), [
    ("eng/web", {}, {"cpus": 1}, "nested role"),
    ("dev", {"cpus": 4}, {"cpus": 2}, "guarantee of 'cpus' (4) is more than its limit (2)"),
    ("dev", {"mem": -1}, {}, "guarantee of 'mem' must be"),
    ("dev", {}, {"cpus": float("nan")}, "limit of 'cpus' must be"),
    ("", {}, {}, "role"),
])
def test_bad_quota_is_refused_naming_the_role_and_resource(
        role: str, guarantees: dict, limits: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_quota(role, guarantees, limits)
