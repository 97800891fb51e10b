"""The JSON instance format of ``mesoslite pack`` (see docs/placement.md).

``problem_from_json`` turns a decoded document into a ``Problem`` or raises
``PlacementInputError`` naming the first offending field.  Unknown keys are errors:
a misspelt ``"constriants"`` silently ignored would be a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from mesoslite.resources import ResourceError, Resources

from .model import Agent, PlacementInputError, Problem, Running, Task

T = TypeVar("T")

_TOP_KEYS = {"agents", "tasks", "running", "gangs", "objective", "time_limit_s", "seed", "workers"}


def _object(data: Any, where: str, keys: set[str], required: tuple[str, ...]) -> Mapping:
    if not isinstance(data, Mapping):
        raise PlacementInputError(where or "instance", "must be a JSON object")
    for key in data:
        if key not in keys:
            raise PlacementInputError(f"{where}.{key}" if where else key, "unknown field")
    for key in required:
        if key not in data:
            raise PlacementInputError(f"{where}.{key}" if where else key, "is required")
    return data


def _list(data: Any, where: str) -> list:
    if not isinstance(data, list):
        raise PlacementInputError(where, "must be a list")
    return data


def _each(items: list, where: str, build: Callable[[Any, str], T]) -> list[T]:
    out = []
    for i, item in enumerate(items):
        here = f"{where}[{i}]"
        try:
            out.append(build(item, here))
        except PlacementInputError as exc:
            # Errors raised by the dataclasses name fields relative to the item.
            if exc.field.startswith(here):
                raise
            raise exc.within(here) from None
    return out


def _agent(data: Any, where: str) -> Agent:
    data = _object(data, where, {"id", "resources", "attributes"}, ("id",))
    raw = data.get("resources", {})
    if not isinstance(raw, Mapping):
        raise PlacementInputError(f"{where}.resources", "must be an object")
    try:
        resources = Resources.from_mapping(raw, path=f"{where}.resources")
    except ResourceError as exc:
        path = exc.path if exc.path.startswith(where) else f"{where}.resources.{exc.path}"
        raise PlacementInputError(path, str(exc)) from None
    for name in list(resources.ranges) + list(resources.sets):
        if name != "ports":
            raise PlacementInputError(
                f"{where}.resources.{name}", "only scalars and 'ports' ranges are supported"
            )
    return Agent.from_resources(data["id"], resources, data.get("attributes"))


def _task(data: Any, where: str) -> Task:
    data = _object(data, where, {"id", "group", "resources", "constraints"}, ("id",))
    constraints = data.get("constraints", [])
    if not isinstance(constraints, list):
        raise PlacementInputError(f"{where}.constraints", "must be a list")
    return Task(
        id=data["id"],
        resources=data.get("resources", {}),
        group=data.get("group"),
        constraints=tuple(constraints),
    )


def _running(data: Any, where: str) -> Running:
    data = _object(data, where, {"group", "agent", "attributes"}, ("group", "agent"))
    return Running(data["group"], data["agent"], data.get("attributes"))


def _gang(data: Any, where: str) -> tuple[str, ...]:
    for i, task_id in enumerate(_list(data, where)):
        if not isinstance(task_id, str):
            raise PlacementInputError(f"{where}[{i}]", "must be a task id string")
    return tuple(data)


def problem_from_json(data: Any) -> Problem:
    """Build a ``Problem`` from a decoded JSON instance document."""
    data = _object(data, "", _TOP_KEYS, ("agents", "tasks"))
    agents = _each(_list(data["agents"], "agents"), "agents", _agent)
    tasks = _each(_list(data["tasks"], "tasks"), "tasks", _task)
    running = _each(_list(data.get("running", []), "running"), "running", _running)
    gangs = _each(_list(data.get("gangs", []), "gangs"), "gangs", _gang)
    options = {k: data[k] for k in ("objective", "time_limit_s", "seed", "workers") if k in data}
    return Problem(agents, tasks, running, gangs, **options)


def problem_to_json(problem: Problem) -> dict[str, Any]:
    """The inverse of ``problem_from_json`` (used by tests and the benchmark)."""

    def resources(agent: Agent) -> dict[str, Any]:
        out: dict[str, Any] = dict(agent.resources)
        if agent.ports:
            out["ports"] = [[b, e] for b, e in agent.ports]
        return out

    doc: dict[str, Any] = {
        "agents": [
            {"id": a.id, "resources": resources(a), "attributes": dict(a.attributes)}
            for a in problem.agents
        ],
        "tasks": [
            {
                "id": t.id,
                **({"group": t.group} if t.group is not None else {}),
                "resources": {**t.resources, **({"ports": t.ports} if t.ports else {})},
                "constraints": [c.to_list() for c in t.constraints],
            }
            for t in problem.tasks
        ],
        "running": [
            {
                "group": r.group,
                "agent": r.agent,
                **({"attributes": dict(r.attributes)} if r.attributes is not None else {}),
            }
            for r in problem.running
        ],
        "gangs": [list(g) for g in problem.gangs],
        "objective": problem.objective,
        "time_limit_s": problem.time_limit_s,
        "seed": problem.seed,
    }
    return doc
