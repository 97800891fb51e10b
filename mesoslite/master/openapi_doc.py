"""The master's OpenAPI document (served at ``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

from mesoslite import __version__
from mesoslite.messages.scheduler import Call
from mesoslite.openapi import document, error_responses, json_body, ok_json

_PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
]


def master_openapi() -> dict[str, Any]:
    paths = {
        "/api/v1/scheduler": {"post": {
            "summary": "Mesos v1 scheduler API call (SUBSCRIBE streams RecordIO events)",
            "requestBody": json_body("Call"),
            "responses": {"200": {"description": "SUBSCRIBE: RecordIO event stream"},
                          "202": {"description": "call accepted"},
                          "307": {"description": "not the leader: see Location"},
                          **error_responses(400, 401, 403, 406, 413, 415, 503)},
        }},
        "/master/state": {"get": {"summary": "cluster state in Mesos' shape",
                                  "responses": {**ok_json(), **error_responses(401, 403)}}},
        "/master/tasks": {"get": {"summary": "known tasks, paged", "parameters": _PAGING,
                                  "responses": {**ok_json(), **error_responses(400, 401, 403)}}},
        "/master/redirect": {"get": {"summary": "307 to the leading master",
                                     "responses": {"307": {"description": "the leader"},
                                                   **error_responses(401, 503)}}},
        "/health": {"get": {"summary": "liveness", "security": [],
                            "responses": {"200": {"description": "OK"}}}},
        "/metrics": {"get": {"summary": "Prometheus text",
                             "responses": {"200": {"description": "metrics"},
                                           **error_responses(401, 403)}}},
        "/version": {"get": {"summary": "version", "responses": ok_json()}},
    }
    return document("mesoslite master", __version__, paths, (Call,))
