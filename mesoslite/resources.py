"""Resources: an immutable value type for what agents offer and tasks consume.

Three kinds, as in Mesos:

* scalars (``cpus``, ``mem`` in MB, ``disk`` in MB, ``gpus`` or any other name),
  kept with Mesos' fixed-point precision of three decimals;
* ranges (``ports``): inclusive ``(begin, end)`` pairs, kept sorted and merged;
* sets (any name): unordered string items.

Contract: every ``Resources`` value is normalised (no zero scalars, no empty range
lists or sets, ranges merged), so ``==`` compares content.  ``a + b``, ``a - b``
(saturating: what ``b`` names but ``a`` lacks is ignored) and ``b <= a`` (``a``
contains ``b``) are pure.  Two text forms are understood:

* Mesos text ``cpus:2;mem:1024;ports:[31000-32000];zones:{a,b}``;
* Mesos v1 JSON: a list of ``{"name", "type", "scalar"|"ranges"|"set"}`` objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Range = tuple[int, int]

_PRECISION = 1000  # Mesos keeps scalars to three decimals.
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_TEXT_ITEM_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.\-]*)(?:\(([^)]*)\))?\s*:\s*(.+?)\s*$")


class ResourceError(ValueError):
    """Invalid resource text or JSON. ``path`` names the offending field."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def _round(value: float) -> float:
    return round(value * _PRECISION) / _PRECISION


def _merge_ranges(ranges: Iterable[Range]) -> tuple[Range, ...]:
    out: list[list[int]] = []
    for begin, end in sorted(ranges):
        if out and begin <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([begin, end])
    return tuple((b, e) for b, e in out)


def _subtract_ranges(have: tuple[Range, ...], take: tuple[Range, ...]) -> tuple[Range, ...]:
    out: list[Range] = []
    for begin, end in have:
        pieces = [(begin, end)]
        for tb, te in take:
            next_pieces: list[Range] = []
            for pb, pe in pieces:
                if te < pb or tb > pe:
                    next_pieces.append((pb, pe))
                    continue
                if pb < tb:
                    next_pieces.append((pb, tb - 1))
                if te < pe:
                    next_pieces.append((te + 1, pe))
            pieces = next_pieces
        out.extend(pieces)
    return _merge_ranges(out)


def _ranges_contain(have: tuple[Range, ...], want: tuple[Range, ...]) -> bool:
    for wb, we in want:
        if not any(hb <= wb and we <= he for hb, he in have):
            return False
    return True


def ranges_size(ranges: Iterable[Range]) -> int:
    """Number of integers covered by ``ranges`` (assumed merged)."""
    return sum(e - b + 1 for b, e in ranges)


@dataclass(frozen=True)
class Resources:
    """An immutable bag of scalar, range and set resources (see module docstring)."""

    scalars: Mapping[str, float] = field(default_factory=dict)
    ranges: Mapping[str, tuple[Range, ...]] = field(default_factory=dict)
    sets: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        scalars = {}
        for name, value in self.scalars.items():
            v = _round(float(value))
            if v < 0 or math.isnan(v) or math.isinf(v):
                raise ResourceError(f"scalar {name!r} must be a finite number >= 0", name)
            if v > 0:
                scalars[name] = v
        ranges = {}
        for name, rs in self.ranges.items():
            for b, e in rs:
                if b < 0 or e < b:
                    raise ResourceError(f"range [{b}-{e}] of {name!r} is invalid", name)
            merged = _merge_ranges((int(b), int(e)) for b, e in rs)
            if merged:
                ranges[name] = merged
        sets = {name: frozenset(items) for name, items in self.sets.items() if items}
        object.__setattr__(self, "scalars", scalars)
        object.__setattr__(self, "ranges", ranges)
        object.__setattr__(self, "sets", sets)

    # -- construction -----------------------------------------------------

    @classmethod
    def of(cls, **kwargs: Any) -> Resources:
        """Shorthand: ``Resources.of(cpus=1, mem=128, ports=[(31000, 31009)])``.

        Numbers become scalars, lists of pairs become ranges, sets/frozensets become sets.
        """
        return cls.from_mapping(kwargs)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], path: str = "") -> Resources:
        """From ``{"cpus": 1, "ports": [[31000, 31099]], "zones": {"a"}}``."""
        scalars: dict[str, float] = {}
        ranges: dict[str, list[Range]] = {}
        sets: dict[str, frozenset[str]] = {}
        for name, value in data.items():
            where = f"{path}.{name}" if path else name
            _check_name(name, where)
            if isinstance(value, bool):
                raise ResourceError(f"{name!r} must be a number, ranges or a set", where)
            if isinstance(value, (int, float)):
                scalars[name] = float(value)
            elif isinstance(value, (set, frozenset)):
                sets[name] = frozenset(str(v) for v in value)
            elif isinstance(value, (list, tuple)):
                try:
                    ranges[name] = [(int(b), int(e)) for b, e in value]
                except (TypeError, ValueError):
                    raise ResourceError(
                        f"{name!r} must be a list of [begin, end] pairs", where
                    ) from None
            else:
                raise ResourceError(f"{name!r} must be a number, ranges or a set", where)
        return cls(scalars, ranges, sets)

    @classmethod
    def parse(cls, text: str) -> Resources:
        """Parse Mesos' text form ``cpus:2;mem:1024;ports:[31000-32000];s:{a,b}``.

        A role suffix ``cpus(*)`` is accepted; any other role is rejected because
        mesoslite has no reservations.
        """
        scalars: dict[str, float] = {}
        ranges: dict[str, list[Range]] = {}
        sets: dict[str, set[str]] = {}
        for item in filter(None, (part.strip() for part in text.split(";"))):
            m = _TEXT_ITEM_RE.match(item)
            if not m:
                raise ResourceError(f"cannot parse resource {item!r}: expected name:value", item)
            name, role, value = m.group(1), m.group(2), m.group(3)
            if role not in (None, "*"):
                raise ResourceError(f"role {role!r} on {name!r}: only '*' is supported", name)
            if value.startswith("["):
                if not value.endswith("]"):
                    raise ResourceError(f"ranges of {name!r} must end with ']'", name)
                ranges.setdefault(name, []).extend(_parse_ranges(name, value[1:-1]))
            elif value.startswith("{"):
                if not value.endswith("}"):
                    raise ResourceError(f"set of {name!r} must end with '}}'", name)
                items = {s.strip() for s in value[1:-1].split(",") if s.strip()}
                sets.setdefault(name, set()).update(items)
            else:
                try:
                    number = float(value)
                except ValueError:
                    raise ResourceError(f"{name!r} must be a number, got {value!r}", name) from None
                if not math.isfinite(number) or number < 0:
                    raise ResourceError(f"{name!r} must be a finite number >= 0", name)
                scalars[name] = scalars.get(name, 0.0) + number
        return cls(scalars, ranges, {k: frozenset(v) for k, v in sets.items()})

    @classmethod
    def from_json(cls, items: Iterable[Mapping[str, Any]], path: str = "resources") -> Resources:
        """From Mesos v1 JSON: ``[{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}]``."""
        # One construction for the whole list (not one per item plus one per sum):
        # agents' re-registrations after a failover parse thousands of these at once.
        scalars: dict[str, float] = {}
        ranges: dict[str, list[Range]] = {}
        sets: dict[str, frozenset[str]] = {}
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            if not isinstance(item, Mapping):
                raise ResourceError("each resource must be an object", where)
            name, value = _resource_from_json(item, where)
            if isinstance(value, frozenset):
                sets[name] = sets.get(name, frozenset()) | value
            elif isinstance(value, list):
                ranges.setdefault(name, []).extend(value)
            else:
                scalars[name] = scalars.get(name, 0.0) + value
        return cls(scalars, ranges, sets)

    # -- algebra ----------------------------------------------------------

    @classmethod
    def _normalized(cls, scalars: dict[str, float], ranges: dict[str, tuple[Range, ...]],
                    sets: dict[str, frozenset[str]]) -> Resources:
        """From parts already in normal form (scalars rounded and >= 0, ranges merged):
        the algebra's results, whose inputs were checked when they were built.  Empty
        parts are dropped; the checks of ``__post_init__`` are skipped."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "scalars", {k: v for k, v in scalars.items() if v > 0})
        object.__setattr__(obj, "ranges", {k: v for k, v in ranges.items() if v})
        object.__setattr__(obj, "sets", {k: v for k, v in sets.items() if v})
        return obj

    def __add__(self, other: Resources) -> Resources:
        scalars = dict(self.scalars)
        for k, v in other.scalars.items():
            scalars[k] = _round(scalars.get(k, 0.0) + v)
        ranges = dict(self.ranges)
        for k, v in other.ranges.items():
            ranges[k] = _merge_ranges((*ranges[k], *v)) if k in ranges else v
        sets = dict(self.sets)
        for k, v in other.sets.items():
            sets[k] = sets.get(k, frozenset()) | v
        return Resources._normalized(scalars, ranges, sets)

    def __sub__(self, other: Resources) -> Resources:
        scalars = dict(self.scalars)
        for k, v in other.scalars.items():
            if k in scalars:
                scalars[k] = max(0.0, _round(scalars[k] - v))
        ranges = dict(self.ranges)
        for k, v in other.ranges.items():
            if k in ranges:
                ranges[k] = _subtract_ranges(ranges[k], v)
        sets = dict(self.sets)
        for k, v in other.sets.items():
            if k in sets:
                sets[k] = sets[k] - v
        return Resources._normalized(scalars, ranges, sets)

    def contains(self, other: Resources) -> bool:
        """True when every resource in ``other`` is also in ``self``."""
        for k, v in other.scalars.items():
            if self.scalars.get(k, 0.0) + 1e-9 < v:
                return False
        for k, v in other.ranges.items():
            if not _ranges_contain(self.ranges.get(k, ()), v):
                return False
        for k, v in other.sets.items():
            if not v <= self.sets.get(k, frozenset()):
                return False
        return True

    def __le__(self, other: Resources) -> bool:
        return other.contains(self)

    def __bool__(self) -> bool:
        return bool(self.scalars or self.ranges or self.sets)

    def is_empty(self) -> bool:
        return not self

    def scalar(self, name: str) -> float:
        return self.scalars.get(name, 0.0)

    def ports(self) -> tuple[Range, ...]:
        return tuple(self.ranges.get("ports", ()))

    def port_list(self) -> list[int]:
        return [p for b, e in self.ports() for p in range(b, e + 1)]

    def take_ports(self, count: int) -> Resources:
        """The lowest ``count`` ports of this bag as a ``ports`` range resource.

        Raises ``ResourceError`` when fewer than ``count`` ports are available.
        """
        chosen: list[Range] = []
        left = count
        for b, e in self.ports():
            if left <= 0:
                break
            n = min(left, e - b + 1)
            chosen.append((b, b + n - 1))
            left -= n
        if left > 0:
            raise ResourceError(f"{count} ports wanted, {count - left} available", "ports")
        return Resources(ranges={"ports": chosen})

    # -- printing ---------------------------------------------------------

    def __str__(self) -> str:
        parts = [f"{k}:{_fmt_number(v)}" for k, v in sorted(self.scalars.items())]
        for k, rs in sorted(self.ranges.items()):
            parts.append(f"{k}:[" + ",".join(f"{b}-{e}" for b, e in rs) + "]")
        for k, items in sorted(self.sets.items()):
            parts.append(f"{k}:{{" + ",".join(sorted(items)) + "}")
        return ";".join(parts)

    def to_json(self, role: str | None = None) -> list[dict[str, Any]]:
        """Mesos v1 JSON list.  With ``role``, each entry carries ``allocation_info``."""
        out: list[dict[str, Any]] = []
        for k, v in sorted(self.scalars.items()):
            out.append({"name": k, "type": "SCALAR", "scalar": {"value": v}})
        for k, rs in sorted(self.ranges.items()):
            out.append(
                {
                    "name": k,
                    "type": "RANGES",
                    "ranges": {"range": [{"begin": b, "end": e} for b, e in rs]},
                }
            )
        for k, items in sorted(self.sets.items()):
            out.append({"name": k, "type": "SET", "set": {"item": sorted(items)}})
        if role is not None:
            for entry in out:
                entry["role"] = "*"
                entry["allocation_info"] = {"role": role}
        return out

    def to_mapping(self) -> dict[str, Any]:
        """Plain form: scalars as numbers, ranges as ``[[b, e], ...]``, sets as sorted lists."""
        out: dict[str, Any] = dict(self.scalars)
        out.update({k: [[b, e] for b, e in rs] for k, rs in self.ranges.items()})
        out.update({k: sorted(v) for k, v in self.sets.items()})
        return out


def _fmt_number(v: float) -> str:
    return str(int(v)) if v == int(v) else repr(v)


def _check_name(name: str, where: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ResourceError(f"invalid resource name {name!r}", where)


def _parse_ranges(name: str, body: str) -> list[Range]:
    out: list[Range] = []
    for piece in filter(None, (p.strip() for p in body.split(","))):
        bounds = piece.split("-")
        try:
            if len(bounds) == 1:
                b = e = int(bounds[0])
            elif len(bounds) == 2:
                b, e = int(bounds[0]), int(bounds[1])
            else:
                raise ValueError
        except ValueError:
            raise ResourceError(f"bad range {piece!r} in {name!r}", name) from None
        if b < 0 or e < b:
            raise ResourceError(f"bad range {piece!r} in {name!r}: need 0 <= begin <= end", name)
        out.append((b, e))
    return out


def _resource_from_json(item: Mapping[str, Any], where: str
                        ) -> tuple[str, float | list[Range] | frozenset[str]]:
    """One Mesos v1 JSON resource, checked: its name and a float (SCALAR), a list of
    ranges (RANGES) or a frozenset (SET)."""
    name = item.get("name")
    _check_name(name, f"{where}.name")  # type: ignore[arg-type]
    kind = item.get("type", "SCALAR")
    role = item.get("role", "*")
    if role not in ("*", None):
        raise ResourceError(f"role {role!r}: only '*' is supported", f"{where}.role")
    try:
        if kind == "SCALAR":
            value = item["scalar"]["value"]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            if not math.isfinite(value) or value < 0:
                raise ResourceError("scalar must be finite and >= 0", f"{where}.scalar.value")
            return name, float(value)  # type: ignore[return-value]
        if kind == "RANGES":
            rs = []
            for r in item["ranges"].get("range", []):
                b, e = r["begin"], r["end"]
                if not isinstance(b, int) or not isinstance(e, int) or b < 0 or e < b:
                    raise ResourceError(
                        "range needs integers 0 <= begin <= end", f"{where}.ranges.range"
                    )
                rs.append((b, e))
            return name, rs  # type: ignore[return-value]
        if kind == "SET":
            items = item["set"].get("item", [])
            if not all(isinstance(s, str) for s in items):
                raise TypeError
            return name, frozenset(items)  # type: ignore[return-value]
    except ResourceError:
        raise
    except (KeyError, TypeError, AttributeError):
        raise ResourceError(f"malformed {kind} resource {name!r}", where) from None
    raise ResourceError(f"unknown resource type {kind!r}", f"{where}.type")
