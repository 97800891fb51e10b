"""Behaviour of ``place``: constraints, gangs, ports, objectives, reasons, statistics."""

from __future__ import annotations

from collections import Counter

import pytest

from mesoslite.placement import Agent, Problem, Reason, Running, Task, place

from .validator import validate


def agent(i: int, rack: str | None = None, cpus: float = 8, mem: float = 4096,
          ports=((31000, 31009),), **attrs: str) -> Agent:
    if rack is not None:
        attrs["rack"] = rack
    return Agent(f"a{i}", {"cpus": cpus, "mem": mem}, ports, {"hostname": f"h{i}", **attrs})


def tasks(n: int, group: str = "g", cpus: float = 1, mem: float = 128, ports: int = 0,
          constraints=(), first: int = 0) -> list[Task]:
    return [Task(f"t{first + i}", {"cpus": cpus, "mem": mem}, ports, group, constraints)
            for i in range(n)]


def solve(problem: Problem):
    answer = place(problem)
    assert validate(problem, answer) == []
    return answer


def racks_of(problem: Problem, answer) -> Counter:
    rack = {a.id: a.attributes.get("rack") for a in problem.agents}
    return Counter(rack[a] for a in answer.assignments.values())


def test_binpack_packs_and_spread_spreads() -> None:
    agents = [agent(i) for i in range(4)]
    work = tasks(8, cpus=1)
    packed = solve(Problem(agents, work))
    spread = solve(Problem(agents, work, objective="spread"))
    assert packed.agents_used == 1 and packed.status == "optimal"
    assert sorted(Counter(spread.assignments.values()).values()) == [2, 2, 2, 2]


def test_solver_beats_first_fit_decreasing_and_proves_it() -> None:
    # Two dimensions: one-dimensional problems get bin completion, which finds 2.
    agents = [Agent(f"a{i}", {"mem": 12, "cpus": 12}) for i in range(4)]
    work = [Task(f"t{i}", {"mem": m, "cpus": 1}) for i, m in enumerate([6, 5, 4, 3, 3, 3])]
    answer = solve(Problem(agents, work))
    assert answer.greedy_agents_used == 3  # FFD: {6,5} {4,3,3} {3}
    assert answer.agents_used == 2 and answer.lower_bound == 2
    assert answer.status == "optimal"


def test_unique_hostname_counts_running_tasks() -> None:
    problem = Problem([agent(i) for i in range(3)],
                      tasks(3, constraints=(("hostname", "UNIQUE"),)),
                      running=[Running("g", "a1")])
    answer = solve(problem)
    assert sorted(answer.assignments.values()) == ["a0", "a2"]
    (why,) = answer.unplaced.values()
    assert why == "UNIQUE hostname excludes 3"


def test_max_per_rack() -> None:
    problem = Problem([agent(0, "r1"), agent(1, "r1"), agent(2, "r1"), agent(3, "r2")],
                      tasks(5, constraints=(("rack", "MAX_PER", "2"),)))
    answer = solve(problem)
    assert racks_of(problem, answer) == {"r1": 2, "r2": 2}  # two on r2's single agent
    assert answer.unplaced == {"t4": "MAX_PER rack 2 excludes 4"}


def test_cluster_follows_running_tasks_or_the_given_value() -> None:
    agents = [agent(0, "r1"), agent(1, "r2"), agent(2, "r2"), agent(3, "r3")]
    follow = Problem(agents, tasks(4, constraints=(("rack", "CLUSTER"),)),
                     running=[Running("g", "gone", {"rack": "r3"})])
    assert set(racks_of(follow, solve(follow))) == {"r3"}
    given = Problem(agents, tasks(4, constraints=(("rack", "CLUSTER", "r2"),)))
    assert racks_of(given, solve(given)) == {"r2": 4}
    free = Problem(agents, tasks(20, cpus=1, constraints=(("rack", "CLUSTER"),)))
    answer = solve(free)
    assert racks_of(free, answer) == {"r2": 16}  # the rack with room for most


def test_group_by_spreads_evenly_and_honours_the_minimum_of_values() -> None:
    agents = [agent(0, "r1"), agent(1, "r1"), agent(2, "r2"), agent(3, "r3")]
    even = Problem(agents, tasks(6, constraints=(("rack", "GROUP_BY"),)))
    assert racks_of(even, solve(even)) == {"r1": 2, "r2": 2, "r3": 2}
    # Four values wanted, three exist: at most one task per value.
    few = Problem(agents, tasks(6, constraints=(("rack", "GROUP_BY", "4"),)))
    answer = solve(few)
    assert racks_of(few, answer) == {"r1": 1, "r2": 1, "r3": 1}
    assert set(answer.unplaced.values()) == {"GROUP_BY rack 4 excludes 4"}


def test_group_by_counts_running_tasks() -> None:
    agents = [agent(0, "r1"), agent(1, "r2")]
    problem = Problem(agents, tasks(2, constraints=(("rack", "GROUP_BY"),)),
                      running=[Running("g", "a0"), Running("g", "a0")])
    assert racks_of(problem, solve(problem)) == {"r2": 2}


def test_like_unlike_is_and_missing_attributes() -> None:
    agents = [agent(0, "r1", zone="a"), agent(1, "r2", zone="b"), agent(2, zone="a"),
              agent(3, "r10", zone="a")]
    like = Problem(agents, tasks(1, constraints=(("rack", "LIKE", "r[0-9]"),)))
    assert set(solve(like).assignments.values()) <= {"a0", "a1"}
    unlike = Problem(agents, tasks(4, cpus=8, constraints=(("rack", "UNLIKE", "r1.*"),)))
    assert sorted(solve(unlike).assignments.values()) == ["a1", "a2"]
    is_a = Problem(agents, tasks(4, cpus=8, constraints=(("zone", "IS", "a"),)))
    assert sorted(solve(is_a).assignments.values()) == ["a0", "a2", "a3"]
    nowhere = Problem(agents, tasks(1, constraints=(("rack", "LIKE", "x"),)))
    assert solve(nowhere).unplaced["t0"] == "LIKE rack x excludes 3; no rack attribute on 1 agent"


def test_counted_reasons_read_like_the_issue() -> None:
    agents = [agent(i, mem=1024) for i in range(14)] + [agent(14 + i, mem=65536)
                                                        for i in range(3)]
    running = [Running("web", f"a{14 + i}") for i in range(3)]
    problem = Problem(agents, tasks(1, "web", mem=8192, constraints=(("hostname", "UNIQUE"),)),
                      running=running)
    answer = solve(problem)
    assert answer.unplaced == {"t0": "insufficient mem on 14 agents; UNIQUE hostname excludes 3"}
    reasons = [r.reason for r in answer.why["t0"]]
    assert reasons == [Reason.INSUFFICIENT, Reason.UNIQUE]
    assert [r.agents for r in answer.why["t0"]] == [14, 3]


def test_gangs_are_all_or_nothing() -> None:
    agents = [agent(0, cpus=4), agent(1, cpus=4)]
    work = tasks(3, "batch", cpus=3) + tasks(1, "other", cpus=1, first=3)
    problem = Problem(agents, work, gangs=[("t0", "t1", "t2")])
    answer = solve(problem)
    assert set(answer.assignments) == {"t3"}
    assert answer.why["t0"][0].reason == Reason.GANG
    assert answer.unplaced["t0"] == "fits on 2 agents, but its gang of 3 does not fit whole"


def test_gang_blocked_by_one_member() -> None:
    problem = Problem([agent(0)], tasks(1, "a", cpus=1) + tasks(1, "b", cpus=64, first=1),
                      gangs=[("t0", "t1")])
    answer = solve(problem)
    assert answer.assignments == {}
    assert answer.unplaced["t0"] == "fits on 1 agent, but gang member t1 fits on no agent"
    assert answer.unplaced["t1"] == "insufficient cpus on 1 agent"


def test_ports_are_distinct_per_agent_and_counted() -> None:
    agents = [agent(0, ports=((31000, 31001), (31005, 31005))), agent(1, ports=())]
    answer = solve(Problem(agents, tasks(3, ports=1) + tasks(1, ports=1, first=3)))
    assert sorted(p for ports in answer.ports.values() for p in ports) == [31000, 31001, 31005]
    (why,) = answer.unplaced.values()
    assert why == "insufficient ports on 2 agents"


def test_no_agents_and_no_tasks() -> None:
    answer = solve(Problem([], tasks(2)))
    assert set(answer.unplaced.values()) == {"no agents offered"}
    empty = solve(Problem([agent(0)], []))
    assert empty.assignments == {} and empty.status == "optimal" and empty.agents_used == 0


def test_tiny_time_limit_still_answers_validly() -> None:
    problem = Problem([agent(i, "r1" if i % 2 else "r2") for i in range(30)],
                      tasks(120, cpus=1.5, constraints=(("rack", "MAX_PER", "40"),)),
                      time_limit_s=0.001)
    answer = solve(problem)
    assert len(answer.assignments) == 80
    assert answer.status in ("greedy", "optimal")


@pytest.mark.parametrize("objective", ["binpack", "spread"])
def test_unplaced_reasons_are_from_the_closed_set(objective: str) -> None:
    agents = [agent(i, "r1" if i < 3 else None, cpus=2) for i in range(5)]
    work = tasks(6, cpus=2, constraints=(("rack", "MAX_PER", "2"),))
    answer = solve(Problem(agents, work, objective=objective))
    assert answer.unplaced
    for rejections in answer.why.values():
        assert sum(r.agents for r in rejections) >= 5
        assert all(isinstance(r.reason, Reason) for r in rejections)
