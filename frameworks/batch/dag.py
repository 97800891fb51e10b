"""Pipelines as DAGs of steps: validation, order, which steps may start, drawing.

Pure functions over ``StepSpec`` lists.  Rules: a step starts once every step it
``depends_on`` has succeeded, or failed with ``allow_failure``; a step whose
dependency failed (without ``allow_failure``), was skipped or was cancelled is
skipped.  ``validate_dag`` rejects duplicate names, unknown names and cycles with the
path of the offending field, so a submission fails before anything runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Protocol


class StepLike(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def depends_on(self) -> tuple[str, ...]: ...

    @property
    def allow_failure(self) -> bool: ...


class DagError(ValueError):
    """``path`` names the offending field, e.g. ``steps[3].depends_on[0]``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def validate_dag(steps: Sequence[StepLike]) -> list[str]:
    """Check names and edges; returns the step names in topological order.

    The order is stable: among steps whose dependencies are met, input order wins.
    """
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.name in index:
            raise DagError(f"steps[{i}].name", f"duplicate step name {step.name!r}")
        index[step.name] = i
    for i, step in enumerate(steps):
        for j, dep in enumerate(step.depends_on):
            where = f"steps[{i}].depends_on[{j}]"
            if dep == step.name:
                raise DagError(where, f"step {step.name!r} depends on itself")
            if dep not in index:
                raise DagError(where, f"unknown step {dep!r}")
            if dep in step.depends_on[:j]:
                raise DagError(where, f"{dep!r} is listed twice")
    cycle = _find_cycle(steps, index)
    if cycle is not None:
        first = cycle[0]
        i = index[first]
        j = steps[i].depends_on.index(cycle[1])
        raise DagError(f"steps[{i}].depends_on[{j}]",
                       "cycle: " + " -> ".join([*cycle, first]) + " (each depends on the next)")
    return topological_order(steps)


def _find_cycle(steps: Sequence[StepLike], index: Mapping[str, int]) -> list[str] | None:
    """A cycle as a list of names (each depends on the next), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {s.name: WHITE for s in steps}
    for root in steps:
        if colour[root.name] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(root.name, 0)]
        path: list[str] = [root.name]
        colour[root.name] = GREY
        while stack:
            name, k = stack[-1]
            deps = steps[index[name]].depends_on
            if k == len(deps):
                colour[name] = BLACK
                stack.pop()
                path.pop()
                continue
            stack[-1] = (name, k + 1)
            dep = deps[k]
            if colour[dep] == GREY:
                return path[path.index(dep):]
            if colour[dep] == WHITE:
                colour[dep] = GREY
                stack.append((dep, 0))
                path.append(dep)
    return None


def topological_order(steps: Sequence[StepLike]) -> list[str]:
    """Names in dependency order; among steps that are ready, the one listed first
    goes first (Kahn's algorithm with a heap keyed by input position)."""
    position = {s.name: i for i, s in enumerate(steps)}
    missing = {s.name: len(s.depends_on) for s in steps}
    children = dependants(steps)
    ready = [position[s.name] for s in steps if not s.depends_on]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = steps[heapq.heappop(ready)].name
        order.append(name)
        for child in children[name]:
            missing[child] -= 1
            if missing[child] == 0:
                heapq.heappush(ready, position[child])
    if len(order) != len(steps):
        raise DagError("steps", "the graph has a cycle")
    return order


def depths(steps: Sequence[StepLike]) -> dict[str, int]:
    """Longest distance from a root, per step (roots are 0)."""
    by_name = {s.name: s for s in steps}
    out: dict[str, int] = {}
    for name in topological_order(steps):
        deps = by_name[name].depends_on
        out[name] = 1 + max(out[d] for d in deps) if deps else 0
    return out


def dependants(steps: Sequence[StepLike]) -> dict[str, list[str]]:
    """For each step, the steps that depend on it directly."""
    out: dict[str, list[str]] = {s.name: [] for s in steps}
    for step in steps:
        for dep in step.depends_on:
            out[dep].append(step.name)
    return out


# Step states a dependency may be in, as the reconciler names them.
SUCCEEDED, FAILED, SKIPPED, CANCELLED = "SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"


def gate(step: StepLike, states: Mapping[str, str], allow: Mapping[str, bool]) -> str:
    """Whether ``step`` may start given its dependencies' states.

    Returns ``"ready"`` (every dependency succeeded, or failed with allow_failure),
    ``"skip"`` (one failed without allow_failure, was skipped or cancelled) or
    ``"wait"``.  ``allow`` maps step names to their ``allow_failure``.
    """
    waiting = False
    for dep in step.depends_on:
        state = states.get(dep)
        if state == SUCCEEDED or (state == FAILED and allow.get(dep, False)):
            continue
        if state in (FAILED, SKIPPED, CANCELLED):
            return "skip"
        waiting = True
    return "wait" if waiting else "ready"


def render(steps: Sequence[StepLike], labels: Mapping[str, str] | None = None,
           sizes: Mapping[str, int] | None = None) -> str:
    """The DAG as indented text, one step a line, in topological order.

    ``labels`` (e.g. step states) are appended after the name; ``sizes`` shows ``x4``
    for steps of several tasks.  A step with several dependencies says which.
    """
    by_name = {s.name: s for s in steps}
    level = depths(steps)
    lines = []
    width = max(len(s.name) + 2 * level[s.name] + 4 for s in steps)
    for name in topological_order(steps):
        step = by_name[name]
        mark = "└─ " if step.depends_on else ""
        indent = "   " * max(level[name] - 1, 0) if step.depends_on else ""
        size = f" x{sizes[name]}" if sizes and sizes.get(name, 1) > 1 else ""
        text = f"{indent}{mark}{name}{size}"
        notes = []
        if len(step.depends_on) > 1 or (step.depends_on and level[step.depends_on[0]]
                                         != level[name] - 1):
            notes.append("after " + ", ".join(step.depends_on))
        if step.allow_failure:
            notes.append("allow_failure")
        label = labels.get(name, "") if labels else ""
        tail = "  ".join(x for x in [label, f"({'; '.join(notes)})" if notes else ""] if x)
        lines.append(f"{text.ljust(width + 4)}{tail}".rstrip())
    return "\n".join(lines)
