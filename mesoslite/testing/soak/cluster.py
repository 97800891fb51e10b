"""The soak's cluster: every part a separate process, restartable, on one machine.

* a private PostgreSQL (``testing/postgres.py``: restarting it disturbs no one else);
* three masters on it, listening on the network lab's gateway so that agents in
  namespaces reach them;
* five agents: ``a1``-``a3`` in their own network namespaces (process tasks; the
  partition targets; ``a3``'s work dir is a small tmpfs, the full-disk target) and
  ``d1``, ``d2`` in the root namespace with Docker and process tasks (a container
  lives in dockerd's namespace, not its agent's, so Docker stays off the namespaces);
* the services and batch frameworks, each through the acknowledgement checker
  (``acks.py``), and the load balancer.

``SoakCluster`` is an async context manager: entering starts everything and waits
until each part answers; leaving stops everything, heals the lab and removes what it
mounted, also after a failure.  ``kill(name)`` is ``kill -9``; ``revive(name)``
starts a killed part again on its work dir (its checkpoints, its store).  Masters
exit by themselves when deposed (a PostgreSQL restart ends the leader's lock
session): ``revive_exited`` starts whatever exited and is not held down by a fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets as pysecrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import aiohttp

from mesoslite.agent.containerizers.docker_spec import LABEL_TASK_ID
from mesoslite.testing.ha import Masters
from mesoslite.testing.netns import Host, NetLab, hosted, net_lab
from mesoslite.testing.poll import wait_for
from mesoslite.testing.postgres import PrivatePostgres
from mesoslite.testing.processes import Process, agent_process, free_port, master_process
from mesoslite.testing.soak.acks import AckCheckedProcess, batch_process, services_process

NETNS_AGENTS = ("a1", "a2", "a3")
ROOT_AGENTS = ("d1", "d2")
DISK_AGENT = "a3"  # its work dir is a small tmpfs: the full-disk target
AGENT_PORT = 5051  # in each namespace; root-namespace agents take free ports
NETNS_RESOURCES = "cpus:2;mem:2048;disk:2048;ports:[23000-23199]"
ROOT_RESOURCES = {"d1": "cpus:2;mem:2048;disk:4096;ports:[23600-23799]",
                  "d2": "cpus:2;mem:2048;disk:4096;ports:[23800-23999]"}
DISK_SIZE = "256m"
IMAGE = "mesoslite/busybox:latest"


@dataclass
class SoakCluster:
    """See the module docstring.  ``work``: everything the run writes (logs, stores,
    agents' work dirs, the side files in ``shared``)."""

    work: Path
    ping_timeout: float = 1.0
    max_pings: int = 5
    procs: dict[str, Process] = field(default_factory=dict)
    hosts: dict[str, Host] = field(default_factory=dict)
    held: set[str] = field(default_factory=set)  # killed on purpose: not revived
    lab: NetLab | None = None
    pg: PrivatePostgres | None = None
    masters: Masters | None = None
    _lab_cm: contextlib.AbstractContextManager[NetLab] | None = None
    _mounts: list[Path] = field(default_factory=list)

    # ------------------------------------------------------------ layout

    @property
    def shared(self) -> Path:
        return self.work / "shared"

    @property
    def master_urls(self) -> list[str]:
        return [p.url for p in self.master_procs]

    @property
    def master_procs(self) -> list[Process]:
        return [p for n, p in self.procs.items() if n.startswith("master")]

    @property
    def services(self) -> AckCheckedProcess:
        proc = self.procs["services"]
        assert isinstance(proc, AckCheckedProcess)
        return proc

    @property
    def batch(self) -> AckCheckedProcess:
        proc = self.procs["batch"]
        assert isinstance(proc, AckCheckedProcess)
        return proc

    @property
    def lb(self) -> Process:
        return self.procs["lb"]

    def agent_dir(self, name: str) -> Path:
        return self.work / "agents" / name

    def agent_names(self) -> list[str]:
        return [*NETNS_AGENTS, *ROOT_AGENTS]

    def ack_logs(self) -> list[Path]:
        return [self.services.ack_log, self.batch.ack_log]

    # ------------------------------------------------------------ start and stop

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    async def _start(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        # a run killed before its clean-up leaves containers holding the agents' ports
        await asyncio.to_thread(remove_soak_containers)
        self.shared.mkdir(exist_ok=True)
        self.shared.chmod(0o777)
        self.pg = await PrivatePostgres().start()
        self._lab_cm = net_lab()
        self.lab = self._lab_cm.__enter__()
        key_file = self.work / "secrets.key"
        key_file.write_text(_secrets_key())
        key_file.chmod(0o600)
        for i in range(3):
            proc = hosted(master_process(
                self.work / f"master{i}", None, "--host", self.lab.gateway, "--insecure",
                "--store", self.pg.url, "--secrets-key-file", str(key_file),
                "--agent-ping-timeout", str(self.ping_timeout),
                "--max-agent-ping-timeouts", str(self.max_pings)), self.lab.gateway)
            self.procs[f"master{i}"] = proc
        self.masters = Masters(self.master_procs)
        await self.masters.start()
        await self.masters.leader(timeout=60)
        masters = ",".join(self.master_urls)
        for name in NETNS_AGENTS:
            host = self.hosts[name] = self.lab.add_host(name)
            work = self.agent_dir(name)
            work.mkdir(parents=True, exist_ok=True)
            if name == DISK_AGENT:
                await _mount_tmpfs(work, DISK_SIZE)
                self._mounts.append(work)
            self.procs[name] = hosted(agent_process(
                masters, work, NETNS_RESOURCES, AGENT_PORT, "--host", host.address,
                "--insecure", "--hostname", name), host.address, host)
        for name in ROOT_AGENTS:
            self.procs[name] = agent_process(
                masters, self.agent_dir(name), ROOT_RESOURCES[name], None, "--hostname", name,
                "--containerizers", "docker,process",
                "--allowed-host-paths", str(self.shared))
        await asyncio.gather(*(self.procs[n].start() for n in self.agent_names()))
        await wait_for(self._all_agents_active, 60, interval=0.2,
                       message="every agent registered with the leader")
        self.procs["services"] = services_process(
            self.master_urls, self.work / "services", self.work / "services-acks.jsonl")
        self.procs["batch"] = batch_process(
            self.master_urls, self.work / "batch", self.work / "batch-acks.jsonl")
        await asyncio.gather(self.procs["services"].start(60), self.procs["batch"].start(60))
        status = free_port()
        lb_dir = self.work / "lb"
        lb_dir.mkdir(exist_ok=True)
        self.procs["lb"] = Process(
            ["lb", "--services", self.services.url, "--status", f"127.0.0.1:{status}",
             "--no-docker-bridge", "--poll-interval", "1", "--connect-timeout", "1"],
            lb_dir / "process.log", status)
        await self.procs["lb"].start(60)

    async def _stop(self) -> None:
        if self.lab is not None:
            for host in self.hosts.values():
                with contextlib.suppress(Exception):
                    self.lab.heal(host)
        with contextlib.suppress(Exception):
            await self.teardown_frameworks()
        for name in ["lb", "services", "batch", *self.agent_names(),
                     *[n for n in self.procs if n.startswith("master")]]:
            proc = self.procs.get(name)
            if proc is not None:
                with contextlib.suppress(Exception):
                    await proc.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(kill_stray_tasks, [self.agent_dir(n)
                                                       for n in self.agent_names()])
        with contextlib.suppress(Exception):
            await asyncio.to_thread(remove_soak_containers)
        if self._lab_cm is not None:
            with contextlib.suppress(Exception):
                self._lab_cm.__exit__(None, None, None)
            self._lab_cm = None
        for mount in self._mounts:
            await asyncio.to_thread(subprocess.run, ["umount", "-l", str(mount)], check=False)
        self._mounts.clear()
        if self.pg is not None:
            await self.pg.stop()
            self.pg = None

    async def teardown_frameworks(self, timeout: float = 30.0) -> None:
        """Every framework's tasks killed by their agents (TEARDOWN through the
        leader), waiting (bounded) until the leader knows of no task, so nothing
        outlives the run."""
        leader = await self.leader_url()
        if leader is None:
            return
        async with aiohttp.ClientSession() as session:
            async with session.get(leader + "/master/frameworks") as resp:
                frameworks = (await resp.json()).get("frameworks", [])
            for fw in frameworks:
                async with session.post(leader + "/master/teardown",
                                        data=f"frameworkId={fw['id']}",
                                        headers={"Content-Type":
                                                 "application/x-www-form-urlencoded"}):
                    pass

        async def no_tasks() -> bool:
            state = await self.master_state()
            return state is not None and not any(fw.get("tasks") for fw in state["frameworks"])

        with contextlib.suppress(AssertionError):  # what is left is killed below
            await wait_for(no_tasks, timeout, interval=0.5, message="every task killed")

    # ------------------------------------------------------------ faults

    def kill(self, name: str) -> None:
        """``kill -9`` of a part; held down until ``revive``."""
        proc = self.procs[name]
        self.held.add(name)
        if proc.proc is not None and proc.proc.poll() is None:
            proc.kill9()

    async def revive(self, name: str, timeout: float = 60.0) -> None:
        self.held.discard(name)
        proc = self.procs[name]
        if proc.proc is None or proc.proc.poll() is not None:
            await proc.start(timeout)

    def exited(self) -> list[str]:
        return [n for n, p in self.procs.items()
                if n not in self.held and p.proc is not None and p.proc.poll() is not None]

    async def revive_exited(self) -> list[str]:
        """Start again whatever exited by itself (deposed masters, crashes)."""
        names = self.exited()
        for name in names:
            with contextlib.suppress(AssertionError, TimeoutError):
                await self.procs[name].start(60)
        return names

    async def leader(self) -> Process | None:
        """The master leading now, if any (one quick pass, no waiting)."""
        async with aiohttp.ClientSession() as session:
            for proc in self.master_procs:
                if proc.proc is None or proc.proc.poll() is not None:
                    continue
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(proc.url + "/master/tasks?limit=1",
                                           allow_redirects=False,
                                           timeout=aiohttp.ClientTimeout(total=5)) as resp:
                        if resp.status == 200:
                            return proc
        return None

    async def leader_url(self) -> str | None:
        proc = await self.leader()
        return proc.url if proc is not None else None

    async def master_state(self) -> dict[str, Any] | None:
        url = await self.leader_url()
        if url is None:
            return None
        async with aiohttp.ClientSession() as session:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                async with session.get(url + "/master/state", allow_redirects=False,
                                       timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    if resp.status == 200:
                        return json.loads(await resp.read())
        return None

    async def _all_agents_active(self) -> bool:
        state = await self.master_state()
        if state is None:
            return False
        active = {a["hostname"] for a in state["slaves"] if a.get("active")}
        return active >= set(self.agent_names())

    async def restart_docker(self, timeout: float = 60.0) -> float:
        """Stop dockerd (every container on the engine stops with it) and start it
        again as ``scripts/provision-docker`` does; the seconds it was down."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.to_thread(subprocess.run, ["pkill", "-TERM", "-x", "dockerd"],
                                check=False)
        await wait_for(lambda: not _succeeds("pgrep", "-x", "dockerd"), timeout,
                       interval=0.2, message="dockerd to stop")
        await asyncio.to_thread(subprocess.run, [
            "bash", "-c", "nohup dockerd >>/tmp/mesoslite-dockerd.log 2>&1 &"], check=True)
        await wait_for(lambda: _succeeds("docker", "info"), timeout, interval=0.5,
                       message="dockerd to answer")
        return loop.time() - start

    def fill_disk(self) -> Path:
        """Fill ``a3``'s work dir; returns the filler file (unlink it to heal)."""
        filler = self.agent_dir(DISK_AGENT) / "filler"
        with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
        return filler

    def host(self, name: str) -> Host:
        return self.hosts[name]



def _succeeds(*argv: str) -> bool:
    return subprocess.run(argv, check=False, capture_output=True).returncode == 0


def _secrets_key() -> str:
    from mesoslite.secrets.crypto import generate_key

    return generate_key()


async def _mount_tmpfs(path: Path, size: str) -> None:
    await asyncio.to_thread(subprocess.run, ["mount", "-t", "tmpfs", "-o", f"size={size}",
                                             "tmpfs", str(path)], check=True)


def kill_stray_tasks(agent_dirs: list[Path]) -> list[int]:
    """SIGKILL every process whose working directory is inside one of the agents'
    work dirs (tasks the agents were stopped without killing)."""
    import os
    import signal

    roots = [str(d.resolve()) + "/" for d in agent_dirs]
    killed = []
    for pid in _pids():
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if any((cwd + "/").startswith(r) for r in roots):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def remove_soak_containers() -> int:
    """Remove every container of a soak task (its task id label starts "soak_"),
    running or not; the number removed."""
    import docker

    client = docker.from_env(timeout=30)
    try:
        gone = 0
        for container in client.containers.list(all=True, filters={"label": LABEL_TASK_ID}):
            if (container.labels or {}).get(LABEL_TASK_ID, "").startswith("soak_"):
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True)
                    gone += 1
        return gone
    finally:
        client.close()


def _pids() -> Iterator[int]:
    import os

    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def canary() -> str:
    """A fresh secret value that cannot appear anywhere by chance."""
    return f"canary-{pysecrets.token_hex(16)}"
