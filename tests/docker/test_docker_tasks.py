"""DOCKER tasks through a real in-process cluster and the real engine: exit codes,
OOM, limits, ports, parameters, volumes, images, logs, and placement rules."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from mesoslite.messages.mesos import (
    DockerNetwork,
    DockerVolumeSource,
    PortMapping,
    Reason,
    TaskState,
    Volume,
    VolumeMode,
    VolumeSource,
)
from mesoslite.testing.http import get_bytes
from mesoslite.testing.poll import wait_for
from tests.docker.conftest import IMAGE, launch_docker, runtime_id, task_container, unique_states

pytestmark = pytest.mark.docker


def sandbox(cluster, fw, task_id: str, index: int = 0):
    return cluster.agents[index].cp.sandbox(fw.id, task_id)


async def test_runs_to_completion_with_logs_in_the_sandbox(docker_cluster, framework):
    await launch_docker(framework, "done", "echo to-stdout; echo to-stderr >&2; exit 0")
    status = await framework.wait_state("done", TaskState.TASK_FINISHED)
    assert status.reason is None
    agent = docker_cluster.agents[0]
    url = f"http://127.0.0.1:{agent.config.port}/sandbox/{framework.id}/done"
    # What `mesoslite logs` reads: the agent's sandbox files, complete at FINISHED.
    assert await get_bytes(url + "/stdout") == b"to-stdout\n"
    assert await get_bytes(url + "/stderr") == b"to-stderr\n"
    assert unique_states(framework, "done") == [
        TaskState.TASK_STARTING, TaskState.TASK_RUNNING, TaskState.TASK_FINISHED]


async def test_interleaved_stdout_and_stderr_reach_the_sandbox_whole(docker_cluster, framework):
    # The engine writes the two streams from separate goroutines, so its log is often
    # out of timestamp order across them; every line must still land, once, in order.
    script = "for i in $(seq 1 100); do echo o$i; echo e$i >&2; done"
    await launch_docker(framework, "both", script)
    await framework.wait_state("both", TaskState.TASK_FINISHED)
    box = sandbox(docker_cluster, framework, "both")
    assert (box / "stdout").read_text() == "".join(f"o{i}\n" for i in range(1, 101))
    assert (box / "stderr").read_text() == "".join(f"e{i}\n" for i in range(1, 101))


async def test_finished_container_is_removed(docker_cluster, framework, docker_engine):
    await launch_docker(framework, "gone", "true")
    await framework.wait_state("gone", TaskState.TASK_FINISHED)
    rid = runtime_id(docker_cluster.agents[0].config.work_dir)
    assert await asyncio.to_thread(task_container, docker_engine, "gone", rid) is None


async def test_non_zero_exit_fails_with_the_code(docker_cluster, framework):
    await launch_docker(framework, "bad", "echo oops >&2; exit 3")
    status = await framework.wait_state("bad", TaskState.TASK_FAILED)
    assert "status 3" in status.message
    assert status.reason == Reason.REASON_COMMAND_EXECUTOR_FAILED
    assert (sandbox(docker_cluster, framework, "bad") / "stderr").read_text() == "oops\n"


async def test_oom_kill_is_a_memory_limitation(docker_cluster, framework):
    await launch_docker(framework, "hog", "a=x; while true; do a=$a$a; done", mem=16)
    status = await framework.wait_state("hog", TaskState.TASK_FAILED, timeout=60)
    assert status.reason == Reason.REASON_CONTAINER_LIMITATION_MEMORY
    assert "Memory limit exceeded" in status.message


async def test_limits_and_labels_read_back(docker_cluster, framework, docker_engine):
    # The container reads its own cgroup limits (v1 or v2 layout) into stdout.
    show = ("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
            "/sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || "
            "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/memory.max; echo shown; sleep 300")
    await launch_docker(framework, "limited", show, cpus=0.5, mem=64)
    await framework.wait_state("limited", TaskState.TASK_RUNNING)
    out = sandbox(docker_cluster, framework, "limited") / "stdout"
    text = await wait_for(lambda: "shown" in out.read_text() and out.read_text())
    numbers = text.split()
    assert "50000" in numbers and "100000" in numbers and str(64 * 2**20) in numbers

    agent = docker_cluster.agents[0]
    container = await asyncio.to_thread(task_container, docker_engine, "limited")
    host = container.attrs["HostConfig"]
    assert host["CpuQuota"] == 50000 and host["CpuPeriod"] == 100000
    assert host["Memory"] == 64 * 2**20 and host["MemorySwap"] == 64 * 2**20
    labels = container.labels
    assert labels["mesoslite.runtime_id"] == runtime_id(agent.config.work_dir)
    assert labels["mesoslite.agent_id"] == agent.agent_id
    assert labels["mesoslite.framework_id"] == framework.id
    assert labels["mesoslite.task_id"] == "limited"
    usage = await agent.tasks.tasks[(framework.id, "limited")].container.usage()
    assert usage.mem_bytes > 0 and usage.cpu_seconds > 0  # from the engine's stats
    assert usage.extra["mem_limit_bytes"] == 64 * 2**20
    state = {t["id"]: t for t in (await _agent_state(agent))["tasks"]}
    assert labels["mesoslite.container_id"] == state["limited"]["container_id"]
    assert container.name == "mesoslite-" + state["limited"]["container_id"]


async def _agent_state(agent):
    async with aiohttp.ClientSession() as s, s.get(
            f"http://127.0.0.1:{agent.config.port}/state") as r:
        return await r.json()


async def test_port_mapping_is_reachable_from_the_host(docker_cluster, framework):
    serve = "mkdir -p /tmp/www && echo hello-from-container > /tmp/www/index.html && " \
            "exec httpd -f -p 8080 -h /tmp/www"
    task = await launch_docker(framework, "web", serve, container_ports=[8080])
    await framework.wait_state("web", TaskState.TASK_RUNNING)
    host_port = task.container.docker.port_mappings[0].host_port

    async def fetch() -> bytes | None:
        try:
            return await get_bytes(f"http://127.0.0.1:{host_port}/index.html")
        except aiohttp.ClientError:
            return None

    assert await wait_for(fetch, timeout=20) == b"hello-from-container\n"


async def test_host_port_outside_the_tasks_ports_is_refused(docker_cluster, framework):
    await launch_docker(framework, "stray", "sleep 1", extra_ports=1, mappings=lambda hosts: [
        PortMapping(host_port=hosts[0] + 500, container_port=80)])
    status = await framework.wait_state("stray", TaskState.TASK_FAILED)
    assert status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "not among the task's ports resource" in status.message


async def test_network_host_and_none(docker_cluster, framework):
    await launch_docker(framework, "on-host", "ls /sys/class/net > /mnt/mesos/sandbox/nets",
                        network=DockerNetwork.HOST)
    await launch_docker(framework, "isolated", "ls /sys/class/net > /mnt/mesos/sandbox/nets",
                        network=DockerNetwork.NONE)
    for task_id in ("on-host", "isolated"):
        await framework.wait_state(task_id, TaskState.TASK_FINISHED)
    isolated = (sandbox(docker_cluster, framework, "isolated") / "nets").read_text().split()
    on_host = (sandbox(docker_cluster, framework, "on-host") / "nets").read_text().split()
    assert isolated == ["lo"]
    assert len(on_host) > 1


async def test_allowed_parameters_apply_and_others_are_refused(docker_cluster, framework,
                                                                docker_engine):
    await launch_docker(framework, "params", "id -u > /mnt/mesos/sandbox/uid; echo $EXTRA; "
                        "touch /forbidden 2>/dev/null || echo read-only; sleep 300",
                        parameters=[("label", "team=blue"), ("env", "EXTRA=given"),
                                    ("read-only", "true"), ("--user", "65534"),
                                    ("tmpfs", "/scratch:size=1m"), ("ulimit", "nofile=512:1024")])
    await launch_docker(framework, "privileged", "true", parameters=[("privileged", "true")])
    status = await framework.wait_state("privileged", TaskState.TASK_FAILED)
    assert "Docker parameter 'privileged' is not allowed" in status.message
    assert "add-host" in status.message  # it names the allow-list

    await framework.wait_state("params", TaskState.TASK_RUNNING)
    out = sandbox(docker_cluster, framework, "params") / "stdout"
    await wait_for(lambda: "read-only" in out.read_text())
    assert out.read_text() == "given\nread-only\n"
    container = await asyncio.to_thread(task_container, docker_engine, "params")
    host = container.attrs["HostConfig"]
    assert container.labels["team"] == "blue"
    assert host["ReadonlyRootfs"] is True
    assert host["Tmpfs"] == {"/scratch": "size=1m"}
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 512, "Hard": 1024}]
    assert container.attrs["Config"]["User"] == "65534"


async def test_a_kill_sends_the_containers_stop_signal(docker_cluster, framework):
    """As ``docker stop``: the stop-signal parameter (else the image's STOPSIGNAL, else
    SIGTERM) first; the task exits on it within its grace period."""
    both = ("trap 'echo got-USR1; exit 0' USR1; trap 'echo got-TERM; exit 0' TERM; "
            "echo ready; while true; do sleep 0.1; done")
    await launch_docker(framework, "usr1", both, parameters=[("stop-signal", "SIGUSR1")],
                        grace=30)
    await launch_docker(framework, "term", both, grace=30)
    for task_id in ("usr1", "term"):
        await framework.wait_state(task_id, TaskState.TASK_RUNNING)
        out = sandbox(docker_cluster, framework, task_id) / "stdout"
        await wait_for(lambda out=out: "ready" in out.read_text(), message=f"{task_id} ready")
        await framework.driver.kill(task_id)
    for task_id, seen in (("usr1", "got-USR1"), ("term", "got-TERM")):
        await framework.wait_state(task_id, TaskState.TASK_KILLED, timeout=30)
        out = sandbox(docker_cluster, framework, task_id) / "stdout"
        assert out.read_text() == f"ready\n{seen}\n"


async def test_image_env_is_kept_and_task_env_added(docker_cluster, framework):
    await launch_docker(framework, "env", 'echo "$PATH|$MESOS_SANDBOX|$MESOS_TASK_ID|$HOME"')
    await framework.wait_state("env", TaskState.TASK_FINISHED)
    out = (sandbox(docker_cluster, framework, "env") / "stdout").read_text()
    # PATH is the image's (/bin), not the agent's; HOME is not the host sandbox path.
    assert out.startswith("/bin|/mnt/mesos/sandbox|env|")
    assert str(sandbox(docker_cluster, framework, "env")) not in out


async def test_volumes_host_path_read_only_and_named_volume(docker_cluster, framework,
                                                            docker_engine, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "input").write_text("from-host\n")
    name = f"mesoslite-test-{uuid.uuid4().hex[:8]}"
    volumes = [
        Volume(container_path="/in", mode=VolumeMode.RO, host_path=str(shared)),
        Volume(container_path="/data", mode=VolumeMode.RW, source=VolumeSource(
            type="DOCKER_VOLUME", docker_volume=DockerVolumeSource(name=name))),
        Volume(container_path="/rel", mode=VolumeMode.RW, host_path="relative-dir"),
    ]
    script = ("cat /in/input; (echo x > /in/nope) 2>/dev/null || echo in-is-ro; "
              "echo kept > /data/file; echo rel > /rel/file")
    try:
        await launch_docker(framework, "vols", script, volumes=volumes)
        await framework.wait_state("vols", TaskState.TASK_FINISHED)
        box = sandbox(docker_cluster, framework, "vols")
        assert (box / "stdout").read_text() == "from-host\nin-is-ro\n"
        assert (box / "relative-dir" / "file").read_text() == "rel\n"  # inside the sandbox
        await launch_docker(framework, "vols2", "cat /data/file", volumes=volumes[1:2])
        await framework.wait_state("vols2", TaskState.TASK_FINISHED)
        assert (sandbox(docker_cluster, framework, "vols2") / "stdout").read_text() == "kept\n"
    finally:
        await asyncio.to_thread(lambda: docker_engine.volumes.get(name).remove(force=True))


async def test_missing_image_fails_at_once_with_a_clear_message(docker_cluster, framework):
    await launch_docker(framework, "noimage", "true", image="mesoslite/no-such-image:404")
    status = await framework.wait_state("noimage", TaskState.TASK_FAILED)
    assert status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "mesoslite/no-such-image:404" in status.message
    assert "is not on this agent's engine and could not be pulled" in status.message
    assert TaskState.TASK_RUNNING not in framework.sched.states("noimage")


async def test_force_pull_without_a_registry_uses_the_local_copy(docker_cluster, framework):
    await launch_docker(framework, "forced", "echo ran", force_pull=True)
    await framework.wait_state("forced", TaskState.TASK_FINISHED)
    box = sandbox(docker_cluster, framework, "forced")
    assert (box / "stdout").read_text() == "ran\n"
    assert "force_pull_image" in (box / "stderr").read_text()


async def test_docker_task_is_refused_by_an_agent_without_docker(docker_cluster_factory,
                                                                 framework_factory):
    cluster = await docker_cluster_factory(containerizers=["process"])
    fw = await framework_factory(cluster.master_url)
    await launch_docker(fw, "nodocker", "true")
    status = await fw.wait_state("nodocker", TaskState.TASK_ERROR)
    assert "no docker containerizer" in status.message


async def test_an_image_removed_after_a_launch_is_looked_for_again(
        docker_cluster, framework, docker_engine):
    # The agent remembers an image it has just seen (no inspect per launch); when
    # the image goes meanwhile, the next launch must still explain, not fail oddly.
    tag = f"mesoslite/busybox:gone-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(lambda: docker_engine.images.get(IMAGE).tag(tag))
    await launch_docker(framework, "seen", "true", image=tag)
    await framework.wait_state("seen", TaskState.TASK_FINISHED)
    rid = runtime_id(docker_cluster.agents[0].config.work_dir)
    await wait_for(lambda: task_container(docker_engine, "seen", rid) is None,
                   message="the finished container removed")
    await asyncio.to_thread(lambda: docker_engine.images.remove(tag))
    await launch_docker(framework, "unseen", "true", image=tag)
    status = await framework.wait_state("unseen", TaskState.TASK_FAILED)
    assert status.reason == Reason.REASON_CONTAINER_LAUNCH_FAILED
    assert "is not on this agent's engine and could not be pulled" in status.message
