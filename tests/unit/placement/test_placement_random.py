"""Random problems: every answer is valid, and tiny ones are optimal (brute force)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from mesoslite.placement import Problem, place
from mesoslite.placement import budget as cost

from .instances import brute_force, problems, puzzles
from .validator import validate

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
def no_stall(monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches run to the time limit: optimality, not the stall rule, is under test
    (tiny problems are proven in milliseconds, but a busy machine may stretch them)."""
    monkeypatch.setattr(cost, "STALL_MIN_S", 3600.0)


@SETTINGS
@given(problems())
def test_every_answer_is_valid(problem: Problem) -> None:
    answer = place(problem)
    assert validate(problem, answer) == []
    assert set(answer.why) == set(answer.unplaced)


@SETTINGS
@given(problems(max_agents=3, max_tasks=5))
@pytest.mark.usefixtures("no_stall")
def test_tiny_answers_match_brute_force(problem: Problem) -> None:
    answer = place(problem)
    best = brute_force(problem)
    assert len(answer.assignments) == best.placed
    if answer.all_placeable is False:
        assert best.placed < len(problem.tasks)
    if problem.objective == "binpack":
        assert answer.agents_used == best.agents
        assert answer.lower_bound <= best.agents
    if answer.status == "optimal" and problem.objective == "binpack":
        assert answer.lower_bound == answer.agents_used


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_agents=6, max_tasks=12))
def test_larger_answers_are_valid_and_bounded(problem: Problem) -> None:
    answer = place(problem)
    assert validate(problem, answer) == []
    if answer.assignments:
        assert 1 <= answer.lower_bound <= answer.agents_used


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(puzzles())
@pytest.mark.usefixtures("no_stall")
def test_tight_packings_match_brute_force(problem: Problem) -> None:
    answer = place(problem)
    assert validate(problem, answer) == []
    best = brute_force(problem)
    assert (len(answer.assignments), answer.agents_used) == (best.placed, best.agents)
