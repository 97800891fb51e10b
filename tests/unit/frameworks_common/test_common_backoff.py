"""Launch backoff: Marathon's backoffSeconds x backoffFactor^n up to the maximum."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesoslite.framework.backoff import BackoffPolicy, LaunchBackoff


def test_marathon_defaults_grow_by_1_15_and_cap_at_300() -> None:
    policy = BackoffPolicy()
    assert policy.delay(0) == 0
    assert policy.delay(1) == 1.0
    assert policy.delay(2) == pytest.approx(1.15)
    assert policy.delay(3) == pytest.approx(1.3225)
    assert policy.delay(100) == 300.0
    assert policy.delay(10**9) == 300.0  # no overflow


def test_failures_push_the_next_launch_out_and_reset_forgets() -> None:
    backoff, policy = LaunchBackoff(), BackoffPolicy(2.0, 2.0, 10.0)
    assert backoff.ready_at("/a") == 0.0
    assert backoff.failed("/a", 100.0, policy) == 102.0
    assert backoff.failed("/a", 103.0, policy) == 107.0
    assert backoff.time_left("/a", 105.0) == 2.0
    assert backoff.failures("/a") == 2 and backoff.due() == {"/a": 107.0}
    backoff.reset("/a")
    assert backoff.failures("/a") == 0 and backoff.failed("/a", 200.0, policy) == 202.0


@given(st.floats(0, 100), st.floats(1, 3), st.floats(0, 1000), st.integers(0, 10**6))
def test_delay_is_monotone_and_bounded(initial, factor, maximum, n) -> None:
    policy = BackoffPolicy(initial, factor, maximum)
    assert 0 <= policy.delay(n) <= maximum
    assert policy.delay(n) <= policy.delay(n + 1) + 1e-9


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError):
        BackoffPolicy(1.0, 0.5, 10)
