"""Kubernetes ``ConfigMap`` and ``Secret`` -> the master's config maps and secrets
(``PUT /master/configs/{name}``, ``PUT /master/secrets/{name}``; docs/secrets.md).

A Secret's ``data`` is already base64, as the master takes it; ``stringData`` goes as
``string_data``.  A ConfigMap's ``binaryData`` cannot be a config value (text only):
it is named in a warning (store it as a Secret instead).
"""

from __future__ import annotations

from typing import Any

from frameworks.services.kube_fields import ManifestError, Reader
from frameworks.services.kube_podspec import Context


def stored_body(r: Reader, ctx: Context) -> dict[str, Any]:
    """The master's request body for the ConfigMap or Secret ``r`` reads."""
    data = r.take("data") or {}
    if not isinstance(data, dict):
        raise ManifestError(f"{ctx.where}: data must be a mapping")
    if ctx.kind == "ConfigMap":
        if r.get("binaryData") is not None:
            ctx.warn("binaryData is not honoured (config values are text; use a Secret)")
            r.take("binaryData")
        return {"data": {str(k): str(v) for k, v in data.items()}}
    r.get("type")
    body: dict[str, Any] = {}
    if data:
        body["data"] = {str(k): str(v) for k, v in data.items()}
    strings = r.take("stringData") or {}
    if strings:
        body["string_data"] = {str(k): str(v) for k, v in strings.items()}
    if not body:
        raise ManifestError(f"{ctx.where}: a secret needs data or stringData")
    return body


def stored_keys(doc: dict[str, Any]) -> list[str]:
    """The keys a ConfigMap or Secret document holds (for ``envFrom``)."""
    keys: list[str] = []
    for section in ("data", "stringData"):
        value = doc.get(section)
        if isinstance(value, dict):
            keys += [str(k) for k in value if str(k) not in keys]
    return keys
