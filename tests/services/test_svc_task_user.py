"""An app's ``user``: its tasks run as that user (``CommandInfo.user``; the agent
switches users, as Mesos' ``--switch_user``), here with a script the agent fetched
from a ``file://`` URI into the sandbox first."""

from __future__ import annotations

import os
import pwd

from mesoslite.testing.poll import wait_for
from tests.conftest import require
from tests.services.test_svc_fetch import sandbox


async def test_an_app_s_tasks_run_as_its_user_with_a_fetched_script(cluster, api,
                                                                     tmp_path) -> None:
    require(os.geteuid() == 0, "root (the agent switches users only as root)")
    nobody = pwd.getpwnam("nobody")
    script = tmp_path / "whoami.sh"
    script.write_text('#!/bin/sh\necho "I am $(id -un) ($(id -u))"\n')
    await api.ok("POST", "/v2/apps", {
        "id": "/as-nobody", "instances": 1, "cpus": 0.1, "mem": 16, "user": "nobody",
        "cmd": "./bin/whoami && exec sleep 1000",
        "fetch": [{"uri": f"file://{script}", "executable": True, "destPath": "bin/whoami"}]})
    app = await api.app("/as-nobody")
    assert app["user"] == "nobody"
    [task] = await api.running("/as-nobody", 1)
    out = sandbox(cluster, task["id"]) / "stdout"
    await wait_for(lambda: out.exists() and out.read_text() == f"I am nobody ({nobody.pw_uid})\n",
                   message="the fetched script's output, run as nobody")
    assert (out.parent / "bin" / "whoami").stat().st_uid == nobody.pw_uid


async def test_a_user_the_agent_does_not_have_fails_the_task_naming_it(api) -> None:
    await api.ok("POST", "/v2/apps", {"id": "/as-ghost", "instances": 1, "cpus": 0.1,
                                      "mem": 16, "user": "no-such-user-here",
                                      "cmd": "sleep 1000"})

    async def failure() -> dict | None:
        return (await api.app("/as-ghost")).get("lastTaskFailure")

    last = await wait_for(failure, 30, message="the refused launch as lastTaskFailure")
    assert "no-such-user-here" in last["message"] and "no such user" in last["message"]


async def test_a_docker_app_s_tasks_run_as_its_user(engine, dcluster, services_factory) -> None:
    from tests.services.conftest import IMAGE, Api

    server = await services_factory(dcluster.master_url)
    await wait_for(lambda: server.reconciled, 10, message="reconciled")
    api = Api(server.url)
    await api.ok("POST", "/v2/apps", {
        "id": "/docker-nobody", "instances": 1, "cpus": 0.1, "mem": 32, "user": "nobody",
        "cmd": 'echo "I am $(id -un)" && exec sleep 1000',
        "container": {"type": "DOCKER", "docker": {"image": IMAGE}}})
    [task] = await api.running("/docker-nobody", 1, timeout=60)
    out = sandbox(dcluster, task["id"]) / "stdout"
    await wait_for(lambda: out.exists() and out.read_text() == "I am nobody\n",
                   message="the container's output, run as nobody")
