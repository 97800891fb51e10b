"""Authentication, authorization, TLS and secure defaults, on a real cluster."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl

import aiohttp
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mesoslite.agent.containerizers import make_containerizers
from mesoslite.agent.server import Agent, AgentConfig
from mesoslite.auth import Auth, basic_header, load_auth
from mesoslite.cli.main import cli
from mesoslite.master.server import MasterServer
from mesoslite.messages.mesos import TaskState
from mesoslite.store.db import sqlite_url
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from tests.integration.conftest import AGENT_RESOURCES, fast_config

CREDENTIALS = {"credentials": [{"principal": "ops", "secret": "ops-secret"},
                               {"principal": "web", "secret": "web-secret"}],
               "tokens": [{"principal": "ci", "token": "ci-token"}]}
ACLS = {"rules": [
    {"principals": ["ops"], "actions": ["*"], "objects": ["*"]},
    {"principals": ["web"], "actions": ["register_framework"], "objects": ["web"]},
    {"principals": ["ci"], "actions": ["view_state"], "objects": ["master"]},
]}
OPS = {"Authorization": basic_header("ops", "ops-secret")}


@pytest.fixture
def auth(tmp_path) -> Auth:
    (tmp_path / "creds.json").write_text(json.dumps(CREDENTIALS))
    (tmp_path / "acls.json").write_text(json.dumps(ACLS))
    return load_auth(tmp_path / "creds.json", tmp_path / "acls.json")


async def start_cluster(tmp_path, auth, ssl_server=None, ssl_client=None, scheme="http"):
    config = fast_config(port=0, agent_secret="agent-secret")
    master = MasterServer(config, sqlite_url(tmp_path / "m.db"), auth=auth,
                          ssl_context=ssl_server)
    await master.start()
    url = f"{scheme}://127.0.0.1:{master.port}"
    agent = Agent(AgentConfig(masters=[url], work_dir=tmp_path / "agent",
                              resources=AGENT_RESOURCES, port=0, hostname="agent1",
                              agent_secret="agent-secret", status_update_retry=0.2),
                  make_containerizers(["process"], tmp_path / "agent"), auth=auth,
                  master_ssl=ssl_client)
    await agent.start()
    await wait_for(agent.registered.is_set, message="agent registered with its secret")
    return master, agent, url


async def test_every_master_route_needs_credentials(tmp_path, auth):
    master, agent, url = await start_cluster(tmp_path, auth)
    try:
        routes = [("GET", "/master/state"), ("GET", "/state"), ("GET", "/master/tasks"),
                  ("GET", "/metrics"), ("GET", "/version"), ("GET", "/master/redirect"),
                  ("POST", "/api/v1/scheduler")]
        for method, path in routes:
            for headers in ({}, {"Authorization": basic_header("ops", "wrong")},
                            {"Authorization": "Bearer nope"}, {"Authorization": "Basic !!"}):
                status, resp_headers, body = await request(method, url + path, headers=headers,
                                                           data=b"{}")
                assert status == 401, (method, path, headers, status)
                assert "WWW-Authenticate" in resp_headers
                assert b"ops-secret" not in body
        status, _, _ = await request("GET", url + "/master/state", headers=OPS)
        assert status == 200
        status, _, _ = await request("GET", url + "/master/state",
                                     headers={"Authorization": "Bearer ci-token"})
        assert status == 200
        status, _, body = await request("GET", url + "/metrics",
                                        headers={"Authorization": "Bearer ci-token"})
        assert status == 403 and b"not authorized" in body  # ci may read state, not metrics
        assert (await request("GET", url + "/health"))[0] == 200
        agent_url = f"http://127.0.0.1:{agent.config.port}"
        assert (await request("GET", agent_url + "/state"))[0] == 401
        assert (await request("GET", agent_url + "/state", headers=OPS))[0] == 200
    finally:
        await agent.stop(kill_tasks=True)
        await master.stop()


async def test_frameworks_register_only_in_allowed_roles(tmp_path, auth):
    master, agent, url = await start_cluster(tmp_path, auth)
    web = RecordingFramework(url, roles=["web"])
    web.driver = type(web.driver)(web.sched, web.info, url,
                                  authorization=basic_header("web", "web-secret"))
    denied = RecordingFramework(url, roles=["batch"])
    denied.driver = type(denied.driver)(denied.sched, denied.info, url,
                                        authorization=basic_header("web", "web-secret"))
    try:
        await web.start()
        await web.run_task("allowed", "true")
        await web.wait_state("allowed", TaskState.TASK_FINISHED)
        assert master.state.frameworks[web.id].info.principal == "web"
        with pytest.raises(Exception, match="not authorized"):
            await denied.start()
    finally:
        await web.stop()
        await denied.stop()
        await agent.stop(kill_tasks=True)
        await master.stop()


async def test_an_agent_without_the_secret_is_refused(tmp_path, auth):
    master, agent, url = await start_cluster(tmp_path, auth)
    intruder = Agent(AgentConfig(masters=[url], work_dir=tmp_path / "intruder",
                                 resources=AGENT_RESOURCES, port=0, agent_secret="guess"),
                     make_containerizers(["process"], tmp_path / "intruder"))
    try:
        await intruder.start()
        await wait_for(lambda: "authentication failed" in (intruder.last_refusal or ""))
        assert len(master.state.agents) == 1
    finally:
        await intruder.stop()
        await agent.stop()
        await master.stop()


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    return server, client


async def test_tls_end_to_end(tmp_path, auth):
    server_ctx, client_ctx = self_signed(tmp_path)
    master, agent, url = await start_cluster(tmp_path, auth, server_ctx, client_ctx, "https")
    fw = RecordingFramework(url)
    fw.driver = type(fw.driver)(fw.sched, fw.info, url, ssl_context=client_ctx,
                                authorization=OPS["Authorization"])
    try:
        await fw.start()
        await fw.run_task("over-tls", "true")
        await fw.wait_state("over-tls", TaskState.TASK_FINISHED)
        with pytest.raises(aiohttp.ClientError):  # plain HTTP to a TLS listener: no
            await request("GET", f"http://127.0.0.1:{master.port}/health")
    finally:
        await fw.stop()
        await agent.stop(kill_tasks=True)
        await master.stop()


def test_non_loopback_listeners_need_authentication_or_insecure(tmp_path):
    result = CliRunner().invoke(cli, ["master", "--host", "0.0.0.0", "--work-dir",
                                      str(tmp_path)])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in result.output
    result = CliRunner().invoke(cli, ["agent", "--host", "0.0.0.0", "--work-dir",
                                      str(tmp_path)])
    assert result.exit_code == 2 and "--insecure" in result.output
    (tmp_path / "c.json").write_text(json.dumps(CREDENTIALS))
    result = CliRunner().invoke(cli, ["master", "--host", "0.0.0.0", "--work-dir",
                                      str(tmp_path), "--credentials", str(tmp_path / "c.json")])
    assert result.exit_code == 2 and "--agent-secret-file" in result.output
