"""The soak's fault schedule: the same seed gives the same schedule, faults overlap but
never two on one component at once, each ends inside the phase, and every kind comes
up in a long enough run."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.testing.soak.faults import ALL_KINDS, Kind, _busy_keys, schedule


@given(seed=st.integers(0, 2**31 - 1), duration=st.floats(10, 600))
@settings(max_examples=200, deadline=None)
def test_schedules_are_replayable_and_never_hit_a_component_twice_at_once(seed, duration):
    faults = schedule(seed, duration)
    assert faults == schedule(seed, duration)
    for f in faults:
        assert 0 < f.start < f.end <= duration + 1e-6
        assert f.duration >= min(3.0, duration - f.start) - 1e-6
    for i, a in enumerate(faults):
        for b in faults[i + 1:]:
            if a.start <= b.start < a.end:  # b starts while a is active
                assert not (_busy_keys(a.kind, a.target) & _busy_keys(b.kind, b.target)), (a, b)


def test_faults_overlap_and_every_kind_comes_up_in_thirty_minutes():
    faults = schedule(17, 1800)
    assert {f.kind for f in faults} == set(ALL_KINDS)
    overlapping = sum(1 for i, a in enumerate(faults) for b in faults[i + 1:]
                      if a.start <= b.start < a.end)
    assert overlapping > len(faults) // 4
    assert schedule(18, 1800) != faults


def test_a_kind_left_out_never_comes_up():
    kinds = tuple(k for k in ALL_KINDS if k is not Kind.RESTART_DOCKER)
    assert all(f.kind is not Kind.RESTART_DOCKER for f in schedule(5, 1800, kinds))
