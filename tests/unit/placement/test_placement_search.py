"""When the search stops, what it proves, and the bounds it proves with."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslite.placement import Agent, Problem, Task, completion, cpsat, place
from mesoslite.placement import budget as cost
from mesoslite.placement.bounds import agent_lower_bound, martello_toth_l2
from mesoslite.placement.budget import Budget
from mesoslite.placement.greedy import greedy
from mesoslite.placement.instance import build_instance

from .validator import validate


def no_solver(*args, **kwargs):
    raise AssertionError("CP-SAT was called")


def test_a_greedy_answer_meeting_the_bound_returns_without_the_solver(monkeypatch) -> None:
    monkeypatch.setattr(cpsat, "solve", no_solver)
    agents = [Agent(f"a{i}", {"cpus": 8, "mem": 8192}) for i in range(4)]
    problem = Problem(agents, [Task(f"t{i}", {"cpus": 2, "mem": 1024}) for i in range(12)],
                      time_limit_s=30.0)
    answer = place(problem)
    assert validate(problem, answer) == []
    assert answer.status == "optimal" and answer.agents_used == answer.lower_bound == 3
    assert answer.solve_ms == 0.0 and answer.all_placeable is True


def test_the_stall_horizon_moves_out_with_each_gain() -> None:
    budget = Budget(10.0)
    budget.charge(0.1)
    assert budget.horizon is None and budget.left == pytest.approx(7.4)
    budget.progress()  # the search starts: as long again as it took to get here
    assert budget.horizon == pytest.approx(0.1 + max(cost.STALL_MIN_S, cost.STALL_RATIO * 0.1))
    assert budget.stalled and budget.left == pytest.approx(budget.horizon - 0.1)
    budget.charge(0.15)
    budget.progress()  # a gain
    assert budget.gains == 1
    assert budget.horizon == pytest.approx(0.25 + max(cost.STALL_MIN_S, cost.STALL_RATIO * 0.25))
    budget.charge(7.0)
    assert not budget.stalled or budget.left <= 0  # the time limit binds in the end


def test_all_placeable_says_whether_every_task_can_go() -> None:
    agents = [Agent(f"a{i}", {"cpus": 4}) for i in range(2)]
    fits = place(Problem(agents, [Task(f"t{i}", {"cpus": 2}) for i in range(4)]))
    assert fits.all_placeable is True
    # Each task fits an agent alone, but only two of the three fit at once: proven.
    crowded = place(Problem(agents, [Task(f"t{i}", {"cpus": 3}) for i in range(3)]))
    assert len(crowded.assignments) == 2 and crowded.all_placeable is False
    too_big = place(Problem(agents, [Task("t0", {"cpus": 1}), Task("t1", {"cpus": 5})]))
    assert too_big.all_placeable is False
    assert too_big.unplaced == {"t1": "insufficient cpus on 2 agents"}


def test_martello_toth_l2_beats_the_volume_bound() -> None:
    # Three 6s each need an agent of their own, and the two 5s share a fourth.
    agents = [Agent(f"a{i}", {"mem": 10}) for i in range(5)]
    problem = Problem(agents, [Task(f"t{i}", {"mem": m}) for i, m in enumerate([6, 6, 6, 5, 5])])
    assert martello_toth_l2(np.array([6, 6, 6, 5, 5]), 10) == 4
    assert agent_lower_bound(build_instance(problem), 5) == 4
    answer = place(problem)
    assert answer.status == "optimal" and answer.agents_used == answer.lower_bound == 4


def _l2_by_definition(sizes: list[int], cap: int) -> int:
    best = 0
    for k in range(cap // 2 + 1):
        j1 = [w for w in sizes if w > cap - k]
        j2 = [w for w in sizes if cap / 2 < w <= cap - k]
        j3 = [w for w in sizes if k <= w <= cap / 2]
        room = len(j2) * cap - sum(j2)
        best = max(best, len(j1) + len(j2) + max(0, math.ceil((sum(j3) - room) / cap)))
    return best


def _fewest_bins(sizes: list[int], cap: int) -> int:
    for bins in range(1, len(sizes) + 1):
        for combo in itertools.product(range(bins), repeat=len(sizes)):
            load = [0] * bins
            for w, b in zip(sizes, combo, strict=True):
                load[b] += w
            if max(load) <= cap:
                return bins
    return 0


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 20).flatmap(
    lambda cap: st.tuples(st.just(cap), st.lists(st.integers(1, cap), min_size=1, max_size=6))))
def test_martello_toth_l2_is_its_definition_and_a_lower_bound(case) -> None:
    cap, sizes = case
    l2 = martello_toth_l2(np.array(sizes), cap)
    assert l2 == _l2_by_definition(sizes, cap)
    assert math.ceil(sum(sizes) / cap) <= l2 <= _fewest_bins(sizes, cap)


def test_bin_completion_fills_agents_exactly_where_first_fit_strands_room() -> None:
    # Bins of 10, sizes 5 4 4 3 2 2: first fit decreasing 5+4, 4+3+2, 2 (three
    # agents); completion 5+3+2, 4+4+2 (two, both full).
    agents = [Agent(f"a{i}", {"mem": 10}) for i in range(4)]
    work = [Task(f"t{i}", {"mem": m}) for i, m in enumerate([5, 4, 4, 3, 2, 2])]
    inst = build_instance(Problem(agents, work))
    assert completion.applies(inst)
    assign = completion.complete(inst)
    assert (assign >= 0).all() and len(set(assign.tolist())) == 2
    loads = np.bincount(assign, weights=inst.dem[:, 0], minlength=4)
    assert (loads <= inst.cap[:, 0]).all()
    assert greedy(inst).name == "completion"


def test_bin_completion_only_for_one_dimension_without_constraints() -> None:
    agents = [Agent(f"a{i}", {"cpus": 4, "mem": 10}) for i in range(2)]
    two_dims = [Task("t0", {"cpus": 1, "mem": 2})]
    one_dim = [Task("t0", {"mem": 2}, group="g", constraints=[("hostname", "UNIQUE")])]
    assert not completion.applies(build_instance(Problem(agents, two_dims)))
    assert not completion.applies(build_instance(Problem(agents, one_dim)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=12),
       st.lists(st.integers(0, 14), min_size=1, max_size=4))
def test_bin_completion_respects_capacities(sizes, caps) -> None:
    agents = [Agent(f"a{i}", {"mem": c}) for i, c in enumerate(caps)]
    inst = build_instance(Problem(agents, [Task(f"t{i}", {"mem": m})
                                           for i, m in enumerate(sizes)]))
    assign = completion.complete(inst)
    placed = assign >= 0
    loads = np.bincount(assign[placed], weights=inst.dem[placed, 0], minlength=len(caps))
    assert (loads <= inst.cap[:, 0]).all()
    # Every agent that is left with room took the largest task still out that fits.
    for t in np.flatnonzero(~placed):
        assert (inst.cap[:, 0] - loads < inst.dem[t, 0]).all()
