"""Offer constraints (UPDATE_FRAMEWORK / SUBSCRIBE ``offer_constraints``): agents a
role's constraints exclude are never offered to that role of the framework."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.master.allocator import Allocator
from mesoslite.master.allocator.offer_constraints import (
    AgentFacts,
    ConstraintError,
    compile_constraints,
)
from mesoslite.messages.scheduler import OfferConstraints
from mesoslite.resources import Resources

AGENT = Resources.of(cpus=2, mem=512)


def constraints(role: str, *groups: list[dict]) -> OfferConstraints:
    """``groups``: lists of AttributeConstraint JSON objects."""
    return msgspec.convert({"role_constraints": {role: {"groups": [
        {"attribute_constraints": list(g)} for g in groups]}}}, OfferConstraints)


def attr(name: str, **predicate: object) -> dict:
    return {"selector": {"attribute_name": name}, "predicate": predicate}


def host(**predicate: object) -> dict:
    return {"selector": {"pseudoattribute_type": "HOSTNAME"}, "predicate": predicate}


def rule(oc: OfferConstraints, role: str = "web"):
    return compile_constraints(oc, [role], "update_framework.offer_constraints")[role]


def offered_agents(allocator: Allocator) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for a in allocator.allocate(0.0):
        out.setdefault((a.framework_id, a.role), set()).add(a.agent_id)
    return out


# -- evaluation (Mesos' semantics) ---------------------------------------------------

RACK_A = AgentFacts("h1", {"rack": "a", "gen": "3"})
RACK_B = AgentFacts("h2", {"rack": "b"})
BARE = AgentFacts("h3", {})


@pytest.mark.parametrize("constraint, allowed", [
    (attr("rack", exists={}), {"h1", "h2"}),
    (attr("rack", not_exists={}), {"h3"}),
    (attr("rack", text_equals={"value": "a"}), {"h1"}),
    (attr("rack", text_not_equals={"value": "a"}), {"h2", "h3"}),
    (attr("rack", text_matches={"regex": "[ab]"}), {"h1", "h2"}),
    (attr("rack", text_matches={"regex": "a|"}), {"h1"}),  # the whole text must match
    (attr("rack", text_not_matches={"regex": "b"}), {"h1", "h3"}),
    # a SCALAR attribute passes text predicates whatever its value (Mesos leaves
    # those to the framework); a missing one fails the positive ones
    (attr("gen", text_equals={"value": "4"}), {"h1"}),
    (attr("gen", text_not_matches={"regex": "3"}), {"h1", "h2", "h3"}),
    (host(text_equals={"value": "h2"}), {"h2"}),
    (host(text_matches={"regex": "h[12]"}), {"h1", "h2"}),
    ({"selector": {"pseudoattribute_type": "ZONE"}, "predicate": {"not_exists": {}}},
     {"h1", "h2", "h3"}),
])
def test_each_predicate_selects_the_agents_mesos_would(constraint, allowed) -> None:
    compiled = rule(constraints("web", [constraint]))
    assert {f.hostname for f in (RACK_A, RACK_B, BARE) if compiled.allows(f)} == allowed


def test_groups_are_or_of_ands() -> None:
    compiled = rule(constraints(
        "web",
        [attr("rack", text_equals={"value": "a"}), host(text_equals={"value": "h9"})],
        [attr("rack", text_equals={"value": "b"})]))
    assert [compiled.allows(f) for f in (RACK_A, RACK_B, BARE)] == [False, True, False]


@pytest.mark.parametrize("role_constraints, field", [
    ({"web": {"groups": []}}, "role_constraints[web].groups"),
    ({"web": {"groups": [{"attribute_constraints": []}]}},
     "role_constraints[web].groups[0].attribute_constraints"),
    ({"web": {"groups": [{"attribute_constraints": [
        attr("rack", text_matches={"regex": "(unclosed"})]}]}},
     "role_constraints[web].groups[0].attribute_constraints[0].predicate.text_matches.regex"),
    ({"web": {"groups": [{"attribute_constraints": [
        {"selector": {}, "predicate": {"exists": {}}}]}]}},
     "role_constraints[web].groups[0].attribute_constraints[0].selector"),
    ({"web": {"groups": [{"attribute_constraints": [
        {"selector": {"attribute_name": "x"}, "predicate": {}}]}]}},
     "role_constraints[web].groups[0].attribute_constraints[0].predicate"),
    ({"other": {"groups": [{"attribute_constraints": [attr("x", exists={})]}]}},
     "role_constraints[other]"),
])
def test_invalid_constraints_are_refused_naming_the_field(role_constraints, field) -> None:
    oc = msgspec.convert({"role_constraints": role_constraints}, OfferConstraints)
    with pytest.raises(ConstraintError) as error:
        compile_constraints(oc, ["web"], "update_framework.offer_constraints")
    assert f"'update_framework.offer_constraints.{field}" in str(error.value)


# -- the allocator -------------------------------------------------------------------


def cluster() -> Allocator:
    allocator = Allocator()
    allocator.add_agent("s1", AGENT, facts=RACK_A)
    allocator.add_agent("s2", AGENT, facts=RACK_B)
    allocator.add_agent("s3", AGENT, facts=BARE)
    return allocator


def test_a_role_is_offered_only_the_agents_its_constraints_allow() -> None:
    allocator = cluster()
    allocator.add_framework("fw", ["web", "batch"])
    allocator.set_offer_constraints("fw", {"web": rule(constraints(
        "web", [attr("rack", text_equals={"value": "a"})]))})
    offers = offered_agents(allocator)
    assert offers.get(("fw", "web"), set()) <= {"s1"}
    # the unconstrained role may get anything; together they got every agent
    assert set().union(*offers.values()) == {"s1", "s2", "s3"}


def test_a_barred_agent_stays_unoffered_after_revive_and_goes_when_cleared() -> None:
    allocator = cluster()
    allocator.add_framework("fw", ["web"])
    allocator.set_offer_constraints("fw", {"web": rule(constraints(
        "web", [attr("rack", exists={})]))})
    allocator.revive("fw")  # revive clears filters, never constraints
    assert offered_agents(allocator) == {("fw", "web"): {"s1", "s2"}}
    allocator.set_offer_constraints("fw", {})
    assert offered_agents(allocator) == {("fw", "web"): {"s3"}}


def test_agents_added_later_and_reserved_pools_are_constrained_too() -> None:
    allocator = Allocator()
    allocator.add_framework("fw", ["web"])
    allocator.set_offer_constraints("fw", {"web": rule(constraints(
        "web", [host(text_equals={"value": "h1"})]))})
    allocator.add_agent("s2", AGENT, facts=RACK_B, reserved={"web": Resources.of(cpus=1)})
    allocator.add_agent("s1", AGENT, facts=RACK_A, reserved={"web": Resources.of(cpus=1)})
    offers = {(a.agent_id, a.reservation or "unreserved") for a in allocator.allocate(0.0)}
    assert offers == {("s1", "unreserved"), ("s1", "web")}


def test_another_framework_is_not_affected() -> None:
    allocator = cluster()
    allocator.add_framework("picky", ["web"])
    allocator.set_offer_constraints("picky", {"web": rule(constraints(
        "web", [attr("rack", text_equals={"value": "nowhere"})]))})
    allocator.add_framework("easy", ["web"])
    assert offered_agents(allocator) == {("easy", "web"): {"s1", "s2", "s3"}}


@settings(max_examples=60, deadline=None)
@given(racks=st.lists(st.sampled_from(["a", "b", None]), min_size=1, max_size=12),
       wanted=st.sampled_from(["a", "b"]))
def test_no_allocation_ever_breaks_the_constraints(racks, wanted) -> None:
    allocator = Allocator()
    for i, rack in enumerate(racks):
        allocator.add_agent(f"s{i}", AGENT, facts=AgentFacts(
            f"h{i}", {"rack": rack} if rack else {}))
    allocator.add_framework("fw", ["web"])
    allocator.set_offer_constraints("fw", {"web": rule(constraints(
        "web", [attr("rack", text_equals={"value": wanted})]))})
    got = {a.agent_id for a in allocator.allocate(0.0)}
    assert got == {f"s{i}" for i, rack in enumerate(racks) if rack == wanted}
