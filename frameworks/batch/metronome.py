"""Metronome's ``/v1/jobs`` job shape -> the native job document.

Metronome (DC/OS' job scheduler) describes a job as ``{"id", "description",
"labels", "run": {...}}`` plus optional ``schedules``.  Mapped fields:

| Metronome | native |
|---|---|
| ``run.cmd`` / ``run.args`` | ``command`` / ``args`` |
| ``run.cpus``, ``mem``, ``disk``, ``gpus`` | the same |
| ``run.docker.image`` | ``image`` |
| ``run.env``, ``run.secrets``, secret ``run.volumes`` | ``env``, ``secret_files`` (docs/secrets.md) |
| ``run.placement.constraints[{attribute, operator, value}]`` | ``constraints`` (``EQ`` -> ``IS``) |
| ``run.restart.policy`` ``ON_FAILURE`` | ``retries: 3`` (Metronome retries until the deadline) |
| ``run.restart.activeDeadlineSeconds`` | ``timeout`` |
| ``run.maxLaunchDelay`` | ``backoff.max`` |
| ``run.taskKillGracePeriodSeconds`` | ``kill_grace`` |
| ``run.artifacts[{uri, executable, extract, cache}]`` | ``artifacts`` (fetched: docs/fetcher.md) |
| ``run.user`` or ``labels.owner`` | ``user`` (the fair-share owner) |
| ``schedules[].startingDeadlineSeconds``, ``concurrencyPolicy``, ``timezone`` | snake_case |

Other Metronome fields (``volumes``, ``networks``, ``ucr``...) are ignored.  Errors
name the Metronome path (``run.cpus``), not the native one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from frameworks.batch.secret_fields import from_metronome as secrets_from_metronome

ON_FAILURE_RETRIES = 3
_RUN_KEYS = {"cmd": "command", "args": "args", "cpus": "cpus", "mem": "mem", "disk": "disk",
             "gpus": "gpus", "env": "env", "taskKillGracePeriodSeconds": "kill_grace",
             "artifacts": "artifacts"}
_SCHEDULE_KEYS = {"id": "id", "cron": "cron", "timezone": "timezone", "enabled": "enabled",
                  "concurrencyPolicy": "concurrency_policy",
                  "startingDeadlineSeconds": "starting_deadline_seconds"}
_OPERATORS = {"EQ": "IS", "IS": "IS", "LIKE": "LIKE", "UNLIKE": "UNLIKE", "UNIQUE": "UNIQUE",
              "CLUSTER": "CLUSTER", "GROUP_BY": "GROUP_BY", "MAX_PER": "MAX_PER"}


def from_metronome(data: Mapping[str, Any]) -> tuple[dict[str, Any], Callable[[str], str]]:
    """The native document for a Metronome job, and a native -> Metronome path mapper."""
    run: Mapping[str, Any] = data["run"]
    native: dict[str, Any] = {k: data[k] for k in ("id", "description", "labels")
                              if data.get(k) is not None}
    paths: dict[str, str] = {}
    for key, target in _RUN_KEYS.items():
        if run.get(key) is not None:
            native[target] = run[key]
            paths[target] = f"run.{key}"
    native.update(secrets_from_metronome(run))  # run.secrets (see secret_fields.py)
    docker = run.get("docker")
    if isinstance(docker, Mapping) and docker.get("image") is not None:
        native["image"] = docker["image"]
        paths["image"] = "run.docker.image"
    restart = run.get("restart")
    if isinstance(restart, Mapping):
        if str(restart.get("policy", "NEVER")).upper() == "ON_FAILURE":
            native["retries"] = ON_FAILURE_RETRIES
        if restart.get("activeDeadlineSeconds") is not None:
            native["timeout"] = restart["activeDeadlineSeconds"]
            paths["timeout"] = "run.restart.activeDeadlineSeconds"
    if run.get("maxLaunchDelay") is not None:
        native["backoff"] = {"max": run["maxLaunchDelay"]}
        paths["backoff.max"] = "run.maxLaunchDelay"
    constraints = _constraints(run)
    if constraints is not None:
        native["constraints"] = constraints
        paths["constraints"] = "run.placement.constraints"
    labels = data.get("labels")  # not a mapping: the native validation says so
    owner = run.get("user") or (labels.get("owner") if isinstance(labels, Mapping) else None)
    if isinstance(owner, str) and owner:
        native["user"] = owner
    if isinstance(data.get("schedules"), list):
        native["schedules"] = [_schedule(s) for s in data["schedules"]]
    return native, lambda path: _metronome_path(path, paths)


def _constraints(run: Mapping[str, Any]) -> list[Any] | None:
    placement = run.get("placement")
    if not isinstance(placement, Mapping) or placement.get("constraints") is None:
        return None
    raw = placement["constraints"]
    if not isinstance(raw, list):
        return raw  # let the native validation complain, with the mapped path
    out: list[Any] = []
    for item in raw:
        if isinstance(item, Mapping):
            op = _OPERATORS.get(str(item.get("operator", "")).upper(), item.get("operator"))
            entry = [item.get("attribute"), op]
            if item.get("value") is not None:
                entry.append(item["value"])
            out.append(entry)
        else:
            out.append(item)
    return out


def _schedule(raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        return raw
    return {_SCHEDULE_KEYS.get(k, k): v for k, v in raw.items()}


def _metronome_path(path: str, paths: dict[str, str]) -> str:
    for native, metronome in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        if path == native or path.startswith((native + ".", native + "[")):
            return metronome + path[len(native):]
    if path.startswith("schedules["):
        for camel, snake in _SCHEDULE_KEYS.items():
            if path.endswith("." + snake):
                return path[: -len(snake)] + camel
    return path
