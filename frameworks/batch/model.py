"""Job, step and schedule specs: parsing, validation, the JSON shape.

A job is a pipeline of one or more steps (``StepSpec``); a job written without
``steps`` is a pipeline of one step named ``main``.  Task fields given at the top of a
pipeline (``image``, ``cpus``, ``retries``, ...) are defaults every step inherits.

``parse_job(data)`` takes the native document (YAML for the CLI, JSON over HTTP) or
Metronome's ``/v1/jobs`` shape (recognised by its ``run`` object) and returns a
validated ``JobSpec`` or raises ``SpecError`` listing every problem with the path of
the offending field (``steps[2].depends_on[0]: unknown step 'tset'``).  Native input
is strict (an unknown key is an error: a misspelt ``retires`` silently ignored would
run the job wrongly); Metronome input ignores the Metronome fields mesoslite does not
act on.  ``JobSpec.to_json()`` is the native, fully resolved document; parsing it
again gives the same spec.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from frameworks.batch.artifacts import JobArtifact, job_artifacts
from frameworks.batch.fields import (
    Errors,
    Reader,
    SpecError,
    is_number,
    join_path,
    parse_duration,
)
from frameworks.batch.secret_fields import env_refs, files_json, secret_files
from frameworks.batch.volumes import JobVolume, job_volumes
from frameworks.common.secret_refs import Ref
from mesoslite.framework.backoff import BackoffPolicy
from mesoslite.placement import Constraint, PlacementInputError

MAIN_STEP = "main"
POLICIES = ("ALLOW", "FORBID", "REPLACE")
_JOB_ID = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_STEP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_COMPLETIONS = 100_000
# A Docker step's network.  Bridge by default: every agent allows it, while host
# networking needs the agent operator's --allow-host-network-principal.
NETWORKS = ("bridge", "host")

TASK_FIELDS = ("command", "args", "image", "cpus", "mem", "disk", "gpus", "env", "constraints",
               "parallelism", "completions", "retries", "backoff", "timeout", "gang",
               "kill_grace", "secret_files", "volumes", "artifacts", "retry_deadline",
               "network")
STEP_FIELDS = ("name", "depends_on", "allow_failure", *TASK_FIELDS)
JOB_FIELDS = ("id", "description", "user", "labels", "priority", "schedule", "schedules",
              "steps", *TASK_FIELDS)
SCHEDULE_FIELDS = ("id", "cron", "timezone", "concurrency_policy", "starting_deadline_seconds",
                   "enabled")


@dataclass(frozen=True)
class ScheduleSpec:
    """A cron schedule: standard 5-field expression evaluated in ``timezone``."""

    id: str
    cron: str
    timezone: str = "UTC"
    concurrency_policy: str = "ALLOW"
    starting_deadline_seconds: float | None = None
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "cron": self.cron, "timezone": self.timezone,
                "concurrency_policy": self.concurrency_policy,
                "starting_deadline_seconds": self.starting_deadline_seconds,
                "enabled": self.enabled}


@dataclass(frozen=True)
class StepSpec:
    """One step of a pipeline: ``completions`` tasks, at most ``parallelism`` at once.

    ``command`` runs under ``/bin/sh -c``; ``args`` is executed directly (with an
    ``image``: the container's arguments).  ``retries`` are per task;
    ``timeout`` is the step's active deadline in seconds, counted from the moment the
    step may start; ``gang`` starts all tasks together or none.  ``retry_deadline``
    (Metronome's ``restart.activeDeadlineSeconds``) bounds the retries in time: a task
    that fails this many seconds or more after the run was created is not relaunched,
    whatever ``retries`` it has left.
    """

    name: str
    command: str | None = None
    args: tuple[str, ...] | None = None
    image: str | None = None
    cpus: float = 0.1
    mem: float = 32.0
    disk: float = 0.0
    gpus: float = 0.0
    env: Mapping[str, str] = field(default_factory=dict)
    constraints: tuple[tuple[str, ...], ...] = ()
    parallelism: int = 1
    completions: int = 1
    retries: int = 0
    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(1.0, 2.0, 60.0))
    timeout: float | None = None
    gang: bool = False
    kill_grace: float | None = None
    depends_on: tuple[str, ...] = ()
    allow_failure: bool = False
    # References to stored secrets/config maps (names only; docs/secrets.md).
    secret_env: Mapping[str, Ref] = field(default_factory=dict)
    secret_files: tuple[tuple[str, Ref], ...] = ()
    volumes: tuple[JobVolume, ...] = ()  # host paths, named Docker volumes (volumes.py)
    artifacts: tuple[JobArtifact, ...] = ()  # fetched into the sandbox (artifacts.py)
    retry_deadline: float | None = None
    network: str = "bridge"  # an image's container network: one of NETWORKS

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "depends_on": list(self.depends_on),
            "allow_failure": self.allow_failure, "command": self.command,
            "args": list(self.args) if self.args is not None else None, "image": self.image,
            "network": self.network,
            "cpus": self.cpus, "mem": self.mem, "disk": self.disk, "gpus": self.gpus,
            "env": {**self.env, **{k: r.to_json() for k, r in self.secret_env.items()}},
            "secret_files": files_json(self.secret_files),
            "volumes": [v.to_json() for v in self.volumes],
            "artifacts": [a.to_json() for a in self.artifacts],
            "constraints": [list(c) for c in self.constraints],
            "parallelism": self.parallelism, "completions": self.completions,
            "retries": self.retries,
            "backoff": {"initial": self.backoff.initial, "factor": self.backoff.factor,
                        "max": self.backoff.maximum},
            "timeout": self.timeout, "gang": self.gang, "kill_grace": self.kill_grace,
            "retry_deadline": self.retry_deadline,
        }


@dataclass(frozen=True)
class JobSpec:
    """A job: who owns it, how urgent it is, its steps (a DAG) and its schedules."""

    id: str
    steps: tuple[StepSpec, ...]
    description: str = ""
    user: str = "anonymous"
    labels: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    schedules: tuple[ScheduleSpec, ...] = ()

    def step(self, name: str) -> StepSpec:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def is_pipeline(self) -> bool:
        return len(self.steps) > 1 or self.steps[0].name != MAIN_STEP

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "description": self.description, "user": self.user,
                "labels": dict(self.labels), "priority": self.priority,
                "schedules": [s.to_json() for s in self.schedules],
                "steps": [s.to_json() for s in self.steps]}


# ---------------------------------------------------------------- parsing


def _backoff(reader: Reader) -> BackoffPolicy | None:
    raw = reader.data.get("backoff")
    if raw is None:
        return None
    if is_number(raw) or isinstance(raw, str):
        seconds = parse_duration(raw)
        if seconds is None or seconds < 0:
            reader.errors.add(reader.at("backoff"), "must be a duration or "
                                                    "{initial, factor, max}")
            return None
        return BackoffPolicy(seconds, 2.0, max(60.0, seconds))
    if not isinstance(raw, Mapping):
        reader.errors.add(reader.at("backoff"), "must be a duration or {initial, factor, max}")
        return None
    sub = Reader(raw, reader.at("backoff"), reader.errors)
    sub.unknown(("initial", "factor", "max"))
    initial = sub.duration("initial", allow_zero=True)
    factor = sub.number("factor", 1.0, 100.0)
    maximum = sub.duration("max")
    base = BackoffPolicy(1.0, 2.0, 60.0)
    initial = base.initial if initial is None else initial
    return BackoffPolicy(initial, base.factor if factor is None else factor,
                         max(initial, base.maximum if maximum is None else maximum))


def _constraints(reader: Reader) -> tuple[tuple[str, ...], ...] | None:
    raw = reader.data.get("constraints")
    if raw is None:
        return None
    if not isinstance(raw, list):
        reader.errors.add(reader.at("constraints"), "must be a list of [field, OPERATOR, value]")
        return None
    out = []
    for i, item in enumerate(raw):
        where = join_path(reader.at("constraints"), i)
        try:
            out.append(tuple(Constraint.of(item).to_list()))
        except PlacementInputError as exc:  # its field is "" or "[k]" within the item
            reader.errors.add(where + exc.field, exc.message)
    return tuple(out)


def _task_fields(reader: Reader) -> dict[str, Any]:
    """The task fields present in ``reader`` (absent ones are left to inheritance)."""
    values: dict[str, Any] = {
        "command": reader.string("command"),
        "args": reader.strings("args"),
        "image": reader.string("image"),
        "cpus": reader.number("cpus", 0.0, 1024.0, low_open=True),
        "mem": reader.number("mem", 0.0, 16_777_216.0, low_open=True),
        "disk": reader.number("disk", 0.0),
        "gpus": reader.number("gpus", 0.0, 1024.0),
        "env": reader.text_map("env", refs=True),
        "secret_env": env_refs(reader),
        "secret_files": secret_files(reader),
        "volumes": job_volumes(reader),
        "artifacts": job_artifacts(reader),
        "constraints": _constraints(reader),
        "parallelism": reader.integer("parallelism", 1, MAX_COMPLETIONS),
        "completions": reader.integer("completions", 1, MAX_COMPLETIONS),
        "retries": reader.integer("retries", 0, 1000),
        "backoff": _backoff(reader),
        "timeout": reader.duration("timeout"),
        "gang": reader.boolean("gang"),
        "kill_grace": reader.duration("kill_grace", allow_zero=True),
        "retry_deadline": reader.duration("retry_deadline"),
        "network": _network(reader),
    }
    return {k: v for k, v in values.items() if v is not None}


def _network(reader: Reader) -> str | None:
    value = reader.string("network")
    if value is None or value.lower() in NETWORKS:
        return value.lower() if value else None
    reader.errors.add(reader.at("network"), f"must be one of {', '.join(NETWORKS)}")
    return None


def _resolve_step(name: str, defaults: dict[str, Any], own: dict[str, Any], path: str,
                  depends_on: tuple[str, ...], allow_failure: bool, errors: Errors
                  ) -> StepSpec | None:
    merged = {**defaults, **own}
    if "parallelism" not in merged:
        # Unset parallelism: every task at once (what a sharded test step wants).
        merged["parallelism"] = merged.get("completions", 1)
    if not any(merged.get(k) for k in ("command", "args", "image")):
        errors.add(path, "a step needs a command, args or an image")
        return None
    if merged.get("command") and merged.get("args"):
        errors.add(join_path(path, "args"), "give either command (a shell line) or args, not both")
        return None
    if merged.get("gang") and merged["parallelism"] != merged.get("completions", 1):
        errors.add(join_path(path, "parallelism"),
                   "a gang runs all its tasks at once: parallelism must equal completions")
        return None
    return StepSpec(name=name, depends_on=depends_on, allow_failure=allow_failure, **merged)


def _parse_steps(reader: Reader, defaults: dict[str, Any], errors: Errors
                 ) -> list[StepSpec]:
    raw = reader.data.get("steps")
    if raw is None:
        step = _resolve_step(MAIN_STEP, {}, defaults, "", (), False, errors)
        return [step] if step else []
    if not isinstance(raw, list) or not raw:
        errors.add("steps", "must be a non-empty list of steps")
        return []
    steps: list[StepSpec] = []
    for i, item in enumerate(raw):
        path = join_path("steps", i)
        if not isinstance(item, Mapping):
            errors.add(path, "must be a mapping")
            continue
        sub = Reader(item, path, errors)
        sub.unknown(STEP_FIELDS)
        name = sub.string("name", _STEP_NAME, "must be lowercase letters, digits, '-' or '_' "
                                              "(at most 63)")
        if name is None:
            if "name" not in item:
                errors.add(join_path(path, "name"), "is required")
            continue
        depends = sub.strings("depends_on", allow_single=True) or ()
        allow = sub.boolean("allow_failure") or False
        step = _resolve_step(name, defaults, _task_fields(sub), path, depends, allow, errors)
        if step is not None:
            steps.append(step)
    return steps


def _parse_schedule(raw: Any, path: str, index: int, errors: Errors) -> ScheduleSpec | None:
    from frameworks.batch.cron import CronError, validate_cron

    if not isinstance(raw, Mapping):
        errors.add(path, "must be a mapping with at least 'cron'")
        return None
    sub = Reader(raw, path, errors)
    sub.unknown(SCHEDULE_FIELDS)
    sid = sub.string("id", _STEP_NAME, "must be lowercase letters, digits, '-' or '_'")
    cron = sub.string("cron")
    if cron is None and "cron" not in raw:
        errors.add(join_path(path, "cron"), "is required")
    tz = sub.string("timezone") or "UTC"
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        errors.add(join_path(path, "timezone"), f"unknown time zone {tz!r}")
    policy = (sub.string("concurrency_policy") or "ALLOW").upper()
    if policy not in POLICIES:
        errors.add(join_path(path, "concurrency_policy"), f"must be one of {', '.join(POLICIES)}")
    deadline = sub.duration("starting_deadline_seconds")
    enabled = sub.boolean("enabled")
    if cron is not None:
        try:
            validate_cron(cron)
        except CronError as exc:
            errors.add(join_path(path, "cron"), str(exc))
            return None
    if cron is None:
        return None
    return ScheduleSpec(sid or ("default" if index == 0 else f"s{index}"), cron, tz, policy,
                        deadline, True if enabled is None else enabled)


def parse_schedule(raw: Any) -> ScheduleSpec:
    """One native schedule document, ``id`` required; raises ``SpecError``."""
    errors = Errors()
    if isinstance(raw, Mapping) and raw.get("id") is None:
        errors.add("id", "is required")
    schedule = _parse_schedule(raw, "", 0, errors)
    errors.raise_if_any()
    assert schedule is not None
    return schedule


def _parse_schedules(reader: Reader, errors: Errors) -> list[ScheduleSpec]:
    data = reader.data
    if data.get("schedule") is not None and data.get("schedules") is not None:
        errors.add("schedule", "give either schedule or schedules, not both")
        return []
    if data.get("schedule") is not None:
        sched = _parse_schedule(data["schedule"], "schedule", 0, errors)
        return [sched] if sched else []
    raw = data.get("schedules")
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add("schedules", "must be a list")
        return []
    out = [_parse_schedule(item, join_path("schedules", i), i, errors) for i, item in enumerate(raw)]
    ids = [s.id for s in out if s]
    for i, sid in enumerate(ids):
        if sid in ids[:i]:
            errors.add(join_path("schedules", i), f"duplicate schedule id {sid!r}")
    return [s for s in out if s]


def parse_job(data: Any, default_user: str | None = None) -> JobSpec:
    """A validated ``JobSpec`` from a native or Metronome-shaped document.

    ``default_user`` owns the job when the document names no ``user``.  Raises
    ``SpecError`` naming every offending field.
    """
    if isinstance(data, Mapping) and isinstance(data.get("run"), Mapping):
        from frameworks.batch.metronome import from_metronome

        data, paths, problems = from_metronome(data)
        try:
            spec = parse_job(data, default_user)
        except SpecError as exc:
            raise SpecError(problems + [(paths(p), m) for p, m in exc.details]) from None
        if problems:
            raise SpecError(problems)
        return spec
    if not isinstance(data, Mapping):
        raise SpecError([("", "a job must be a mapping (JSON object)")])
    errors = Errors()
    reader = Reader(data, "", errors)
    reader.unknown(JOB_FIELDS)
    job_id = reader.string("id", _JOB_ID, "must be lowercase letters, digits and '-', in "
                                          "dot-separated parts, not starting or ending with '-'")
    if "id" not in data:
        errors.add("id", "is required")
    description = data.get("description") or ""
    if not isinstance(description, str):
        errors.add("description", "must be a string")
    user = reader.string("user") or default_user or "anonymous"
    labels = reader.text_map("labels") or {}
    priority = reader.integer("priority", -1000, 1000) or 0
    defaults = _task_fields(reader)
    if data.get("steps") is not None:
        for key in ("depends_on", "allow_failure", "name"):
            if key in data:
                errors.add(key, "belongs to a step (inside steps)")
    steps = _parse_steps(reader, defaults, errors)
    schedules = _parse_schedules(reader, errors)
    if not errors.items:
        from frameworks.batch.dag import DagError, validate_dag

        try:
            validate_dag(steps)
        except DagError as exc:
            errors.add(exc.path, exc.message)
    errors.raise_if_any()
    assert job_id is not None
    return JobSpec(job_id, tuple(steps), str(description), user, labels, priority,
                   tuple(schedules))


def with_user(spec: JobSpec, user: str) -> JobSpec:
    return replace(spec, user=user)
