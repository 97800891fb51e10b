"""The Resources value type: algebra (property tests), text and JSON forms."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesoslite.resources import ResourceError, Resources

scalar_values = st.floats(min_value=0, max_value=1e6, allow_nan=False).map(
    lambda v: round(v, 3))
port_ranges = st.lists(
    st.tuples(st.integers(0, 65535), st.integers(0, 200)).map(lambda t: (t[0], t[0] + t[1])),
    max_size=4)
resources = st.builds(
    lambda s, r, sets: Resources(s, {"ports": r}, sets),
    st.dictionaries(st.sampled_from(["cpus", "mem", "disk", "gpus"]), scalar_values, max_size=4),
    port_ranges,
    st.dictionaries(st.sampled_from(["zones"]), st.frozensets(st.sampled_from("abc")),
                    max_size=1),
)


@given(resources, resources)
def test_add_then_subtract_gives_back_the_original(a: Resources, b: Resources) -> None:
    # Ranges and sets overlap-merge on add, so only disjoint ones round-trip exactly.
    b_disjoint = b - a
    assert (a + b_disjoint) - b_disjoint == a


@given(resources, resources)
def test_a_sum_contains_its_parts(a: Resources, b: Resources) -> None:
    total = a + b
    assert total.contains(a)
    assert total.contains(b)
    assert a <= total


@given(resources, resources)
def test_addition_commutes(a: Resources, b: Resources) -> None:
    assert a + b == b + a


@given(resources, resources)
def test_subtraction_never_goes_negative_and_stays_contained(a: Resources,
                                                             b: Resources) -> None:
    diff = a - b
    assert all(v > 0 for v in diff.scalars.values())
    assert a.contains(diff)


@given(resources, resources)
def test_sums_and_differences_are_in_normal_form(a: Resources, b: Resources) -> None:
    # The algebra builds its results without re-checking them (a failover parses and
    # adds thousands); they must equal what the checked constructor makes of them.
    for result in (a + b, a - b, b - a):
        assert Resources(result.scalars, result.ranges, result.sets) == result
        assert all(isinstance(rs, tuple) for rs in result.ranges.values())


@given(resources)
def test_text_form_round_trips(r: Resources) -> None:
    assert Resources.parse(str(r)) == r


@given(resources)
def test_json_form_round_trips(r: Resources) -> None:
    assert Resources.from_json(r.to_json()) == r
    assert Resources.from_json(r.to_json(role="web")) == r


def test_parse_mesos_text() -> None:
    r = Resources.parse("cpus:2;mem:1024;ports:[31000-32000];disk(*):10;zones:{a,b}")
    assert r.scalar("cpus") == 2 and r.scalar("mem") == 1024 and r.scalar("disk") == 10
    assert r.ports() == ((31000, 32000),)
    assert r.sets["zones"] == frozenset({"a", "b"})
    assert str(r) == "cpus:2;disk:10;mem:1024;ports:[31000-32000];zones:{a,b}"


def test_scalars_keep_three_decimals() -> None:
    r = Resources.of(cpus=0.1) + Resources.of(cpus=0.2)
    assert r.scalar("cpus") == 0.3
    assert (Resources.of(cpus=1) - Resources.of(cpus=0.9)).scalar("cpus") == 0.1


def test_ranges_subtract_split_and_merge() -> None:
    r = Resources.parse("ports:[31000-31010]") - Resources.parse("ports:[31003-31004]")
    assert r.ports() == ((31000, 31002), (31005, 31010))
    assert r + Resources.parse("ports:[31003-31004]") == Resources.parse("ports:[31000-31010]")


def test_take_ports_picks_the_lowest() -> None:
    r = Resources.parse("ports:[31000-31001,31005-31009]")
    assert r.take_ports(3).port_list() == [31000, 31001, 31005]
    with pytest.raises(ResourceError):
        r.take_ports(8)


@pytest.mark.parametrize("text, path", [
    ("cpus:abc", "cpus"),
    ("cpus:-1", "cpus"),
    ("ports:[5-3]", "ports"),
    ("ports:[31000-", "ports"),
    ("cpus(web):1", "cpus"),
    ("justtext", "justtext"),
])
def test_bad_text_names_the_resource(text: str, path: str) -> None:
    with pytest.raises(ResourceError) as info:
        Resources.parse(text)
    assert info.value.path == path


@pytest.mark.parametrize("item, path", [
    ({"name": "cpus", "type": "SCALAR", "scalar": {"value": "x"}}, "resources[0]"),
    ({"name": "cpus", "type": "SCALAR", "scalar": {"value": float("nan")}},
     "resources[0].scalar.value"),
    ({"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 1}]}},
     "resources[0].ranges.range"),
    ({"name": "x", "type": "BOGUS"}, "resources[0].type"),
    ({"name": "bad name", "type": "SCALAR", "scalar": {"value": 1}}, "resources[0].name"),
])
def test_bad_json_names_the_field(item: dict, path: str) -> None:
    with pytest.raises(ResourceError) as info:
        Resources.from_json([item])
    assert info.value.path == path


def test_contains_is_strict_about_ranges() -> None:
    have = Resources.parse("cpus:1;ports:[31000-31005]")
    assert have.contains(Resources.parse("ports:[31002-31003]"))
    assert not have.contains(Resources.parse("ports:[31004-31006]"))
    assert not have.contains(Resources.parse("cpus:1.001"))
