"""Framework failover within and past its ``failover_timeout``, on real processes.

The framework is a small script run as its own process and killed with ``kill -9``;
within the timeout a new process re-subscribes with the framework id and finds its
task still running (same pid); past it the master removes the framework, kills its
task and refuses the re-subscription.  Each test prints its figures.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from mesoslite.messages.mesos import TaskState
from mesoslite.testing.http import get_json
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import Process, agent_process, master_process
from tests.faults.test_leader_failover import (
    RESOURCES,
    RUNNING,
    JsonLinesProcess,
    _kill,
    alive,
    stoppers,
)

pytestmark = pytest.mark.faults
__all__ = ["stoppers"]  # the fixture, shared with the leader failover tests


# -------------------------------------------------------------------- framework failover

# A framework as its own process: subscribes (as argv[3] if given, then reconciling
# its task "steady"), launches "steady" once when new, prints JSON lines; exits 2
# when the master refuses it.
FRAMEWORK = r'''
import asyncio, getpass, json, sys

from mesoslite.messages.mesos import ID, CapabilityType, FrameworkCapability, FrameworkInfo
from mesoslite.scheduler import DriverAborted, Driver, Scheduler, task_info


def emit(**data):
    print(json.dumps(data), flush=True)


class Steady(Scheduler):
    def __init__(self, new):
        self.launch = new

    async def subscribed(self, driver, framework_id, master_info):
        emit(event="subscribed", framework_id=framework_id)
        if not self.launch:
            await driver.reconcile([("steady", None)])

    async def offers(self, driver, offers):
        for offer in offers:
            if self.launch:
                self.launch = False
                cmd = "echo $$ > pid; exec sleep 300"
                await driver.launch([offer], [task_info("steady", "steady", offer.agent_id,
                                                        cmd=cmd)])
            else:
                await driver.decline([offer], refuse_seconds=3600)

    async def update(self, driver, status):
        emit(event="update", task_id=status.task_id.value, state=status.state.value,
             reason=status.reason.value if status.reason else None)

    async def error(self, driver, message):
        emit(event="error", message=message)


async def main(masters, timeout, framework_id):
    info = FrameworkInfo(user=getpass.getuser(), name="failover", failover_timeout=timeout,
                         id=ID(framework_id) if framework_id else None,
                         capabilities=[FrameworkCapability(type=CapabilityType.PARTITION_AWARE)])
    driver = Driver(Steady(framework_id is None), info, masters, backoff_max=1.0)
    try:
        await driver.run()
    except DriverAborted:
        return 2
    return 0


sys.exit(asyncio.run(main(sys.argv[1], float(sys.argv[2]),
                          sys.argv[3] if len(sys.argv) > 3 else None)))
'''


def framework_process(tmp_path: Path, master: str, timeout: float, name: str,
                      framework_id: str | None = None) -> JsonLinesProcess:
    script = tmp_path / "framework.py"
    script.write_text(FRAMEWORK)
    argv = [sys.executable, str(script), master, str(timeout)]
    return JsonLinesProcess(argv + ([framework_id] if framework_id else []),
                            tmp_path / f"{name}.log")


def is_update(task_id: str, state: TaskState) -> Callable[[dict[str, Any]], bool]:
    return lambda e: (e["event"] == "update" and e["task_id"] == task_id
                      and e["state"] == state.value)


async def framework_record(master: str, framework_id: str) -> tuple[str, dict[str, Any]]:
    """("active" | "completed", the framework's entry) in the master's state."""
    state = await get_json(master + "/master/state")
    for key in ("frameworks", "completed_frameworks"):
        for fw in state[key]:
            if fw["id"] == framework_id:
                return ("completed" if key == "completed_frameworks" else "active"), fw
    raise AssertionError(f"framework {framework_id} unknown to the master")


@pytest.fixture
async def one_master(tmp_path, stoppers) -> tuple[Process, Path]:
    master = master_process(tmp_path / "master")
    stoppers.append(master.stop)
    await master.start()
    agent_dir = tmp_path / "agent"
    agent = agent_process(master.url, agent_dir, RESOURCES)
    stoppers.append(agent.stop)
    await agent.start()
    return master, agent_dir


async def start_steady(tmp_path: Path, master: Process, agent_dir: Path, timeout: float,
                       stoppers: list[Callable[[], Awaitable[None]]]
                       ) -> tuple[JsonLinesProcess, str, int]:
    """A framework process with its task "steady" RUNNING: (process, id, task pid)."""
    first = framework_process(tmp_path, master.url, timeout, "framework1")
    stoppers.append(first.stop)
    await first.spawn()
    sub = await first.event(lambda e: e["event"] == "subscribed", message="SUBSCRIBED")
    await first.event(is_update("steady", RUNNING), message="steady RUNNING")
    fid = sub["framework_id"]
    pid_file = agent_dir / "sandboxes" / fid / "steady" / "pid"
    pid = int(await wait_for(lambda: pid_file.exists() and pid_file.read_text().strip()))
    stoppers.append(lambda: _kill(pid))  # tasks outlive their agent
    return first, fid, pid


async def test_framework_failover_within_its_timeout(tmp_path, one_master, stoppers):
    master, agent_dir = one_master
    first, fid, pid = await start_steady(tmp_path, master, agent_dir, 30.0, stoppers)
    first.kill9()
    killed_at = time.monotonic()
    await first.wait()

    async def disconnected() -> bool:
        kind, fw = await framework_record(master.url, fid)
        return kind == "active" and not fw["connected"]

    await wait_for(disconnected, message="the master to see the framework disconnected")
    noticed = time.monotonic() - killed_at
    second = framework_process(tmp_path, master.url, 30.0, "framework2", fid)
    stoppers.append(second.stop)
    await second.spawn()
    sub = await second.event(lambda e: e["event"] == "subscribed", message="re-SUBSCRIBED")
    resubscribed = time.monotonic() - killed_at
    answer = await second.event(lambda e: e["event"] == "update" and e["task_id"] == "steady"
                                and e["reason"] == "REASON_RECONCILIATION",
                                message="the reconciliation answer")
    kind, fw = await framework_record(master.url, fid)
    print(f"\nframework failover within its 30 s timeout: disconnect seen after"
          f" {noticed:.2f} s, re-subscribed as the same framework {resubscribed:.2f} s after"
          f" kill -9; task {answer['state']} (same pid, 0 restarts), 0 lost")
    assert sub["framework_id"] == fid
    assert answer["state"] == RUNNING.value
    assert alive(pid)
    assert kind == "active" and fw["connected"]
    assert [t["state"] for t in fw["tasks"]] == [RUNNING.value]


async def test_framework_failover_past_its_timeout(tmp_path, one_master, stoppers):
    master, agent_dir = one_master
    timeout = 2.0
    first, fid, pid = await start_steady(tmp_path, master, agent_dir, timeout, stoppers)
    first.kill9()
    killed_at = time.monotonic()
    await first.wait()

    async def removed() -> bool:
        kind, _ = await framework_record(master.url, fid)
        return kind == "completed"

    await wait_for(removed, timeout=30, message="the framework to be removed")
    removed_after = time.monotonic() - killed_at
    await wait_for(lambda: not alive(pid), timeout=30, message="its task to be killed")
    killed_after = time.monotonic() - killed_at
    second = framework_process(tmp_path, master.url, timeout, "framework2", fid)
    stoppers.append(second.stop)
    await second.spawn()
    code = await second.wait(timeout=30)
    errors = [e["message"] for e in second.events if e["event"] == "error"]
    print(f"\nframework failover past its {timeout:g} s timeout: removed {removed_after:.2f} s"
          f" after kill -9, its task killed after {killed_after:.2f} s, re-subscription"
          f" refused ({errors[0] if errors else 'no error'!r}, exit {code})")
    assert removed_after >= timeout
    assert code == 2 and errors and "removed" in errors[0]
    assert not any(e["event"] == "subscribed" for e in second.events)
