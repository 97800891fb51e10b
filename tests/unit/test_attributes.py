"""Agent attributes hold one form end to end: the text an agent is started with comes
back as the same text from an offer (through Mesos' typed JSON), so constraints such
as ``rack:IS:01`` and ``rack:LIKE:0.*`` match what the operator wrote."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesoslite.agent.host import parse_attributes
from mesoslite.framework.offers import group_offers, placement_agents
from mesoslite.master.model import AgentRecord
from mesoslite.master.operator_views import agent_info_json
from mesoslite.messages.attributes import (
    attribute_text,
    attributes_text,
    mesos_attribute,
    mesos_attributes,
    scalar_text,
)
from mesoslite.messages.mesos import (
    ID,
    Attribute,
    Offer,
    Range,
    Ranges,
    Scalar,
    Set,
    ValueType,
    from_resources,
)
from mesoslite.placement import Constraint, Problem, Task, place
from mesoslite.resources import Resources
from mesoslite.scheduler import offer_text_attributes


def offer_of(agent: str, attributes: dict[str, str]) -> Offer:
    """An offer as a framework receives it: typed by the master, through JSON."""
    sent = Offer(id=ID(f"o-{agent}"), framework_id=ID("f"), agent_id=ID(agent),
                 hostname=agent, resources=from_resources(Resources.parse("cpus:1;mem:64")),
                 attributes=mesos_attributes(attributes))
    return msgspec.json.decode(msgspec.json.encode(sent), type=Offer)


@pytest.mark.parametrize("written", ["01", "1.50", "+1", "1e3", "1_000", "-0", "nan", "inf",
                                     "1.0", "0x10", "١", "12345678901234567890", "r1", "[1-4]"])
def test_values_that_do_not_print_back_as_written_stay_text(written: str) -> None:
    attribute = mesos_attribute("rack", written)
    assert attribute.type == ValueType.TEXT and attribute_text(attribute) == written


@pytest.mark.parametrize(("written", "number"), [("1", 1.0), ("-3", -3.0), ("2.5", 2.5),
                                                 ("0.1", 0.1), ("1e-05", 1e-05)])
def test_canonical_numbers_are_scalars(written: str, number: float) -> None:
    attribute = mesos_attribute("gen", written)
    assert attribute.type == ValueType.SCALAR and attribute.scalar == Scalar(number)
    assert attribute_text(attribute) == written


def test_rack_01_is_offered_as_written_and_constraints_match_it() -> None:
    agents = parse_attributes("rack:01;zone:a")
    assert agents == {"rack": "01", "zone": "a"}
    groups = group_offers([offer_of("a1", agents), offer_of("a2", {"rack": "1"})])
    assert groups["a1"].attributes == {"rack": "01", "zone": "a", "hostname": "a1"}
    assert groups["a2"].attributes == {"rack": "1", "hostname": "a2"}
    candidates = placement_agents(groups.values())
    for constraint in (Constraint("rack", "IS", "01"), Constraint("rack", "LIKE", "0.*")):
        tasks = [Task("t", {"cpus": 0.5}, group="g", constraints=(constraint,))]
        answer = place(Problem(candidates, tasks, time_limit_s=1.0))
        assert answer.assignments == {"t": "a1"}, constraint


def test_attributes_from_a_mesos_master_read_as_text() -> None:
    received = [Attribute(name="gen", type=ValueType.SCALAR, scalar=Scalar(3.0)),
                Attribute(name="ids", type=ValueType.RANGES,
                          ranges=Ranges([Range(1, 4), Range(6, 9)])),
                Attribute(name="zones", type=ValueType.SET, set=Set(["b", "a"]))]
    assert attributes_text(received) == {"gen": "3", "ids": "[1-4,6-9]", "zones": "{a,b}"}


def test_the_operator_api_types_attributes_as_offers_do() -> None:
    agent = AgentRecord(id="a1", hostname="h", address="127.0.0.1", port=5051,
                        total=Resources.parse("cpus:1"), attributes={"rack": "01", "gen": "3"})
    assert agent_info_json(agent)["attributes"] == [
        {"name": "gen", "type": "SCALAR", "scalar": {"value": 3.0}},
        {"name": "rack", "type": "TEXT", "text": {"value": "01"}}]


# Attribute names and values as ``--attributes`` takes them: no ";" (the separator),
# no ":" in a name, nothing blank, no edge whitespace (parse_attributes strips it).
_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=";"),
                min_size=1).map(str.strip).filter(bool)
_names = _text.filter(lambda s: ":" not in s)
_values = st.one_of(_text, st.floats(allow_nan=False, allow_infinity=False).map(repr),
                    st.integers().map(str), st.from_regex(r"[+-]?0*[0-9]{1,4}(\.[0-9]*)?",
                                                          fullmatch=True))


@given(st.dictionaries(_names, _values, max_size=6))
def test_text_survives_the_trip_through_a_typed_offer(written: dict[str, str]) -> None:
    flag = ";".join(f"{name}:{value}" for name, value in written.items())
    attributes = parse_attributes(flag)
    assert attributes == written
    assert offer_text_attributes(offer_of("a1", attributes)) == written


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_scalar_from_a_master_keeps_its_type_and_value_through_text(value: float) -> None:
    again = mesos_attribute("x", attribute_text(
        Attribute(name="x", type=ValueType.SCALAR, scalar=Scalar(value))))
    assert again.type == ValueType.SCALAR and again.scalar is not None
    assert again.scalar.value == value and math.isfinite(again.scalar.value)
    assert scalar_text(value) == attribute_text(again)
