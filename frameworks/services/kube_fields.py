"""Reading Kubernetes objects: a reader that remembers what was read (so everything
else can be reported as not honoured), and Kubernetes quantities."""

from __future__ import annotations

import math
import re
from typing import Any

_MEMORY = {"": 1 / 2**20, "k": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20,
           "T": 1e12 / 2**20, "Ki": 1 / 1024, "Mi": 1.0, "Gi": 1024.0, "Ti": 1024.0**2,
           "m": 1e-3 / 2**20}


class ManifestError(ValueError):
    """A document that cannot be translated; the message names it and the field."""


class Reader:
    """Reads a nested document, remembering every path it looked at."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.seen: set[str] = set()
        self.taken: set[str] = set()

    def get(self, path: str, default: Any = None) -> Any:
        """The value at ``path`` (``spec.template.spec.containers[0].image``)."""
        node: Any = self.doc
        walked = []
        for part in _split(path):
            walked.append(part)
            self.seen.add(_join(walked))
            if isinstance(part, int):
                node = node[part] if isinstance(node, list) and part < len(node) else None
            else:
                node = node.get(part) if isinstance(node, dict) else None
            if node is None:
                return default
        return node

    def take(self, path: str, default: Any = None) -> Any:
        """``get`` and mark the whole subtree as consumed."""
        value = self.get(path, default)
        self.taken.add(path)
        return value

    def key(self, parent: str, key: str) -> Any:
        """``parent[key]`` for keys with dots or slashes (``nvidia.com/gpu``)."""
        node = self.get(parent)
        self.seen.add(f"{parent}.{key}")
        return node.get(key) if isinstance(node, dict) else None

    def unread(self, skip: tuple[str, ...] = ()) -> list[str]:
        """Leaf paths of the document nobody read (nor any ancestor took)."""
        out: list[str] = []

        def under(path: str, prefix: str) -> bool:
            return path == prefix or path.startswith((prefix + ".", prefix + "["))

        def walk(node: Any, path: str) -> None:
            if any(under(path, s) for s in skip) or any(under(path, t) for t in self.taken):
                return
            if isinstance(node, dict) and node:
                for key, value in node.items():
                    walk(value, f"{path}.{key}" if path else str(key))
            elif isinstance(node, list) and node:
                for i, value in enumerate(node):
                    walk(value, f"{path}[{i}]")
            elif path not in self.seen:
                out.append(path)

        walk(self.doc, "")
        return out


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        parts.append(int(token[1:-1]) if token.startswith("[") else token)
    return parts


def _join(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


# ---------------------------------------------------------------- quantities


def cpu_quantity(value: Any, where: str) -> float:
    """Kubernetes CPU: ``"100m"`` -> 0.1, ``2`` -> 2.0."""
    text = str(value).strip()
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise ManifestError(f"{where}: {value!r} is not a CPU quantity") from None


def memory_quantity(value: Any, where: str) -> float:
    """Kubernetes memory -> MB as Mesos counts them (MiB): ``"100Mi"`` -> 100."""
    match = re.fullmatch(r"\s*([0-9.]+(?:[eE][0-9]+)?)\s*([kMGTm]i?|Ki)?\s*", str(value))
    if not match:
        raise ManifestError(f"{where}: {value!r} is not a memory quantity")
    number, unit = float(match.group(1)), match.group(2) or ""
    if unit not in _MEMORY:
        raise ManifestError(f"{where}: unknown memory unit {unit!r}")
    return round(number * _MEMORY[unit], 3)


def count_or_share(value: Any, replicas: int, round_up: bool, where: str) -> int:
    """A count (``1``) or a share of ``replicas`` (``"25%"``), rounded up or down as
    Kubernetes does for maxSurge (up) and maxUnavailable (down)."""
    text = str(value).strip()
    if text.endswith("%"):
        share = replicas * float(text[:-1]) / 100
        return math.ceil(share - 1e-9) if round_up else math.floor(share + 1e-9)
    try:
        return int(text)
    except ValueError:
        raise ManifestError(f"{where}: {value!r} is neither a count nor a percentage") from None
