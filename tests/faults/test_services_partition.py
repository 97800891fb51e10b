"""A network partition under the services framework: a master in the root namespace,
two agents each in its own network namespace (``mesoslite.testing.netns``), and the
services framework (PARTITION_AWARE) in the test process.

The agent holding most of an app's instances is cut off: its tasks become
UNREACHABLE, the framework replaces them on the other agent at once (the app stays at
its instance count while cut off); healed, the agent re-registers, the old tasks come
back RUNNING and the framework kills them: exactly one copy of each instance is left,
the replacement (it is the one the framework counted, running and checked, while the
old one was out of sight; docs/services.md).  Prints the times to replace and to
settle after healing, tasks lost and duplicates.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from frameworks.services.server import ServicesConfig, ServicesServer
from mesoslite.testing.http import get_json
from mesoslite.testing.netns import HostedProcess, hosted, net_lab, unavailable_reason
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import agent_process, master_process
from tests.conftest import require
from tests.faults.test_partitions import AGENT_PORT, RESOURCES, alive, duplicates, task_copies

pytestmark = pytest.mark.faults
INSTANCES = 3
PING_TIMEOUT, MAX_PINGS = 0.5, 4  # unreachable after about 2 s


async def running_tasks(url: str) -> list[dict[str, Any]]:
    tasks = (await get_json(url + "/v2/apps/web/tasks"))["tasks"]
    return [t for t in tasks if t["state"] == "TASK_RUNNING"]


async def test_services_replace_unreachable_instances_and_keep_one_copy(tmp_path: Path):
    require(unavailable_reason() is None, f"network namespaces ({unavailable_reason()})")
    with net_lab() as lab:
        hosts = {name: lab.add_host(name) for name in ("a1", "a2")}
        master = hosted(master_process(
            tmp_path / "master", None, "--host", lab.gateway, "--insecure",
            "--agent-ping-timeout", str(PING_TIMEOUT),
            "--max-agent-ping-timeouts", str(MAX_PINGS)), lab.gateway)
        procs: list[HostedProcess] = [master]
        services = ServicesServer(ServicesConfig(
            masters=[master.url], work_dir=tmp_path / "services", port=0, dns_port=None))
        try:
            await master.start()
            for host in hosts.values():
                agent = hosted(agent_process(
                    master.url, tmp_path / host.name, RESOURCES, AGENT_PORT, "--host",
                    host.address, "--insecure", "--hostname", host.name), host.address, host)
                procs.append(agent)
                await agent.start()

            async def agents() -> dict[str, dict[str, Any]]:
                state = await get_json(master.url + "/master/state")
                return {a["hostname"]: a for a in state["slaves"]}

            await wait_for(lambda: _all_active(agents), 20, interval=0.1,
                           message="both agents registered")
            url = await services.start()
            app_json = {"id": "/web", "cmd": "exec sleep 3600", "instances": INSTANCES,
                        "cpus": 0.1, "mem": 32}
            async with aiohttp.ClientSession() as http, http.post(
                    url + "/v2/apps", json=app_json) as response:
                assert response.status == 201, await response.text()
            before = await wait_for(lambda: _settled(url, lab.hosts, INSTANCES), 30,
                                    interval=0.1, message=f"{INSTANCES} instances running")
            by_host: dict[str, list[str]] = {}
            for task in before:
                by_host.setdefault(task["host"], []).append(task["id"])
            victim = max(by_host, key=lambda h: len(by_host[h]))
            cut_ids = set(by_host[victim])
            old_pids = {pid for t, places in task_copies(lab.hosts).items() if t in cut_ids
                        for _, pid in places}
            assert old_pids, "the cut-off agent runs some of the app's tasks"

            cut = time.monotonic()
            lab.partition(hosts[victim])
            # Replaced on the other agent while cut off: the app keeps its count.
            replaced = await wait_for(lambda: _replaced(url, victim, cut_ids), 30, interval=0.1,
                                      message="the cut-off instances replaced")
            replaced_at = time.monotonic()
            assert all(alive(pid) for pid in old_pids)  # cut off, not dead
            # Partition-aware: the master holds them UNREACHABLE (not LOST and killed).
            state = await get_json(master.url + "/master/state")
            [framework] = state["frameworks"]
            assert {t["id"] for t in framework["unreachable_tasks"]} == cut_ids

            healed = time.monotonic()
            lab.heal(hosts[victim])
            # The old copies come back RUNNING to the master, and the framework kills
            # them; the replacements stay.
            want = {t["id"] for t in replaced}
            copies = await wait_for(lambda: (found := task_copies(lab.hosts))
                                    and set(found) == want and found, 60,
                                    message="exactly the replacements' processes left")
            settled_at = time.monotonic()
            assert not any(alive(pid) for pid in old_pids)
            assert (await agents())[victim]["active"]  # re-registered
            final = await running_tasks(url)
            app = (await get_json(url + "/v2/apps/web"))["app"]
            lost = INSTANCES - len(final)
            dups = duplicates(copies)
            assert {t["id"] for t in final} == want and lost == 0 and dups == 0, (final, copies)
            assert app["instances"] == INSTANCES and app["tasksRunning"] == INSTANCES
            print(f"\nservices partition: {len(cut_ids)} of {INSTANCES} instances cut off, "
                  f"replaced {replaced_at - cut:.2f}s after the cut (unreachable timeout "
                  f"{PING_TIMEOUT * MAX_PINGS:.1f}s); {settled_at - healed:.2f}s after "
                  f"healing one copy each (the old ones killed); tasks lost = {lost}, "
                  f"duplicates = {dups}")
        finally:
            for host in hosts.values():
                lab.heal(host)
            await services.stop()
            for proc in reversed(procs):
                await proc.stop()  # the lab SIGKILLs what is left in its namespaces


async def _all_active(agents: Any) -> bool:
    found = await agents()
    return len(found) == 2 and all(a["active"] for a in found.values())


async def _settled(url: str, hosts: Any, count: int) -> list[dict[str, Any]] | None:
    tasks = await running_tasks(url)
    copies = task_copies(hosts)
    ok = len(tasks) == count and {t["id"] for t in tasks} == set(copies)
    return tasks if ok else None


async def _replaced(url: str, victim: str, cut_ids: set[str]) -> list[dict[str, Any]] | None:
    tasks = await running_tasks(url)
    fine = (len(tasks) == INSTANCES and not cut_ids & {t["id"] for t in tasks}
            and all(t["host"] != victim for t in tasks))
    return tasks if fine else None
