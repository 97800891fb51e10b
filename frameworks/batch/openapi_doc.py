"""The batch framework's OpenAPI document (served at ``GET /openapi.json``).

Job documents are validated by hand (``model.parse_job``, strict: unknown keys are
errors), so their schema is written out here from the same field lists.  ``/v1/jobs...``
speaks Metronome's shapes (``MetronomeJob``, ``MetronomeSchedule``, described
loosely); the native API is under ``/mesoslite/v1``.  Every error is
``{"message", "details": [{"path", "errors"}]}``.
"""

from __future__ import annotations

from typing import Any

from frameworks.batch.api import MAX_LIST, NATIVE
from frameworks.batch.metronome import RESTART_POLICIES
from frameworks.batch.metronome_views import EMBEDS
from frameworks.batch.model import MAX_COMPLETIONS, NETWORKS, POLICIES
from mesoslite import __version__
from mesoslite.openapi import document, error_responses, json_body, ok_json

_COMMON = (401, 403)
_DURATION = {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string"}]}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_TASK_FIELDS: dict[str, Any] = {
    "command": {"type": "string"},
    "args": _STRINGS,
    "image": {"type": "string"},
    "cpus": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1024},
    "mem": {"type": "number", "exclusiveMinimum": True, "minimum": 0},
    "disk": {"type": "number", "minimum": 0},
    "gpus": {"type": "number", "minimum": 0, "maximum": 1024},
    "env": {"type": "object"},  # strings, or {secret|config: ...} references
    "constraints": {"type": "array", "items": _STRINGS},
    "parallelism": {"type": "integer", "minimum": 1, "maximum": MAX_COMPLETIONS},
    "completions": {"type": "integer", "minimum": 1, "maximum": MAX_COMPLETIONS},
    "retries": {"type": "integer", "minimum": 0, "maximum": 1000},
    "backoff": {"oneOf": [_DURATION, {"type": "object", "properties": {
        "initial": _DURATION, "factor": {"type": "number"}, "max": _DURATION}}]},
    "timeout": _DURATION,
    "retry_deadline": _DURATION,
    "gang": {"type": "boolean"},
    "kill_grace": _DURATION,
    "network": {"type": "string", "enum": list(NETWORKS)},  # any case
    "secret_files": {"type": "array", "items": {"type": "object"}},
    "volumes": {"type": "array", "items": {"type": "object"}},
    # a URI, or {uri, executable, extract, cache, output_file} (docs/fetcher.md)
    "artifacts": {"type": "array", "items": {"oneOf": [{"type": "string"},
                                                        {"type": "object"}]}},
}
_SCHEMAS: dict[str, Any] = {
    "Schedule": {"type": "object", "additionalProperties": False, "required": ["cron"],
                 "properties": {"id": {"type": "string"}, "cron": {"type": "string"},
                                "timezone": {"type": "string"},
                                "concurrency_policy": {"type": "string", "enum": list(POLICIES)},
                                "starting_deadline_seconds": {"type": "number", "minimum": 0},
                                "enabled": {"type": "boolean"}}},
    "Step": {"type": "object", "additionalProperties": False, "required": ["name"],
             "properties": {"name": {"type": "string"}, "depends_on": _STRINGS,
                            "allow_failure": {"type": "boolean"}, **_TASK_FIELDS}},
    "Job": {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}, "description": {"type": "string"},
        "user": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "priority": {"type": "integer", "minimum": -1000, "maximum": 1000},
        "schedule": {"$ref": "#/components/schemas/Schedule"},
        "schedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}},
        "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}},
        "run": {"type": "object", "description": "Metronome's job shape"},
        **_TASK_FIELDS}},
    "Rerun": {"type": "object", "properties": {"failed_only": {"type": "boolean"}}},
    "MetronomeSchedule": {"type": "object", "required": ["id", "cron"], "properties": {
        "id": {"type": "string"}, "cron": {"type": "string"}, "timezone": {"type": "string"},
        "concurrencyPolicy": {"type": "string", "enum": list(POLICIES)},
        "startingDeadlineSeconds": {"type": "integer", "minimum": 1},
        "enabled": {"type": "boolean"}}},
    "MetronomeJob": {"type": "object", "required": ["id", "run"], "properties": {
        "id": {"type": "string"}, "description": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "schedules": {"type": "array", "items": {
            "$ref": "#/components/schemas/MetronomeSchedule"}},
        "run": {"type": "object", "properties": {
            "cmd": {"type": "string"}, "args": _STRINGS,
            "cpus": {"type": "number"}, "mem": {"type": "number"},
            "disk": {"type": "number"}, "gpus": {"type": "number"},
            "env": {"type": "object"}, "user": {"type": "string"},
            "docker": {"type": "object", "properties": {"image": {"type": "string"}}},
            "placement": {"type": "object"}, "secrets": {"type": "object"},
            "artifacts": {"type": "array", "items": {"type": "object", "properties": {
                "uri": {"type": "string"}, "extract": {"type": "boolean"},
                "executable": {"type": "boolean"}, "cache": {"type": "boolean"}}}},
            "volumes": {"type": "array", "items": {"type": "object", "properties": {
                "containerPath": {"type": "string"}, "hostPath": {"type": "string"},
                "mode": {"type": "string", "enum": ["RO", "RW"]},
                "secret": {"type": "string"}}}},
            "restart": {"type": "object", "properties": {
                "policy": {"type": "string", "enum": list(RESTART_POLICIES)},
                "activeDeadlineSeconds": {"type": "integer", "minimum": 1}}},
            "maxLaunchDelay": {"type": "integer", "minimum": 1},
            "taskKillGracePeriodSeconds": {"type": "number", "minimum": 0},
            "networks": {"type": "array"}, "ucr": {"type": "object"}}}}},
}
_JOB = {"name": "job", "in": "path", "required": True, "schema": {"type": "string"}}
_RUN = {"name": "run", "in": "path", "required": True, "schema": {"type": "string"}}
_LIMIT = {"name": "limit", "in": "query",
          "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST}}


def _json(code: str, description: str, kind: str = "object") -> dict[str, Any]:
    return {code: {"description": description,
                   "content": {"application/json": {"schema": {"type": kind}}}}}


def _op(summary: str, *codes: int, params: list[dict[str, Any]] | None = None,
        body: str | None = None, ok: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "responses": {
        **(ok if ok is not None else ok_json()), **error_responses(*_COMMON, *codes)}}
    if params:
        out["parameters"] = params
    if body is not None:
        out["requestBody"] = json_body(body)
    return out


def _native_paths() -> dict[str, Any]:
    """The native API's operations, by path under ``/mesoslite/v1``."""
    body_errors = (400, 413, 415, 422)
    stop = _op("cancel the run", 404, 409, params=[_RUN], ok=_json("202", "cancelling"))
    return {
        "/jobs": {
            "get": _op("every job", ok=_json("200", "jobs", "array")),
            "post": _op("create a job", 409, *body_errors, body="Job",
                        ok=_json("201", "created")),
        },
        "/jobs/{job}": {
            "get": _op("a job with its recent runs", 404, params=[_JOB]),
            "put": _op("create or replace a job", *body_errors, params=[_JOB], body="Job",
                       ok={**ok_json(), **_json("201", "created")}),
            "delete": _op("delete a job (?stop_current_runs=true cancels its runs)", 404, 409,
                          params=[_JOB, {"name": "stop_current_runs", "in": "query",
                                         "schema": {"type": "boolean"}}]),
        },
        "/jobs/{job}/runs": {
            "get": _op("the job's runs, newest first", 400, 404, params=[_JOB, _LIMIT],
                       ok=_json("200", "runs", "array")),
            "post": _op("start a run", 404, params=[_JOB], ok=_json("201", "started")),
        },
        "/jobs/{job}/runs/{run}": {"get": _op("a run of the job", 404, params=[_JOB, _RUN])},
        "/jobs/{job}/runs/{run}/actions/stop": {"post": {**stop, "parameters": [_JOB, _RUN]}},
        **_shared_paths(),
    }


def _shared_paths() -> dict[str, Any]:
    """Native paths Metronome lacks: under ``/mesoslite/v1`` and ``/v1`` alike."""
    body_errors = (400, 413, 415, 422)
    stop = _op("cancel the run", 404, 409, params=[_RUN], ok=_json("202", "cancelling"))
    return {
        "/runs": {"get": _op("recent runs (?active=true: the running ones)", 400, params=[
            _LIMIT, {"name": "active", "in": "query", "schema": {"type": "boolean"}}],
            ok=_json("200", "runs", "array"))},
        "/runs/{run}": {"get": _op("a run: steps, task counts, attempts", 404, params=[_RUN])},
        "/runs/{run}/actions/stop": {"post": stop},
        "/runs/{run}/actions/rerun": {"post": {
            **_op("a new run of the same spec", 404, *body_errors, params=[_RUN],
                  ok=_json("201", "started")),
            "requestBody": {"required": False, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Rerun"}}}}}},
        "/events": {"get": {"summary": "server-sent events (Last-Event-ID resumes)",
                            "parameters": [{"name": "types", "in": "query",
                                            "schema": {"type": "string"}}],
                            "responses": {"200": {"description": "text/event-stream"},
                                          **error_responses(*_COMMON)}}},
        "/info": {"get": _op("master, framework id, store")},
    }


def _metronome_paths() -> dict[str, Any]:
    """Metronome's job, run and schedule paths under ``/v1`` (its shapes)."""
    body_errors = (400, 413, 415, 422)
    embed = {"name": "embed", "in": "query", "style": "form", "explode": True,
             "schema": {"type": "array", "items": {"type": "string", "enum": list(EMBEDS)}}}
    sched = {"name": "schedule", "in": "path", "required": True, "schema": {"type": "string"}}
    stop_all = {"name": "stopCurrentJobRuns", "in": "query", "schema": {"type": "boolean"}}
    return {
        "/v1/jobs": {
            "get": _op("every job (Metronome's shape)", 400, params=[embed],
                       ok=_json("200", "jobs", "array")),
            "post": _op("create a job", 409, *body_errors, body="MetronomeJob",
                        ok=_json("201", "created")),
        },
        "/v1/jobs/{job}": {
            "get": _op("a job (Metronome's shape)", 400, 404, params=[_JOB, embed]),
            "put": _op("create or replace a job (keeps its schedules)", 409, *body_errors,
                       params=[_JOB], body="MetronomeJob",
                       ok={**ok_json(), **_json("201", "created")}),
            "delete": _op("delete a job", 404, 409, params=[_JOB, stop_all]),
        },
        "/v1/jobs/{job}/runs": {
            "get": _op("the job's active runs", 404, params=[_JOB],
                       ok=_json("200", "runs", "array")),
            "post": _op("start a run", 404, params=[_JOB], ok=_json("201", "started")),
        },
        "/v1/jobs/{job}/runs/{run}": {"get": _op("a run", 404, params=[_JOB, _RUN])},
        "/v1/jobs/{job}/runs/{run}/actions/stop": {
            "post": _op("stop the run", 404, 409, params=[_JOB, _RUN])},
        "/v1/jobs/{job}/schedules": {
            "get": _op("the job's schedules", 404, params=[_JOB],
                       ok=_json("200", "schedules", "array")),
            "post": _op("add a schedule", 404, 409, *body_errors, params=[_JOB],
                        body="MetronomeSchedule", ok=_json("201", "created")),
        },
        "/v1/queue": {"get": _op("runs waiting to launch, by job (Metronome's shape)",
                                 ok=_json("200", "queue", "array"))},
        "/v1/jobs/{job}/schedules/{schedule}": {
            "get": _op("a schedule", 404, params=[_JOB, sched]),
            "put": _op("replace a schedule", 404, *body_errors, params=[_JOB, sched],
                       body="MetronomeSchedule"),
            "delete": _op("remove a schedule", 404, params=[_JOB, sched],
                          ok={"200": {"description": "removed (no body)"}}),
        },
    }


def batch_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {
        **{NATIVE + path: ops for path, ops in _native_paths().items()},
        **{"/v1" + path: ops for path, ops in _shared_paths().items()},
        NATIVE + "/queue": {"get": _op("tasks that have not started, and why")},
        **_metronome_paths(),
        "/health": {"get": {"summary": "liveness", "security": [], "responses": ok_json()}},
        "/metrics": {"get": {"summary": "Prometheus text", "responses": {
            "200": {"description": "metrics"}, **error_responses(*_COMMON)}}},
        "/openapi.json": {"get": {"summary": "this document", "responses": ok_json()}},
    }
    doc = document("mesoslite batch", __version__, paths)
    doc["components"]["schemas"].update(_SCHEMAS)
    return doc
