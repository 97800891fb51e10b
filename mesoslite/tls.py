"""TLS contexts for listeners (``--tls-cert/--tls-key``) and clients (``--ca-file``)."""

from __future__ import annotations

import ssl
from pathlib import Path


class TLSConfigError(ValueError):
    """Unusable certificate/key/CA files; the text names which."""


def server_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise TLSConfigError("give both --tls-cert and --tls-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load {cert} / {key}: {exc}") from None
    return context


def client_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """Verify servers against ``ca_file`` (None: the system's CAs, via aiohttp)."""
    if ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load CA file {ca_file}: {exc}") from None
