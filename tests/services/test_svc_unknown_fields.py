"""Fields mesoslite does not model survive a GET/modify/PUT round trip, top-level and
nested, through raw HTTP and through an upstream Marathon client, and are named in a
``Warning`` header rather than silently treated as honoured."""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frameworks.services.model import App, app_json, decode_app, encode_app
from frameworks.services.unknown_fields import marathon_path, overlay
from frameworks.services.validation import parse_app

APP = {"id": "/keep", "cmd": "sleep 1000", "cpus": 0.1, "mem": 16, "instances": 0}
EXTRAS = {
    "someFutureField": {"x": [1, 2]},
    "taskRateLimit": 2.5,
    "container": {"type": "DOCKER", "linuxInfo": {"seccomp": {"unconfined": True}},
                  "docker": {"image": "busybox", "credential": {"principal": "p"}}},
    "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
                      "futureKnob": 7}],
    "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5,
                        "extra": "x"},
}
POINTERS = ["/someFutureField", "/taskRateLimit", "/container/linuxInfo",
            "/container/docker/credential", "/healthChecks/0/futureKnob",
            "/upgradeStrategy/extra"]


def kept_in(body: dict[str, Any]) -> dict[str, Any]:
    """What of ``EXTRAS``' unknown fields ``body`` carries (pointer -> value)."""
    return {p: _at(body, p) for p in POINTERS}


def _at(body: Any, pointer: str) -> Any:
    for seg in pointer[1:].split("/"):
        body = body[int(seg)] if isinstance(body, list) else body.get(seg)
        if body is None:
            return None
    return body


EXPECTED = {"/someFutureField": {"x": [1, 2]}, "/taskRateLimit": 2.5,
            "/container/linuxInfo": {"seccomp": {"unconfined": True}},
            "/container/docker/credential": {"principal": "p"},
            "/healthChecks/0/futureKnob": 7, "/upgradeStrategy/extra": "x"}


# ---------------------------------------------------------------- pure parts


def test_unknown_fields_are_found_at_every_depth_and_put_back() -> None:
    app, warnings = parse_app({**APP, **EXTRAS})
    assert app.passthrough == EXPECTED
    assert warnings == sorted(f"{marathon_path(p)}: unknown field, kept as given but not "
                              "honoured" for p in POINTERS)
    assert "/healthChecks(0)/futureKnob: unknown field, kept as given but not honoured" \
        in warnings
    rendered = app_json(decode_app(encode_app(app)))  # through the store's encoding
    assert kept_in(rendered) == EXPECTED
    assert rendered["container"]["docker"]["image"] == "busybox"  # the modelled ones too


def test_known_marathon_fields_with_default_values_are_not_warned_about() -> None:
    _, warnings = parse_app({**APP, "executor": "", "acceptedResourceRoles": ["*"],
                             "role": "*"})
    assert warnings == []


def test_a_field_inside_a_list_element_that_is_gone_is_dropped() -> None:
    rendered = overlay({"healthChecks": []}, {"/healthChecks/0/futureKnob": 7})
    assert rendered == {"healthChecks": []}


def test_older_stored_top_level_names_still_render() -> None:
    app, _ = parse_app(APP)
    app.passthrough = {"storeUrls": ["http://x"]}  # as stored before pointers
    assert app_json(app)["storeUrls"] == ["http://x"]


names = st.text(min_size=1, max_size=12).filter(
    lambda n: n not in {f.encode_name for f in _fields()} and n not in (
        "tasks", "deployments", "version", "versionInfo", "passthrough", "lastTaskFailure",
        "tasksRunning", "tasksStaged", "tasksHealthy", "tasksUnhealthy", "taskStats",
        "readinessCheckResults"))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)


def _fields() -> Any:
    from msgspec import inspect as mi
    return mi.type_info(App).fields


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(names, json_values, min_size=1, max_size=4),
       st.dictionaries(st.text(min_size=1, max_size=8).filter(
           lambda n: n not in ("image", "privileged", "parameters", "forcePullImage",
                               "network", "portMappings")), json_values, max_size=3))
def test_any_unknown_field_survives_a_round_trip(top: dict[str, Any],
                                                 docker: dict[str, Any]) -> None:
    raw = {**APP, **top, "container": {"type": "DOCKER",
                                       "docker": {"image": "busybox", **docker}}}
    app, warnings = parse_app(copy.deepcopy(raw))
    rendered = app_json(decode_app(encode_app(app)))
    for key, value in top.items():
        assert rendered[key] == value
    for key, value in docker.items():
        assert rendered["container"]["docker"][key] == value
    assert len(warnings) == len(top) + len(docker)
    again, _ = parse_app(rendered)  # a client's PUT of what it read
    assert again.passthrough == app.passthrough


# ---------------------------------------------------------------- over HTTP


async def test_unknown_fields_survive_get_put_patch_and_versions(offline) -> None:
    status, created, headers = await offline.call("POST", "/v2/apps", {**APP, **EXTRAS})
    assert status == 201 and kept_in(created) == EXPECTED
    for p in POINTERS:
        assert marathon_path(p) in headers["Warning"]
    read = await offline.app("/keep")
    assert kept_in(read) == EXPECTED
    # written back unchanged: no change of configuration (nothing would restart)
    status, _, _ = await offline.call("PUT", "/v2/apps/keep", read, partialUpdate="false",
                                      force="true")
    assert status == 200
    same = await offline.app("/keep")
    assert same["versionInfo"]["lastConfigChangeAt"] == \
        read["versionInfo"]["lastConfigChangeAt"] and same["version"] != read["version"]
    # GET / modify one field / PUT the whole object back (a client's full update)
    read["cmd"] = "sleep 2000"
    status, _, headers = await offline.call("PUT", "/v2/apps/keep", read,
                                            partialUpdate="false", force="true")
    assert status == 200 and "/someFutureField" in headers["Warning"]
    after = await offline.app("/keep")
    assert after["cmd"] == "sleep 2000" and kept_in(after) == EXPECTED
    # a partial update that does not mention them keeps them too
    status, _, _ = await offline.call("PATCH", "/v2/apps/keep", {"mem": 32}, force="true")
    assert status == 200
    patched = await offline.app("/keep")
    assert patched["mem"] == 32 and kept_in(patched) == EXPECTED
    versions = (await offline.ok("GET", "/v2/apps/keep/versions"))["versions"]
    assert len(versions) == 4
    for version in versions:
        old = await offline.ok("GET", f"/v2/apps/keep/versions/{version}")
        assert kept_in(old) == EXPECTED
    # replacing the field replaces what was kept
    status, _, _ = await offline.call("PATCH", "/v2/apps/keep", {"someFutureField": 3},
                                      force="true")
    assert status == 200 and (await offline.app("/keep"))["someFutureField"] == 3


async def test_field_names_cannot_break_the_warning_header(offline) -> None:
    body = {**APP, "id": "/odd", 'we"ird\r\nX-Injected: 1': 1, "caf\u00e9": 2}
    status, created, headers = await offline.call("POST", "/v2/apps", body)
    assert status == 201, created
    assert "X-Injected" not in headers and created['we"ird\r\nX-Injected: 1'] == 1
    assert '/we\\"ird' in headers["Warning"] and "/caf" in headers["Warning"]


async def test_a_marathon_client_round_trip_loses_nothing(offline, monkeypatch) -> None:
    marathon = pytest.importorskip("marathon")
    # marathon 0.13's JSON encoder uses collections.Iterable (gone since Python 3.10)
    monkeypatch.setattr(collections, "Iterable", collections.abc.Iterable, raising=False)
    # Fields the client models but mesoslite does not, and a nested unknown one (the
    # client itself keeps those of health checks: it builds them with **kwargs).
    body = {**APP, "id": "/client-keep", "taskRateLimit": 2.5,
            "ipAddress": {"networkName": "dcos"}, "residency": {"x": 1},
            "healthChecks": [{"protocol": "COMMAND", "command": {"value": "true"},
                              "futureKnob": 7}]}
    status, _, _ = await offline.call("POST", "/v2/apps", body)
    assert status == 201
    client = marathon.MarathonClient(offline.url, timeout=10)
    app = await asyncio.to_thread(client.get_app, "/client-keep")
    app.mem = 48
    await asyncio.to_thread(client.update_app, "/client-keep", app, force=True)
    after = await offline.app("/client-keep")
    assert after["mem"] == 48
    assert after["taskRateLimit"] == 2.5 and after["ipAddress"] == {"networkName": "dcos"}
    assert after["residency"] == {"x": 1}
    assert after["healthChecks"][0]["futureKnob"] == 7
