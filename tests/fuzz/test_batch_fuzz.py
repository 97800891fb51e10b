"""Fuzz the batch framework's /v1 API from its own OpenAPI document: no 5xx, only
documented statuses, and every error is ``{"message", "details": [{"path", "errors"}]}``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from frameworks.batch.openapi_doc import batch_openapi
from tests.fuzz.test_services_fuzz import call, start_server

schema = schemathesis.openapi.from_dict(batch_openapi())


@pytest.fixture(scope="module")
def batch_url(tmp_path_factory) -> Iterator[str]:
    proc, url = start_server(["batch", "server"], tmp_path_factory.mktemp("fuzz-batch"))
    yield url
    proc.terminate()
    proc.wait(10)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, batch_url):
    call(case, batch_url, batch_openapi())


def test_the_document_is_served_and_hostile_bodies_get_clear_errors(batch_url):
    assert requests.get(batch_url + "/openapi.json", timeout=10).json() == batch_openapi()
    headers = {"Content-Type": "application/json"}
    deep = "[" * 10_000 + "]" * 10_000
    for method, path in (("POST", "/v1/jobs"), ("PUT", "/v1/jobs/j"),
                         ("POST", "/v1/runs/nope/actions/rerun")):
        for body in (b"", b"\x00\xff", b'{"id": "x"', deep.encode(), b"[]", b"null",
                     b'{"id": "Bad Id", "command": 3}', b'{"id": "j", "retires": 2}'):
            response = requests.request(method, batch_url + path, data=body,
                                        headers=headers, timeout=10)
            assert 400 <= response.status_code < 500, (path, body[:40], response.text[:200])
            assert set(response.json()) >= {"message", "details"}, response.text[:200]
    response = requests.get(batch_url + "/v1/runs", params={"limit": "0"}, timeout=10)
    assert response.status_code == 400 and response.json()["details"][0]["path"] == "limit"
