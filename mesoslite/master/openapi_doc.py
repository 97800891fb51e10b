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


_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
# Secret and config bodies are read by hand (values never pass through a logged
# struct), so their schemas are written out here.
_BODIES = {
    "SecretBody": {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string"}, "data": _STRING_MAP, "string_data": _STRING_MAP}},
    "ConfigBody": {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string"}, "data": _STRING_MAP}},
}
_RESOURCE_CALL = {"type": "object", "properties": {
    "agent_id": {"type": "object", "properties": {"value": {"type": "string"}}},
    "resources": {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}}}}
_AGENT_ID = {"type": "object", "properties": {
    "agent_id": {"type": "object", "properties": {"value": {"type": "string"}}}}}
# max_grace_period: protobuf's Duration ({"seconds": s, "nanos": n}, or "600s") or
# Mesos' DurationInfo ({"nanoseconds": n})
_DURATION = {"oneOf": [
    {"type": "string"},
    {"type": "object", "properties": {"seconds": {"type": "integer"},
                                      "nanos": {"type": "integer"},
                                      "nanoseconds": {"type": "integer"}}}]}
_AGENT_CALLS = {
    "drain_agent": {"type": "object", "properties": {
        **_AGENT_ID["properties"], "max_grace_period": _DURATION,
        "mark_gone": {"type": "boolean"}}},
    "deactivate_agent": _AGENT_ID, "reactivate_agent": _AGENT_ID, "mark_agent_gone": _AGENT_ID,
}
_BODIES["OperatorCall"] = {"type": "object", "required": ["type"], "properties": {
    "type": {"type": "string", "enum": [
        "SUBSCRIBE", "GET_STATE", "GET_AGENTS", "GET_FRAMEWORKS", "GET_TASKS", "GET_HEALTH",
        "GET_VERSION", "GET_MASTER", "GET_EXECUTORS", "GET_FLAGS", "GET_METRICS", "GET_ROLES",
        "RESERVE_RESOURCES", "UNRESERVE_RESOURCES",
        "DRAIN_AGENT", "DEACTIVATE_AGENT", "REACTIVATE_AGENT", "MARK_AGENT_GONE"]},
    "reserve_resources": _RESOURCE_CALL, "unreserve_resources": _RESOURCE_CALL,
    **_AGENT_CALLS}}


def _store_paths(plural: str, body: str) -> dict[str, Any]:
    """``/master/secrets`` or ``/master/configs``: list, create, show, replace, delete."""
    errors = error_responses(400, 401, 403, 404, 413, 415, 422, 503)
    return {
        f"/master/{plural}": {
            "get": {"summary": f"list {plural} (metadata only)", "responses": {
                **ok_json(), **error_responses(401, 403, 503)}},
            "post": {"summary": f"create one of the {plural}", "requestBody": json_body(body),
                     "responses": {"201": {"description": "created"},
                                   "409": {"description": "exists"}, **errors}},
        },
        f"/master/{plural}/{{name}}": {
            "get": {"summary": "metadata", "parameters": _NAME,
                    "responses": {**ok_json(), **errors}},
            "put": {"summary": "create or replace (rotate)", "parameters": _NAME,
                    "requestBody": json_body(body),
                    "responses": {**ok_json(), "201": {"description": "created"}, **errors}},
            "delete": {"summary": "delete", "parameters": _NAME,
                       "responses": {**ok_json(), **errors}},
        },
    }


def _v0_read_paths() -> dict[str, Any]:
    """Mesos' v0 read endpoints (``operator_reads_http``)."""
    leader = {**ok_json(), "307": {"description": "not the leader: see Location"},
              **error_responses(401, 403, 503)}
    return {
        "/metrics/snapshot": {"get": {
            "summary": "Mesos' metrics, flat JSON: {\"master/elected\": 1.0, ...}",
            "responses": {**ok_json(), **error_responses(401, 403)}}},
        "/master/flags": {"get": {
            "summary": "the master's configuration, {\"flags\": {name: value}} (no secrets)",
            "responses": {**ok_json(), **error_responses(401, 403)}}},
        "/master/health": {"get": {
            "summary": "200 with an empty body while this master serves",
            "responses": {"200": {"description": "healthy"},
                          **error_responses(401, 403, 503)}}},
        "/master/slaves": {"get": {"summary": "agents, {\"slaves\": [...]}",
                                   "responses": leader}},
        "/master/frameworks": {"get": {
            "summary": "frameworks, completed frameworks", "responses": leader}},
        "/master/roles": {"get": {
            "summary": "roles with weight, frameworks and allocation", "responses": leader}},
    }


def master_openapi() -> dict[str, Any]:
    scheduler = {"post": {
        "summary": "Mesos v1 scheduler API call (SUBSCRIBE streams RecordIO events)",
        "requestBody": json_body("Call"),
        "responses": {"200": {"description": "SUBSCRIBE: RecordIO event stream"},
                      "202": {"description": "call accepted"},
                      "307": {"description": "not the leader: see Location"},
                      **error_responses(400, 401, 403, 406, 413, 415, 503)},
    }}
    paths = {
        "/api/v1/scheduler": scheduler,
        "/master/api/v1/scheduler": scheduler,
        "/api/v1": {"post": {
            "summary": "Mesos v1 operator API call (SUBSCRIBE streams RecordIO events; "
                       "RESERVE_RESOURCES/UNRESERVE_RESOURCES change reservations; "
                       "DRAIN_AGENT, DEACTIVATE_AGENT, REACTIVATE_AGENT, MARK_AGENT_GONE "
                       "answer 200 with no body once stored)",
            "requestBody": json_body("OperatorCall"),
            "responses": {**ok_json(), "202": {"description": "reservation stored"},
                          "307": {"description": "not the leader: see Location"},
                          **error_responses(400, 401, 403, 404, 406, 409, 413, 415, 503)},
        }},
        "/master/state": {"get": {"summary": "cluster state in Mesos' shape",
                                  "responses": {**ok_json(), **error_responses(401, 403)}}},
        "/master/tasks": {"get": {"summary": "known tasks, paged", "parameters": _PAGING,
                                  "responses": {**ok_json(), **error_responses(400, 401, 403)}}},
        **_v0_read_paths(),
        "/master/redirect": {"get": {"summary": "307 to the leading master",
                                     "responses": {"307": {"description": "the leader"},
                                                   **error_responses(401, 503)}}},
        "/health": {"get": {"summary": "liveness", "security": [],
                            "responses": {"200": {"description": "OK"}}}},
        "/metrics": {"get": {"summary": "Prometheus text",
                             "responses": {"200": {"description": "metrics"},
                                           **error_responses(401, 403)}}},
        "/version": {"get": {"summary": "version", "responses": ok_json()}},
        **_store_paths("secrets", "SecretBody"),
        **_store_paths("configs", "ConfigBody"),
    }
    doc = document("mesoslite master", __version__, paths, (Call,))
    doc["components"]["schemas"].update(_BODIES)
    return doc
