"""``/master/secrets`` and ``/master/configs`` and ``mesoslite secrets|configs``: the
operator's side, against a real master (real HTTP, real SQLite), and encryption at
rest checked on the raw database file."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mesoslite.secrets.crypto import (
    KEY_ENV,
    Keyring,
    SecretsKeyError,
    ensure_key_file,
    generate_key,
    load_keyring,
    parse_key,
)
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from tests.secrets.conftest import RecordingApi, cli
from tests.services.conftest import fast_master

ROOT = Path(__file__).resolve().parents[2]


async def start_master(tmp: Path, key: Keyring | None) -> LocalCluster:
    cluster = LocalCluster(ClusterSpec(work_dir=tmp / "cluster", agents=0,
                                       master_config=fast_master(), secrets_key=key))
    await cluster.start()
    return cluster


@pytest.fixture
async def master(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                 ) -> AsyncIterator[tuple[LocalCluster, RecordingApi]]:
    monkeypatch.delenv(KEY_ENV, raising=False)
    cluster = await start_master(tmp_path, ensure_key_file(tmp_path / "secrets.key"))
    yield cluster, RecordingApi(cluster.master_url, [])
    await cluster.stop()


def assert_invalid(status: int, body: Any, path: str, expected: int = 422) -> None:
    """The API's error shape: a message and details naming the field."""
    assert status == expected, body
    assert isinstance(body["message"], str) and body["message"]
    assert path in {d["path"] for d in body["details"]}, body
    assert all(isinstance(d["errors"], list) and d["errors"] for d in body["details"])


async def test_create_list_show_rotate_delete(master: tuple[LocalCluster, RecordingApi]
                                              ) -> None:
    _cluster, api = master
    value = f"v-{secrets.token_hex(12)}"
    status, meta = await api.call("POST", "/master/secrets", {
        "name": "db", "string_data": {"password": value},
        "data": {"cert": base64.b64encode(b"\x00\xffbinary").decode()}})
    assert status == 201, meta
    assert meta["name"] == "db" and meta["keys"] == ["cert", "password"]
    assert meta["version"] == 1 and meta["usable"] is True
    status, body = await api.call("POST", "/master/secrets", {"name": "db",
                                                              "string_data": {"a": "b"}})
    assert status == 409 and "PUT /master/secrets/db" in body["message"]
    listed = await api.ok("GET", "/master/secrets")
    assert [s["name"] for s in listed["secrets"]] == ["db"]
    shown = await api.ok("GET", "/master/secrets/db")
    assert set(shown) == {"name", "keys", "version", "created_at", "updated_at", "usable"}
    rotated = await api.ok("PUT", "/master/secrets/db", {"string_data": {"password": "2"}})
    assert rotated["version"] == 2 and rotated["keys"] == ["password"]
    assert rotated["created_at"] == meta["created_at"]
    assert (await api.ok("DELETE", "/master/secrets/db"))["version"] == 2
    status, body = await api.call("DELETE", "/master/secrets/db")
    assert status == 404 and "does not exist" in body["message"]
    status, body = await api.call("GET", "/master/secrets/db")
    assert status == 404
    # Config maps: the same API, and their data can be read back.
    await api.ok("PUT", "/master/configs/app.settings", {"data": {"level": "debug"}})
    shown = await api.ok("GET", "/master/configs/app.settings")
    assert shown["data"] == {"level": "debug"} and "usable" not in shown
    assert value not in "\n".join(api.seen)


@pytest.mark.parametrize(("body", "path"), [
    ({"name": "Bad_Name", "string_data": {"a": "b"}}, "name"),
    ({"string_data": {"a": "b"}}, "name"),
    ({"name": "ok", "string_data": {"a/b": "x"}}, "data/string_data"),
    ({"name": "ok", "string_data": {}}, "data/string_data"),
    ({"name": "ok", "data": {"k": "not base64!"}}, "data.k"),
    ({"name": "ok", "string_data": {"k": 1}}, "string_data"),
    ({"name": "ok", "value": "x"}, "value"),
])
async def test_invalid_secrets_are_refused_with_details(
        master: tuple[LocalCluster, RecordingApi], body: dict[str, Any], path: str) -> None:
    _, api = master
    status, answer = await api.call("POST", "/master/secrets", body)
    assert_invalid(status, answer, path)
    assert (await api.ok("GET", "/master/secrets"))["secrets"] == []


async def test_malformed_bodies_and_names(master: tuple[LocalCluster, RecordingApi]) -> None:
    _cluster, api = master
    from mesoslite.testing.http import request

    status, _, raw = await request("PUT", f"{api.url}/master/secrets/x", data=b"{nope",
                                   headers={"Content-Type": "application/json"})
    assert status == 400 and b"not valid JSON" in raw
    status, body = await api.call("PUT", "/master/secrets/x", {"name": "y",
                                                               "string_data": {"a": "b"}})
    assert_invalid(status, body, "name")
    status, body = await api.call("PUT", "/master/configs/x", {"data": {"a": 1}})
    assert_invalid(status, body, "data")
    status, body = await api.call("PUT", "/master/configs/x", {"string_data": {"a": "b"}})
    assert_invalid(status, body, "string_data")  # config maps hold text in data only


async def test_values_are_encrypted_at_rest_and_need_the_key(
        tmp_path: Path, master: tuple[LocalCluster, RecordingApi]) -> None:
    cluster, api = master
    canary = f"canary-{secrets.token_hex(16)}"
    await api.ok("PUT", "/master/secrets/db", {"string_data": {"password": canary}})
    await api.ok("PUT", "/master/configs/plain", {"data": {"level": "plain-text-level"}})
    # At rest: the database file and its write-ahead log (the master keeps its
    # connections open, so recent commits may be only in the log)
    raw = b"".join(path.read_bytes() for path in cluster.spec.work_dir.glob("master.db*"))
    assert b"plain-text-level" in raw  # config maps are not encrypted: the scan works
    assert b'"db"' in raw and canary.encode() not in raw
    assert base64.b64encode(canary.encode()) not in raw
    key_text = (tmp_path / "secrets.key").read_text().strip()
    assert key_text.encode() not in raw  # the key is never stored
    # Another key: the secret is listed but marked unusable; the right key opens it.
    await cluster.stop_master()
    cluster.spec.secrets_key = Keyring(os.urandom(32))
    await cluster.start_master()
    meta = (await api.ok("GET", "/master/secrets"))["secrets"][0]
    assert meta["name"] == "db" and meta["usable"] is False
    await cluster.stop_master()
    cluster.spec.secrets_key = load_keyring(tmp_path / "secrets.key")
    await cluster.start_master()
    master_server = cluster.master
    assert master_server is not None
    obj = master_server.secrets.get("secret", "db")
    assert obj is not None and obj.values(master_server.secrets.keyring) == {
        "password": canary.encode()}


async def test_without_a_key_the_secrets_api_says_how_to_enable_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    cluster = await start_master(tmp_path, None)
    try:
        api = RecordingApi(cluster.master_url, [])
        for method, path, body in (("GET", "/master/secrets", None),
                                   ("POST", "/master/secrets",
                                    {"name": "a", "string_data": {"k": "v"}})):
            status, answer = await api.call(method, path, body)
            assert status == 503, answer
            assert "--secrets-key-file" in answer["message"]
        await api.ok("PUT", "/master/configs/c", {"data": {"k": "v"}})  # still work
    finally:
        await cluster.stop()


def test_keys_from_a_file_or_the_environment(tmp_path: Path) -> None:
    text = generate_key()
    assert len(parse_key(text, "x")) == 32
    assert len(parse_key(os.urandom(32).hex(), "x")) == 32
    (tmp_path / "k").write_text(text + "\n")
    from_file = load_keyring(tmp_path / "k", environ={})
    from_env = load_keyring(None, environ={KEY_ENV: text})
    assert from_file is not None and from_env is not None
    assert from_file.key_id == from_env.key_id
    assert load_keyring(None, environ={}) is None
    with pytest.raises(SecretsKeyError) as err:
        load_keyring(None, environ={KEY_ENV: "too-short"})
    assert KEY_ENV in str(err.value) and "too-short" not in str(err.value)
    with pytest.raises(SecretsKeyError, match="No such file"):
        load_keyring(tmp_path / "missing", environ={})
    sealed = from_file.seal(b"value", b"aad-1")
    assert from_file.open(sealed, b"aad-1", from_file.key_id) == b"value"
    with pytest.raises(SecretsKeyError):  # moved to another row/version
        from_file.open(sealed, b"aad-2", from_file.key_id)
    assert "value" not in repr(from_file) and text not in repr(from_file)
    made = ensure_key_file(tmp_path / "up" / "secrets.key")
    assert oct((tmp_path / "up" / "secrets.key").stat().st_mode & 0o777) == "0o600"
    assert ensure_key_file(tmp_path / "up" / "secrets.key").key_id == made.key_id


async def test_cli_create_list_update_delete(tmp_path: Path,
                                             master: tuple[LocalCluster, RecordingApi]) -> None:
    cluster, api = master
    value = f"file-{secrets.token_hex(12)}"
    (tmp_path / "password").write_text(value)
    url = cluster.master_url
    code, out, err = await cli(url, "secrets", "create", "db", "--from-file",
                               str(tmp_path / "password"), "--from-literal", "user=app")
    assert code == 0, err
    assert out.strip() == "secret db created (version 1, keys: password, user)"
    code, out, err = await cli(url, "secrets", "list")
    assert code == 0, err
    assert "db" in out and "password,user" in out and value not in out
    code, out, err = await cli(url, "secrets", "create", "db", "--from-literal", "a=b")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "exists" in err
    code, out, err = await cli(url, "secrets", "update", "db", "--from-literal", "a=b")
    assert code == 0 and "version 2" in out, err
    code, out, err = await cli(url, "secrets", "create", "Bad_Name", "--from-literal", "a=b")
    assert code != 0 and "name" in err and len(err.strip().splitlines()) == 1
    code, out, err = await cli(url, "secrets", "create", "x", "--from-literal", "novalue")
    assert code != 0 and "KEY=VALUE" in err
    code, out, err = await cli(url, "secrets", "create", "x")
    assert code != 0 and "--from-file" in err
    code, out, err = await cli(url, "configs", "create", "app", "--from-literal", "level=info")
    assert code == 0, err
    code, out, err = await cli(url, "configs", "show", "app", "--key", "level")
    assert code == 0 and out == "info"
    code, out, err = await cli(url, "secrets", "delete", "db")
    assert code == 0 and "deleted" in out
    code, out, err = await cli(url, "secrets", "delete", "db")
    assert code != 0 and "does not exist" in err
    code, out, err = await cli(url, "secrets", "keygen")
    assert code == 0 and len(parse_key(out, "stdout")) == 32
    assert value not in "\n".join(api.seen)


def test_metronome_secrets_become_references() -> None:
    from frameworks.batch.metronome import from_metronome

    native, _, _ = from_metronome({"id": "j", "run": {
        "cmd": "true", "env": {"A": {"secret": "s0"}, "B": "plain"},
        "secrets": {"s0": {"source": "db"}, "s1": {"source": "config:app"}},
        "volumes": [{"containerPath": "conf", "secret": "s1"}]}})
    assert native["env"] == {"A": {"secret": "db"}, "B": "plain"}
    assert native["secret_files"] == [{"path": "conf", "config": "app"}]


async def test_cli_uses_the_masters_credentials_and_acls(tmp_path: Path) -> None:
    from mesoslite.auth import Auth, Rule
    from mesoslite.master.server import MasterServer
    from mesoslite.store.db import sqlite_url

    auth = Auth(secrets={"ops": "ops-pw", "dev": "dev-pw"}, rules=[
        Rule(principals=("ops",), actions=("*",), objects=("*",)),
        Rule(principals=("dev",), actions=("view_secret",), objects=("*",))])
    server = MasterServer(fast_master(), sqlite_url(tmp_path / "master.db"), auth=auth,
                          secrets_key=ensure_key_file(tmp_path / "secrets.key"))
    await server.start("127.0.0.1", wait_elected=True)
    url = f"http://127.0.0.1:{server.port}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("MESOSLITE_")}

    async def as_user(principal: str | None, *args: str) -> tuple[int, str, str]:
        env = {**base, "MESOSLITE_MASTER": url}
        if principal:
            env.update(MESOSLITE_PRINCIPAL=principal, MESOSLITE_SECRET=f"{principal}-pw")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mesoslite.cli.main", *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()

    try:
        code, out, err = await as_user("ops", "secrets", "create", "db", "--from-literal",
                                       "password=x1")
        assert code == 0, err
        code, out, err = await as_user("dev", "secrets", "list")
        assert code == 0 and "db" in out, err
        code, out, err = await as_user("dev", "secrets", "delete", "db")
        assert code != 0 and "not authorized" in err and len(err.strip().splitlines()) == 1
        code, out, err = await as_user(None, "secrets", "list")
        assert code != 0 and "Authentication required" in err
    finally:
        await server.stop()


async def test_mesoslite_up_sets_up_a_key_so_the_quick_start_works(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re
    import signal

    monkeypatch.delenv(KEY_ENV, raising=False)
    work = tmp_path / "up"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mesoslite.cli.main", "up", "--port", "0", "--agents", "1",
        "--work-dir", str(work), "--no-examples", "--no-services", "--no-batch",
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, cwd=ROOT)
    assert proc.stderr is not None
    try:
        url = None
        while url is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            assert line, "mesoslite up ended early"
            found = re.search(r"mesoslite is up: master (\S+),", line)
            url = found.group(1) if found else None
        assert oct((work / "secrets.key").stat().st_mode & 0o777) == "0o600"
        code, _out, err = await cli(url, "secrets", "create", "db", "--from-literal", "k=v")
        assert code == 0, err
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 60)
