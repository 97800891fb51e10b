"""Input validation: every error names the offending field."""

from __future__ import annotations

import pytest

from mesoslite.placement import (
    Agent,
    Constraint,
    PlacementInputError,
    Problem,
    Task,
    problem_from_json,
    problem_to_json,
)
from mesoslite.resources import Resources


def doc(**overrides):
    base = {
        "agents": [{"id": "a1", "resources": {"cpus": 4, "mem": 1024, "ports": [[31000, 31009]]},
                    "attributes": {"rack": "r1"}}],
        "tasks": [{"id": "t1", "group": "web", "resources": {"cpus": 1, "ports": 2},
                   "constraints": [["hostname", "UNIQUE"], ["rack", "MAX_PER", "2"]]}],
    }
    base.update(overrides)
    return base


def error_field(data) -> str:
    with pytest.raises(PlacementInputError) as info:
        problem_from_json(data)
    return info.value.field


def test_a_valid_document_round_trips() -> None:
    problem = problem_from_json(doc(running=[{"group": "web", "agent": "a9"}], gangs=[["t1"]],
                                    objective="spread", time_limit_s=0.5, seed=3))
    assert problem.agents[0].ports == ((31000, 31009),)
    assert problem.agents[0].hostname == "a1"
    assert problem.tasks[0].ports == 2
    assert problem.tasks[0].constraints[1] == Constraint("rack", "MAX_PER", "2")
    assert problem_from_json(problem_to_json(problem)) == problem


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "instance"),
        ({"tasks": []}, "agents"),
        (doc(agents={}), "agents"),
        (doc(extra=1), "extra"),
        (doc(agents=[{"id": "a1", "resources": {"cpus": -1}}]), "agents[0].resources.cpus"),
        (doc(agents=[{"id": "a1", "resources": {"cpus": "x"}}]), "agents[0].resources.cpus"),
        (doc(agents=[{"id": "a1", "resources": {"cpus": True}}]), "agents[0].resources.cpus"),
        (doc(agents=[{"id": "a1", "resources": {"ports": [[5, 1]]}}]), "agents[0].resources.ports"),
        (doc(agents=[{"id": "a1", "resources": {"disks": [[1, 5]]}}]),
         "agents[0].resources.disks"),
        (doc(agents=[{"id": 7}]), "agents[0].id"),
        (doc(agents=[{"id": "a1"}, {"id": "a1"}]), "agents[1].id"),
        (doc(agents=[{"id": "a1", "attributes": {"rack": [1]}}]), "agents[0].attributes.rack"),
        (doc(agents=[{"id": "a1", "color": "red"}]), "agents[0].color"),
        (doc(tasks=[{"id": "t1", "resources": {"ports": 1.5}}]), "tasks[0].resources.ports"),
        (doc(tasks=[{"id": "t1", "resources": {"mem": float("nan")}}]), "tasks[0].resources.mem"),
        (doc(tasks=[{"id": "t1", "constraints": [["rack", "NEAR"]]}]),
         "tasks[0].constraints[0][1]"),
        (doc(tasks=[{"id": "t1", "constraints": [["rack", "MAX_PER", "0"]]}]),
         "tasks[0].constraints[0][2]"),
        (doc(tasks=[{"id": "t1", "constraints": [["rack", "LIKE"]]}]),
         "tasks[0].constraints[0][2]"),
        (doc(tasks=[{"id": "t1", "constraints": [["rack", "LIKE", "("]]}]),
         "tasks[0].constraints[0][2]"),
        (doc(tasks=[{"id": "t1", "constraints": [["rack"]]}]), "tasks[0].constraints[0]"),
        (doc(tasks=[{"id": "t1", "constraints": "rack"}]), "tasks[0].constraints"),
        (doc(tasks=[{"id": "t1", "group": "g", "constraints": [["rack", "UNIQUE"]]},
                    {"id": "t2", "group": "g"}]), "tasks[1].constraints"),
        (doc(tasks=[{"id": "t1"}, {"id": "t1"}]), "tasks[1].id"),
        (doc(gangs=[["t1", "t9"]]), "gangs[0][1]"),
        (doc(gangs=[["t1"], ["t1"]]), "gangs[1][0]"),
        (doc(gangs=[[]]), "gangs[0]"),
        (doc(running=[{"group": "web"}]), "running[0].agent"),
        (doc(objective="fast"), "objective"),
        (doc(time_limit_s=0), "time_limit_s"),
        (doc(seed=-1), "seed"),
    ],
)
def test_errors_name_the_field(data, field: str) -> None:
    assert error_field(data) == field


def test_error_message_is_one_line_with_the_field() -> None:
    with pytest.raises(PlacementInputError) as info:
        problem_from_json(doc(tasks=[{"id": "t1", "constraints": [["rack", "MAX_PER", "x"]]}]))
    assert str(info.value) == "tasks[0].constraints[0][2]: MAX_PER needs a positive integer"
    assert "\n" not in str(info.value)


def test_agent_from_resources_keeps_scalars_and_ports() -> None:
    res = Resources.parse("cpus:2;mem:1024;gpus:1;ports:[31000-31002,31005-31005];zones:{a}")
    agent = Agent.from_resources("a1", res, {"rack": "r1", "slots": 4})
    assert agent.resources == {"cpus": 2.0, "mem": 1024.0, "gpus": 1.0}
    assert agent.ports == ((31000, 31002), (31005, 31005))
    assert agent.port_count == 4
    assert agent.attributes == {"rack": "r1", "slots": "4"}


def test_task_accepts_ports_inside_resources_and_marathon_tuples() -> None:
    task = Task("t1", {"cpus": 0.5, "ports": 2}, group="g",
                constraints=(["rack", "GROUP_BY"], ("zone", "is", "a")))
    assert task.ports == 2 and task.resources == {"cpus": 0.5}
    assert task.constraints == (Constraint("rack", "GROUP_BY"), Constraint("zone", "IS", "a"))


def test_problem_rejects_bad_objective_in_python_api() -> None:
    with pytest.raises(PlacementInputError, match="objective"):
        Problem([], [], objective="pack")


def test_scalars_keep_three_decimals() -> None:
    assert Task("t", {"cpus": 0.12345}).resources["cpus"] == 0.123
