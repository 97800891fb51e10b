"""Fuzz the services framework's Marathon API from its own OpenAPI document: whatever
the document allows, the framework answers without a 5xx, with a status the document
lists, and every error is ``{"message", "details": [{"path", "errors"}]}``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from frameworks.services.openapi_doc import services_openapi
from mesoslite.testing.processes import free_port

schema = schemathesis.openapi.from_dict(services_openapi())
# App definitions are large: schemathesis' coverage phase derives ~900 bodies from the
# App schema for each operation taking one.  POST /v2/apps gets them (it validates
# every definition); the PUT/PATCH forms (the same validation after a merge) get the
# randomly generated ones only, to keep the suite fast.
_APP_UPDATES = {"path_regex": r"^/v2/apps(/\{appId\})?$", "method": ["PUT", "PATCH"]}
updates = schemathesis.openapi.from_dict(services_openapi())
updates.config.phases.coverage.enabled = False


def start_server(argv: list[str], work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A framework process on a free loopback port (its master does not answer: the
    API serves regardless; its log goes to ``work/server.log``); returns it and its
    URL once /health answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesoslite.cli.main", *argv, "--port", str(port),
         "--master", f"http://127.0.0.1:{free_port()}", "--work-dir", str(work)],
        stdout=subprocess.DEVNULL, stderr=(work / "server.log").open("wb"))  # for a 500
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{argv[0]} exited with {proc.returncode}"
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{argv[0]} did not answer /health within 30 s")


def documented(doc: dict[str, Any], path: str, method: str) -> set[str]:
    """The statuses the document lists; a method it does not list (the fuzzer probes
    those too) must be refused with a 4xx (405, or e.g. 422 where ``/v2/apps/{id}``
    takes the path as an app id)."""
    operation = doc["paths"][path].get(method.lower())
    if operation is None:
        return {str(code) for code in range(400, 500)}
    return set(operation["responses"])


def check_response(doc: dict[str, Any], case: Any, response: requests.Response) -> None:
    """No 5xx, a documented status, and the error shape on every 4xx."""
    where = (case.method, case.formatted_path, response.status_code, response.text[:300])
    assert response.status_code < 500, where
    assert str(response.status_code) in documented(doc, case.path, case.method), where
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body.get("message"), str), where
        assert isinstance(body.get("details"), list), where
        for item in body["details"]:
            assert isinstance(item.get("path"), str), where
            assert all(isinstance(e, str) for e in item.get("errors")), where
    elif response.headers.get("Content-Type", "").startswith("application/json"):
        response.json()


def call(case: Any, url: str, doc: dict[str, Any]) -> None:
    if case.path.endswith("/events"):
        # An event stream never ends: check how it starts, then hang up.
        with requests.get(url + case.formatted_path, params=case.query, headers=case.headers,
                          stream=True, timeout=10) as response:
            check_response(doc, case, response) if response.status_code >= 400 else None
            assert response.status_code == 200, response.status_code
        return
    check_response(doc, case, case.call(base_url=url, timeout=10))


@pytest.fixture(scope="module")
def services_url(tmp_path_factory) -> Iterator[str]:
    proc, url = start_server(["services", "--no-dns"], tmp_path_factory.mktemp("fuzz-svc"))
    yield url
    proc.terminate()
    proc.wait(10)


@schema.exclude(**_APP_UPDATES).parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, services_url):
    call(case, services_url, services_openapi())


@updates.include(**_APP_UPDATES).parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_updating_apps(case, services_url):
    call(case, services_url, services_openapi())


def test_the_document_is_served_and_hostile_bodies_get_clear_errors(services_url):
    assert requests.get(services_url + "/openapi.json", timeout=10).json() == \
        services_openapi()
    headers = {"Content-Type": "application/json"}
    deep = "[" * 10_000 + "]" * 10_000
    for path in ("/v2/apps", "/v2/apps/web", "/v2/tasks/delete"):
        method = "PUT" if path == "/v2/apps/web" else "POST"
        for body in (b"", b"\x00\xff", b'{"id": "/x"', deep.encode(), b"[]", b"null",
                     b'{"id": "/x", "instances": "many"}', b'{"ids": [1, 2]}'):
            response = requests.request(method, services_url + path, data=body,
                                        headers=headers, timeout=10)
            assert 400 <= response.status_code < 500, (path, body[:40], response.text[:200])
            assert set(response.json()) >= {"message", "details"}, response.text[:200]
