"""Fields of an app definition that mesoslite does not model, kept verbatim.

A Marathon client reads an app, changes one field and PUTs the whole object back; a
field the framework dropped on the way in would be lost from the client's point of
view.  So every field the typed ``App`` (model.py) has no place for, at the top level
or inside a modelled object (``container.docker.credential``,
``healthChecks[0].foo``), is kept as given and put back where it was when the app is
rendered.  They are not acted on, and the caller names them in a ``Warning`` header.

Kept fields are stored in ``App.passthrough`` keyed by JSON Pointer (RFC 6901:
``/container/docker/credential``, ``/healthChecks/0/foo``).  Keys without a leading
``/`` are top-level names, as stored before nested fields were kept.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import inspect as mi


def unknown_fields(raw: dict[str, Any], model: type[msgspec.Struct]) -> dict[str, Any]:
    """Every field of ``raw`` (decoded JSON for ``model``) that ``model`` and the
    objects it nests do not declare: JSON Pointer -> the value as given.  Values of the
    wrong type are left to the decoder (it reports them); nothing here raises."""
    found: dict[str, Any] = {}
    _walk(raw, mi.type_info(model), [], found)
    return found


def marathon_path(pointer: str) -> str:
    """``/healthChecks/0/foo`` as Marathon writes paths in errors: ``/healthChecks(0)/foo``."""
    out = ""
    for segment in _segments(pointer):
        out += f"({segment})" if segment.isdigit() else f"/{segment}"
    return out


def overlay(target: dict[str, Any], kept: dict[str, Any]) -> dict[str, Any]:
    """Put the ``kept`` fields back into ``target`` (a rendered or encoded app), in
    place; returns ``target``.  A missing object on the way is created; a field inside
    a list element that is no longer there (the list got shorter) is dropped."""
    for pointer, value in kept.items():
        segments = _segments(pointer)
        node: Any = target
        for segment in segments[:-1]:
            node = _step(node, segment)
            if node is None:
                break
        if isinstance(node, dict):
            node[segments[-1]] = value
    return target


def _step(node: Any, segment: str) -> Any:
    if isinstance(node, dict):
        child = node.get(segment)
        if child is None:
            child = node[segment] = {}
        return child if isinstance(child, dict | list) else None
    if isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
        return node[int(segment)]
    return None


def _segments(pointer: str) -> list[str]:
    if not pointer.startswith("/"):
        return [pointer]  # a top-level name (the older form)
    return [s.replace("~1", "/").replace("~0", "~") for s in pointer[1:].split("/")]


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _walk(value: Any, kind: mi.Type, path: list[str], found: dict[str, Any]) -> None:
    if isinstance(kind, mi.UnionType):
        for option in kind.types:
            if _fits(value, option):
                _walk(value, option, path, found)
                return
        return
    if isinstance(kind, mi.StructType) and isinstance(value, dict):
        if kind.forbid_unknown_fields:
            return  # the decoder refuses unknown fields there itself
        fields = {f.encode_name: f.type for f in kind.fields}
        for key, item in value.items():
            if key in fields:
                _walk(item, fields[key], [*path, _escape(key)], found)
            else:
                found["/" + "/".join([*path, _escape(key)])] = item
    elif isinstance(kind, mi.ListType) and isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, kind.item_type, [*path, str(i)], found)
    elif isinstance(kind, mi.DictType) and isinstance(value, dict):
        for key, item in value.items():
            _walk(item, kind.value_type, [*path, _escape(str(key))], found)


def _fits(value: Any, kind: mi.Type) -> bool:
    if isinstance(value, dict):
        return isinstance(kind, mi.StructType | mi.DictType)
    if isinstance(value, list):
        return isinstance(kind, mi.ListType)
    return False
