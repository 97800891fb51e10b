"""Secret and config-map references as frameworks write them into a TaskInfo.

A framework never sees a value: it names a stored object (``mesoslite secrets
create``/``mesoslite configs create``) and the master resolves the name for the one
agent that runs the task (see docs/secrets.md and ``mesoslite.secrets.refs``).

``Ref`` is such a name: a secret, or a config map (``kind="config"``), and
optionally one of its keys.  ``env_variable`` / ``volume`` give the Mesos shapes;
``parse_ref`` reads the ``{"secret": NAME, "key": K}`` / ``{"config": NAME, ...}``
objects of the batch framework's job documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mesoslite.messages.mesos import (
    EnvironmentVariable,
    Secret,
    SecretReference,
    Volume,
    VolumeMode,
    VolumeSource,
)
from mesoslite.secrets.model import KEY, NAME
from mesoslite.secrets.refs import CONFIG_PREFIX, REFERENCE, SECRET_TYPE


@dataclass(frozen=True)
class Ref:
    """A stored secret (or config map) and optionally one key of it."""

    name: str
    key: str | None = None
    kind: str = "secret"  # or "config"

    def reference(self) -> Secret:
        name = CONFIG_PREFIX + self.name if self.kind == "config" else self.name
        return Secret(type=REFERENCE, reference=SecretReference(name=name, key=self.key))

    def to_json(self) -> dict[str, str]:
        out = {self.kind: self.name}
        if self.key is not None:
            out["key"] = self.key
        return out


def env_variable(var: str, ref: Ref) -> EnvironmentVariable:
    """Mesos' ``{name, type: SECRET, secret: {type: REFERENCE, reference}}``."""
    return EnvironmentVariable(name=var, type=SECRET_TYPE, secret=ref.reference())


def volume(container_path: str, ref: Ref) -> Volume:
    """A read-only file (a key named) or directory (one file per key) at
    ``container_path`` (relative: inside the sandbox)."""
    return Volume(container_path=container_path, mode=VolumeMode.RO,
                  source=VolumeSource(type=SECRET_TYPE, secret=ref.reference()))


def name_errors(name: Any, key: Any) -> list[str]:
    """Why ``name``/``key`` cannot name a stored object (empty: they can)."""
    errors = []
    if not isinstance(name, str) or not NAME.match(name):
        errors.append("must name a secret or config map: lowercase letters, digits, '-' "
                      "and '.'")
    if key is not None and (not isinstance(key, str) or not KEY.match(key)
                            or key in (".", "..")):
        errors.append("key must be letters, digits, '-', '_' or '.'")
    return errors


def parse_ref(item: Mapping[str, Any]) -> tuple[Ref | None, list[str]]:
    """``{"secret": NAME[, "key": K]}`` or ``{"config": NAME[, "key": K]}`` -> a ``Ref``,
    or None and the errors (never echoing anything but names)."""
    kinds = [k for k in ("secret", "config") if k in item]
    extra = sorted(set(item) - {"secret", "config", "key"})
    if len(kinds) != 1:
        return None, ["give exactly one of 'secret' or 'config'"]
    if extra:
        return None, [f"unknown field(s): {', '.join(str(e)[:40] for e in extra)}"]
    kind = kinds[0]
    errors = name_errors(item[kind], item.get("key"))
    if errors:
        return None, errors
    return Ref(name=item[kind], key=item.get("key"), kind=kind), []
