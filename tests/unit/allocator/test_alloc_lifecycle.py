"""Agents and frameworks coming and going, suppression, recorded usage, and errors."""

from __future__ import annotations

import math

import pytest

from mesoslite.master.allocator import (
    AGENT_FULL,
    AGENT_INACTIVE,
    AGENT_UNKNOWN,
    FRAMEWORK_INACTIVE,
    FRAMEWORK_UNKNOWN,
    ROLE_NOT_SUBSCRIBED,
    ROLE_SUPPRESSED,
    Allocation,
    Allocator,
)
from mesoslite.resources import Resources

R = Resources.of
AGENT = R(cpus=4, mem=1024, ports=[(31000, 31099)])


def offered(allocator: Allocator, now: float = 0.0, agent_ids=None) -> list[tuple[str, ...]]:
    return [(a.framework_id, a.role, a.agent_id) for a in allocator.allocate(now, agent_ids)]


# -- suppression --------------------------------------------------------------------


def test_suppress_and_revive_per_role() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["a", "b"])
    allocator.add_agent("s0", AGENT)
    allocator.suppress("fw", ["a"])
    assert offered(allocator) == [("fw", "b", "s0")]
    allocator.recover("fw", "b", "s0", AGENT, 0.0)
    allocator.suppress("fw")  # all roles
    assert offered(allocator) == []
    assert allocator.why_not("fw", "a", "s0", 0.0) == ROLE_SUPPRESSED
    allocator.revive("fw", ["a"])
    assert offered(allocator) == [("fw", "a", "s0")]
    allocator.recover("fw", "a", "s0", AGENT, 0.0)
    allocator.revive("fw")
    assert offered(allocator) == [("fw", "a", "s0")]


def test_subscribe_suppressed() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["a"], suppressed_roles=["a"])
    allocator.add_agent("s0", AGENT)
    assert offered(allocator) == []
    allocator.update_framework("fw", ["a"], suppressed_roles=[])
    assert offered(allocator) == [("fw", "a", "s0")]


# -- agents -------------------------------------------------------------------------


def test_deactivated_agent_gets_no_offers_but_keeps_its_allocation() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["*"])
    allocator.add_agent("s0", AGENT)
    allocator.allocate_used("fw", "*", "s0", R(cpus=1))
    allocator.deactivate_agent("s0")
    assert offered(allocator) == []
    assert allocator.why_not("fw", "*", "s0", 0.0) == AGENT_INACTIVE
    assert allocator.allocations("s0") == {("fw", "*"): R(cpus=1)}
    allocator.activate_agent("s0")
    (offer,) = allocator.allocate(0.0)
    assert offer.resources == AGENT - R(cpus=1)


def test_reregistered_agent_brings_its_running_tasks() -> None:
    allocator = Allocator()
    allocator.add_framework("busy", ["*"])
    allocator.add_framework("idle", ["*"])
    allocator.add_agent("s0", AGENT, {("busy", "*"): R(cpus=3, mem=100)})
    allocator.add_agent("s1", AGENT)
    assert allocator.available("s0") == AGENT - R(cpus=3, mem=100)
    # "busy" already holds 3 of 8 cpus, so "idle" comes first
    assert offered(allocator) == [("idle", "*", "s0"), ("busy", "*", "s1")]


def test_tasks_of_a_framework_not_yet_subscribed_count_for_its_role() -> None:
    allocator = Allocator()
    allocator.add_framework("other", ["r"])
    allocator.add_framework("peer", ["q"])
    allocator.add_agent("s0", AGENT, {("late", "r"): R(cpus=2)})
    assert allocator.framework_ids() == ["other", "peer"]
    assert allocator.shares()["roles"]["r"]["allocated"] == R(cpus=2)
    allocator.add_agent("s1", AGENT)
    # role r holds 2 cpus already: the first agent goes to role q
    assert offered(allocator)[0] == ("peer", "q", "s0")
    allocator.add_framework("late", ["r"], active=False)
    allocator.add_agent("s2", AGENT)
    assert allocator.why_not("late", "r", "s2", 0.0) == FRAMEWORK_INACTIVE
    allocator.activate_framework("late")
    assert allocator.framework_ids() == ["other", "peer", "late"]


def test_remove_agent_forgets_it_and_its_share() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["*"])
    allocator.add_agent("s0", AGENT, {("fw", "*"): R(cpus=4)})
    allocator.add_agent("s1", AGENT)
    assert allocator.shares()["frameworks"]["fw"]["share"] == pytest.approx(0.5)
    allocator.remove_agent("s0")
    allocator.remove_agent("s0")  # idempotent
    assert allocator.agent_ids() == ["s1"]
    shares = allocator.shares()
    assert shares["frameworks"]["fw"]["share"] == 0.0
    assert shares["total"] == R(cpus=4, mem=1024)
    with pytest.raises(KeyError):
        allocator.available("s0")


def test_update_agent_total_grows_and_shrinks() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["*"])
    allocator.add_agent("s0", R(cpus=4))
    allocator.allocate_used("fw", "*", "s0", R(cpus=3))
    allocator.update_agent_total("s0", R(cpus=8))
    assert allocator.available("s0") == R(cpus=5)
    allocator.update_agent_total("s0", R(cpus=2))  # now over-committed by the caller
    assert allocator.available("s0") == Resources()
    assert offered(allocator) == []
    allocator.recover("fw", "*", "s0", R(cpus=2), 0.0)
    assert allocator.available("s0") == R(cpus=1)
    assert offered(allocator) == [("fw", "*", "s0")]


def test_partial_round_only_considers_given_agents() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["*"])
    for agent in ("s0", "s1", "s2"):
        allocator.add_agent(agent, AGENT)
    assert offered(allocator, agent_ids=["s2", "nope", "s2", "s0"]) == [
        ("fw", "*", "s2"), ("fw", "*", "s0")]
    assert offered(allocator, agent_ids=[]) == []
    assert offered(allocator) == [("fw", "*", "s1")]


# -- frameworks ----------------------------------------------------------------------


def test_deactivated_framework_gets_nothing_but_its_usage_still_counts() -> None:
    allocator = Allocator()
    allocator.add_framework("a", ["*"])
    allocator.add_framework("b", ["*"])
    for agent in ("s0", "s1", "s2"):
        allocator.add_agent(agent, AGENT)
    allocator.allocate_used("b", "*", "s0", R(cpus=3))
    allocator.deactivate_framework("b")
    offers = allocator.allocate(0.0)
    assert [(a.framework_id, a.agent_id) for a in offers] == [
        ("a", "s0"), ("a", "s1"), ("a", "s2")]
    for a in offers:
        allocator.recover(a.framework_id, a.role, a.agent_id, a.resources, 0.0)
    allocator.activate_framework("b")
    # b's 3 cpus (a quarter of the cluster's) still count: a, at zero, comes first
    assert offered(allocator) == [("a", "*", "s0"), ("b", "*", "s1"), ("a", "*", "s2")]


def test_remove_framework_frees_what_it_held() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["a", "b"])
    allocator.add_agent("s0", AGENT)
    allocator.allocate(0.0)
    assert allocator.available("s0") == Resources()
    allocator.remove_framework("fw")
    allocator.remove_framework("fw")  # idempotent
    assert allocator.available("s0") == AGENT
    assert allocator.allocations("s0") == {}
    assert allocator.shares()["frameworks"] == {}
    assert allocator.framework_ids() == []
    allocator.add_framework("fw", ["a"])  # may come back
    assert offered(allocator) == [("fw", "a", "s0")]


def test_update_framework_roles() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["a"])
    allocator.add_agent("s0", AGENT)
    allocator.add_agent("s1", AGENT)
    assert offered(allocator, agent_ids=["s0"]) == [("fw", "a", "s0")]
    allocator.update_framework("fw", ["b"])
    # still holds s0 in role a (tracked until returned), offered only in b now
    assert allocator.why_not("fw", "a", "s1", 0.0) == ROLE_NOT_SUBSCRIBED
    assert offered(allocator) == [("fw", "b", "s1")]
    assert set(allocator.shares()["frameworks"]["fw"]["roles"]) == {"a", "b"}
    allocator.recover("fw", "a", "s0", AGENT, 0.0)
    assert set(allocator.shares()["frameworks"]["fw"]["roles"]) == {"b"}


def test_recover_is_tolerant_and_frees_only_what_is_held() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["*"])
    allocator.add_agent("s0", AGENT)
    (offer,) = allocator.allocate(0.0)
    allocator.recover("fw", "*", "nope", AGENT, 0.0, 5.0)
    allocator.recover("ghost", "*", "s0", AGENT, 0.0, 5.0)
    allocator.recover("fw", "other-role", "s0", AGENT, 0.0, 5.0)
    assert allocator.available("s0") == Resources()
    assert allocator.next_filter_expiry() is None
    allocator.recover("fw", "*", "s0", R(cpus=1, ports=[(31000, 31000)]), 0.0)
    assert allocator.available("s0") == R(cpus=1, ports=[(31000, 31000)])
    allocator.recover("fw", "*", "s0", R(cpus=100, mem=1e6, ports=[(1, 65535)]), 0.0)
    assert allocator.available("s0") == offer.resources
    assert allocator.allocations("s0") == {}


def test_allocations_are_never_handed_out_twice() -> None:
    allocator = Allocator()
    allocator.add_framework("a", ["*"])
    allocator.add_framework("b", ["*"])
    allocator.add_agent("s0", AGENT)
    first = allocator.allocate(0.0)
    assert allocator.allocate(0.0) == []
    part = R(cpus=1, ports=[(31000, 31049)])
    allocator.recover("a", "*", "s0", part, 0.0)
    (second,) = allocator.allocate(0.0)
    assert second == Allocation("b", "*", "s0", part)
    assert first[0].resources - part == allocator.allocations("s0")[("a", "*")]


# -- queries and errors -----------------------------------------------------------------


def test_why_not_reasons() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["a"], active=False)
    allocator.add_agent("s0", AGENT)
    assert allocator.why_not("fw", "a", "nope", 0.0) == AGENT_UNKNOWN
    assert allocator.why_not("ghost", "a", "s0", 0.0) == FRAMEWORK_UNKNOWN
    assert allocator.why_not("fw", "a", "s0", 0.0) == FRAMEWORK_INACTIVE
    allocator.activate_framework("fw")
    assert allocator.why_not("fw", "b", "s0", 0.0) == ROLE_NOT_SUBSCRIBED
    assert allocator.why_not("fw", "a", "s0", 0.0) is None
    allocator.allocate(0.0)
    assert allocator.why_not("fw", "a", "s0", 0.0) == AGENT_FULL


def test_shares_report() -> None:
    allocator = Allocator({"a": 2.0})
    allocator.add_framework("fw", ["a", "b"], weight=1.5)
    allocator.add_agent("s0", R(cpus=10, mem=100, ports=[(1, 2)]))
    allocator.allocate_used("fw", "a", "s0", R(cpus=5, mem=10, ports=[(1, 1)]))
    shares = allocator.shares()
    assert shares["total"] == R(cpus=10, mem=100)  # scalars only
    assert shares["roles"]["a"] == {"share": 0.5, "weighted_share": 0.25, "weight": 2.0,
                                    "allocated": R(cpus=5, mem=10)}
    assert shares["roles"]["b"]["share"] == 0.0
    fw = shares["frameworks"]["fw"]
    assert fw["weight"] == 1.5
    assert fw["active"] is True
    assert fw["share"] == 0.5
    assert fw["roles"]["a"]["weighted_share"] == pytest.approx(0.5 / 1.5)


@pytest.mark.parametrize("role", ["", "/a", "a/", "a//b", "a/./b", "..", "a b", "*/x", "x/*"])
def test_invalid_roles_are_rejected(role: str) -> None:
    allocator = Allocator()
    with pytest.raises(ValueError, match="role"):
        allocator.add_framework("fw", [role])


def test_errors_name_the_problem() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["a"])
    allocator.add_agent("s0", AGENT)
    with pytest.raises(ValueError, match="already added"):
        allocator.add_agent("s0", AGENT)
    with pytest.raises(ValueError, match="already added"):
        allocator.add_framework("fw", ["a"])
    with pytest.raises(ValueError, match="at least one role"):
        allocator.add_framework("other", [])
    with pytest.raises(TypeError):
        allocator.add_framework("other", "a")
    for bad in (0, -1, math.nan, math.inf):
        with pytest.raises(ValueError, match="weight"):
            allocator.add_framework("other", ["a"], weight=bad)
        with pytest.raises(ValueError, match="weight"):
            Allocator({"a": bad})
    for call in (lambda: allocator.update_framework("ghost", ["a"]),
                 lambda: allocator.activate_framework("ghost"),
                 lambda: allocator.suppress("ghost"),
                 lambda: allocator.revive("ghost"),
                 lambda: allocator.deactivate_agent("nope"),
                 lambda: allocator.allocate_used("fw", "a", "nope", AGENT)):
        with pytest.raises(KeyError):
            call()


def test_nothing_to_do() -> None:
    allocator = Allocator()
    assert allocator.allocate(0.0) == []
    allocator.add_agent("s0", AGENT)
    assert allocator.allocate(0.0) == []
    assert allocator.next_filter_expiry(0.0) is None
    assert allocator.shares()["roles"] == {}
