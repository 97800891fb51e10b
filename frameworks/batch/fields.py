"""Typed reading of job documents, collecting every error with the field's path.

``Reader`` wraps one mapping and its path (``steps[2]``); each accessor checks a type
and range and records ``(path, message)`` instead of raising, so ``parse_job`` can
report every problem of a submission at once (``SpecError``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class SpecError(ValueError):
    """Invalid input; ``details`` is a list of ``(path, message)``, in input order."""

    def __init__(self, details: list[tuple[str, str]]) -> None:
        self.details = details
        path, message = details[0]
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        super().__init__(f"{path}: {message}{more}" if path else message + more)


class Errors:
    """Collects ``(path, message)`` so a user sees every problem at once."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise SpecError(self.items)


def join_path(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(
        value)


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or text such as ``90``, ``"90s"``, ``"10m"``, ``"1.5h"``."""
    if is_number(value):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    return None


class Reader:
    """Typed access to one mapping, recording errors against its path."""

    def __init__(self, data: Mapping[str, Any], path: str, errors: Errors) -> None:
        self.data, self.path, self.errors = data, path, errors

    def at(self, key: str) -> str:
        return join_path(self.path, key)

    def unknown(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                hint = _suggest(str(key), allowed)
                self.errors.add(self.at(str(key)), "unknown field" + hint)

    def string(self, key: str, pattern: re.Pattern[str] | None = None, what: str = ""
               ) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            hint = (" (YAML reads an unquoted true/false/yes/no or number as such: quote it)"
                    if isinstance(value, (bool, int, float)) else "")
            self.errors.add(self.at(key), "must be a non-empty string" + hint)
            return None
        if pattern is not None and not pattern.match(value):
            self.errors.add(self.at(key), what or f"must match {pattern.pattern}")
            return None
        return value

    def number(self, key: str, low: float, high: float = math.inf, low_open: bool = False
               ) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        ok = is_number(value) and (value > low if low_open else value >= low) and value <= high
        if not ok:
            bound = f"> {low:g}" if low_open else f">= {low:g}"
            upper = f" and <= {high:g}" if high != math.inf else ""
            self.errors.add(self.at(key), f"must be a number {bound}{upper}")
            return None
        return float(value)

    def integer(self, key: str, low: int, high: int) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.errors.add(self.at(key), f"must be an integer from {low} to {high}")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.errors.add(self.at(key), "must be true or false")
            return None
        return value

    def duration(self, key: str, allow_zero: bool = False) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        seconds = parse_duration(value)
        if seconds is None or seconds < 0 or (seconds == 0 and not allow_zero):
            what = "a duration >= 0" if allow_zero else "a positive duration"
            self.errors.add(self.at(key), f"must be {what} (seconds, or e.g. '90s', '10m', '2h')")
            return None
        return seconds

    def strings(self, key: str, allow_single: bool = False) -> tuple[str, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if allow_single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.errors.add(self.at(key), "must be a list of non-empty strings")
            return None
        return tuple(value)

    def text_map(self, key: str, refs: bool = False) -> dict[str, str] | None:
        """``refs``: skip ``{secret|config: ...}`` items (read by secret_fields)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, Mapping):
            self.errors.add(self.at(key), "must be a mapping of names to values")
            return None
        out = {}
        for name, item in value.items():
            where = join_path(self.at(key), str(name))
            if isinstance(item, Mapping) and ("secret" in item or "config" in item):
                if not refs:
                    self.errors.add(where, "secrets and config maps are only allowed in env")
            elif isinstance(item, str) or is_number(item) or isinstance(item, bool):
                out[str(name)] = str(item).lower() if isinstance(item, bool) else str(item)
            else:
                self.errors.add(where, "must be a string or a number")
        return out


def _suggest(key: str, allowed: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
