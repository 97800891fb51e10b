"""Fetched URIs in DOCKER tasks: the sandbox is mounted at ``$MESOS_SANDBOX``, so what
the agent fetched is there in the container; the fetch log survives an agent restart."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mesoslite.messages.mesos import CommandURI, TaskState
from mesoslite.testing.artifacts import ArtifactServer, tar_bytes
from mesoslite.testing.poll import wait_for
from tests.docker.conftest import launch_docker

pytestmark = pytest.mark.docker


@pytest.fixture
async def server() -> AsyncIterator[ArtifactServer]:
    srv = await ArtifactServer().start()
    yield srv
    await srv.stop()


async def test_a_docker_task_sees_the_fetched_files_in_its_sandbox(
        docker_cluster, framework, server):
    notes = server.add("notes.txt", b"fetched notes\n")
    app = server.add("app.tgz", tar_bytes({"bin/run.sh": b"#!/bin/sh\necho ran $0\n"},
                                          executable=("bin/run.sh",)))
    await launch_docker(framework, "docker-fetch",
                        'cat "$MESOS_SANDBOX/notes.txt" && "$MESOS_SANDBOX/bin/run.sh"',
                        uris=[notes, CommandURI(value=app, cache=True)])
    await framework.wait_state("docker-fetch", TaskState.TASK_FINISHED, timeout=60)
    sandbox = docker_cluster.agents[0].cp.sandbox(framework.id, "docker-fetch")
    assert (sandbox / "stdout").read_text() == (
        "fetched notes\nran /mnt/mesos/sandbox/bin/run.sh\n")


async def test_the_fetch_log_survives_an_agent_restart(docker_cluster, framework, server):
    url = server.add("data.txt", b"payload\n")
    script = ('S=/mnt/mesos/sandbox; echo started; echo warming-up >&2; '
              'while [ ! -f $S/go ]; do sleep 0.1; done; cat $S/data.txt; echo done >&2')
    await launch_docker(framework, "restarted", script, uris=[url])
    await framework.wait_state("restarted", TaskState.TASK_RUNNING, timeout=60)
    sandbox = docker_cluster.agents[0].cp.sandbox(framework.id, "restarted")
    await wait_for(lambda: "warming-up" in (sandbox / "stderr").read_text(),
                   message="the task's first line of stderr")
    await docker_cluster.stop_agent(0)  # the container keeps running
    await docker_cluster.start_agent(0)
    await docker_cluster.wait_registered()
    (sandbox / "go").touch()
    await framework.wait_state("restarted", TaskState.TASK_FINISHED, timeout=60)
    # the log copier may still be writing the container's last lines
    def logs() -> tuple[str, list[str]] | None:
        out = (sandbox / "stdout").read_text()
        err = (sandbox / "stderr").read_text().splitlines()
        return (out, err) if out.endswith("payload\n") and len(err) >= 3 else None

    stdout, stderr = await wait_for(logs, message="the task's last lines copied")
    assert stdout == "started\npayload\n"
    assert len(stderr) == 3 and url in stderr[0]
    assert stderr[1:] == ["warming-up", "done"]
