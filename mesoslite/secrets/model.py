"""Secrets and config maps as the master stores them.

An object has a kind (``secret`` or ``config``), a name, a set of keys with a value
each, a version (1 on creation, +1 on every replacement: a *rotation*) and creation /
update times.  A secret's values are sealed together as one document (``crypto``),
so the stored row holds only the name, the key names, the version, the times, the
fingerprint of the key and the ciphertext.  A config map's values are stored as
text.

``metadata()`` is what any API answer may show: never a value.

Rules: names are DNS-style (``db-password``, ``app.settings``; lowercase letters,
digits, ``-``, ``.``, at most 253), keys are file-name safe (letters, digits, ``-``,
``_``, ``.``; not ``.``/``..``; at most 253), at most ``MAX_KEYS`` keys and
``MAX_BYTES`` of values per object.  Config values must be UTF-8 text.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from mesoslite.secrets.crypto import Keyring

KINDS = ("secret", "config")
NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
KEY = re.compile(r"^[A-Za-z0-9._-]{1,253}$")
MAX_KEYS = 64
MAX_BYTES = 512 * 1024


class ObjectError(ValueError):
    """An object that breaks a rule; the text names the rule, never a value."""


def check_name(name: str, kind: str = "secret") -> None:
    if not NAME.match(name):
        raise ObjectError(f"{kind} name '{name[:80]}' is invalid: use lowercase letters, "
                          "digits, '-' and '.', starting and ending with a letter or digit "
                          "(at most 253)")


def check_values(values: dict[str, bytes], kind: str) -> None:
    """Key names, count, total size; config values must be text."""
    if not values:
        raise ObjectError(f"a {kind} needs at least one key")
    if len(values) > MAX_KEYS:
        raise ObjectError(f"a {kind} has at most {MAX_KEYS} keys, not {len(values)}")
    for key, value in values.items():
        if not KEY.match(key) or key in (".", ".."):
            raise ObjectError(f"key '{key[:80]}' is invalid: use letters, digits, '-', '_' "
                              "and '.' (at most 253, not '.' or '..')")
        if kind == "config":
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise ObjectError(f"config key '{key}' is not UTF-8 text "
                                  "(use a secret for binary data)") from None
    total = sum(len(v) for v in values.values())
    if total > MAX_BYTES:
        raise ObjectError(f"a {kind} holds at most {MAX_BYTES} bytes of values, not {total}")


@dataclass(frozen=True)
class StoredObject:
    """One secret or config map.  ``sealed``/``key_id`` for secrets, ``text`` for
    config maps.  ``repr`` shows no value (the fields holding them are hidden)."""

    kind: str
    name: str
    version: int
    keys: tuple[str, ...]
    created_at: float
    updated_at: float
    key_id: str = ""
    sealed: str = field(default="", repr=False)
    text: dict[str, str] = field(default_factory=dict, repr=False)

    def aad(self) -> bytes:
        return f"mesoslite/{self.kind}/{self.name}/{self.version}".encode()

    def metadata(self, usable: bool = True) -> dict[str, Any]:
        """The API's view: name, keys, version, times (seconds since the epoch)."""
        out: dict[str, Any] = {"name": self.name, "keys": list(self.keys),
                               "version": self.version, "created_at": self.created_at,
                               "updated_at": self.updated_at}
        if self.kind == "secret":
            out["usable"] = usable
        return out

    def values(self, keyring: Keyring | None) -> dict[str, bytes]:
        """Every key's value.  Secrets need the master's key (``SecretsKeyError``)."""
        if self.kind == "config":
            return {k: v.encode() for k, v in self.text.items()}
        from mesoslite.secrets.crypto import SecretsKeyError

        if keyring is None:
            raise SecretsKeyError("this master has no secrets key")
        plain = keyring.open(self.sealed, self.aad(), self.key_id)
        encoded = msgspec.json.decode(plain, type=dict[str, str])
        return {k: base64.b64decode(v) for k, v in encoded.items()}

    def to_store(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "name": self.name, "version": self.version,
                               "keys": list(self.keys), "created_at": self.created_at,
                               "updated_at": self.updated_at}
        if self.kind == "secret":
            doc.update(key_id=self.key_id, sealed=self.sealed)
        else:
            doc["text"] = dict(self.text)
        return doc

    @staticmethod
    def from_store(doc: dict[str, Any]) -> StoredObject:
        return StoredObject(
            kind=doc["kind"], name=doc["name"], version=int(doc["version"]),
            keys=tuple(doc.get("keys", ())), created_at=float(doc["created_at"]),
            updated_at=float(doc["updated_at"]), key_id=doc.get("key_id", ""),
            sealed=doc.get("sealed", ""), text=dict(doc.get("text", {})))


def build(kind: str, name: str, values: dict[str, bytes], now: float,
          previous: StoredObject | None, keyring: Keyring | None) -> StoredObject:
    """The object holding ``values``: version 1, or the next version of ``previous``.
    Secrets are sealed with ``keyring`` (which must be given for them)."""
    check_name(name, kind)
    check_values(values, kind)
    version = previous.version + 1 if previous is not None else 1
    created = previous.created_at if previous is not None else now
    obj = StoredObject(kind=kind, name=name, version=version, keys=tuple(sorted(values)),
                       created_at=created, updated_at=now)
    if kind == "config":
        return replace(obj, text={k: values[k].decode() for k in sorted(values)})
    assert keyring is not None, "secrets need a key"
    plain = msgspec.json.encode({k: base64.b64encode(values[k]).decode()
                                 for k in sorted(values)})
    return replace(obj, key_id=keyring.key_id, sealed=keyring.seal(plain, obj.aad()))
