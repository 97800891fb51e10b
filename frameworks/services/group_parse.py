"""JSON -> ``GroupSpec``: Marathon's ``GroupUpdate`` (``id``, ``apps``, ``groups``,
``dependencies``, ``scaleBy``, ``version``, ``enforceRole``), validated.

Ids resolve as Marathon resolves them: a group's id against the group it is nested
in (the URL's group for the top one), an app's id and a dependency against the group
that lists it.  Errors are collected with Marathon's paths (``/groups(0)/apps(1)/cmd``)
and raised as one ``Invalid`` (422).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from frameworks.services.groups import ROOT, parent_of
from frameworks.services.model import App, parse_timestamp, timestamp
from frameworks.services.validation import Invalid, id_errors, normalize_id, parse_app

PODS_ELSEWHERE = "pods in a group definition are not supported; create them with /v2/pods"


@dataclass
class GroupSpec:
    """One group of an update.  ``apps`` / ``groups`` / ``dependencies``: None when the
    update leaves them as they are (Marathon's structural update replaces only what
    is given)."""

    id: str
    apps: list[App] | None = None
    groups: list[GroupSpec] | None = None
    dependencies: list[str] | None = None
    enforce_role: bool | None = None
    scale_by: float | None = None
    version: str | None = None
    warnings: list[str] = field(default_factory=list)


def parse_group(raw: Any, base: str) -> GroupSpec:
    """The update in ``raw`` for the group ``base`` names (the URL's), or for the group
    its ``id`` names relative to ``base``.  Raises ``Invalid``."""
    errors: list[tuple[str, list[str]]] = []
    spec = _parse(raw, base, "", errors, top=True)
    if errors:
        raise Invalid(errors)
    return spec


def _parse(raw: Any, base: str, where: str, errors: list[tuple[str, list[str]]],
           top: bool) -> GroupSpec:
    if not isinstance(raw, dict):
        errors.append((where or "/", ["expected a JSON object"]))
        return GroupSpec(id=base)
    group_id = _group_id(raw.get("id"), base, where, errors, top)
    spec = GroupSpec(id=group_id, enforce_role=_optional_bool(raw, "enforceRole", where,
                                                               errors))
    if raw.get("pods"):
        errors.append((f"{where}/pods", [PODS_ELSEWHERE]))
    spec.dependencies = _dependencies(raw.get("dependencies"), group_id, where, errors)
    spec.scale_by = _scale_by(raw.get("scaleBy"), where, errors)
    spec.version = _version(raw.get("version"), where, errors)
    if "apps" in raw and raw["apps"] is not None:
        spec.apps = _apps(raw["apps"], group_id, where, errors, spec.warnings)
    if "groups" in raw and raw["groups"] is not None:
        spec.groups = _groups(raw["groups"], group_id, where, errors, spec.warnings)
    return spec


def _group_id(body_id: Any, base: str, where: str, errors: list[tuple[str, list[str]]],
              top: bool) -> str:
    if body_id is None:
        if not top:
            errors.append((f"{where}/id", ["is required"]))
        elif base != ROOT and (problems := id_errors(base)):
            # The id comes from the URL: a bad one is refused like a bad body id (it
            # would otherwise reach the Location header).
            errors.append((f"{where}/id", problems))
        return base
    if not isinstance(body_id, str):
        errors.append((f"{where}/id", ["expected a string"]))
        return base
    group_id = normalize_id(body_id, base)
    if group_id != ROOT:
        problems = id_errors(group_id)
        if problems:
            errors.append((f"{where}/id", problems))
    if not top and parent_of(group_id) != base:
        errors.append((f"{where}/id", [f"group {group_id} must be a direct child of {base}"]))
    return group_id


def _apps(raw: Any, group_id: str, where: str, errors: list[tuple[str, list[str]]],
          warnings: list[str]) -> list[App]:
    if not isinstance(raw, list):
        errors.append((f"{where}/apps", ["expected an array of app definitions"]))
        return []
    out: list[App] = []
    seen: set[str] = set()
    for i, body in enumerate(raw):
        at = f"{where}/apps({i})"
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            errors.append((f"{at}/id", ["is required"]))
            continue
        app_id = normalize_id(body["id"], group_id)
        try:
            app, app_warnings = parse_app({**body, "id": app_id})
        except Invalid as exc:
            errors.extend((f"{at}{p}" if p != "/" else at, e) for p, e in exc.details)
            continue
        if parent_of(app.id) != group_id:
            errors.append((f"{at}/id", [f"app {app.id} must be a direct child of {group_id}"]))
        elif app.id in seen:
            errors.append((f"{at}/id", [f"app {app.id} is defined twice"]))
        seen.add(app.id)
        warnings.extend(w for w in app_warnings if w not in warnings)
        out.append(app)
    return out


def _groups(raw: Any, group_id: str, where: str, errors: list[tuple[str, list[str]]],
            warnings: list[str]) -> list[GroupSpec]:
    if not isinstance(raw, list):
        errors.append((f"{where}/groups", ["expected an array of groups"]))
        return []
    out: list[GroupSpec] = []
    seen: set[str] = set()
    for i, body in enumerate(raw):
        child = _parse(body, group_id, f"{where}/groups({i})", errors, top=False)
        if child.id in seen:
            errors.append((f"{where}/groups({i})/id", [f"group {child.id} is defined twice"]))
        seen.add(child.id)
        warnings.extend(w for w in child.warnings if w not in warnings)
        out.append(child)
    return out


def _dependencies(raw: Any, group_id: str, where: str, errors: list[tuple[str, list[str]]]
                  ) -> list[str] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
        errors.append((f"{where}/dependencies", ["expected an array of ids"]))
        return None
    out = []
    for i, dep in enumerate(raw):
        resolved = normalize_id(dep, group_id)
        if resolved == ROOT or id_errors(resolved):
            errors.append((f"{where}/dependencies({i})", [f"'{dep}' is not a valid id"]))
        elif resolved not in out:
            out.append(resolved)
    return out


def _scale_by(raw: Any, where: str, errors: list[tuple[str, list[str]]]) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw <= 1e6:
        errors.append((f"{where}/scaleBy", ["must be a number from 0 to 1000000"]))
        return None
    return float(raw)


def _version(raw: Any, where: str, errors: list[tuple[str, list[str]]]) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        errors.append((f"{where}/version", ["expected a version timestamp"]))
        return None
    try:
        return timestamp(parse_timestamp(raw))  # the form versions are stored under
    except (ValueError, OverflowError):
        errors.append((f"{where}/version", [f"'{raw}' is not a version timestamp"]))
        return None


def _optional_bool(raw: dict[str, Any], key: str, where: str,
                   errors: list[tuple[str, list[str]]]) -> bool | None:
    value = raw.get(key)
    if value is None or isinstance(value, bool):
        return value
    errors.append((f"{where}/{key}", ["expected true or false"]))
    return None
