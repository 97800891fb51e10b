"""Apps' secrets, DC/OS style (see docs/secrets.md)::

    "secrets": {"db": {"source": "db-credentials", "key": "password"},
                "conf": {"source": "config:app-settings"}},
    "env": {"DB_PASSWORD": {"secret": "db"}},
    "container": {"volumes": [{"containerPath": "conf", "secret": "conf"}]}

``secrets`` maps an id local to the app to a stored object (``source``: a secret's
name, or ``config:NAME`` for a config map) and optionally one of its keys.  An
``env`` value ``{"secret": ID}`` is a variable holding that value; a volume with
``secret: ID`` is a read-only file (a key named) or a directory with one file per
key, on a tmpfs.  The app holds names only: values are resolved by the master for
the agent at each launch, so a rotated secret reaches the tasks started after it
(``POST /v2/apps/{id}/restart`` replaces them all with a rolling deployment).
"""

from __future__ import annotations

from frameworks.common.secret_refs import Ref, name_errors, volume
from frameworks.services.model import App
from mesoslite.messages.mesos import Volume
from mesoslite.secrets.refs import split_name

_ID_MAX = 253


def secret_errors(app: App) -> list[tuple[str, str]]:
    """(Marathon path, message) for the app's ``secrets``, secret ``env`` values and
    secret volumes.  Messages name ids and objects, never values."""
    out: list[tuple[str, str]] = []
    for sid, entry in app.secrets.items():
        out += entry_errors(sid, entry.source, entry.key)
    for var, value in app.env.items():
        if isinstance(value, str):
            continue
        where = f"/env/{var}"
        if not isinstance(value, dict) or set(value) != {"secret"} or not isinstance(
                value["secret"], str):
            out.append((where, 'expected a string or {"secret": "<id in secrets>"}'))
        elif value["secret"] not in app.secrets:
            out.append((where, f"references '{value['secret'][:80]}', which is not in secrets"))
    for i, vol in enumerate(app.container.volumes if app.container else []):
        if vol.secret is None:
            continue
        if vol.secret not in app.secrets:
            out.append((f"/container/volumes({i})/secret",
                        f"references '{vol.secret[:80]}', which is not in secrets"))
    return out


def references(app: App, kind: str, name: str) -> bool:
    """Whether the app's ``secrets`` name the stored ``kind`` ("secret" or "config")
    object ``name`` (Kubernetes secretKeyRef/configMap references arrive as these)."""
    return any(split_name(entry.source) == (kind, name) for entry in app.secrets.values())


def entry_errors(sid: str, source: str, key: str | None) -> list[tuple[str, str]]:
    """(path, message) for one ``secrets`` entry (an app's or a pod's)."""
    where = f"/secrets/{sid[:_ID_MAX]}"
    out = []
    if not sid or len(sid) > _ID_MAX:
        out.append((where, "a secret id must be 1 to 253 characters"))
    _, name = split_name(source)
    for message in name_errors(name, key):
        out.append((f"{where}/{'key' if message.startswith('key') else 'source'}", message))
    return out


def entry_ref(source: str, key: str | None) -> Ref:
    """The stored object one ``secrets`` entry names (an app's or a pod's)."""
    kind, name = split_name(source)
    return Ref(name=name, key=key, kind=kind)


def _ref(app: App, sid: str) -> Ref:
    entry = app.secrets[sid]
    return entry_ref(entry.source, entry.key)


def secret_env(app: App) -> dict[str, Ref]:
    """The app's ``{"secret": ID}`` variables as references (assumes it validated)."""
    return {var: _ref(app, value["secret"]) for var, value in app.env.items()
            if isinstance(value, dict) and value.get("secret") in app.secrets}


def secret_volumes(app: App) -> list[Volume]:
    """The app's secret volumes, always read-only (assumes it validated)."""
    return [volume(v.container_path, _ref(app, v.secret))
            for v in (app.container.volumes if app.container else [])
            if v.secret is not None and v.secret in app.secrets]
