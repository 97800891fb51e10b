"""The master's secrets key and the sealing of secret values (AES-256-GCM).

The key is 32 random bytes, written as text: base64 (standard or URL-safe, as
``mesoslite secrets keygen`` prints it) or 64 hex digits.  It comes from
``--secrets-key-file`` or else the environment variable ``MESOSLITE_SECRETS_KEY``, and
is never written to the database: a database dump alone reveals no value.

``Keyring.seal`` encrypts with a fresh 96-bit nonce and binds the ciphertext to its
context (``aad``: kind, name, version), so a sealed value moved to another row or
version does not open.  ``key_id`` is a one-way fingerprint of the key (HMAC), kept
beside each sealed value so a master started with another key says so plainly
instead of failing on a tag mismatch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_ENV = "MESOSLITE_SECRETS_KEY"
KEY_BYTES = 32
NONCE_BYTES = 12


class SecretsKeyError(ValueError):
    """No usable key, or a value that does not open with it; the text says which."""


class Keyring:
    """One AES-256-GCM key.  Its ``repr`` shows only the fingerprint."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise SecretsKeyError(f"a secrets key has {KEY_BYTES} bytes, not {len(key)}")
        self._aead = AESGCM(key)
        self.key_id = hmac.new(key, b"mesoslite secrets key id", hashlib.sha256).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Keyring(key_id={self.key_id})"

    def seal(self, plaintext: bytes, aad: bytes) -> str:
        """``plaintext`` encrypted and authenticated, as base64 text (nonce first)."""
        nonce = os.urandom(NONCE_BYTES)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext, aad)).decode()

    def open(self, sealed: str, aad: bytes, key_id: str) -> bytes:
        """The plaintext of ``seal``'s output; ``SecretsKeyError`` when it was sealed
        with another key or does not authenticate (corrupted, moved, tampered)."""
        if key_id != self.key_id:
            raise SecretsKeyError(f"it was encrypted with key {key_id}, and this master's "
                                  f"key is {self.key_id}")
        try:
            raw = base64.b64decode(sealed, validate=True)
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretsKeyError("it does not decrypt (corrupted or tampered with)") from None


def generate_key() -> str:
    """A new key as the text ``parse_key`` reads (URL-safe base64)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def parse_key(text: bytes | str, where: str) -> bytes:
    """The 32 key bytes written in ``text`` (base64 or hex); ``where`` names the
    source in the error.  The key itself never appears in an error."""
    raw = text.strip() if isinstance(text, str) else text.strip().decode("ascii", "replace")
    if len(raw) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            key = decode(raw.encode())
        except (binascii.Error, ValueError):
            continue
        if len(key) == KEY_BYTES:
            return key
    raise SecretsKeyError(f"{where}: not a secrets key (expected {KEY_BYTES} bytes as base64 "
                          "or hex; 'mesoslite secrets keygen' makes one)")


def load_keyring(path: Path | None, environ: Mapping[str, str] | None = None
                 ) -> Keyring | None:
    """The key from ``path``, else from ``$MESOSLITE_SECRETS_KEY``, else None (secrets
    disabled).  Raises ``SecretsKeyError`` naming the source when it is unusable."""
    environ = os.environ if environ is None else environ
    if path is not None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SecretsKeyError(f"{path}: {exc.strerror}") from None
        return Keyring(parse_key(data, str(path)))
    text = environ.get(KEY_ENV)
    if text:
        return Keyring(parse_key(text, KEY_ENV))
    return None


def ensure_key_file(path: Path) -> Keyring:
    """The key in ``path``, first writing a new one there (mode 0600) when there is
    none: what ``mesoslite up`` does so the quick start has secrets enabled."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(generate_key() + "\n")
    keyring = load_keyring(path)
    assert keyring is not None
    return keyring
