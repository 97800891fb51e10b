"""Group operations with Marathon's semantics: create, update (structural, ``scaleBy``,
revert to a ``version``) and delete.  Pure state changes, committed by the caller.

Each computes the target (apps and explicit groups after the change) from the
current state, validates it as a whole (no cycle in the dependency graph, no app
where a group is), checks that no deployment holds an app it moves (409 unless
``force``), then applies it: the apps it creates, changes or removes go through the
app operations (``operations.py``) as one ``GroupPlan`` (``group_plans.py``), the
explicit groups are written, and the changed group and every group above it get a
stored version.  Apps whose definition does not change are left alone.

Pods (``/v2/pods``) live in the same id tree: a group holding only pods exists, an
app or group may not take a pod's id, and deleting a group deletes the pods under it
(each with its own stop deployment).  Group bodies do not carry pods (group_parse).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

import msgspec

from frameworks.services import group_plans, operations, pod_ops
from frameworks.services.group_parse import GroupSpec
from frameworks.services.groups import (
    CYCLE_MESSAGE,
    ROOT,
    GroupPlan,
    GroupRecord,
    GroupVersion,
    ancestors,
    apps_under,
    children,
    dependency_edges,
    group_ids,
    group_version,
    has_cycle,
    is_under,
    parent_of,
    tree_json,
)
from frameworks.services.model import App, decode_app, next_version, same_config
from frameworks.services.state import Conflict, NotFound, ServicesState
from frameworks.services.validation import Invalid


@dataclass
class Target:
    """The apps and explicit groups a change leads to."""

    apps: dict[str, App]
    groups: dict[str, GroupRecord]
    touched: set[str] = field(default_factory=set)  # groups given a new version

    @classmethod
    def of(cls, state: ServicesState) -> Target:
        return cls(dict(state.apps), dict(state.groups))

    def all_groups(self) -> set[str]:
        return group_ids(self.apps, self.groups)

    def remove(self, group_id: str) -> None:
        """``group_id`` and everything in it."""
        for app_id in apps_under(group_id, self.apps):
            del self.apps[app_id]
        for gid in [g for g in self.groups if g == group_id or is_under(g, group_id)]:
            del self.groups[gid]


def exists(state: ServicesState, group_id: str) -> bool:
    return group_id in group_ids([*state.apps, *state.pods], state.groups)


def pods_in(state: ServicesState, group_id: str) -> list[str]:
    """The ids of the pods anywhere under ``group_id``."""
    return sorted(p for p in state.pods if group_id == ROOT or is_under(p, group_id))


def create_group(state: ServicesState, spec: GroupSpec, now: float, force: bool = False
                 ) -> GroupPlan:
    """POST /v2/groups: 409 if the group (or an app at its path) exists."""
    if spec.id in state.apps:
        raise Conflict(f"An app with the path {spec.id} already exists.")
    if spec.id in state.pods:
        raise Conflict(f"A pod with the path {spec.id} already exists.")
    if exists(state, spec.id):
        raise Conflict(f"Group {spec.id} is already created. Use PUT to change this group.")
    return update_group(state, spec, now, force)


def update_group(state: ServicesState, spec: GroupSpec, now: float, force: bool = False
                 ) -> GroupPlan:
    """PUT /v2/groups/{id}: revert to ``spec.version``, or scale every app in the tree
    by ``spec.scaleBy``, or else apply the structural update (creating the group)."""
    version = next_version(now, group_version(ROOT, state.apps, state.groups))
    target = Target.of(state)
    if spec.version is not None:
        stored = state.group_versions.get(spec.id, {}).get(spec.version)
        if stored is None:
            raise NotFound(f"Group {spec.id} not available in version {spec.version}")
        _restructure(target, _spec_of(stored.tree), version)
    elif spec.scale_by is not None:
        if not exists(state, spec.id):
            raise NotFound(f"Group '{spec.id}' does not exist")
        for app_id in apps_under(spec.id, target.apps):
            app = target.apps[app_id]
            target.apps[app_id] = msgspec.structs.replace(
                app, instances=math.ceil(app.instances * spec.scale_by))
        _touch(target, spec.id, version)
    else:
        _restructure(target, spec, version)
    return _apply(state, target, spec.id, version, now, force)


def delete_group(state: ServicesState, group_id: str, now: float, force: bool = False
                 ) -> GroupPlan:
    """DELETE /v2/groups/{id}: the group, its groups and all their apps and pods."""
    if not exists(state, group_id):
        raise NotFound(f"Group '{group_id}' does not exist")
    pods = pods_in(state, group_id)
    if not force:  # checked before anything changes
        _refuse_held(state, pods, "Pod")
    version = next_version(now, group_version(ROOT, state.apps, state.groups))
    target = Target.of(state)
    target.remove(group_id)
    parent = parent_of(group_id) if group_id != ROOT else ROOT
    _touch(target, parent, version)
    plan = _apply(state, target, parent, version, now, force)
    for pod_id in pods:
        pod_ops.delete_pod(state, pod_id, now, force)
    return plan


# ---------------------------------------------------------------- the target


def _touch(target: Target, group_id: str, version: str) -> None:
    """``group_id`` and the groups above it change version (as Marathon's putGroup)."""
    for gid in [group_id, *ancestors(group_id)]:
        record = target.groups.get(gid) or GroupRecord(id=gid, version=version)
        target.groups[gid] = msgspec.structs.replace(record, version=version)
        target.touched.add(gid)


def _restructure(target: Target, spec: GroupSpec, version: str) -> None:
    """Marathon's structural update: the apps, groups and dependencies given replace
    the group's own; what is not given stays; nested groups recurse."""
    _touch(target, spec.id, version)
    record = target.groups[spec.id]
    target.groups[spec.id] = GroupRecord(
        id=spec.id, version=version,
        dependencies=record.dependencies if spec.dependencies is None else spec.dependencies,
        enforce_role=record.enforce_role if spec.enforce_role is None else spec.enforce_role)
    if spec.apps is not None:
        for app_id in [a for a in target.apps if parent_of(a) == spec.id]:
            del target.apps[app_id]
        for app in spec.apps:
            target.apps[app.id] = app
    if spec.groups is not None:
        listed = {g.id for g in spec.groups}
        for child in children(spec.id, target.all_groups()):
            if child not in listed:
                target.remove(child)
        for group in spec.groups:
            _restructure(target, group, version)


def _spec_of(tree: dict[str, Any]) -> GroupSpec:
    """A stored version (``groups.tree_json``) as the update that restores it whole."""
    return GroupSpec(id=tree["id"], apps=[decode_app(a) for a in tree["apps"]],
                     groups=[_spec_of(g) for g in tree["groups"]],
                     dependencies=list(tree["dependencies"]),
                     enforce_role=tree.get("enforceRole"))


def _refuse_held(state: ServicesState, ids: list[str], what: str) -> None:
    """409 naming the plans whose deployments hold any of ``ids``."""
    held = [d for i in ids for d in state.deployments_of(i)]
    if held:
        plans = list(dict.fromkeys(group_plans.holding(state, d) for d in held))
        raise Conflict(f"{what} is locked by one or more deployments. Override with the "
                       f"option '?force=true'. View details at '/v2/deployments/{plans[0]}'.",
                       plans)


def _check(state: ServicesState, target: Target) -> None:
    """422 unless the target is a valid tree with an acyclic dependency graph; 409 if
    an app or group would take a pod's id."""
    groups = target.all_groups()
    taken = sorted(p for p in state.pods if p in groups or p in target.apps)
    if taken:
        raise Conflict(f"A pod with the path {taken[0]} already exists.")
    clashes = sorted(a for a in target.apps if a in groups)
    if clashes:
        raise Invalid([("/", [f"{a} is both an app and a group" for a in clashes])])
    if has_cycle(dependency_edges(target.apps, target.groups)):
        raise Invalid([("/", [CYCLE_MESSAGE])])


def _diff(state: ServicesState, target: Target) -> tuple[list[str], list[str], list[str]]:
    """(created, changed, removed) app ids.  Service ports a changed app leaves at 0
    are filled first, so an unchanged definition is recognised as such."""
    created = sorted(a for a in target.apps if a not in state.apps)
    removed = sorted(a for a in state.apps if a not in target.apps)
    changed = []
    for app_id in sorted(set(target.apps) & set(state.apps)):
        current, app = state.apps[app_id], target.apps[app_id]
        if app is current:
            continue
        state.assign_service_ports(app, current)
        if not same_config(app, current) or app.instances != current.instances:
            changed.append(app_id)
    return created, changed, removed


def _apply(state: ServicesState, target: Target, group_id: str, version: str, now: float,
           force: bool) -> GroupPlan:
    _check(state, target)
    created, changed, removed = _diff(state, target)
    moved = [*created, *changed, *removed]
    if not force:
        _refuse_held(state, moved, "App")
    for gid in [g for g in state.groups if g not in target.groups]:
        state.drop_group(gid)
    for gid in sorted(target.touched):
        state.put_group(target.groups[gid])
    plan_id = str(uuid.uuid4())
    started = [operations.delete_app(state, a, now, force, plan_id) for a in removed]
    for app_id in [*created, *changed]:
        app = msgspec.structs.replace(target.apps[app_id], version=None, version_info=None)
        started.append(operations.update_app(state, app, now, force, plan_id)[0])
    edges = dependency_edges(state.apps, state.groups)
    plan = group_plans.start_plan(state, plan_id, group_id, version, started, edges, now)
    state.emit("group_change_success", {"groupId": group_id, "version": version}, now)
    for gid in sorted(target.touched, key=len):
        state.put_group_version(GroupVersion(
            gid, version, tree_json(gid, state.apps, state.groups, version)))
    return plan
