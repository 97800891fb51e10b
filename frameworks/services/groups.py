"""Marathon's groups as a tree over the flat app table.  Pure: no I/O, no clock.

Apps stay the unit the framework runs (``ServicesState.apps``, keyed by their full
id); a group is a path prefix.  Groups exist implicitly (every ancestor of an app id)
or explicitly (``GroupRecord``: created through ``/v2/groups``, possibly empty, with
``dependencies`` and a version).  ``GroupVersion`` is the definition of one group's
subtree at one version (its apps' definitions and its nested groups), what
``PUT /v2/groups/{id} {"version": V}`` restores.  ``GroupPlan`` is a deployment over
several apps (one per group change): its steps come from the dependency graph, as
Marathon's deployment plan orders them.

Dependencies as Marathon resolves them (``RootGroup.applicationDependencies``): an
app or group naming an app depends on that app; naming a group, on every app under
it; a group's dependencies hold for every app under the group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from frameworks.services.model import App, encode_app

ROOT = "/"
CYCLE_MESSAGE = "Dependency graph has cyclic dependencies."


class GroupRecord(msgspec.Struct, omit_defaults=True):
    """A group created or changed through ``/v2/groups``."""

    id: str
    version: str
    dependencies: list[str] = []
    enforce_role: bool | None = None  # accepted and echoed, not acted on


class GroupVersion(msgspec.Struct, omit_defaults=True):
    """``tree``: ``{"id", "apps": [stored app], "groups": [tree], "dependencies",
    "version"}`` (apps as ``encode_app`` stores them)."""

    id: str
    version: str
    tree: dict[str, Any]


class PlanAction(msgspec.Struct):
    action: str  # ScaleApplication, RestartApplication, StopApplication
    app: str


class GroupPlan(msgspec.Struct, omit_defaults=True):
    """One deployment over many apps: ``members`` maps the per-app deployments still
    running (their id) to their app; ``step`` is the step being carried out."""

    id: str
    group_id: str
    version: str
    started_at: float
    steps: list[list[PlanAction]]
    members: dict[str, str] = {}
    step: int = 0


# ---------------------------------------------------------------- paths


def parent_of(path: str) -> str:
    """``/a/b`` -> ``/a``; ``/a`` -> ``/``."""
    return path.rsplit("/", 1)[0] or ROOT


def ancestors(path: str) -> list[str]:
    """The groups above ``path``, nearest first, ending with the root."""
    out = []
    while path != ROOT:
        path = parent_of(path)
        out.append(path)
    return out


def is_under(path: str, group_id: str) -> bool:
    """Whether ``path`` lies strictly inside ``group_id``."""
    return path != group_id and (group_id == ROOT or path.startswith(group_id + "/"))


def group_ids(app_ids: Iterable[str], records: Iterable[str]) -> set[str]:
    """Every group: the root, the explicit ones and every ancestor of an app or group."""
    out = {ROOT}
    for path in records:
        out.add(path)
        out.update(ancestors(path))
    for app_id in app_ids:
        out.update(ancestors(app_id))
    return out


def children(group_id: str, groups: Iterable[str]) -> list[str]:
    return sorted(g for g in groups if g != ROOT and parent_of(g) == group_id)


def apps_under(group_id: str, app_ids: Iterable[str]) -> list[str]:
    return sorted(a for a in app_ids if is_under(a, group_id))


def group_version(group_id: str, apps: Mapping[str, App],
                  records: Mapping[str, GroupRecord]) -> str | None:
    """The latest change inside the group: its own record's or any app's or nested
    group's version below it (so the root's version moves with every change)."""
    versions = [r.version for gid, r in records.items()
                if gid == group_id or is_under(gid, group_id)]
    versions += [a.version for a in apps.values() if a.version and is_under(a.id, group_id)]
    return max(versions, default=None)


# ---------------------------------------------------------------- dependencies


def _expand(dep: str, app_ids: set[str], groups: set[str]) -> set[str] | None:
    """The apps ``dep`` stands for; None when it names nothing."""
    if dep in app_ids:
        return {dep}
    if dep in groups:
        return {a for a in app_ids if is_under(a, dep)}
    return None


def dependency_edges(apps: Mapping[str, App], records: Mapping[str, GroupRecord],
                     keep_unknown: bool = False) -> dict[str, set[str]]:
    """app -> the apps it depends on: its own dependencies and those of every group
    above it.  Ids naming nothing are dropped (as Marathon does), or with
    ``keep_unknown`` kept for the app's own (so it waits for them, as before groups
    existed).  Self-dependencies are kept: they are cycles."""
    app_ids = set(apps)
    groups = group_ids(app_ids, records)
    edges: dict[str, set[str]] = {a: set() for a in app_ids}
    for app_id, app in apps.items():
        for dep in app.dependencies:
            expanded = _expand(dep, app_ids, groups)
            edges[app_id] |= expanded if expanded is not None else (
                {dep} if keep_unknown else set())
        for group_id in ancestors(app_id):
            record = records.get(group_id)
            for dep in record.dependencies if record else ():
                edges[app_id] |= _expand(dep, app_ids, groups) or set()
    return edges


def effective_dependencies(apps: Mapping[str, App], records: Mapping[str, GroupRecord]
                           ) -> dict[str, tuple[str, ...]]:
    """Every app's dependencies as the reconciler waits for them (``dependency_edges``
    with unknown ids kept, without the app itself)."""
    edges = dependency_edges(apps, records, keep_unknown=True)
    return {a: tuple(sorted(deps - {a})) for a, deps in edges.items()}


def has_cycle(edges: Mapping[str, set[str]]) -> bool:
    """Whether the dependency graph has a cycle (an app depending on itself too)."""
    colour: dict[str, int] = {}  # 1: on the path, 2: done
    for start in edges:
        if colour.get(start):
            continue
        stack = [(start, iter(sorted(edges[start])))]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
            elif colour.get(nxt) == 1:
                return True
            elif not colour.get(nxt) and nxt in edges:
                colour[nxt] = 1
                stack.append((nxt, iter(sorted(edges[nxt]))))
    return False


def dependency_levels(app_ids: Iterable[str], edges: Mapping[str, set[str]]
                      ) -> list[list[str]]:
    """``app_ids`` in layers: an app's layer is the length of the longest dependency
    path from it (Marathon's ``runSpecsGroupedByLongestPath``), so what an app
    depends on is always in an earlier layer.  ``edges`` must be acyclic."""
    depth: dict[str, int] = {}

    def longest(node: str) -> int:
        if node not in depth:
            depth[node] = 0  # acyclic: never read before it is set below
            depth[node] = 1 + max((longest(d) for d in edges.get(node, ()) if d in edges),
                                  default=0)
        return depth[node]

    layers: dict[int, list[str]] = {}
    for app_id in sorted(app_ids):
        layers.setdefault(longest(app_id), []).append(app_id)
    return [layers[k] for k in sorted(layers)]


# ---------------------------------------------------------------- stored versions


def tree_json(group_id: str, apps: Mapping[str, App], records: Mapping[str, GroupRecord],
              version: str) -> dict[str, Any]:
    """The definition of ``group_id``'s subtree, as a ``GroupVersion`` keeps it."""
    groups = group_ids(apps, records)
    record = records.get(group_id)
    out: dict[str, Any] = {
        "id": group_id,
        "apps": [encode_app(apps[a]) for a in sorted(apps) if parent_of(a) == group_id],
        "groups": [tree_json(g, apps, records, version) for g in children(group_id, groups)],
        "dependencies": list(record.dependencies) if record else [],
        "version": version,
    }
    if record is not None and record.enforce_role is not None:
        out["enforceRole"] = record.enforce_role
    return out
