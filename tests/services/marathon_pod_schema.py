"""Marathon's pod definition (``Pod`` in its RAML, api/v2/types/pod.raml and the types
it uses), written down as a small schema, and a checker.

Schema language: ``str``/``int``/``float``/``bool``; a dict of property -> schema
(``name?`` optional; other keys are errors, stricter than RAML so misspelt fields are
caught); ``[schema]`` an array; ``("enum", *values)``; ``("map", schema)`` an object
with any keys; ``("any", *schemas)`` a union; ``("re", pattern)`` a matching string.
"""

from __future__ import annotations

import re
from typing import Any

NAME = ("re", r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PATH_ID = ("re", (r"^(\/?((\.\.)|(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*"
                 r"([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9]))?($|\/))+$"))
COMMAND = ("any", {"shell": str}, {"argv": [str]})
ENV = ("map", ("any", str, {"secret": str}))
HTTP = {"endpoint": NAME, "path?": str, "scheme?": ("enum", "HTTP", "HTTPS")}
TCP = {"endpoint": NAME}
CHECK_ACTION = {"http?": HTTP, "tcp?": TCP, "exec?": {"command": COMMAND}}
HEALTH = {**CHECK_ACTION, "gracePeriodSeconds?": int, "intervalSeconds?": int,
          "maxConsecutiveFailures?": int, "timeoutSeconds?": int, "delaySeconds?": int}
CHECK = {**CHECK_ACTION, "intervalSeconds?": int, "timeoutSeconds?": int,
         "delaySeconds?": int}
CONTAINER = {
    "name": NAME,
    "exec?": {"command": COMMAND, "overrideEntrypoint?": bool},
    "resources": {"cpus": float, "mem": float, "disk?": float, "gpus?": int},
    "endpoints?": [{"name": NAME, "containerPort?": int, "hostPort?": int,
                    "protocol?": [str], "labels?": ("map", str)}],
    "image?": {"kind": ("enum", "DOCKER"), "id": str, "forcePull?": bool},
    "environment?": ENV,
    "user?": str,
    "healthCheck?": HEALTH,
    "check?": CHECK,
    "volumeMounts?": [{"name": NAME, "mountPath": str, "readOnly?": bool}],
    "labels?": ("map", str),
    "lifecycle?": {"killGracePeriodSeconds?": float},
}
VOLUME = ("any", {"name": NAME}, {"name": NAME, "host": str},
          {"name": NAME, "secret": str})
POD = {
    "id": PATH_ID,
    "labels?": ("map", str),
    "user?": str,
    "environment?": ENV,
    "containers": [CONTAINER],
    "secrets?": ("map", {"source": str, "key?": str}),  # key: mesoslite's addition
    "volumes?": [VOLUME],
    "networks?": [{"name?": str, "mode?": ("enum", "container", "container/bridge", "host"),
                   "labels?": ("map", str)}],
    "scaling?": {"kind": ("enum", "fixed"), "instances?": int},
    "scheduling?": {
        "backoff?": {"backoff?": float, "backoffFactor?": float, "maxLaunchDelay?": float},
        "upgrade?": {"minimumHealthCapacity?": float, "maximumOverCapacity?": float},
        "placement?": {"constraints?": [{"fieldName": str, "operator": (
            "enum", "UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"),
            "value?": str}], "acceptedResourceRoles?": [str]},
    },
}


def problems(value: Any, schema: Any = POD, path: str = "") -> list[str]:
    """Every place ``value`` does not fit ``schema`` (empty: it fits)."""
    if schema is str:
        return [] if isinstance(value, str) else [f"{path}: not a string"]
    if schema is bool:
        return [] if isinstance(value, bool) else [f"{path}: not a boolean"]
    if schema is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: not an integer"]
    if schema is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: not a number"]
    if isinstance(schema, list):
        if not isinstance(value, list) or not value:
            return [f"{path}: not a non-empty array"]
        return [p for i, v in enumerate(value) for p in problems(v, schema[0], f"{path}[{i}]")]
    if isinstance(schema, tuple):
        return _special(value, schema, path)
    if not isinstance(value, dict):
        return [f"{path}: not an object"]
    out = []
    names = {k.rstrip("?"): k.endswith("?") for k in schema}
    for key, optional in names.items():
        if key not in value and not optional:
            out.append(f"{path}.{key}: required")
    for key, item in value.items():
        if key not in names:
            out.append(f"{path}.{key}: not a field of Marathon's pod")
        else:
            sub = schema[key + "?"] if names[key] else schema[key]
            out += problems(item, sub, f"{path}.{key}")
    return out


def _special(value: Any, schema: tuple, path: str) -> list[str]:
    tag, *args = schema
    if tag == "enum":
        return [] if value in args else [f"{path}: {value!r} not one of {args}"]
    if tag == "re":
        ok = isinstance(value, str) and re.match(args[0], value)
        return [] if ok else [f"{path}: {value!r} does not match {args[0]}"]
    if tag == "map":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        return [p for k, v in value.items() for p in problems(v, args[0], f"{path}.{k}")]
    if tag == "any":
        for option in args:
            if not problems(value, option, path):
                return []
        return [f"{path}: fits none of its forms"]
    raise ValueError(tag)
