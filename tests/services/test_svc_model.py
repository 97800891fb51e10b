"""App model details: versions, configuration identity, service ports, task spec."""

from __future__ import annotations

from frameworks.services import operations
from frameworks.services.model import next_version, parse_timestamp, same_config, timestamp
from frameworks.services.state import ServicesState
from frameworks.services.taskspec import task_env, task_spec
from frameworks.services.validation import parse_app


def test_versions_are_marathon_timestamps_strictly_increasing() -> None:
    assert timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert parse_timestamp(timestamp(1_700_000_000.123)) == 1_700_000_000.123
    first = next_version(1000.0, None)
    assert next_version(1000.0, first) == "1970-01-01T00:16:40.001Z"
    assert next_version(999.0, first) > first


def test_instances_are_not_configuration() -> None:
    a, _ = parse_app({"id": "/a", "cmd": "x", "instances": 1})
    b, _ = parse_app({"id": "/a", "cmd": "x", "instances": 5})
    c, _ = parse_app({"id": "/a", "cmd": "y", "instances": 1})
    assert same_config(a, b) and not same_config(a, c)


def test_service_ports_are_unique_and_kept() -> None:
    state = ServicesState()
    for app_id in ("/a", "/b"):
        app, _ = parse_app({"id": app_id, "cmd": "x", "portDefinitions": [{"port": 0},
                                                                          {"port": 0}]})
        operations.create_app(state, app, 1.0)
    ports = [p.port for a in state.apps.values() for p in a.port_definitions]
    assert sorted(ports) == [10000, 10001, 10002, 10003]
    again, _ = parse_app({"id": "/a", "cmd": "x", "portDefinitions": [{"port": 0},
                                                                     {"port": 0}]})
    operations.update_app(state, again, 2.0, force=True)
    assert [p.port for p in state.apps["/a"].port_definitions] == [10000, 10001]


def test_task_spec_environment_and_bridge_ports() -> None:
    app, _ = parse_app({
        "id": "/prod/web", "cmd": "serve", "labels": {"team-name": "a"},
        "env": {"PORT": "override"},
        "container": {"type": "DOCKER", "docker": {"image": "img"},
                      "portMappings": [{"containerPort": 80, "name": "http"}]},
        "networks": [{"mode": "container/bridge"}],
        "healthChecks": [{"protocol": "HTTP", "portIndex": 0},
                         {"protocol": "COMMAND", "command": {"value": "true"}}]})
    app.version = "v1"
    env = task_env(app, [31005])
    assert env["PORT0"] == "31005" and env["PORT_HTTP"] == "31005" and env["PORT_80"] == "31005"
    assert env["PORT"] == "override", "the app's own env wins"
    assert env["MARATHON_APP_ID"] == "/prod/web" and env["MARATHON_APP_LABEL_TEAM_NAME"] == "a"
    spec = task_spec(app, [31005])
    assert spec.docker.port_mappings == [(31005, 80, "tcp")]
    assert spec.check.kind == "COMMAND", "the agent runs the COMMAND check"
    assert app.framework_checks == [0], "the framework runs the HTTP one"
