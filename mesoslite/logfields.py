"""Log formats of the long-running commands (``--log-format text|json``).

Convention for ids: pass them as ``extra``, named as in the APIs::

    log.info("task %s launched", tid, extra={"task_id": tid, "framework_id": fid})

The JSON format writes one object a line: ``ts``, ``time`` (UTC, ISO 8601), ``level``,
``component`` (``master``, ``agent``, ``scheduler``, ``services``, ``batch``... from
the logger's name, or an explicit ``extra={"component": ...}``), ``logger``, ``msg``,
then every ``extra`` field (``task_id``, ``agent_id``, ``framework_id``...), and
``exc`` with the traceback.  The text format appends the extra fields as
``key=value``.  Fields whose name suggests a secret (``secret``, ``password``,
``token``, ``authorization``, ``credential``) are written as ``[redacted]``; messages
themselves must not contain secrets (store URLs are logged through ``redact_url``).
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}
_SECRET = re.compile(r"secret|password|passwd|token|authorization|credential", re.IGNORECASE)

# logger-name prefix -> component (first match wins)
_COMPONENTS = (
    ("mesoslite.master", "master"),
    ("mesoslite.store", "master"),
    ("mesoslite.agent", "agent"),
    ("mesoslite.scheduler", "scheduler"),
    ("mesoslite.placement", "placement"),
    ("mesoslite.cli", "cli"),
    ("mesoslite.testing", "cluster"),
    ("frameworks.services", "services"),
    ("frameworks.batch", "batch"),
    ("frameworks", "framework"),
    ("aiohttp", "http"),
)


def component_of(logger_name: str) -> str:
    """The component a logger belongs to (``mesoslite.master.server`` -> ``master``)."""
    for prefix, component in _COMPONENTS:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return component
    return logger_name.split(".", 1)[0] or "root"


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of a record, secrets redacted, values JSON-ready."""
    out: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_") or key == "component":
            continue
        if _SECRET.search(key):
            out[key] = "[redacted]"
        elif value is None or isinstance(value, (str, int, float, bool)):
            out[key] = value
        else:
            out[key] = str(value)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": getattr(record, "component", None) or component_of(record.name),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in extra_fields(record).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = extra_fields(record)
        if not fields:
            return line
        head, sep, tail = line.partition("\n")  # keep a traceback after the fields
        pairs = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{head} {pairs}{sep}{tail}"
