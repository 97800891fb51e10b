"""Batch jobs in Docker containers (the local busybox image) on a real engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesoslite.testing.poll import wait_for
from tests.batch.conftest import AGENT_RESOURCES, attempts_of, step_of, submit, wait_run
from tests.docker.conftest import IMAGE, docker_engine, remove_runtime_containers, runtime_id

pytestmark = pytest.mark.docker
__all__ = ["docker_engine"]  # the session fixture: skips (or fails in CI) without an engine


@pytest.fixture
async def docker_env(batch_env, docker_engine):
    yield batch_env
    for cluster in batch_env.clusters:
        await cluster.stop(kill_tasks=True)
    for work_dir in batch_env.tmp.glob("cluster*/agent*"):
        if (work_dir / "runtime_id").exists():
            remove_runtime_containers(docker_engine, runtime_id(work_dir))


async def test_ci_pipeline_in_containers(docker_env):
    cluster = await docker_env.cluster(containerizers=("docker", "process"))
    server = await docker_env.server(cluster)
    job = {"id": "ci", "image": IMAGE, "cpus": 0.1, "kill_grace": 0, "steps": [
        {"name": "lint", "command": "echo lint ok"},
        {"name": "test", "depends_on": ["lint"], "completions": 4,
         "command": "echo shard $BATCH_TASK_INDEX; test -d /bin"},
        {"name": "package", "depends_on": ["test"], "args": ["sh", "-c", "echo packaged"]}]}
    done = await wait_run(server, (await submit(server, job))["id"], 120)
    assert done["state"] == "SUCCEEDED", done["message"]
    assert step_of(done, "test")["counts"]["done"] == 4
    assert {a["state"] for a in done["attempts"]} == {"FINISHED"}


async def test_failing_container_step_is_retried_then_skips_the_rest(docker_env):
    cluster = await docker_env.cluster(containerizers=("docker", "process"))
    server = await docker_env.server(cluster)
    job = {"id": "broken", "image": IMAGE, "kill_grace": 0, "steps": [
        {"name": "test", "command": "echo failing; exit 4", "retries": 1,
         "backoff": {"initial": 0.1}},
        {"name": "package", "depends_on": ["test"], "command": "echo never"}]}
    done = await wait_run(server, (await submit(server, job))["id"], 120)
    assert done["state"] == "FAILED"
    assert [a["state"] for a in attempts_of(done, "test")] == ["FAILED", "FAILED"]
    assert step_of(done, "package")["state"] == "SKIPPED"


async def test_container_timeout_is_killed(docker_env, docker_engine):
    cluster = await docker_env.cluster(containerizers=("docker", "process"))
    server = await docker_env.server(cluster)
    run = await submit(server, {"id": "stuck", "image": IMAGE, "command": "sleep 600",
                                "timeout": 2, "kill_grace": 0})
    done = await wait_run(server, run["id"], 120)
    assert done["state"] == "FAILED" and "timed out" in done["message"]
    [attempt] = done["attempts"]
    assert attempt["state"] == "KILLED"
    rid = runtime_id(cluster.spec.work_dir / "agent1")

    def stopped() -> bool:
        return all(c.status != "running" for c in docker_engine.containers.list(
            all=True, filters={"label": f"mesoslite.runtime_id={rid}"}))

    await wait_for(stopped, 30)


async def test_docker_steps_avoid_agents_without_docker(docker_env):
    cluster = await docker_env.cluster(agents=1, containerizers=("process",),
                                       resources=AGENT_RESOURCES)
    cluster.spec.containerizers = ["docker", "process"]
    docker_agent = await cluster.start_agent(1)
    await cluster.wait_registered()
    server = await docker_env.server(cluster)
    run = await submit(server, {"id": "needs-docker", "image": IMAGE, "completions": 3,
                                "cpus": 0.1, "command": "true", "kill_grace": 0})
    done = await wait_run(server, run["id"], 120)
    assert done["state"] == "SUCCEEDED"
    finished = [a for a in done["attempts"] if a["state"] == "FINISHED"]
    assert {a["agent_id"] for a in finished} == {docker_agent.agent_id}
    lost = [a for a in done["attempts"] if a["state"] == "LOST"]
    assert len(lost) <= 3 and all("docker" in a["message"] for a in lost)
    assert not any(a["counts_as_failure"] for a in done["attempts"])


@pytest.mark.parametrize("name", ["ci-pipeline.yaml", "hello.yaml", "gang.yaml"])
async def test_examples_run(docker_env, name):
    import yaml

    path = Path(__file__).resolve().parents[2] / "examples" / "batch" / name
    cluster = await docker_env.cluster(containerizers=("docker", "process"))
    server = await docker_env.server(cluster)
    done = await wait_run(server, (await submit(server, yaml.safe_load(path.read_text())))["id"],
                          120)
    assert done["state"] == "SUCCEEDED", done["message"]
