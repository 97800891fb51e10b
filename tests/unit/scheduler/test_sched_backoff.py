"""Re-subscription backoff."""

from __future__ import annotations

import random

import pytest

from mesoslite.scheduler.backoff import Backoff


def test_grows_geometrically_and_caps() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0, factor=2.0, rng=random.Random(1))
    bounds = []
    for _ in range(7):
        bounds.append(backoff.bound())
        delay = backoff.next()
        assert bounds[-1] / 2 <= delay <= bounds[-1]
    assert bounds == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_jitter_spreads_delays() -> None:
    delays = {Backoff(1.0, 1.0, rng=random.Random(seed)).next() for seed in range(20)}
    assert len(delays) == 20 and all(0.5 <= d <= 1.0 for d in delays)


def test_reset_starts_over() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0)
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert backoff.bound() == 1.0


def test_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(initial=1.0, maximum=30.0, factor=10.0)
    for _ in range(2000):
        assert backoff.next() <= 30.0


@pytest.mark.parametrize("args", [(0, 1, 2), (2, 1, 2), (1, 2, 0.5)])
def test_rejects_bad_parameters(args: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(*args)
