"""The services framework's OpenAPI document (served at ``GET /openapi.json``).

Marathon's ``/v2`` API as mesoslite serves it.  App and pod bodies are described by
the ``App`` and ``Pod`` structs that ``validation.parse_app`` and
``pod_validation.parse_pod`` convert them into, so the document follows the code.  Errors are ``{"message", "details": [{"path", "errors"}]}``;
a 409 also lists the ``deployments`` in the way (Marathon's shape).
"""

from __future__ import annotations

from typing import Any

from frameworks.services.model import App
from frameworks.services.pod_model import Pod
from mesoslite import __version__
from mesoslite.openapi import document, error_responses, json_body, ok_json

_APP_ID = {"name": "appId", "in": "path", "required": True, "schema": {"type": "string"}}
_FORCE = {"name": "force", "in": "query", "schema": {"type": "boolean"}}
_EMBED = {"name": "embed", "in": "query", "schema": {"type": "string"}}
# Every route may answer these: authentication, authorization, a bad query flag.
_COMMON = (400, 401, 403)


def _op(summary: str, *codes: int, params: list[dict[str, Any]] | None = None,
        body: str | dict[str, Any] | None = None, ok: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    """One operation: ``ok`` its success answers (default 200 JSON), ``codes`` its
    errors besides the common ones."""
    out: dict[str, Any] = {"summary": summary, "responses": {
        **(ok if ok is not None else ok_json()), **error_responses(*_COMMON, *codes)}}
    if params:
        out["parameters"] = params
    if isinstance(body, str):
        out["requestBody"] = json_body(body)
    elif body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": body}}}
    return out


def _deployment(code: str = "200") -> dict[str, Any]:
    return {code: {"description": "the deployment started", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/DeploymentResult"}}}}}


_CONFLICT = {"409": {"description": "a deployment holds the app (retry with ?force=true)",
                     "content": {"application/json": {"schema": {
                         "$ref": "#/components/schemas/Conflict"}}}}}
_BODIES = {
    "DeploymentResult": {"type": "object", "required": ["deploymentId", "version"],
                         "properties": {"deploymentId": {"type": "string", "nullable": True},
                                        "version": {"type": "string", "nullable": True}}},
    "Conflict": {"type": "object", "required": ["message", "details"], "properties": {
        "message": {"type": "string"},
        "details": {"type": "array"},
        "deployments": {"type": "array", "items": {"type": "object"}}}},
    "TaskIds": {"type": "object", "required": ["ids"], "properties": {
        "ids": {"type": "array", "items": {"type": "string"}}}},
    "AppList": {"type": "array", "items": {"$ref": "#/components/schemas/App"}},
    "InstanceIds": {"type": "array", "items": {"type": "string"}},
    # Marathon's GroupUpdate; its apps are App definitions (described loosely here so
    # the fuzzer does not derive hundreds of bodies from App for each group route).
    "GroupUpdate": {"type": "object", "properties": {
        "id": {"type": "string"},
        "apps": {"type": "array", "items": {"type": "object"}},
        "groups": {"type": "array", "items": {"type": "object"}},
        "dependencies": {"type": "array", "items": {"type": "string"}},
        "scaleBy": {"type": "number"},
        "version": {"type": "string"},
        "enforceRole": {"type": "boolean"}}},
}
_GROUP_ID = {"name": "groupId", "in": "path", "required": True, "schema": {"type": "string"}}
_VERSION = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}


def _group_paths() -> dict[str, Any]:
    """``/v2/groups`` (api_groups.py): the root group at ``/v2/groups``, any other at
    ``/v2/groups/{groupId}``."""
    def one(params: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "get": _op("the group tree (?embed=group.groups,group.apps,group.pods,"
                       "group.apps.tasks,...)", 404, params=[*params, _EMBED]),
            "post": _op("create a group (with its apps and groups) inside this one", 404,
                        409, 413, 415, 422, params=[*params, _FORCE], body="GroupUpdate",
                        ok={**_deployment("201"), **_CONFLICT}),
            "put": _op("update or create the group; scaleBy scales every app in it; "
                       "version reverts it to a stored version", 404, 409, 413, 415, 422,
                       params=[*params, _FORCE], body="GroupUpdate",
                       ok={**_deployment(), **_CONFLICT}),
            "delete": _op("delete the group, its groups and their apps", 404, 409,
                          params=[*params, _FORCE], ok={**_deployment(), **_CONFLICT}),
        }

    versions = {"get": _op("the group's stored versions", 404, params=[_GROUP_ID])}
    version = {"get": _op("the group at one version", 404, params=[_GROUP_ID, _VERSION]),
               "put": _op("revert the group to that version", 404, 409, 422,
                          params=[_GROUP_ID, _VERSION, _FORCE],
                          ok={**_deployment(), **_CONFLICT})}
    return {"/v2/groups": one([]), "/v2/groups/{groupId}": one([_GROUP_ID]),
            "/v2/groups/{groupId}/versions": versions,
            "/v2/groups/{groupId}/versions/{version}": version}
_POD_ID = {"name": "podId", "in": "path", "required": True, "schema": {"type": "string"}}


def _pod_paths() -> dict[str, Any]:
    """``/v2/pods`` (Marathon's pod API: api_pods.py)."""
    pod_ok = {"200": {"description": "the pod", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Pod"}}}}}
    created = {"201": {"description": "created", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Pod"}}}}}
    version = {"name": "version", "in": "path", "required": True, "schema": {"type": "string"}}
    instance = {"name": "instanceId", "in": "path", "required": True,
                "schema": {"type": "string"}}
    return {
        "/v2/pods": {
            "get": _op("every pod"),
            "post": _op("create a pod", 409, 413, 415, 422, params=[_FORCE], body="Pod",
                        ok={**created, **_CONFLICT}),
        },
        "/v2/pods/::status": {"get": _op("every pod's status")},
        "/v2/pods/{podId}": {
            "get": _op("one pod", 404, params=[_POD_ID], ok=pod_ok),
            "put": _op("replace (or create) a pod: a rolling upgrade, or a scale when only "
                       "scaling.instances changed", 409, 413, 415, 422,
                       params=[_POD_ID, _FORCE], body="Pod",
                       ok={**pod_ok, **created, **_CONFLICT}),
            "delete": _op("delete the pod (its instances are killed)", 404, 409,
                          params=[_POD_ID, _FORCE], ok={**_deployment("202"), **_CONFLICT}),
        },
        "/v2/pods/{podId}::status": {"get": _op(
            "the pod's status: each instance and container", 404, params=[_POD_ID])},
        "/v2/pods/{podId}::versions": {"get": _op("the pod's versions", 404,
                                                  params=[_POD_ID])},
        "/v2/pods/{podId}::versions/{version}": {"get": _op(
            "the pod at one version", 404, params=[_POD_ID, version], ok=pod_ok)},
        "/v2/pods/{podId}::instances": {"delete": _op(
            "kill instances by id (they are replaced)", 404, 413, 415, 422,
            params=[_POD_ID], body="InstanceIds")},
        "/v2/pods/{podId}::instances/{instanceId}": {"delete": _op(
            "kill one instance (it is replaced)", 404, params=[_POD_ID, instance])},
    }


def services_openapi() -> dict[str, Any]:
    one_app = {"get": _op("one app", 404, params=[_APP_ID, _EMBED]),
               "put": _op("replace (or create) an app; ?partialUpdate=false replaces "
                          "the whole definition", 404, 409, 413, 415, 422,
                          params=[_APP_ID, _FORCE, {"name": "partialUpdate", "in": "query",
                                                    "schema": {"type": "boolean"}}],
                          body="App", ok={**_deployment(), **_deployment("201"), **_CONFLICT}),
               "patch": _op("change the fields given", 404, 409, 413, 415, 422,
                            params=[_APP_ID, _FORCE], body="App",
                            ok={**_deployment(), **_deployment("201"), **_CONFLICT}),
               "delete": _op("delete the app (?wipe=true: and its persistent volumes)",
                             404, 409, params=[_APP_ID, _FORCE, {
                                 "name": "wipe", "in": "query", "schema": {"type": "boolean"}}],
                             ok={**_deployment(), **_CONFLICT})}
    task_query = [_APP_ID, _FORCE, *({"name": n, "in": "query", "schema": {"type": "boolean"}}
                                     for n in ("scale", "wipe"))]
    paths: dict[str, Any] = {
        "/v2/apps": {
            "get": _op("every app", params=[_EMBED, *({"name": n, "in": "query", "schema": {
                "type": "string"}} for n in ("cmd", "id", "label", "secret", "config"))]),
            "post": _op("create an app", 409, 413, 415, 422, params=[_FORCE], body="App",
                        ok={"201": {"description": "created", "content": {
                            "application/json": {"schema": {"type": "object"}}}},
                            **_CONFLICT}),
            "put": _op("update several apps (each with its id)", 404, 409, 413, 415, 422,
                       params=[_FORCE], body="AppList", ok={**_deployment(), **_CONFLICT}),
            "patch": _op("update several apps (each with its id)", 404, 409, 413, 415, 422,
                         params=[_FORCE], body="AppList", ok={**_deployment(), **_CONFLICT}),
        },
        "/v2/apps/{appId}": one_app,
        "/v2/apps/{appId}/restart": {"post": _op(
            "restart every instance (a rolling deployment)", 404, 409,
            params=[_APP_ID, _FORCE], ok={**_deployment(), **_CONFLICT})},
        "/v2/apps/{appId}/tasks": {
            "get": _op("the app's tasks", 404, params=[_APP_ID]),
            "delete": _op("kill the app's tasks (?host= only those on a host; ?scale=true "
                          "lowers instances; ?wipe=true destroys their persistent volumes)",
                          400, 404, 409, params=[
                              *task_query, {"name": "host", "in": "query",
                                            "schema": {"type": "string"}}],
                          ok={**ok_json(), **_CONFLICT}),
        },
        "/v2/apps/{appId}/tasks/{taskId}": {"delete": _op(
            "kill one task", 400, 404, 409, params=[*task_query, {
                "name": "taskId", "in": "path", "required": True, "schema": {"type": "string"}}],
            ok={**ok_json(), **_CONFLICT})},
        "/v2/apps/{appId}/versions": {"get": _op("the app's versions", 404,
                                                 params=[_APP_ID])},
        "/v2/apps/{appId}/versions/{version}": {"get": _op(
            "the app at one version", 404, params=[_APP_ID, {
                "name": "version", "in": "path", "required": True,
                "schema": {"type": "string"}}])},
        "/v2/apps/{appId}/autoscale": {"get": _op("the app's autoscaling state", 404,
                                                  params=[_APP_ID])},
        "/v2/apps/{appId}/volumes": {"get": _op("the app's persistent volumes", 404,
                                                params=[_APP_ID])},
        **_group_paths(),
        "/v2/tasks": {"get": _op("every task (?status=running|staging)", params=[
            {"name": "status", "in": "query", "schema": {"type": "string"}}])},
        "/v2/tasks/delete": {"post": _op("kill tasks by id: answers the tasks killed, or with "
                                         "?scale=true (which lowers instances) the deployment",
                                         400, 404, 409, 413, 415, 422,
                                         params=task_query[1:], body="TaskIds",
                                         ok={**ok_json(), **_CONFLICT})},
        "/v2/deployments": {"get": {"summary": "running deployments", "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {
                "type": "array"}}}}, **error_responses(*_COMMON)}}},
        "/v2/deployments/{id}": {"delete": _op(
            "cancel a deployment (rolls back, or with ?force=true just stops)", 404,
            params=[{"name": "id", "in": "path", "required": True,
                     "schema": {"type": "string"}}, _FORCE],
            ok={**_deployment(), "202": {"description": "stopped, no rollback"}})},
        "/v2/queue": {"get": _op("apps waiting to launch, and why")},
        "/v2/queue/{appId}/delay": {"delete": _op(
            "reset the app's launch backoff", 404, params=[_APP_ID],
            ok={"204": {"description": "reset"}})},
        "/v2/endpoints": {"get": _op("every app's endpoints (service discovery)")},
        "/v2/endpoints/{appId}": {"get": _op("one app's endpoints", 404, params=[_APP_ID])},
        "/v2/events": {"get": {"summary": "server-sent events (Marathon's event stream)",
                               "parameters": [{"name": "event_type", "in": "query",
                                               "schema": {"type": "string"}}],
                               "responses": {"200": {"description": "text/event-stream"},
                                             **error_responses(*_COMMON)}}},
        "/v2/info": {"get": _op("framework and configuration")},
        "/v2/leader": {"get": _op("the leading instance")},
        "/ping": {"get": {"summary": "liveness", "security": [], "responses": {
            "200": {"description": "pong", "content": {"text/plain": {
                "schema": {"type": "string"}}}}}}},
        "/health": {"get": {"summary": "liveness and subscription", "security": [],
                            "responses": ok_json()}},
        "/metrics": {"get": {"summary": "Prometheus text", "responses": {
            "200": {"description": "metrics"}, **error_responses(401, 403)}}},
        "/openapi.json": {"get": {"summary": "this document", "responses": ok_json()}},
    }
    paths.update(_pod_paths())
    doc = document("mesoslite services (Marathon /v2)", __version__, paths, (App, Pod))
    doc["components"]["schemas"].update(_BODIES)
    return doc
