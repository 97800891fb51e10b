"""Fuzz the agent's HTTP API from its own OpenAPI document: no 5xx, whatever the
query, and sandbox paths never escape the agent's work directory."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from mesoslite.agent.openapi_doc import agent_openapi
from mesoslite.testing.processes import free_port

schema = schemathesis.openapi.from_dict(agent_openapi())


@pytest.fixture(scope="module")
def agent_url(tmp_path_factory):
    """A real agent process; no master is needed for its HTTP API."""
    port = free_port()
    work = tmp_path_factory.mktemp("fuzz-agent")
    (work.parent / "outside.txt").write_text("not for the agent's clients")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesoslite.cli.main", "agent", "--port", str(port),
         "--master", f"http://127.0.0.1:{free_port()}", "--work-dir", str(work),
         "--containerizers", "process"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/health", timeout=1).status_code == 200:
                break
        except requests.ConnectionError:
            time.sleep(0.05)
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
