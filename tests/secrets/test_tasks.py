"""Secrets and config maps reaching tasks (process and Docker, apps and jobs), and a
canary value searched for everywhere it must not be.

Each task prints a SHA-256 of what it read (never the value), which proves it got
the value without putting it in its logs.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import docker
import pytest

from mesoslite.agent.secret_files import mounted_under
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import free_port
from tests.batch.conftest import attempts_of, wait_run
from tests.docker.conftest import task_container
from tests.secrets.conftest import IMAGE, Stack, cli, sha

HASH = "sha256sum | cut -c1-64"


def process_app(canary_note: str = "") -> dict[str, Any]:
    """A command task with the secret as a variable, as one file and as a directory,
    and a config map as a directory (relative paths: inside the sandbox)."""
    return {
        "id": "/sec/proc", "cpus": 0.05, "mem": 32, "instances": 1,
        "taskKillGracePeriodSeconds": 0,
        "cmd": (f'echo "env=$(printf %s "$DB_PASSWORD" | {HASH})"; '
                f'echo "file=$(sha256sum < pw | cut -c1-64)"; '
                f'echo "dir=$(cat creds/password | {HASH}) user=$(cat creds/user)"; '
                'echo "conf=$(cat settings/level)"; '
                'echo "mode=$(stat -L -c %a pw)"; '
                f'echo "ro=$(touch creds/x 2>/dev/null && echo no || echo yes)"; {canary_note}'
                'exec sleep 600'),
        "secrets": {"db": {"source": "db", "key": "password"}, "all": {"source": "db"},
                    "conf": {"source": "config:settings"}},
        "env": {"DB_PASSWORD": {"secret": "db"}, "PLAIN": "x"},
        "container": {"type": "MESOS", "volumes": [
            {"containerPath": "pw", "secret": "db"},
            {"containerPath": "creds", "secret": "all"},
            {"containerPath": "settings", "secret": "conf"}]},
    }


def docker_app() -> dict[str, Any]:
    """A Docker task with the secret as files only (absolute and sandbox-relative)."""
    return {
        "id": "/sec/docker", "cpus": 0.05, "mem": 32, "instances": 1,
        "taskKillGracePeriodSeconds": 0,
        "cmd": ('echo "abs=$(sha256sum < /run/secrets/db/password | cut -c1-64)"; '
                'echo "rel=$(sha256sum < /mnt/mesos/sandbox/pw | cut -c1-64)"; '
                'echo "ro=$(touch /run/secrets/db/x 2>/dev/null && echo no || echo yes)"; '
                'exec sleep 600'),
        "secrets": {"db": {"source": "db", "key": "password"}, "all": {"source": "db"}},
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}, "volumes": [
            {"containerPath": "/run/secrets/db", "secret": "all"},
            {"containerPath": "pw", "secret": "db"}]},
    }


async def app_task(stack: Stack, app_id: str) -> str:
    async def running() -> str | None:
        tasks = (await stack.services.ok("GET", f"/v2/apps{app_id}/tasks"))["tasks"]
        return next((t["id"] for t in tasks if t["state"] == "TASK_RUNNING"), None)

    return await wait_for(running, 60, interval=0.1, message=f"{app_id} running")


async def test_apps_and_jobs_get_their_secrets_and_the_value_shows_nowhere(
        stack: Stack, docker_engine: docker.DockerClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    canary = f"canary-{secrets.token_hex(16)}"
    docker_env_value = f"docker-env-{secrets.token_hex(8)}"  # env form shows in inspect
    for url in (f"{stack.master.url}/master/events", f"{stack.services.url}/v2/events",
                f"{stack.batch.url}/v1/events"):
        await stack.streams.follow(url)
    await stack.put_secret("db", password=canary, user="app")
    await stack.put_secret("docker-env", v=docker_env_value)
    await stack.master.ok("PUT", "/master/configs/settings", {"data": {"level": "debug"}})

    # Apps: a process task and a Docker task.
    await stack.services.ok("POST", "/v2/apps", process_app())
    await stack.services.ok("POST", "/v2/apps", docker_app())
    proc = await app_task(stack, "/sec/proc")
    out = await stack.output(proc, "env=", "file=", "dir=", "conf=", "mode=", "ro=")
    assert f"env={sha(canary)}" in out
    assert f"file={sha(canary)}" in out
    assert f"dir={sha(canary)} user=app" in out
    assert "conf=debug" in out
    assert "mode=400" in out and "ro=yes" in out
    dock = await app_task(stack, "/sec/docker")
    out = await stack.output(dock, "abs=", "rel=", "ro=")
    assert f"abs={sha(canary)}" in out and f"rel={sha(canary)}" in out and "ro=yes" in out
    # The Docker task's recorded config holds paths only (the file form).
    container = task_container(docker_engine, dock)
    assert container is not None
    inspected = json.dumps(container.attrs)
    assert "/run/secrets/db" in inspected
    assert canary not in inspected
    # The files live on a tmpfs under the sandbox while the tasks run.
    mounted = mounted_under(stack.cluster.spec.work_dir)
    assert {p.name for p in mounted} == {proc, dock}

    # Jobs: a command step (variable and file) and a Docker step (variable).
    job = {"id": "sec-job", "steps": [
        {"name": "cmd", "command": (f'echo "env=$(printf %s "$TOKEN" | {HASH})"; '
                                    f'echo "file=$(sha256sum < tok | cut -c1-64)"'),
         "env": {"TOKEN": {"secret": "db", "key": "password"}, "LEVEL": {"config": "settings"}},
         "secret_files": [{"path": "tok", "secret": "db", "key": "password"}]},
        {"name": "img", "image": IMAGE, "depends_on": ["cmd"],
         "command": f'echo "env=$(printf %s "$OTHER" | {HASH}) level=$LEVEL"',
         "env": {"OTHER": {"secret": "docker-env"}, "LEVEL": {"config": "settings",
                                                               "key": "level"}}}]}
    await stack.batch.ok("PUT", "/v1/jobs/sec-job", job)
    run = await stack.batch.ok("POST", "/v1/jobs/sec-job/runs")
    ended = await wait_run(stack.batch_server, run["id"], timeout=90)
    assert ended["state"] == "SUCCEEDED", ended
    by_step = {a["step"]: a["id"] for a in attempts_of(ended)}
    out = await stack.output(by_step["cmd"], "env=", "file=")
    assert f"env={sha(canary)}" in out and f"file={sha(canary)}" in out
    out = await stack.output(by_step["img"], "env=")
    assert f"env={sha(docker_env_value)} level=debug" in out

    # Every answer a user can get, after use.
    for path in ("/master/state", "/state", "/master/state.json", "/master/tasks",
                 "/master/secrets", "/master/secrets/db", "/master/configs", "/metrics",
                 "/master/frameworks"):
        await stack.master.call("GET", path)
    await stack.master.call("POST", "/api/v1", {"type": "GET_STATE"})
    await stack.master.call("POST", "/api/v1", {"type": "GET_TASKS"})
    for path in ("/v2/apps", "/v2/apps/sec/proc", "/v2/apps/sec/docker", "/v2/tasks",
                 "/v2/deployments", "/v2/apps?embed=apps.tasks", "/v2/queue", "/metrics",
                 "/v2/apps/sec/proc/versions"):
        await stack.services.call("GET", path)
    for path in ("/v1/jobs", "/v1/jobs/sec-job", f"/v1/runs/{run['id']}", "/v1/runs",
                 "/v1/queue", "/metrics"):
        await stack.batch.call("GET", path)
    # Errors naming the secret: a bad replacement, a task whose key does not exist.
    status, body = await stack.master.call("PUT", "/master/secrets/db",
                                           {"string_data": {"bad key!": canary}})
    assert status == 422, body
    bad = process_app()
    bad["id"] = "/sec/badkey"
    bad["secrets"]["db"]["key"] = "nope"
    await stack.services.ok("POST", "/v2/apps", bad)

    async def failure() -> str | None:
        app = (await stack.services.ok("GET", "/v2/apps/sec/badkey"))["app"]
        last = app.get("lastTaskFailure")
        return last["message"] if last else None

    message = await wait_for(failure, 60, interval=0.1, message="the bad app's failure")
    assert "secret 'db' has no key 'nope'" in message
    await stack.services.call("DELETE", "/v2/apps/sec/badkey?force=true")

    # Stop everything: the tmpfs mounts go, and then nothing on disk holds the value.
    await stack.services.ok("DELETE", "/v2/apps/sec/proc")
    await stack.services.ok("DELETE", "/v2/apps/sec/docker")
    await wait_for(lambda: not mounted_under(stack.cluster.spec.work_dir), 30, interval=0.1,
                   message="the secret tmpfs mounts to be released")
    await stack.streams.close()

    answers = "\n".join(stack.seen)
    assert "/master/secrets/db" in answers and "sec-job" in answers  # they were recorded
    assert canary not in answers
    for url, data in stack.streams.seen.items():
        assert data, f"{url} sent nothing"
        assert canary.encode() not in data, url
    assert b"sec/proc" in b"".join(stack.streams.seen.values())
    assert canary not in caplog.text
    assert "secret" in caplog.text  # the logs were captured (names are logged)
    files = _files(stack.tmp)
    assert {"master.db", "stdout", "services.db"} <= {p.name for p in files}
    # Nothing on disk either (the Docker env value lives in the engine only).
    leaks = [p for p in files if canary.encode() in _read(p)
             or docker_env_value.encode() in _read(p)]
    assert leaks == []


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


def _read(path: Path) -> bytes:
    """The file's bytes; none if it went away since it was listed (the cluster still
    runs: SQLite removes its -shm/-wal files when its last connection closes)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""


async def test_rotating_a_secret_with_restart_apps_rolls_in_the_new_value(
        process_stack: Stack) -> None:
    stack = process_stack
    old, new = f"old-{secrets.token_hex(8)}", f"new-{secrets.token_hex(8)}"
    await stack.put_secret("api-token", token=old)
    app = {"id": "/rot", "cpus": 0.05, "mem": 32, "instances": 2,
           "taskKillGracePeriodSeconds": 0,
           "upgradeStrategy": {"minimumHealthCapacity": 0.5, "maximumOverCapacity": 0},
           "cmd": (f'echo "env=$(printf %s "$TOKEN" | {HASH})"; '
                   'echo "file=$(sha256sum < tok | cut -c1-64)"; exec sleep 600'),
           "secrets": {"t": {"source": "api-token", "key": "token"}},
           "env": {"TOKEN": {"secret": "t"}},
           "container": {"type": "MESOS", "volumes": [{"containerPath": "tok", "secret": "t"}]}}
    await stack.services.ok("POST", "/v2/apps", app)
    # An app that references another object: the rotation leaves it alone.
    await stack.put_secret("other", token="x")
    await stack.services.ok("POST", "/v2/apps", {
        "id": "/bystander", "cpus": 0.05, "mem": 32, "instances": 1, "cmd": "exec sleep 600",
        "taskKillGracePeriodSeconds": 0, "secrets": {"o": {"source": "other"}},
        "env": {"OTHER": {"secret": "o"}}})

    async def running(app_id: str, n: int, exclude: set[str]) -> list[str] | None:
        tasks = (await stack.services.ok("GET", f"/v2/apps{app_id}/tasks"))["tasks"]
        ids = [t["id"] for t in tasks if t["state"] == "TASK_RUNNING"]
        return ids if len(ids) == n == len(tasks) and not exclude & set(ids) else None

    first = await wait_for(lambda: running("/rot", 2, set()), 60, interval=0.1,
                           message="2 tasks")
    bystander = await wait_for(lambda: running("/bystander", 1, set()), 60, interval=0.1,
                               message="the bystander's task")
    for task in first:
        out = await stack.output(task, "env=", "file=")
        assert f"env={sha(old)}" in out and f"file={sha(old)}" in out

    # Rotate (version 2) and roll every app that references the secret, in one command.
    code, out, err = await cli(stack.cluster.master_url, "secrets", "update", "api-token",
                               "--from-literal", f"token={new}", "--restart-apps",
                               "--services", stack.services_server.url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("secret api-token updated (version 2")
    assert len(lines) == 2 and lines[1].startswith("restarting /rot (deployment ")
    assert new not in out + err
    # The restart replaces the tasks one by one (minimumHealthCapacity 0.5).
    second = await wait_for(lambda: running("/rot", 2, set(first)), 60, interval=0.1,
                            message="2 new tasks")
    for task in second:
        out = await stack.output(task, "env=", "file=")
        assert f"env={sha(new)}" in out and f"file={sha(new)}" in out
    assert await running("/bystander", 1, set()) == bystander

    # Nothing references a config of that name: said so, and nothing restarted.
    await stack.master.ok("PUT", "/master/configs/api-token", {"data": {"a": "b"}})
    code, out, err = await cli(stack.cluster.master_url, "configs", "update", "api-token",
                               "--from-literal", "a=c", "--restart-apps",
                               "--services", stack.services_server.url)
    assert code == 0, err
    assert out.splitlines()[-1] == "no app references config api-token"
    # The services framework unreachable: the object is updated; the line says so.
    code, out, err = await cli(stack.cluster.master_url, "secrets", "update", "api-token",
                               "--from-literal", f"token={new}", "--restart-apps",
                               "--services", f"http://127.0.0.1:{free_port()}")
    assert code != 0 and "version 3" in out
    assert len(err.strip().splitlines()) == 1
    assert "was updated, but its apps were not restarted" in err and new not in err


async def test_a_task_whose_secret_is_missing_fails_with_the_reason(
        process_stack: Stack) -> None:
    stack = process_stack
    job = {"id": "missing", "command": "true", "env": {"X": {"secret": "nowhere"}}}
    await stack.batch.ok("PUT", "/v1/jobs/missing", job)
    run = await stack.batch.ok("POST", "/v1/jobs/missing/runs")
    ended = await wait_run(stack.batch_server, run["id"], timeout=60)
    assert ended["state"] == "FAILED"
    messages = [a.get("message") or "" for a in attempts_of(ended)]
    assert any("secret 'nowhere' does not exist" in m for m in messages), ended


async def test_invalid_references_are_refused_with_marathon_and_batch_errors(
        process_stack: Stack) -> None:
    stack = process_stack
    app = {"id": "/bad", "cmd": "sleep 1", "secrets": {"s": {"source": "Not A Name"}},
           "env": {"A": {"secret": "missing"}, "B": {"nope": 1}},
           "container": {"type": "MESOS", "volumes": [
               {"containerPath": "f", "secret": "gone"},
               {"containerPath": "/abs", "secret": "s"}]}}
    status, body = await stack.services.call("POST", "/v2/apps", app)
    assert status == 422, body
    paths = {d["path"] for d in body["details"]}
    assert {"/secrets/s/source", "/env/A", "/env/B", "/container/volumes(0)/secret",
            "/container/volumes(1)/containerPath"} <= paths, body
    job = {"id": "badref", "command": "true", "env": {"A": {"secret": "x", "config": "y"}},
           "secret_files": [{"path": "../up", "secret": "x"}, {"path": "f", "secret": "BAD"}]}
    status, body = await stack.batch.call("PUT", "/v1/jobs/badref", job)
    assert status == 422, body
    paths = {d["path"] for d in body["details"]}
    assert {"env.A", "secret_files[0].path", "secret_files[1]"} <= paths, body


async def test_a_taskinfo_secret_of_type_value_is_refused(process_stack: Stack) -> None:
    """Mesos' ``Secret`` of type VALUE would carry the value in the task's records
    (the master does not even model its ``value``): TASK_ERROR, saying what to use."""
    from mesoslite.messages.mesos import Environment, EnvironmentVariable, Secret, TaskState
    from mesoslite.scheduler import task_info
    from mesoslite.testing.framework import RecordingFramework

    fw = await RecordingFramework(process_stack.cluster.master_url).start()
    try:
        offer = await fw.offer()
        task = task_info("v", "v", offer.agent_id, cmd="true", cpus=0.05, mem=16)
        assert task.command is not None
        task.command.environment = Environment(variables=[
            EnvironmentVariable(name="X", type="SECRET", secret=Secret(type="VALUE"))])
        await fw.launch(offer, [task], refuse_seconds=0)
        status = await fw.wait_state("v", TaskState.TASK_ERROR)
        assert "only secrets of type REFERENCE" in (status.message or "")
    finally:
        await fw.stop()
