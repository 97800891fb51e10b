"""The agent calls' bodies (DRAIN_AGENT and friends), read from any JSON: a typed
stimulus with a duration that is not negative, or a 400 naming the field; never
anything else."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesoslite.httpapi import HTTPError
from mesoslite.master.operator_agents_http import _stimulus, read_duration
from mesoslite.master.stimuli import OperatorDrainsAgent

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["seconds", "nanos", "nanoseconds", "x"]), inner, max_size=3),
    max_leaves=8)
drain_bodies = st.fixed_dictionaries({}, optional={
    "agent_id": st.fixed_dictionaries({"value": st.text(max_size=5) | json_values})
    | json_values,
    "max_grace_period": json_values | st.text(alphabet="0123456789.s-", max_size=8),
    "mark_gone": json_values})
KINDS = ["DRAIN_AGENT", "DEACTIVATE_AGENT", "REACTIVATE_AGENT", "MARK_AGENT_GONE"]


@given(kind=st.sampled_from(KINDS), body=drain_bodies | json_values)
def test_any_body_is_a_stimulus_or_a_400_naming_the_field(kind, body):
    try:
        stimulus, actions = _stimulus(kind, body)
    except HTTPError as exc:
        assert exc.status == 400
        assert exc.details and exc.details[0][0].startswith(kind.lower())
        return
    assert stimulus.agent_id and actions[0] == kind.lower()
    if isinstance(stimulus, OperatorDrainsAgent):
        grace = stimulus.max_grace_period
        assert grace is None or (math.isfinite(grace) and grace >= 0)
        assert ("mark_agent_gone" in actions) == stimulus.mark_gone


@pytest.mark.parametrize(("value", "seconds"), [
    ({"seconds": 600}, 600.0), ({"seconds": 1, "nanos": 500_000_000}, 1.5), ("2.5s", 2.5),
    ({"nanoseconds": 3_000_000_000}, 3.0), ({"seconds": "7"}, 7.0), ("0s", 0.0)])
def test_the_three_duration_forms(value, seconds):
    assert read_duration(value, "d") == seconds


@pytest.mark.parametrize("value", [
    {"seconds": -1}, "-1s", "5", "5m", {}, {"seconds": 1.5}, {"nanos": 10**9},
    {"nanoseconds": True}, [], None, {"seconds": 1, "nanoseconds": 1}])
def test_what_is_not_a_duration(value):
    with pytest.raises(HTTPError) as caught:
        read_duration(value, "drain_agent.max_grace_period")
    assert caught.value.status == 400
    assert caught.value.details[0][0] == "drain_agent.max_grace_period"
