"""OpenAPI 3 documents for mesoslite's HTTP APIs.

Request bodies are described by the same msgspec structs that decode them
(``msgspec.json.schema_components``), so the document cannot drift from the code.
The fuzz tests feed each API what its document allows and require no 5xx answer.
"""

from __future__ import annotations

from typing import Any

import msgspec

ERROR_SCHEMA = {
    "type": "object",
    "required": ["message", "details"],
    "properties": {
        "message": {"type": "string"},
        "details": {"type": "array", "items": {
            "type": "object", "properties": {
                "path": {"type": "string"},
                "errors": {"type": "array", "items": {"type": "string"}}}}},
    },
}


def error_responses(*codes: int) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Error"}
    return {str(code): {"description": "error",
                        "content": {"application/json": {"schema": ref}}} for code in codes}


def document(title: str, version: str, paths: dict[str, Any],
             body_types: tuple[type, ...] = ()) -> dict[str, Any]:
    """An OpenAPI 3.0 document; ``body_types`` become ``#/components/schemas/<Name>``."""
    schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}
    if body_types:
        _, components = msgspec.json.schema_components(
            body_types, ref_template="#/components/schemas/{name}")
        schemas.update(components)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                                "bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"basic": []}, {"bearer": []}],
    }


def json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def ok_json(description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description,
                    "content": {"application/json": {"schema": {"type": "object"}}}}}
