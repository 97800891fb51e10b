"""``CommandInfo.uris`` through a real master and real agents: fetched scripts and
archives run, unfetchable URIs fail the launch with the URI and the cause, URIs the
fetcher cannot take are refused at ACCEPT, and tasks share a cached download."""

from __future__ import annotations

import asyncio
import os
import pwd
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    CommandURI,
    Environment,
    EnvironmentVariable,
    ExecutorInfo,
    Reason,
    TaskInfo,
    TaskState,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import task_info
from mesoslite.scheduler.helpers import resource_list
from mesoslite.testing.artifacts import ArtifactServer, tar_bytes
from mesoslite.testing.poll import wait_for

pytestmark = pytest.mark.asyncio

HELLO = b'#!/bin/sh\necho "hello from $1"\n'
REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture
async def server() -> AsyncIterator[ArtifactServer]:
    srv = await ArtifactServer().start()
    yield srv
    await srv.stop()


def sandbox_of(cluster, framework_id: str, task_id: str):
    for agent in cluster.agents:
        path = agent.cp.sandbox(framework_id, task_id)
        if path.exists():
            return path
    raise AssertionError(f"no sandbox for {task_id}")


async def test_a_task_runs_what_it_fetched(cluster, framework, server):
    script = server.add("bin/hello", HELLO)
    app = server.add("app-1.0.tgz", tar_bytes({"app/version.txt": b"1.0\n"}))
    await framework.run_task(
        "fetching", './hello fetcher && cat app/version.txt',
        uris=[CommandURI(value=script, executable=True), app])
    await framework.wait_state("fetching", TaskState.TASK_FINISHED)
    sandbox = sandbox_of(cluster, framework.id, "fetching")
    assert (sandbox / "stdout").read_text() == "hello from fetcher\n1.0\n"
    log = (sandbox / "stderr").read_text().splitlines()
    assert len(log) == 2 and script in log[0] and app in log[1]


async def test_an_unreachable_uri_fails_the_launch_naming_it(cluster, framework, server):
    url = server.url("never.tgz")
    await server.stop()  # nothing listens on its port any more
    await framework.run_task("unreachable", "true", uris=[url])
    status = await framework.wait_state("unreachable", TaskState.TASK_FAILED)
    assert status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert url in status.message and "cannot connect" in status.message
    assert framework.sched.states("unreachable") == [TaskState.TASK_STARTING,
                                                     TaskState.TASK_FAILED]
    sandbox = sandbox_of(cluster, framework.id, "unreachable")
    assert status.message in (sandbox / "stderr").read_text()


async def test_a_missing_artifact_fails_with_the_http_status(cluster, framework, server):
    url = server.url("missing.jar")
    await framework.run_task("missing", "true", uris=[url])
    status = await framework.wait_state("missing", TaskState.TASK_FAILED)
    assert status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert status.message == f"Failed to fetch '{url}': HTTP 404 Not Found"


async def test_uris_the_fetcher_cannot_take_are_refused_at_accept(cluster, framework, server):
    offer = await framework.offer()
    ok = server.add("ok.txt", b"ok")
    tasks = [
        task_info("ftp", "ftp", offer.agent_id, cmd="true",
                  uris=[ok, "ftp://example.com/app.tgz"]),
        task_info("escape", "escape", offer.agent_id, cmd="true",
                  uris=[CommandURI(value=ok, output_file="../../outside")]),
        task_info("relative", "relative", offer.agent_id, cmd="true", uris=["app.tgz"]),
    ]
    await framework.launch(offer, tasks)
    for task_id, field in [("ftp", "command.uris[1].value"),
                           ("escape", "command.uris[0].output_file"),
                           ("relative", "command.uris[0].value")]:
        status = await framework.wait_state(task_id, TaskState.TASK_ERROR)
        assert status.reason == Reason.REASON_TASK_INVALID
        assert f"'{field}'" in status.message, status.message
        assert framework.sched.states(task_id) == [TaskState.TASK_ERROR]
    assert server.requests["/ok.txt"] == 0


async def test_ten_tasks_fetching_one_cached_uri_download_it_once(cluster_factory,
                                                                  framework_factory, server):
    cluster = await cluster_factory(agents=1)
    framework = await framework_factory(cluster.master_url)
    url = server.add("tool.tgz", tar_bytes({"tool/run": HELLO}, executable=("tool/run",)))
    server.hold = asyncio.Event()
    offer = await framework.offer()
    ids = [f"shared-{i}" for i in range(10)]
    await framework.launch(offer, [
        task_info(t, t, offer.agent_id, cmd=f"tool/run {t}",
                  uris=[CommandURI(value=url, cache=True)]) for t in ids])
    fetcher = cluster.agents[0].fetcher
    await wait_for(lambda: fetcher.cache.users(url) == 10, timeout=30,
                   message="the ten launches to wait for one download")
    server.hold.set()
    for task_id in ids:
        await framework.wait_state(task_id, TaskState.TASK_FINISHED)
        sandbox = sandbox_of(cluster, framework.id, task_id)
        assert (sandbox / "stdout").read_text() == f"hello from {task_id}\n"
    assert server.requests["/tool.tgz"] == 1


async def test_a_kill_during_the_fetch_does_not_wait_for_the_download(cluster, framework,
                                                                     server):
    url = server.add("huge.tgz", b"never sent")
    server.hold = asyncio.Event()  # the download hangs until the server stops
    await framework.run_task("slow-fetch", "true", uris=[url])
    starting = await framework.wait_state("slow-fetch", TaskState.TASK_STARTING)
    await wait_for(lambda: server.requests["/huge.tgz"] == 1, message="the download to start")
    await framework.driver.kill("slow-fetch", starting.agent_id.value)
    status = await framework.wait_state("slow-fetch", TaskState.TASK_KILLED)
    assert status.reason == Reason.REASON_TASK_KILLED_DURING_LAUNCH
    assert framework.sched.states("slow-fetch") == [TaskState.TASK_STARTING,
                                                    TaskState.TASK_KILLED]


@pytest.mark.skipif(os.geteuid() != 0, reason="running a task as another user needs root")
async def test_fetched_files_belong_to_the_task_s_user(cluster, framework, server):
    url = server.add("work.tgz", tar_bytes({"work/input.txt": b"in\n"}))
    offer = await framework.offer()
    task = task_info("as-nobody", "as-nobody", offer.agent_id, uris=[url],
                     cmd="cp work/input.txt work/output.txt && rm work.tgz && id -un")
    assert task.command is not None
    task.command.user = "nobody"
    await framework.launch(offer, [task])
    await framework.wait_state("as-nobody", TaskState.TASK_FINISHED)
    sandbox = sandbox_of(cluster, framework.id, "as-nobody")
    assert (sandbox / "stdout").read_text() == "nobody\n"
    assert (sandbox / "work" / "output.txt").read_text() == "in\n"
    assert (sandbox / "work").stat().st_uid == pwd.getpwnam("nobody").pw_uid


def fetching_executor(executor_id: str, uri: str) -> ExecutorInfo:
    """tests/executors/raw_executor.py, started by a script the agent fetches."""
    return ExecutorInfo(
        executor_id=ID(executor_id),
        command=CommandInfo(value="exec ./start-executor", uris=[
            CommandURI(value=uri, executable=True, output_file="start-executor")],
            environment=Environment(variables=[
                EnvironmentVariable(name="PYTHONPATH", value=REPO)])),
        resources=resource_list(Resources.of(cpus=0.25, mem=64.0)))


def executor_task(task_id: str, agent_id: ID, executor: ExecutorInfo) -> TaskInfo:
    return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=agent_id,
                    resources=resource_list(Resources.of(cpus=0.1, mem=16.0)),
                    executor=executor, data=b"finish")


async def test_an_executor_is_started_from_what_it_fetched(cluster, framework, server):
    start = f"#!/bin/sh\nexec {sys.executable} -m tests.executors.raw_executor\n"
    url = server.add("start.sh", start.encode())
    offer = await framework.offer()
    await framework.launch(offer, [executor_task("by-executor", offer.agent_id,
                                                 fetching_executor("fetched", url))])
    status = await framework.wait_state("by-executor", TaskState.TASK_FINISHED)
    assert status.executor_id == ID("fetched")
    assert server.requests["/start.sh"] == 1


async def test_an_executor_whose_uri_cannot_be_fetched_fails_its_tasks(cluster, framework,
                                                                       server):
    url = server.url("no-executor.sh")
    offer = await framework.offer()
    await framework.launch(offer, [executor_task("orphan", offer.agent_id,
                                                 fetching_executor("unfetched", url))])
    status = await framework.wait_state("orphan", TaskState.TASK_FAILED)
    assert status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert url in status.message and "HTTP 404" in status.message


async def test_an_executor_uri_the_fetcher_cannot_take_is_refused_at_accept(cluster,
                                                                            framework):
    offer = await framework.offer()
    executor = fetching_executor("ftp", "ftp://example.com/executor.tgz")
    await framework.launch(offer, [executor_task("ftp-exec", offer.agent_id, executor)])
    status = await framework.wait_state("ftp-exec", TaskState.TASK_ERROR)
    assert "'executor.command.uris[0].value': unsupported scheme 'ftp://'" in status.message
