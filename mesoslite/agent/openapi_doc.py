"""The agent's OpenAPI document (served at ``GET /openapi.json``).

The agent's HTTP API is read-only: its state, its metrics, per-task usage and the
sandbox files (``mesoslite logs`` and the dashboard's log tail read them here), and
Mesos' agent operator API over the same (``POST /api/v1``, ``operator_api.py``).
"""

from __future__ import annotations

from typing import Any

from mesoslite import __version__
from mesoslite.openapi import document, error_responses, ok_json


def _query(name: str, kind: str = "string", required: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind == "integer":
        schema["minimum"] = 0
    return {"name": name, "in": "query", "required": required, "schema": schema}


def agent_openapi() -> dict[str, Any]:
    read = {"summary": "read a sandbox file (Mesos' /files/read shape)",
            "parameters": [_query("path", required=True), _query("offset", "integer"),
                           _query("length", "integer")],
            "responses": {**ok_json(), **error_responses(400, 401, 403, 404)}}
    browse = {"summary": "list a sandbox directory",
              "parameters": [_query("path", required=True)],
              "responses": {**ok_json(), **error_responses(400, 401, 403, 404)}}
    usage = {"summary": "per-task resource usage (Mesos' /monitor/statistics shape)",
             "responses": {"200": {"description": "a list of executors' statistics"},
                           **error_responses(401, 403)}}
    path = {"type": "object", "properties": {"path": {"type": "string"}}}
    operator_call = {"type": "object", "required": ["type"], "properties": {
        "type": {"type": "string", "enum": [
            "GET_HEALTH", "GET_VERSION", "GET_FLAGS", "GET_METRICS", "GET_AGENT",
            "GET_FRAMEWORKS", "GET_EXECUTORS", "GET_TASKS", "GET_STATE", "GET_CONTAINERS",
            "LIST_FILES", "READ_FILE"]},
        "list_files": path,
        "read_file": {"type": "object", "properties": {
            "path": {"type": "string"}, "offset": {"type": "integer", "minimum": 0},
            "length": {"type": "integer", "minimum": 0}}}}}
    paths = {
        "/api/v1": {"post": {
            "summary": "Mesos' agent operator API (JSON or application/x-protobuf)",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": operator_call}}},
            "responses": {**ok_json(), **error_responses(400, 401, 403, 404, 406, 415)}}},
        "/state": {"get": {"summary": "the agent's tasks, resources and attributes",
                           "responses": {**ok_json(), **error_responses(401, 403)}}},
        "/health": {"get": {"summary": "liveness", "security": [],
                            "responses": {"200": {"description": "OK"}}}},
        "/metrics": {"get": {"summary": "Prometheus text",
                             "responses": {"200": {"description": "metrics"},
                                           **error_responses(401, 403)}}},
        "/monitor/statistics": {"get": usage},
        "/monitor/statistics.json": {"get": usage},
        "/files/read": {"get": read},
        "/files/read.json": {"get": read},
        "/files/browse": {"get": browse},
        "/files/browse.json": {"get": browse},
        "/sandbox/{framework_id}/{task_id}/{name}": {"get": {
            "summary": "a sandbox file's raw bytes",
            "parameters": [{"name": n, "in": "path", "required": True,
                            "schema": {"type": "string"}}
                           for n in ("framework_id", "task_id", "name")],
            "responses": {"200": {"description": "the file"},
                          **error_responses(400, 401, 403, 404)}}},
    }
    return document("mesoslite agent", __version__, paths)
