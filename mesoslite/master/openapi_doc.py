"""The master's OpenAPI document (served at ``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

from mesoslite import __version__
from mesoslite.master.operator_api import calls as operator_calls
from mesoslite.messages.maintenance import Schedule
from mesoslite.messages.mesos import MachineID
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
def maintenance_call_bodies() -> dict[str, Any]:
    """The operator calls' maintenance bodies (``maintenance_http``)."""
    machines = {"type": "object", "properties": {"machines": {
        "type": "array", "items": {"$ref": "#/components/schemas/MachineID"}}}}
    return {"update_maintenance_schedule": {"type": "object", "properties": {
                "schedule": {"$ref": "#/components/schemas/Schedule"}}},
            "start_maintenance": machines, "stop_maintenance": machines}


_BODIES["OperatorCall"] = {"type": "object", "required": ["type"], "properties": {
    # every call the dispatcher answers, so the document cannot fall behind it
    "type": {"type": "string", "enum": ["SUBSCRIBE", *sorted(operator_calls())]},
    "reserve_resources": _RESOURCE_CALL, "unreserve_resources": _RESOURCE_CALL,
    **maintenance_call_bodies(),
    **_AGENT_CALLS,
    "list_files": {"type": "object", "properties": {"path": {"type": "string"}}},
    "read_file": {"type": "object", "properties": {
        "path": {"type": "string"}, "offset": {"type": "integer", "minimum": 0},
        "length": {"type": "integer", "minimum": 0}}},
    "teardown": {"type": "object", "properties": {"framework_id": {
        "type": "object", "properties": {"value": {"type": "string"}}}}},
    "update_weights": {"type": "object", "properties": {
        "weight_infos": {"type": "array", "items": {"$ref": "#/components/schemas/WeightInfo"}}}},
    "update_quota": {"type": "object", "properties": {
        "force": {"type": "boolean"},
        "quota_configs": {"type": "array",
                          "items": {"$ref": "#/components/schemas/QuotaConfig"}}}}}}
_SCALAR_MAP = {"type": "object", "additionalProperties": {
    "type": "object", "properties": {"value": {"type": "number"}}}}
_BODIES["WeightInfo"] = {"type": "object", "required": ["role", "weight"], "properties": {
    "role": {"type": "string"}, "weight": {"type": "number"}}}
_BODIES["WeightInfos"] = {"type": "array", "items": {"$ref": "#/components/schemas/WeightInfo"}}
_BODIES["QuotaConfig"] = {"type": "object", "required": ["role"], "properties": {
    "role": {"type": "string"}, "guarantees": _SCALAR_MAP, "limits": _SCALAR_MAP}}
_BODIES["QuotaRequest"] = {"type": "object", "required": ["role"], "properties": {
    "role": {"type": "string"}, "force": {"type": "boolean"},
    "guarantee": {"type": "array", "items": {"$ref": "#/components/schemas/Resource"}}}}


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
        **_quota_paths(leader),
    }


def _quota_paths(leader: dict[str, Any]) -> dict[str, Any]:
    """Mesos' v0 ``/weights`` and ``/quota`` (``quota_http``)."""
    changed = {"200": {"description": "stored"},
               "307": {"description": "not the leader: see Location"},
               **error_responses(400, 401, 403, 409, 413, 415, 503)}
    return {
        "/weights": {
            "get": {"summary": "role weights, [{\"role\", \"weight\"}]", "responses": leader},
            "put": {"summary": "set role weights (update_weights on each role)",
                    "requestBody": json_body("WeightInfos"), "responses": changed}},
        "/quota": {
            "get": {"summary": "quota: {\"infos\": [...], \"configs\": [...]}",
                    "responses": leader},
            "post": {"summary": "set a role's guarantees (also its limits; legacy)",
                     "requestBody": json_body("QuotaRequest"), "responses": changed}},
        "/quota/{role}": {"delete": {
            "summary": "remove a role's quota (update_quota on the role)",
            "parameters": [{"name": "role", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": changed}},
    }


def _maintenance_paths() -> dict[str, Any]:
    """Mesos' v0 maintenance endpoints (``maintenance_http``)."""
    changed = {"200": {"description": "stored"}, "307": {"description": "not the leader"},
               **error_responses(400, 401, 403, 415, 503)}
    read = {**ok_json(), "307": {"description": "not the leader"},
            **error_responses(401, 403, 503)}
    machine_list = {"content": {"application/json": {"schema": {
        "type": "array", "items": {"$ref": "#/components/schemas/MachineID"}}}}}
    return {
        "/master/maintenance/schedule": {
            "get": {"summary": "the maintenance schedule", "responses": read},
            "post": {"summary": "replace the maintenance schedule",
                     "requestBody": json_body("Schedule"), "responses": changed}},
        "/master/maintenance/status": {"get": {
            "summary": "DRAINING machines with inverse offer answers, DOWN machines",
            "responses": read}},
        "/master/machine/down": {"post": {"summary": "start maintenance: machines go DOWN",
                                          "requestBody": machine_list, "responses": changed}},
        "/master/machine/up": {"post": {"summary": "stop maintenance: machines come UP",
                                        "requestBody": machine_list, "responses": changed}},
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
                       "UPDATE_WEIGHTS/UPDATE_QUOTA change weights and quota; "
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
        **_maintenance_paths(),
        "/master/teardown": {"post": {
            "summary": "tear a framework down (v0; teardown_framework)",
            "requestBody": {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": {
                    "type": "object", "required": ["frameworkId"],
                    "properties": {"frameworkId": {"type": "string"}}}}}},
            "responses": {"200": {"description": "torn down"},
                          **error_responses(400, 401, 403, 404, 503)}}},
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
    doc = document("mesoslite master", __version__, paths, (Call, Schedule, MachineID))
    doc["components"]["schemas"].update(_BODIES)
    return doc
