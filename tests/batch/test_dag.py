"""Pipelines: validation with paths, topological order, gating, drawing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frameworks.batch.dag import DagError, dependants, gate, render, validate_dag
from frameworks.batch.model import SpecError, parse_job


@dataclass(frozen=True)
class S:
    name: str
    depends_on: tuple[str, ...] = ()
    allow_failure: bool = False


def test_order_respects_dependencies_and_input_order():
    steps = [S("package", ("test",)), S("lint"), S("test", ("lint",)), S("docs")]
    assert validate_dag(steps) == ["lint", "test", "package", "docs"]


def test_unknown_name_is_rejected_with_its_path():
    with pytest.raises(DagError) as err:
        validate_dag([S("a"), S("b", ("a", "tset"))])
    assert err.value.path == "steps[1].depends_on[1]"
    assert "unknown step 'tset'" in err.value.message


def test_cycle_is_rejected_naming_the_cycle():
    with pytest.raises(DagError) as err:
        validate_dag([S("a", ("c",)), S("b", ("a",)), S("c", ("b",)), S("d")])
    assert err.value.path.startswith("steps[")
    assert "cycle" in err.value.message
    for name in "abc":
        assert name in err.value.message


@pytest.mark.parametrize("steps, path", [
    ([S("a", ("a",))], "steps[0].depends_on[0]"),
    ([S("a"), S("a")], "steps[1].name"),
    ([S("a"), S("b", ("a", "a"))], "steps[1].depends_on[1]"),
])
def test_other_bad_graphs(steps, path):
    with pytest.raises(DagError) as err:
        validate_dag(steps)
    assert err.value.path == path


def test_submission_error_carries_the_path():
    doc = {"id": "ci", "command": "true", "steps": [
        {"name": "lint"}, {"name": "test", "depends_on": ["lnit"]}]}
    with pytest.raises(SpecError) as err:
        parse_job(doc)
    assert err.value.details == [("steps[1].depends_on[0]", "unknown step 'lnit'")]


def test_gate():
    step = S("c", ("a", "b"))
    allow = {"a": False, "b": True}
    assert gate(step, {"a": "SUCCEEDED", "b": "RUNNING"}, allow) == "wait"
    assert gate(step, {"a": "SUCCEEDED", "b": "FAILED"}, allow) == "ready"
    assert gate(step, {"a": "FAILED", "b": "SUCCEEDED"}, allow) == "skip"
    assert gate(step, {"a": "SKIPPED", "b": "RUNNING"}, allow) == "skip"
    assert gate(S("root"), {}, {}) == "ready"


def test_render_shows_every_step_once_in_order():
    steps = [S("lint"), S("test", ("lint",)), S("package", ("test",)), S("docs"),
             S("publish", ("package", "docs"))]
    text = render(steps, {"lint": "SUCCEEDED"}, {"test": 4})
    lines = text.splitlines()
    assert [ln.split()[0].strip("└─") or ln.split()[1] for ln in lines]
    assert len(lines) == 5
    assert "test x4" in text and "SUCCEEDED" in lines[0]
    assert "after package, docs" in text
    assert text.index("lint") < text.index("test") < text.index("package")


@st.composite
def dags(draw):
    """Random DAGs: step i may depend only on earlier steps (so no cycles), listed in
    a shuffled order."""
    n = draw(st.integers(1, 12))
    names = [f"s{i}" for i in range(n)]
    steps = []
    for i, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:i]), unique=True, max_size=3)) if i else []
        steps.append(S(name, tuple(deps)))
    return draw(st.permutations(steps))


@given(dags())
def test_any_dag_orders_every_step_after_its_dependencies(steps):
    order = validate_dag(steps)
    assert sorted(order) == sorted(s.name for s in steps)
    position = {name: i for i, name in enumerate(order)}
    for step in steps:
        for dep in step.depends_on:
            assert position[dep] < position[step.name]
    children = dependants(steps)
    assert sum(len(v) for v in children.values()) == sum(len(s.depends_on) for s in steps)


@given(dags(), st.data())
def test_adding_a_back_edge_is_always_rejected(steps, data):
    order = validate_dag(steps)
    if len(order) < 2:
        return
    i = data.draw(st.integers(0, len(order) - 2))
    j = data.draw(st.integers(i + 1, len(order) - 1))
    early, late = order[i], order[j]
    # early must now also wait for late; a path late ->* early exists only if late
    # depends (transitively) on early; add that edge too, guaranteeing a cycle.
    by_name = {s.name: s for s in steps}
    edited = []
    for s in steps:
        deps = s.depends_on
        if s.name == early:
            deps = (*deps, late)
        if s.name == late and early not in deps:
            deps = (*deps, early)
        edited.append(S(s.name, deps))
    assert by_name  # (silence unused)
    with pytest.raises(DagError) as err:
        validate_dag(edited)
    assert err.value.path.startswith("steps[")
