"""Process containerizer limits through cgroups, plus the small helper modules.

Tests needing a writable memory/cpu controller are skipped (with the reason) only when
the host has none; on this project's CI hosts cgroup v1 is mounted read-write.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mesoslite.agent.containerizers import cgroup_manager, osutil
from mesoslite.agent.containerizers.base import LaunchSpec, StopKind
from mesoslite.agent.containerizers.cgroup_manager import CgroupManager
from mesoslite.agent.containerizers.cgroups import Cgroup, safe_name
from mesoslite.agent.containerizers.process import ProcessContainerizer
from mesoslite.testing.poll import wait_for, wait_until
from tests.unit.containerizers.process.conftest import PY, ended, pid_alive, read_pid, stopped

SpecFactory = Callable[..., LaunchSpec]
HOST = CgroupManager()


def _has(controller: str) -> bool:
    if HOST.version == 1:
        return controller in HOST.mounts
    if HOST.version == 2:
        path = os.path.join(HOST.mounts["unified"], "cgroup.controllers")
        return controller in Path(path).read_text().split()
    return False


def _v2_mount() -> str | None:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if parts[2] == "cgroup2" and "rw" in parts[3].split(",") and os.access(parts[1], os.W_OK):
            return parts[1]
    return None


needs_memory = pytest.mark.skipif(not _has("memory"), reason="no writable memory cgroup")
needs_cpu = pytest.mark.skipif(not _has("cpu"), reason="no writable cpu cgroup")
needs_cgroups = pytest.mark.skipif(not HOST.available, reason="no writable cgroup hierarchy")
ALLOCATE_200MB = f"{PY} -c 'b = bytearray(200 * 2**20)'"


def cgroup_of(record: dict) -> Cgroup:
    return Cgroup.from_record(record["cgroup"])


# ---------------------------------------------------------------- memory


@needs_memory
async def test_oom_kill_is_reported(containerizer: ProcessContainerizer, make_spec: SpecFactory):
    container = await containerizer.launch(make_spec(f"exec {ALLOCATE_200MB}", mem_mb=64))
    term = await ended(container)
    assert term.oom_killed and not term.succeeded
    assert term.signal == signal.SIGKILL
    assert "Memory limit exceeded" in term.message and "64MB" in term.message
    assert not cgroup_of(container.record).exists()  # removed when the container ended


@needs_memory
async def test_oom_of_a_child_ends_the_whole_container(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    # The shell survives its child's OOM kill; as in Mesos, the limitation ends the
    # whole container anyway (the shell would otherwise idle forever).
    spec = make_spec(f"{ALLOCATE_200MB}; while :; do sleep 0.05; done", mem_mb=64)
    term = await ended(await containerizer.launch(spec))
    assert term.oom_killed and "64MB" in term.message


@needs_memory
async def test_task_within_its_memory_limit_is_not_oom_killed(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec(f"{PY} -c 'b = bytearray(8 * 2**20)'", mem_mb=128)
    term = await ended(await containerizer.launch(spec))
    assert term.exit_code == 0 and not term.oom_killed and term.succeeded


# ---------------------------------------------------------------- cpu & layout


@needs_cpu
@needs_memory
async def test_limits_written_and_read_back(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    container = await containerizer.launch(make_spec("sleep 300", cpus=0.5, mem_mb=64))
    cgroup = cgroup_of(container.record)
    limits = cgroup.read_limits()
    assert limits["cfs_quota_us"] == 50_000 and limits["cfs_period_us"] == 100_000
    assert limits["mem_limit_bytes"] == 64 * 2**20
    if cgroup.version == 1:
        memsw = Path(cgroup.dirs["memory"], "memory.memsw.limit_in_bytes")
        if memsw.exists():
            assert int(memsw.read_text()) == 64 * 2**20
        assert int(Path(cgroup.dirs["cpu"], "cpu.shares").read_text()) == 512
    await stopped(container)


@needs_cgroups
async def test_task_runs_in_a_cgroup_namespaced_by_agent(
    containerizer: ProcessContainerizer, make_spec: SpecFactory, agent_id: str
):
    spec = make_spec("sleep 300")
    container = await containerizer.launch(spec)
    cgroup = cgroup_of(container.record)
    for directory in cgroup.dirs.values():
        assert directory.endswith(f"/mesoslite/{agent_id}/{spec.container_id}")
    assert container.record["task_pid"] in cgroup.pids()
    assert container.record["supervisor_pid"] not in cgroup.pids()  # never an OOM victim
    await stopped(container)
    assert not cgroup.exists()


@needs_cgroups
async def test_kill_reaches_processes_that_left_the_process_group(
    containerizer: ProcessContainerizer, make_spec: SpecFactory
):
    spec = make_spec("setsid sleep 300 & echo $! > escapee; touch ready; wait")
    container = await containerizer.launch(spec)
    sandbox = Path(spec.sandbox)
    await wait_for(lambda: (sandbox / "ready").exists(), message="escapee started")
    escapee = read_pid(sandbox / "escapee")
    await wait_for(lambda: os.getsid(escapee) == escapee, message="escapee in its own session")
    await stopped(container, StopKind.TERM)
    await wait_for(lambda: not pid_alive(escapee), message="escapee killed via the cgroup")


async def test_forced_v2_hierarchy(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    make_spec: SpecFactory,
):
    """The unified hierarchy, even when (as on hybrid hosts) it has no memory/cpu
    controllers: membership, cgroup.kill, cpu.stat accounting and removal."""
    if _v2_mount() is None:
        pytest.skip("no writable cgroup v2 mount")
    containerizer = make_containerizer(agent_id, cgroups="v2")
    assert containerizer.cgroups.version == 2
    spec = make_spec(f"setsid sleep 300 & echo $! > escapee; exec {PY} -c 'while True: pass'")
    container = await containerizer.launch(spec)
    cgroup = cgroup_of(container.record)
    assert container.record["task_pid"] in cgroup.pids()

    async def cpu_used() -> bool:
        usage = await container.usage()
        return usage is not None and usage.cpu_seconds > 0.02

    await wait_for(cpu_used, message="cpu.stat accounting")
    await wait_for(lambda: (Path(spec.sandbox) / "escapee").exists(), message="escapee")
    escapee = read_pid(Path(spec.sandbox) / "escapee")
    assert (await stopped(container, StopKind.TERM)).signal == signal.SIGTERM
    await wait_for(lambda: not pid_alive(escapee), message="escapee killed")
    assert not cgroup.exists()


async def test_without_cgroups_tasks_still_run(
    make_containerizer: Callable[..., ProcessContainerizer],
    agent_id: str,
    make_spec: SpecFactory,
):
    containerizer = make_containerizer(agent_id, cgroups="none")
    container = await containerizer.launch(make_spec("exit 9", cpus=1, mem_mb=32))
    assert container.record["cgroup"] is None
    assert (await ended(container)).exit_code == 9


# ---------------------------------------------------------------- discovery


def test_discovery_without_writable_hierarchy_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(cgroup_manager, "_warned", set())
    mounts = tmp_path / "mounts"
    ro_dir = tmp_path / "ro-cgroup"
    ro_dir.mkdir()
    mounts.write_text(f"proc /proc proc rw 0 0\ncgroup {ro_dir} cgroup ro,nosuid,memory 0 0\n")
    with caplog.at_level(logging.WARNING):
        first = CgroupManager(mounts_file=str(mounts))
        second = CgroupManager(mounts_file=str(mounts))
    assert not first.available and not second.available
    assert first.container("a", "c") is None
    warnings = [r for r in caplog.records if "without cpu/memory limits" in r.getMessage()]
    assert len(warnings) == 1
    assert not (ro_dir / "mesoslite").exists()


def test_discovery_parses_co_mounted_v1_controllers(tmp_path: Path):
    mount = tmp_path / "cpu,cpuacct"
    mount.mkdir()
    mounts = tmp_path / "mounts"
    mounts.write_text(f"cgroup {mount} cgroup rw,nosuid,cpu,cpuacct 0 0\n")
    manager = CgroupManager(root="ml", mounts_file=str(mounts))
    assert manager.version == 1
    assert manager.mounts == {"cpu": str(mount), "cpuacct": str(mount)}
    cgroup = manager.container("agent/1", "../c")
    assert cgroup is not None
    assert set(cgroup.dirs.values()) == {f"{mount}/ml/agent_1/.._c"}
    assert cgroup.procs_files() == [f"{mount}/ml/agent_1/.._c/cgroup.procs"]


def test_safe_name():
    assert safe_name("a-b_c.d@1") == "a-b_c.d@1"
    assert safe_name("../x") == ".._x"
    assert safe_name("..") == "_.."
    assert safe_name("") == "_"


# ---------------------------------------------------------------- helpers


def test_osutil_process_identity():
    me = os.getpid()
    start = osutil.proc_start_time(me)
    assert start is not None
    assert osutil.same_process(me, start)
    assert not osutil.same_process(me, start + 1)  # a recycled pid looks like this
    assert osutil.proc_start_time(2**22 + 1) is None  # beyond pid_max
    fd = osutil.open_pidfd(me, start)
    assert fd is not None
    os.close(fd)
    assert osutil.open_pidfd(me, start + 1) is None
    assert not osutil.killpg_quietly(1, signal.SIGTERM)  # refuses init's group


def test_atomic_write_json(tmp_path: Path):
    path = str(tmp_path / "doc.json")
    assert osutil.read_json(path) is None
    osutil.atomic_write_json(path, {"a": 1})
    osutil.atomic_write_json(path, {"a": 2})
    assert osutil.read_json(path) == {"a": 2}
    assert sorted(os.listdir(tmp_path)) == ["doc.json"]  # no temporary files left


async def test_poll_helpers():
    calls = []

    async def third_time() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert await wait_for(third_time, timeout=5, interval=0.001) == 3
    with pytest.raises(AssertionError, match="never true"):
        await wait_for(lambda: False, timeout=0.05, message="never true")
    deadline = time.monotonic() + 0.05
    assert wait_until(lambda: time.monotonic() > deadline, timeout=5, interval=0.001)
    with pytest.raises(AssertionError, match="sync never"):
        wait_until(lambda: None, timeout=0.05, message="sync never")
