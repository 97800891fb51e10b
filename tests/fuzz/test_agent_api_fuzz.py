"""Fuzz the agent's HTTP API from its own OpenAPI document: no 5xx, whatever the
query, and sandbox paths never escape the agent's work directory."""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from mesoslite.agent.openapi_doc import agent_openapi
from tests.fuzz.test_services_fuzz import start_server

schema = schemathesis.openapi.from_dict(agent_openapi())


@pytest.fixture(scope="module")
def agent_url(tmp_path_factory):
    """A real agent process; no master is needed for its HTTP API."""
    work = tmp_path_factory.mktemp("fuzz-agent")
    (work.parent / "outside.txt").write_text("not for the agent's clients")
    proc, url = start_server(["agent", "--containerizers", "process"], work)
    yield url
    proc.terminate()
    proc.wait(10)


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, agent_url):
    response = case.call(base_url=agent_url, timeout=10)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    assert "not for the agent's clients" not in response.text


def test_the_document_is_served(agent_url):
    served = requests.get(agent_url + "/openapi.json", timeout=10).json()
    assert served == agent_openapi()
    for path in ("../outside.txt", "/../../outside.txt", "%2e%2e/outside.txt"):
        response = requests.get(agent_url + "/files/read", params={"path": path}, timeout=10)
        assert response.status_code in (403, 404), (path, response.status_code)
        assert set(response.json()) >= {"message", "details"}
