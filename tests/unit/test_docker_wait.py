"""``wait_for_docker``: asks until the engine answers or the wait is over, on an
injected clock (no real waiting)."""

from __future__ import annotations

from mesoslite.agent.containerizers import wait_for_docker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_an_engine_answering_at_once_means_no_wait():
    clock = Clock()
    assert wait_for_docker(30, probe=lambda: True, sleep=clock.sleep, clock=lambda: clock.now)
    assert clock.slept == []


def test_it_waits_until_the_engine_answers():
    clock = Clock()
    up_at = 4.2  # dockerd back 4.2 s after the agent started
    assert wait_for_docker(30, probe=lambda: clock.now >= up_at, sleep=clock.sleep,
                           clock=lambda: clock.now)
    assert 4.2 <= clock.now < 4.2 + 0.5 + 1e-9


def test_it_gives_up_when_the_wait_is_over_and_not_later():
    clock = Clock()
    assert not wait_for_docker(3, probe=lambda: False, sleep=clock.sleep,
                               clock=lambda: clock.now)
    assert abs(clock.now - 3.0) < 1e-9


def test_no_wait_asked_for_means_one_question():
    clock = Clock()
    asked: list[float] = []
    assert not wait_for_docker(0, probe=lambda: asked.append(clock.now) or False,
                               sleep=clock.sleep, clock=lambda: clock.now)
    assert asked == [0.0] and clock.slept == []
