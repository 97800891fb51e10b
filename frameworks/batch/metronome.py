"""Metronome's ``/v1/jobs`` job shape -> the native job document.

Metronome (DC/OS' job scheduler) describes a job as ``{"id", "description",
"labels", "run": {...}}`` plus optional ``schedules``.  Mapped fields (the reverse,
for answers in Metronome's shape, is ``metronome_views.py``):

| Metronome | native |
|---|---|
| ``run.cmd`` / ``run.args`` | ``command`` / ``args`` |
| ``run.cpus``, ``mem``, ``disk``, ``gpus`` | the same (Metronome's defaults: 1 cpu, 128 MB) |
| ``run.docker.image`` | ``image`` |
| ``run.env``, ``run.secrets``, secret ``run.volumes`` | ``env``, ``secret_files`` (docs/secrets.md) |
| ``run.volumes[{containerPath, hostPath, mode}]`` | ``volumes`` (host paths) |
| ``run.placement.constraints[{attribute, operator, value}]`` | ``constraints`` (``EQ`` -> ``IS``) |
| ``run.restart.policy`` ``ON_FAILURE`` / ``NEVER`` | ``retries: 1000`` / ``retries: 0`` |
| ``run.restart.activeDeadlineSeconds`` | ``retry_deadline`` (from the run's creation) |
| ``run.maxLaunchDelay`` | ``backoff.max`` |
| ``run.taskKillGracePeriodSeconds`` | ``kill_grace`` |
| ``run.artifacts[{uri, executable, extract, cache}]`` | ``artifacts`` (fetched: docs/fetcher.md) |
| ``run.user`` or ``labels.owner`` | ``user`` (the fair-share owner) |
| ``schedules[].startingDeadlineSeconds``, ``concurrencyPolicy``, ``timezone`` | snake_case |

Other Metronome fields (``networks``, ``ucr``, ``docker.parameters``, a schedule's
``nextRunAt``...) are ignored.  Errors name the Metronome path (``run.cpus``), not the
native one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from frameworks.batch.fields import SpecError
from frameworks.batch.model import ScheduleSpec, parse_schedule
from frameworks.batch.secret_fields import from_metronome as secrets_from_metronome

# ON_FAILURE relaunches "forever" (until activeDeadlineSeconds if given): the native
# retries' upper bound, which with the backoff's cap is days of retrying.
ON_FAILURE_RETRIES = 1000
RESTART_POLICIES = ("NEVER", "ON_FAILURE")
Problems = list[tuple[str, str]]
DEFAULT_CPUS, DEFAULT_MEM = 1.0, 128.0  # Metronome's, for a run without them
_RUN_KEYS = {"cmd": "command", "args": "args", "cpus": "cpus", "mem": "mem", "disk": "disk",
             "gpus": "gpus", "env": "env", "taskKillGracePeriodSeconds": "kill_grace",
             "artifacts": "artifacts"}
_SCHEDULE_KEYS = {"id": "id", "cron": "cron", "timezone": "timezone", "enabled": "enabled",
                  "concurrencyPolicy": "concurrency_policy",
                  "startingDeadlineSeconds": "starting_deadline_seconds"}
_VOLUME_SHAPES = "must be {containerPath, hostPath, mode} or {containerPath, secret}"
_SCHEDULE_OUTPUT = ("nextRunAt",)  # in Metronome's answers; ignored when sent back
_OPERATORS = {"EQ": "IS", "IS": "IS", "LIKE": "LIKE", "UNLIKE": "UNLIKE", "UNIQUE": "UNIQUE",
              "CLUSTER": "CLUSTER", "GROUP_BY": "GROUP_BY", "MAX_PER": "MAX_PER"}


def from_metronome(data: Mapping[str, Any]
                   ) -> tuple[dict[str, Any], Callable[[str], str], Problems]:
    """The native document for a Metronome job, a native -> Metronome path mapper, and
    the problems only the Metronome shape has (``(path, message)``, Metronome paths)."""
    errors: Problems = []
    run: Mapping[str, Any] = data["run"]
    native: dict[str, Any] = {k: data[k] for k in ("id", "description", "labels")
                              if data.get(k) is not None}
    native.update(cpus=DEFAULT_CPUS, mem=DEFAULT_MEM)
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
    native.update(_restart(run.get("restart"), paths, errors))
    native.update(_host_volumes(run.get("volumes"), paths, errors))
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
    schedules = data.get("schedules")
    if schedules is not None:  # not a list: the native validation says so
        native["schedules"] = ([_schedule(s) for s in schedules] if isinstance(schedules, list)
                               else schedules)
    return native, lambda path: _metronome_path(path, paths), errors


def _restart(restart: Any, paths: dict[str, str], errors: Problems) -> dict[str, Any]:
    """``restart`` as native ``retries`` and ``retry_deadline``."""
    if restart is None:
        return {}
    if not isinstance(restart, Mapping):
        errors.append(("run.restart", "must be {policy, activeDeadlineSeconds}"))
        return {}
    out: dict[str, Any] = {}
    policy = restart.get("policy", "NEVER")
    if policy not in RESTART_POLICIES:
        errors.append(("run.restart.policy", f"must be one of {', '.join(RESTART_POLICIES)}"))
    elif policy == "ON_FAILURE":
        out["retries"] = ON_FAILURE_RETRIES
    if restart.get("activeDeadlineSeconds") is not None:
        out["retry_deadline"] = restart["activeDeadlineSeconds"]
        paths["retry_deadline"] = "run.restart.activeDeadlineSeconds"
    return out


def _host_volumes(raw: Any, paths: dict[str, str], errors: Problems) -> dict[str, Any]:
    """The host-path entries of ``run.volumes`` as native ``volumes`` (the secret ones
    are read by ``secret_fields.from_metronome``)."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        errors.append(("run.volumes", "must be a list of volumes"))
        return {}
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if isinstance(item, Mapping) and "secret" in item:
            continue
        if not isinstance(item, Mapping) or "hostPath" not in item:
            errors.append((f"run.volumes[{i}]", _VOLUME_SHAPES))
            continue
        k = len(out)
        paths[f"volumes[{k}]"] = f"run.volumes[{i}]"
        for native_key, key in (("container_path", "containerPath"), ("host_path", "hostPath"),
                                ("mode", "mode")):
            paths[f"volumes[{k}].{native_key}"] = f"run.volumes[{i}].{key}"
        out.append({"container_path": item.get("containerPath"),
                    "host_path": item.get("hostPath"), "mode": item.get("mode", "RW")})
    return {"volumes": out} if out else {}


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


def schedule_from_metronome(raw: Any) -> ScheduleSpec:
    """A schedule sent to ``/v1/jobs/{id}/schedules``; ``SpecError`` with Metronome's
    field names."""
    try:
        return parse_schedule(_schedule(raw))
    except SpecError as exc:
        camel = {snake: key for key, snake in _SCHEDULE_KEYS.items()}
        raise SpecError([(camel.get(p, p), m) for p, m in exc.details]) from None


def _schedule(raw: Any) -> Any:
    if not isinstance(raw, Mapping):
        return raw
    return {_SCHEDULE_KEYS.get(k, k): v for k, v in raw.items() if k not in _SCHEDULE_OUTPUT}


def _metronome_path(path: str, paths: dict[str, str]) -> str:
    for native, metronome in sorted(paths.items(), key=lambda kv: -len(kv[0])):
        if path == native or path.startswith((native + ".", native + "[")):
            return metronome + path[len(native):]
    if path.startswith("schedules["):
        for camel, snake in _SCHEDULE_KEYS.items():
            if path.endswith("." + snake):
                return path[: -len(snake)] + camel
    return path
