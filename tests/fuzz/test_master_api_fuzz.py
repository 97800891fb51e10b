"""Fuzz the master's HTTP API from its own OpenAPI document: whatever the document
allows (and much it does not), the master answers without a 5xx."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from mesoslite.master.openapi_doc import master_openapi
from mesoslite.secrets.crypto import KEY_ENV, generate_key
from mesoslite.testing.processes import free_port

schema = schemathesis.openapi.from_dict(master_openapi())


@pytest.fixture(scope="module")
def master_url(tmp_path_factory):
    """A real master process (the fuzzer's requests are synchronous)."""
    port = free_port()
    work = tmp_path_factory.mktemp("fuzz-master")
    # With a secrets key, so /master/secrets is fuzzed as it runs, not as a 503.
    env = {**os.environ, KEY_ENV: generate_key()}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesoslite.cli.main", "master", "--port", str(port),
         "--work-dir", str(work)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=env)
    url = f"http://127.0.0.1:{port}"
    # Until it leads: /health answers as soon as it listens, but before it has won the
    # election (its lease, then the state load) the API answers 503 "retry shortly",
    # rightly; a loaded CI machine once sent the first fuzzed call inside that window.
    deadline = time.monotonic() + 30
    while not leading(url):
        assert proc.poll() is None, f"the master exited with {proc.returncode}"
        assert time.monotonic() < deadline, "the master did not lead within 30 s"
        time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(10)


def leading(url: str) -> bool:
    """Whether the master at ``url`` leads and has loaded its state: it serves
    /master/state itself (200, not a follower's 307 or the 503 before election)."""
    try:
        response = requests.get(url + "/master/state", timeout=5, allow_redirects=False)
    except requests.RequestException:
        return False
    return response.status_code == 200


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, master_url):
    if case.path in ("/api/v1/scheduler", "/master/api/v1/scheduler", "/api/v1") and isinstance(case.body, dict) and (
            case.body.get("type") == "SUBSCRIBE"):
        # A valid SUBSCRIBE opens an endless stream: check its status, then hang up.
        with requests.post(master_url + case.path, json=case.body, headers=case.headers,
                           stream=True, timeout=10) as response:
            assert response.status_code < 500, case.body
        return
    response = case.call(base_url=master_url, timeout=10)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])


def test_hostile_bodies_get_clear_400s(master_url):
    url = master_url + "/api/v1/scheduler"
    headers = {"Content-Type": "application/json"}
    deep = "[" * 100_000 + "]" * 100_000
    for body in (b"", b"\x00\xff", b'{"type": "SUBSCRIBE"' , deep.encode(),
                 b'{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", '
                 b'"name": "' + b"x" * 1000 + b'", "roles": [' + b'"r",' * 5000 + b'"r"]}}}'):
        response = requests.post(url, data=body, headers=headers, timeout=10)
        assert 400 <= response.status_code < 500, (body[:40], response.status_code)
        assert "message" in response.json()
    big = b'{"type": "DECLINE", "pad": "' + b"x" * (17 * 1024 * 1024) + b'"}'
    response = requests.post(url, data=big, headers=headers, timeout=30)
    assert response.status_code == 413
