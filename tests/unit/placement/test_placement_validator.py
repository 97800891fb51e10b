"""The validator must catch broken answers, or the other tests prove nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mesoslite.placement import Agent, Placement, Problem, Running, Task

from .validator import validate, violations


def problem(*constraints, running=(), gangs=()) -> Problem:
    agents = [Agent(f"a{i}", {"cpus": 4}, ((31000, 31001),),
                    {"rack": f"r{i % 2}", "zone": "z"}) for i in range(4)]
    tasks = [Task(f"t{i}", {"cpus": 1}, 1, "g", constraints) for i in range(4)]
    return Problem(agents, tasks, running, gangs)


def answer(assignments: dict[str, str], **changes) -> Placement:
    used: dict[str, int] = {}
    ports = {}
    for t, a in assignments.items():
        ports[t] = [31000 + used.get(a, 0)]
        used[a] = used.get(a, 0) + 1
    base = Placement(
        assignments=assignments, ports=ports,
        unplaced={t: "x" for t in ("t0", "t1", "t2", "t3") if t not in assignments},
        agents_used=len(set(assignments.values())), lower_bound=1,
        greedy_agents_used=len(set(assignments.values())), solve_ms=0.0, status="greedy",
        greedy_placed=len(assignments), all_placeable=True if len(assignments) == 4 else None,
    )
    return replace(base, **changes)


SPREAD = {"t0": "a0", "t1": "a1", "t2": "a2", "t3": "a3"}


def test_a_valid_answer_passes() -> None:
    assert validate(problem(), answer(SPREAD)) == []


@pytest.mark.parametrize(
    ("constraints", "assignments"),
    [
        ((("hostname", "UNIQUE"),), {"t0": "a0", "t1": "a0"}),
        ((("rack", "MAX_PER", "1"),), {"t0": "a0", "t1": "a2"}),
        ((("rack", "CLUSTER"),), {"t0": "a0", "t1": "a1"}),
        ((("rack", "CLUSTER", "r1"),), {"t0": "a0"}),
        ((("rack", "GROUP_BY"),), {"t0": "a0", "t1": "a2"}),
        ((("rack", "GROUP_BY", "3"),), {"t0": "a0", "t1": "a2"}),
        ((("rack", "LIKE", "r1"),), {"t0": "a0"}),
        ((("rack", "UNLIKE", "r0"),), {"t0": "a0"}),
        ((("zone", "IS", "y"),), {"t0": "a0"}),
        ((("colour", "UNIQUE"),), {"t0": "a0"}),
    ],
)
def test_constraint_violations_are_caught(constraints, assignments) -> None:
    assert violations(problem(*constraints), assignments)


def test_running_tasks_count() -> None:
    p = problem(("hostname", "UNIQUE"), running=[Running("g", "a0")])
    assert violations(p, {"t0": "a0"})
    assert not violations(p, {"t0": "a1"})


def test_capacity_ports_gangs_and_statistics_are_checked() -> None:
    p = problem(gangs=[("t0", "t1")])
    crowded = {f"t{i}": "a0" for i in range(4)}
    assert any("ports" in e for e in validate(p, answer(crowded)))
    heavy = Problem(p.agents, [Task(f"t{i}", {"cpus": 3}) for i in range(2)])
    assert any("over capacity" in e for e in validate(heavy, answer({"t0": "a0", "t1": "a0"})))
    assert any("gang" in e for e in validate(p, answer({"t0": "a0"})))
    same_port = answer(SPREAD, ports={"t0": [31000], "t1": [31000], "t2": [31000],
                                      "t3": [31005]})
    assert any("not offered" in e for e in validate(p, same_port))
    twice = answer({"t2": "a0", "t3": "a0"}, ports={"t2": [31001], "t3": [31001]})
    assert any("given twice" in e for e in validate(problem(), twice))
    assert validate(problem(), answer(SPREAD, agents_used=3))
    assert validate(problem(), answer(SPREAD, lower_bound=5))
    assert validate(problem(), answer(SPREAD, greedy_placed=5))
    assert validate(problem(), answer(SPREAD, greedy_agents_used=3))
    assert validate(problem(), answer(SPREAD, unplaced={"t0": "x"}))
    assert validate(problem(), answer(SPREAD, status="great"))
    assert validate(problem(), answer(SPREAD, all_placeable=None))
    assert validate(problem(), answer({"t2": "a0", "t3": "a1"}, all_placeable=True))
