"""Structured logs: JSON lines with the component and the ids passed as ``extra``,
secrets redacted, and every long-running command offering ``--log-format``."""

from __future__ import annotations

import importlib
import json
import logging

import pytest

from mesoslite.cli.main import COMMANDS
from mesoslite.logfields import JsonFormatter, TextFormatter, component_of


def record(name: str, msg: str, *args: object, **extra: object) -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(name, logging.INFO, __file__, 1, msg, args, None,
                                              extra=extra)


def test_json_lines_carry_component_ids_and_redact_secrets() -> None:
    line = JsonFormatter().format(record(
        "mesoslite.agent.tasks", "task %s launched", "t1", task_id="t1",
        framework_id="f1", agent_secret="hunter2", authorization="Basic abc"))
    data = json.loads(line)
    assert data["component"] == "agent" and data["level"] == "info"
    assert data["msg"] == "task t1 launched"
    assert data["task_id"] == "t1" and data["framework_id"] == "f1"
    assert data["agent_secret"] == "[redacted]" and data["authorization"] == "[redacted]"
    assert "hunter2" not in line and "abc" not in line
    assert data["time"].endswith("Z")


def test_an_explicit_component_wins_and_text_lines_show_the_ids() -> None:
    data = json.loads(JsonFormatter().format(record("x.y", "hi", component="batch")))
    assert data["component"] == "batch"
    text = TextFormatter().format(record("mesoslite.master.server", "up", master_id="m1"))
    assert text.endswith("mesoslite.master.server: up master_id=m1")


@pytest.mark.parametrize("name, component", [
    ("mesoslite.master.server", "master"), ("mesoslite.store.master_store", "master"),
    ("mesoslite.agent", "agent"), ("mesoslite.scheduler.driver", "scheduler"),
    ("frameworks.services.workload", "services"), ("frameworks.batch.api", "batch"),
    ("aiohttp.access", "http"), ("other.thing", "other")])
def test_components_from_logger_names(name: str, component: str) -> None:
    assert component_of(name) == component


@pytest.mark.parametrize("command", ["master", "agent", "up"])
def test_long_running_commands_offer_the_json_log_format(command: str) -> None:
    module, attr = COMMANDS[command].split(":")
    cmd = getattr(importlib.import_module(module), attr)
    options = {o for p in cmd.params for o in getattr(p, "opts", [])}
    assert {"--log-format", "--log-level"} <= options
