"""The benchmark's instance families, solved and validated (windows included)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from mesoslite.placement import place, whole

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
