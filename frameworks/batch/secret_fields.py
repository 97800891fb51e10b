"""Secret and config-map references in job documents (see docs/secrets.md)::

    env:
      DB_PASSWORD: {secret: db-credentials, key: password}
      LOG_LEVEL: {config: app-settings, key: level}
    secret_files:
      - {path: creds, secret: db-credentials}          # a directory, one file per key
      - {path: tls/key.pem, secret: tls, key: key}     # one file

The job names stored objects only; the master resolves them for the agent at each
launch.  ``path`` is relative to the task's sandbox (for an ``image`` task an
absolute path in the container is allowed too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from frameworks.batch.fields import Reader, join_path
from frameworks.common.secret_refs import Ref, parse_ref


def is_ref(item: Any) -> bool:
    return isinstance(item, Mapping) and ("secret" in item or "config" in item)


def env_refs(reader: Reader) -> dict[str, Ref] | None:
    """The ``env`` entries naming a secret or config map; None without ``env`` (so a
    step's own ``env`` replaces the job's, references included)."""
    raw = reader.data.get("env")
    if not isinstance(raw, Mapping):
        return None
    out: dict[str, Ref] = {}
    for name, item in raw.items():
        if is_ref(item):
            ref, errors = parse_ref(item)
            for message in errors:
                reader.errors.add(join_path(reader.at("env"), str(name)), message)
            if ref is not None:
                out[str(name)] = ref
    return out


def secret_files(reader: Reader) -> tuple[tuple[str, Ref], ...] | None:
    """``secret_files`` as (path, reference) pairs; None when absent."""
    raw = reader.data.get("secret_files")
    if raw is None:
        return None
    where = reader.at("secret_files")
    if not isinstance(raw, list):
        reader.errors.add(where, "must be a list of {path, secret|config, key}")
        return None
    out: list[tuple[str, Ref]] = []
    paths: set[str] = set()
    for i, item in enumerate(raw):
        at = join_path(where, i)
        if not isinstance(item, Mapping):
            reader.errors.add(at, "must be {path, secret|config, key}")
            continue
        path = item.get("path")
        if not isinstance(path, str) or not path or ".." in path.split("/"):
            reader.errors.add(join_path(at, "path"), "must be a path without '..'")
            continue
        if path in paths:
            reader.errors.add(join_path(at, "path"), f"'{path}' is given twice")
            continue
        paths.add(path)
        ref, errors = parse_ref({k: v for k, v in item.items() if k != "path"})
        for message in errors:
            reader.errors.add(at, message)
        if ref is not None:
            out.append((path, ref))
    return tuple(out)


def files_json(files: tuple[tuple[str, Ref], ...]) -> list[dict[str, str]]:
    return [{"path": path, **ref.to_json()} for path, ref in files]


def from_metronome(run: Mapping[str, Any]) -> dict[str, Any]:
    """Metronome's ``run.secrets`` (``{id: {source}}``) as the native fields: ``env``
    values ``{"secret": id}`` and ``volumes`` ``{containerPath, secret: id}`` become
    references to the stored object ``source`` (``config:NAME``: a config map)."""
    table = run.get("secrets")
    if not isinstance(table, Mapping):
        return {}

    def ref(sid: Any) -> dict[str, Any] | None:
        entry = table.get(sid) if isinstance(sid, str) else None
        source = entry.get("source") if isinstance(entry, Mapping) else None
        if not isinstance(source, str):
            return None
        kind, _, name = source.partition(":") if source.startswith("config:") else (
            "secret", "", source)
        out: dict[str, Any] = {kind: name}
        if isinstance(entry, Mapping) and entry.get("key") is not None:
            out["key"] = entry["key"]
        return out

    native: dict[str, Any] = {}
    env = run.get("env")
    if isinstance(env, Mapping):
        native["env"] = {k: (ref(v["secret"]) or v) if is_ref(v) else v
                         for k, v in env.items()}
    volumes = run.get("volumes")  # not a list: the native validation says so
    files = [{"path": v.get("containerPath"), **(ref(v.get("secret")) or {"secret": None})}
             for v in (volumes if isinstance(volumes, list) else [])
             if isinstance(v, Mapping) and "secret" in v]
    if files:
        native["secret_files"] = files
    return native
