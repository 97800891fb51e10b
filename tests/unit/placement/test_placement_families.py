"""The benchmark's instance families, solved and validated (windows, repairs, stalls)."""

from __future__ import annotations

import importlib.util
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from mesoslite.placement import engine, place, repair, whole
from mesoslite.placement.budget import Budget
from mesoslite.placement.greedy import greedy
from mesoslite.placement.instance import agents_used, build_instance
from mesoslite.placement.local import eliminate
from mesoslite.placement.repair import restarts

from .validator import validate, violations


def _load_benchmark():
    """benchmarks/ is a directory of scripts, not a package: load the file itself."""
    path = Path(__file__).resolve().parents[3] / "benchmarks" / "placement.py"
    spec = importlib.util.spec_from_file_location("placement_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()
FAMILIES, with_options = bench.FAMILIES, bench.with_options


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_small_family_instances(family: str) -> None:
    problem = with_options(FAMILIES[family](50, 20, np.random.default_rng(7)), time_limit_s=0.3)
    answer = place(problem)
    assert validate(problem, answer) == []
    assert answer.lower_bound <= answer.agents_used <= answer.greedy_agents_used


@pytest.mark.parametrize(("n_tasks", "n_agents", "seed"), [(50, 20, 1), (200, 60, 3),
                                                          (1000, 200, 4)])
def test_constrained_family_is_feasible_by_construction(n_tasks, n_agents, seed) -> None:
    problem, planted = bench.planted(n_tasks, n_agents, np.random.default_rng(seed))
    assert len(problem.tasks) == n_tasks and problem.gangs and problem.running
    kinds = {c.operator for t in problem.tasks for c in t.constraints}
    assert kinds == {"UNIQUE", "MAX_PER", "GROUP_BY", "LIKE", "CLUSTER"}
    assert len(planted) == n_tasks
    assert violations(problem, planted) == []


@pytest.mark.parametrize("objective", ["binpack", "spread"])
def test_windows_alone_on_a_medium_instance(monkeypatch, objective: str) -> None:
    # No whole-problem model: only the decomposition may improve the start.
    monkeypatch.setattr(whole, "FULL_MODEL_PAIRS", 0)
    problem = with_options(FAMILIES["constrained"](200, 60, np.random.default_rng(5)),
                           time_limit_s=0.4, objective=objective)
    answer = place(problem)
    assert validate(problem, answer) == []
    if objective == "spread":
        assert answer.status in ("greedy", "optimal")


def _bench_problem(family: str, n_tasks: int, n_agents: int, seed: int, **options):
    """The benchmark's instance (same seeding as its family table)."""
    rng = np.random.default_rng([zlib.crc32(family.encode()), n_tasks, seed])
    return with_options(FAMILIES[family](n_tasks, n_agents, rng), seed=seed, **options)


@pytest.mark.parametrize(("n_tasks", "n_agents", "seed", "left_out"),
                         [(200, 60, 10, 1), (200, 60, 11, 4)])
def test_priority_restarts_place_every_planted_task(n_tasks, n_agents, seed,
                                                    left_out) -> None:
    # GROUP_BY groups: the greedy's last task of a group finds its only allowed
    # rack full.  Going first, it takes the room the others find elsewhere.
    problem = _bench_problem("constrained", n_tasks, n_agents, seed, time_limit_s=1.0)
    inst = build_instance(problem)
    start = greedy(inst).assign
    assert int((start < 0).sum()) == left_out
    assert (restarts(inst, start, Budget(1.0)) >= 0).all()
    answer = place(problem)
    assert validate(problem, answer) == []
    assert answer.greedy_placed == n_tasks - left_out
    assert not answer.unplaced and answer.all_placeable is True


def test_targeted_repair_models_place_every_planted_task(monkeypatch) -> None:
    # Neither priority restarts nor the whole-problem repair: only the small models
    # around each unplaced task (deterministic time only, so the result is too).
    monkeypatch.setattr(repair, "RESTARTS", 0)
    monkeypatch.setattr(repair, "REPAIR_SOLVE_S", 60.0)
    monkeypatch.setattr(whole, "FULL_MODEL_PAIRS", 0)
    problem = _bench_problem("constrained", 50, 20, 9, time_limit_s=60.0)
    inst = build_instance(problem)
    start = greedy(inst).assign
    assert int((start < 0).sum()) == 2
    repaired, _ = repair.repair(inst, start, Budget(60.0), seed=0)
    assert (repaired >= 0).all()
    assert violations(problem, {problem.tasks[t].id: problem.agents[a].id
                                for t, a in enumerate(repaired)}) == []
    answer = place(problem)
    assert validate(problem, answer) == [] and answer.all_placeable is True


def test_a_search_that_finds_nothing_stops_long_before_the_limit(monkeypatch) -> None:
    # Greedy 16 agents, lower bound 15; no search finds 15 (not in 10 s either).
    budgets: list[Budget] = []

    class Recorded(Budget):
        def __init__(self, limit_s: float) -> None:
            super().__init__(limit_s)
            budgets.append(self)

    monkeypatch.setattr(engine, "Budget", Recorded)
    rng = np.random.default_rng([100, 100, 10])  # the benchmark's latency instance
    problem = with_options(FAMILIES["uniform"](100, 100, rng), time_limit_s=60.0, seed=10)
    answer = place(problem)
    assert validate(problem, answer) == []
    assert (answer.greedy_agents_used, answer.lower_bound) == (16, 15)
    (budget,) = budgets
    assert budget.horizon is not None and budget.horizon < 1.0
    assert budget.spent < 1.0 < budget.total  # charged seconds, not a clock reading


def test_bin_elimination_empties_agents_that_constrained_first_fit_leaves() -> None:
    rng = np.random.default_rng([100, 100, 9])  # the benchmark's latency instance
    problem = with_options(FAMILIES["constrained"](100, 100, rng), seed=9)
    inst = build_instance(problem)
    start = greedy(inst).assign
    better = eliminate(inst, start, Budget(60.0))
    assert agents_used(better) < agents_used(start) - 2
    assert (better >= 0).all()
    assert violations(problem, {problem.tasks[t].id: problem.agents[a].id
                                for t, a in enumerate(better)}) == []
