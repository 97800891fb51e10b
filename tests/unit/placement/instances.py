"""Random placement problems (hypothesis strategies) and a brute-force solver.

Problems are small but touch everything: shared and unique attribute values,
missing attributes, every constraint operator, running tasks on known and unknown
agents, gangs, ports, zero demands, both objectives.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hypothesis import strategies as st

from mesoslite.placement import Agent, Problem, Running, Task

from .validator import violations

RACKS = ("r0", "r1", "r2")
CONSTRAINTS = (
    ("hostname", "UNIQUE"),
    ("rack", "UNIQUE"),
    ("rack", "MAX_PER", "2"),
    ("hostname", "MAX_PER", "1"),
    ("rack", "GROUP_BY"),
    ("rack", "GROUP_BY", "3"),
    ("rack", "CLUSTER"),
    ("rack", "CLUSTER", "r1"),
    ("rack", "LIKE", "r[01]"),
    ("rack", "UNLIKE", "r0"),
    ("zone", "IS", "a"),
    ("hostname", "GROUP_BY"),
)


@st.composite
def agents(draw, max_agents: int = 4) -> list[Agent]:
    n = draw(st.integers(0, max_agents))
    out = []
    for i in range(n):
        attrs = {}
        if draw(st.booleans()):  # sometimes two agents share a hostname attribute
            attrs["hostname"] = f"h{draw(st.integers(0, n))}"
        rack = draw(st.sampled_from(RACKS + (None,)))
        if rack is not None:
            attrs["rack"] = rack
        if draw(st.booleans()):
            attrs["zone"] = draw(st.sampled_from(("a", "b")))
        ports = ()
        if draw(st.booleans()):
            begin = draw(st.integers(31000, 31010))
            ports = ((begin, begin + draw(st.integers(0, 3))),)
        resources = {"cpus": draw(st.integers(0, 8)), "mem": draw(st.integers(0, 4)) * 512}
        out.append(Agent(f"a{i}", resources, ports, attrs))
    return out


@st.composite
def problems(draw, max_agents: int = 4, max_tasks: int = 6) -> Problem:
    agent_list = draw(agents(max_agents))
    n_groups = draw(st.integers(1, 3))
    group_constraints = [
        draw(st.lists(st.sampled_from(CONSTRAINTS), max_size=2, unique=True))
        for _ in range(n_groups)
    ]
    tasks = []
    for i in range(draw(st.integers(0, max_tasks))):
        g = draw(st.integers(-1, n_groups - 1))  # -1: no group
        resources = {"cpus": draw(st.integers(0, 4)), "mem": draw(st.integers(0, 2)) * 512}
        if draw(st.booleans()):
            resources["gpus"] = draw(st.integers(0, 1))
        tasks.append(Task(
            f"t{i}", resources, ports=draw(st.integers(0, 2)),
            group=f"g{g}" if g >= 0 else None,
            constraints=tuple(group_constraints[g]) if g >= 0 else (),
        ))
    running = []
    for _ in range(draw(st.integers(0, 3))):
        group = f"g{draw(st.integers(0, n_groups - 1))}"
        if agent_list and draw(st.booleans()):
            running.append(Running(group, draw(st.sampled_from(agent_list)).id))
        else:
            running.append(Running(group, "elsewhere", {"rack": draw(st.sampled_from(RACKS))}))
    ids = [t.id for t in tasks]
    gangs = []
    if len(ids) >= 2 and draw(st.booleans()):
        members = draw(st.lists(st.sampled_from(ids), min_size=2, max_size=3, unique=True))
        gangs.append(tuple(members))
    objective = draw(st.sampled_from(("binpack", "binpack", "spread")))
    return Problem(agent_list, tasks, running, gangs, objective=objective, time_limit_s=0.5,
                   seed=draw(st.integers(0, 3)), workers=1)


@st.composite
def puzzles(draw) -> Problem:
    """Tight packings of identical agents, where first fit is often not optimal."""
    capacity = draw(st.integers(8, 14))
    agent_list = [Agent(f"a{i}", {"cpus": capacity, "mem": capacity}) for i in range(3)]
    tasks = [Task(f"t{i}", {"cpus": draw(st.integers(2, 8)), "mem": draw(st.integers(1, 8))})
             for i in range(draw(st.integers(4, 6)))]
    gangs = [("t0", "t1")] if draw(st.booleans()) else []
    return Problem(agent_list, tasks, gangs=gangs, time_limit_s=0.5, workers=1)


@dataclass
class Best:
    placed: int
    agents: int


def brute_force(problem: Problem) -> Best:
    """Most tasks placed and, among those answers, fewest agents: by enumeration."""
    choices = [a.id for a in problem.agents] + [None]
    ids = [t.id for t in problem.tasks]
    best = Best(0, 0)
    for combo in itertools.product(choices, repeat=len(ids)):
        assignments = {t: a for t, a in zip(ids, combo, strict=True) if a is not None}
        placed, used = len(assignments), len(set(assignments.values()))
        if (placed, -used) <= (best.placed, -best.agents):
            continue
        if not violations(problem, assignments):
            best = Best(placed, used)
    return best
