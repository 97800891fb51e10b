"""Agent faults on real processes: crashes inside a launch, torn checkpoints, OOM
versus a plain SIGKILL, a full disk, lost acknowledgements.  Each prints its figure."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from mesoslite.messages.mesos import Reason, TaskState
from mesoslite.testing.framework import RecordingFramework
from mesoslite.testing.http import get_json, request
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import agent_process, master_process

pytestmark = pytest.mark.faults
RESOURCES = "cpus:2;mem:1024;disk:1024;ports:[31100-31199]"
PID_THEN_SLEEP = "echo $$ > pid; exec sleep 300"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def fill(path: Path) -> None:
    """Write to ``path`` until the filesystem is full."""
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass


@pytest.fixture
async def cluster(tmp_path):
    """A master process and a framework; agents are started by each test."""
    master = await master_process(tmp_path / "master").start()
    fw = RecordingFramework(master.url, failover_timeout=60)
    await fw.start()
    procs = [master]
    yield master, fw, procs
    await fw.stop()
    for proc in reversed(procs):
        await proc.stop()


def box(agent_dir: Path, fw: RecordingFramework, task_id: str) -> Path:
    return agent_dir / "sandboxes" / fw.id / task_id


@pytest.mark.parametrize("point, outcome", [
    ("agent.launch.after_checkpoint", TaskState.TASK_LOST),
    ("agent.launch.after_start", TaskState.TASK_LOST),
    ("agent.launch.after_record", TaskState.TASK_RUNNING),
])
async def test_crash_inside_a_launch_leaves_one_clear_outcome(tmp_path, cluster, point,
                                                              outcome):
    master, fw, procs = cluster
    agent_dir = tmp_path / "agent"
    agent = agent_process(master.url, agent_dir, RESOURCES)
    agent.env = {"MESOSLITE_CRASH_AT": point}
    procs.append(await agent.start())
    await fw.run_task("crashy", PID_THEN_SLEEP)
    await wait_for(lambda: agent.proc.poll() is not None, message=f"the agent to crash at {point}")
    assert agent.proc.returncode == 137
    agent.env = {}
    procs.append(await agent.start())
    status = await fw.wait_state("crashy", outcome, timeout=20)
    pid_file = box(agent_dir, fw, "crashy") / "pid"
    if outcome == TaskState.TASK_LOST:
        # told by the agent (REASON_AGENT_RESTARTED), or by the master when the agent
        # was away long enough to be marked unreachable first
        assert status.reason in (Reason.REASON_AGENT_RESTARTED, Reason.REASON_AGENT_REREGISTERED)
        # nothing keeps running behind the framework's back
        if pid_file.exists():
            pid = int(pid_file.read_text())
            await wait_for(lambda: not alive(pid), message="the orphan to be killed")
    else:
        pid = int(pid_file.read_text())
        assert alive(pid)
        assert fw.sched.states("crashy").count(TaskState.TASK_RUNNING) == 1
    print(f"\ncrash at {point}: task ended up {status.state.value}, 0 orphans, 0 duplicates")


async def test_torn_checkpoints_do_not_stop_the_agent(tmp_path, cluster):
    master, fw, procs = cluster
    agent_dir = tmp_path / "agent"
    agent = await agent_process(master.url, agent_dir, RESOURCES).start()
    procs.append(agent)
    for task_id in ("intact", "torn"):
        await fw.run_task(task_id, PID_THEN_SLEEP)
        await fw.wait_state(task_id, TaskState.TASK_RUNNING)
    torn_pid = int(await wait_for(lambda: (box(agent_dir, fw, "torn") / "pid").exists()
                                  and (box(agent_dir, fw, "torn") / "pid").read_text()))
    agent.kill9()
    task_json = agent_dir / "meta" / fw.id / "torn" / "task.json"
    task_json.write_bytes(task_json.read_bytes()[: len(task_json.read_bytes()) // 2])
    procs.append(await agent.start())
    status = await fw.wait_state("torn", TaskState.TASK_GONE, timeout=20)
    assert status.reason == Reason.REASON_AGENT_REREGISTERED
    await wait_for(lambda: not alive(torn_pid), message="the unrecoverable task's process killed")
    before = len(fw.sched.updates)
    await fw.driver.reconcile([("intact", None)])
    answer = await wait_for(lambda: [u for u in fw.sched.updates[before:]
                                     if u.task_id.value == "intact"])
    assert answer[0].state == TaskState.TASK_RUNNING
    print("\ntorn task.json: agent up, torn task reported TASK_GONE, intact task RUNNING")


async def test_oom_is_told_apart_from_a_plain_sigkill(tmp_path, cluster):
    master, fw, procs = cluster
    agent_dir = tmp_path / "agent"
    procs.append(await agent_process(master.url, agent_dir, RESOURCES).start())
    await fw.run_task("hog", "python3 -c \"b = bytearray(300 * 1024 * 1024)\"", mem=32)
    await fw.run_task("victim", PID_THEN_SLEEP)
    await fw.wait_state("victim", TaskState.TASK_RUNNING)
    pid = int(await wait_for(lambda: (box(agent_dir, fw, "victim") / "pid").exists()
                             and (box(agent_dir, fw, "victim") / "pid").read_text()))
    os.kill(pid, signal.SIGKILL)
    oom = await fw.wait_state("hog", TaskState.TASK_FAILED)
    killed = await fw.wait_state("victim", TaskState.TASK_FAILED)
    assert oom.reason == Reason.REASON_CONTAINER_LIMITATION_MEMORY
    assert killed.reason != Reason.REASON_CONTAINER_LIMITATION_MEMORY
    assert "signal Killed" in killed.message, killed.message
    print(f"\nOOM -> {oom.reason.value}; kill -9 -> {killed.reason.value}: {killed.message}")


async def test_a_full_disk_refuses_launches_without_crashing(tmp_path, cluster):
    master, fw, procs = cluster
    agent_dir = tmp_path / "small"
    agent_dir.mkdir()
    await asyncio.to_thread(subprocess.run, ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs",
                                             str(agent_dir)], check=True)
    try:
        agent = await agent_process(master.url, agent_dir, RESOURCES).start()
        procs.append(agent)
        await fw.offer()  # registered
        filler = agent_dir / "filler"
        await asyncio.to_thread(fill, filler)
        await fw.run_task("no-room", "true")
        status = await fw.wait_state("no-room", TaskState.TASK_FAILED)
        assert "No space left on device" in status.message
        assert (await request("GET", agent.url + "/health"))[0] == 200
        filler.unlink()
        state = await get_json(master.url + "/master/state")
        assert len(state["slaves"]) == 1  # no ghost agents from failed checkpoints
        await fw.run_task("room-again", "true")
        await fw.wait_state("room-again", TaskState.TASK_FINISHED)
        print(f"\ndisk full: launch refused ({status.message!r}), agent alive, "
              "recovers once space is back")
    finally:
        for proc in procs[1:]:
            await proc.stop()
        await asyncio.to_thread(subprocess.run, ["umount", "-l", str(agent_dir)], check=False)


async def test_lost_acknowledgements_are_made_good_by_retries(tmp_path):
    master = await master_process(tmp_path / "master").start()
    agent = await agent_process(master.url, tmp_path / "agent", RESOURCES).start()
    fw = RecordingFramework(master.url, implicit_acks=False)
    dropped: set[bytes] = set()

    def ack_every_second_delivery(status):
        # the first acknowledgement of every update is "lost"
        if status.uuid is None:
            return
        if status.uuid not in dropped:
            dropped.add(status.uuid)
            return
        asyncio.get_running_loop().create_task(
            fw.driver.acknowledge(status.agent_id.value, status.task_id.value, status.uuid))

    fw.sched.on_update = ack_every_second_delivery
    try:
        await fw.start()
        for i in range(5):
            await fw.run_task(f"ack{i}", "true")
        for i in range(5):
            await fw.wait_state(f"ack{i}", TaskState.TASK_FINISHED, timeout=60)

        async def drained():
            status, _, body = await request("GET", agent.url + "/state")
            return status == 200 and b'"unacknowledged_updates":0' in body

        await wait_for(drained, timeout=60)
        states = {f"ack{i}": fw.sched.states(f"ack{i}") for i in range(5)}
        assert all(s == [TaskState.TASK_STARTING, TaskState.TASK_RUNNING,
                         TaskState.TASK_FINISHED] for s in states.values()), states
        print(f"\nlost acks: {len(dropped)} acknowledgements dropped, "
              f"{len(fw.sched.updates)} deliveries for {3 * 5} updates, 0 lost, order kept")
    finally:
        await fw.stop()
        await agent.stop()
        await master.stop()
