"""An in-process cluster: one master and N agents on one event loop, real HTTP and
WebSockets on loopback, real processes for tasks.  ``mesoslite up`` runs one; tests
use it with short timeouts.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

from mesoslite.agent.container_policy import ContainerPolicy
from mesoslite.agent.containerizers import make_containerizers
from mesoslite.agent.server import Agent, AgentConfig
from mesoslite.clock import Clock
from mesoslite.master.core import MasterConfig
from mesoslite.master.server import MasterServer
from mesoslite.resources import Resources
from mesoslite.secrets.crypto import Keyring
from mesoslite.store.db import sqlite_url
from mesoslite.testing.poll import within


@dataclass
class ClusterSpec:
    work_dir: Path
    agents: int = 3
    host: str = "127.0.0.1"
    master_port: int = 0  # 0: any free port
    agent_resources: Resources | None = None  # default: an equal share of this host
    agent_attributes: list[dict[str, str]] = field(default_factory=list)
    containerizers: list[str] | None = None
    master_config: MasterConfig = field(default_factory=MasterConfig)
    store_url: str | None = None
    status_update_retry: float = 2.0
    usage_interval: float = 5.0
    allowed_host_paths: list[str] = field(default_factory=list)
    executor_registration_timeout: float = 60.0
    fetcher_cache_size_mb: float = 2048.0  # the agents' fetcher (docs/fetcher.md)
    fetcher_timeout: float = 300.0
    secrets_key: Keyring | None = None  # seals secrets at rest (docs/secrets.md)
    # Docker hardening (docs/security.md); local_dev allows host networking to all.
    container_policy: ContainerPolicy = field(default_factory=ContainerPolicy.local_dev)


def share_of_host(n: int, index: int, work_dir: Path) -> Resources:
    """Agent ``index`` of ``n`` on one machine: cpus and memory split between them,
    at least one cpu each, and its own slice of ports so tasks never collide."""
    from mesoslite.agent.host import detect_resources

    host = detect_resources(work_dir)
    width = 1000 // max(n, 1)
    first = 31000 + index * width
    return Resources(
        scalars={
            "cpus": max(1.0, round(host.scalar("cpus") / n, 1)),
            "mem": float(int(host.scalar("mem") / n)),
            "disk": float(int(host.scalar("disk") / n)),
        },
        ranges={"ports": [(first, first + width - 1)]},
    )


class LocalCluster:
    def __init__(self, spec: ClusterSpec, clock: Clock | None = None) -> None:
        self.spec = spec
        self.clock = clock
        self.master: MasterServer | None = None
        self.agents: list[Agent] = []

    @property
    def master_url(self) -> str:
        assert self.master is not None
        return f"http://{self.spec.host}:{self.master.port}"

    async def start(self) -> None:
        spec = self.spec
        spec.work_dir.mkdir(parents=True, exist_ok=True)
        spec.master_config.port = spec.master_port
        spec.master_config.hostname = spec.host
        await self.start_master()
        for i in range(spec.agents):
            await self.start_agent(i)
        await self.wait_registered()

    async def wait_registered(self, timeout: float = 30.0) -> None:
        """Until every running agent has registered with the master; raises
        ``WaitTimeout`` naming the agents that had not after ``timeout`` s."""
        running = [a for a in self.agents if not a.stopped]

        async def all_registered() -> None:
            await asyncio.gather(*(a.registered.wait() for a in running))

        names = ", ".join(a.hostname for a in running
                          if not a.registered.is_set())
        await within(timeout, f"agents {names} to register with {self.master_url}",
                     all_registered())

    async def start_master(self) -> MasterServer:
        spec = self.spec
        self.master = MasterServer(
            spec.master_config, spec.store_url or sqlite_url(spec.work_dir / "master.db"),
            clock=self.clock, secrets_key=spec.secrets_key)
        await self.master.start(spec.host, wait_elected=True)
        spec.master_config.port = self.master.port
        return self.master

    async def stop_master(self) -> None:
        assert self.master is not None
        await self.master.stop()

    def agent_config(self, index: int) -> AgentConfig:
        spec = self.spec
        work_dir = spec.work_dir / f"agent{index + 1}"
        resources = spec.agent_resources or share_of_host(spec.agents, index, spec.work_dir)
        if spec.agent_resources is not None and spec.agents > 1:
            # one host: give each agent its own slice of the given port range
            ports = spec.agent_resources.ports()
            if ports:
                lo, hi = ports[0]
                width = (hi - lo + 1) // spec.agents
                resources = Resources(spec.agent_resources.scalars,
                                      {"ports": [(lo + index * width,
                                                  lo + (index + 1) * width - 1)]})
        attributes = (spec.agent_attributes[index] if index < len(spec.agent_attributes)
                      else {})
        return AgentConfig(
            masters=[self.master_url], work_dir=work_dir, resources=resources,
            host=spec.host, port=0, hostname=f"agent{index + 1}",
            attributes=attributes, status_update_retry=spec.status_update_retry,
            containerizers=spec.containerizers or ["process"],
            usage_interval=spec.usage_interval, allowed_host_paths=spec.allowed_host_paths,
            executor_registration_timeout=spec.executor_registration_timeout,
            fetcher_cache_size_mb=spec.fetcher_cache_size_mb,
            fetcher_timeout=spec.fetcher_timeout,
        )

    async def start_agent(self, index: int) -> Agent:
        config = self.agent_config(index)
        agent = Agent(config, make_containerizers(config.containerizers, config.work_dir,
                                                  self.spec.container_policy))
        await agent.start()
        if index < len(self.agents):
            self.agents[index] = agent
        else:
            self.agents.append(agent)
        return agent

    async def stop_agent(self, index: int, kill_tasks: bool = False) -> None:
        await self.agents[index].stop(kill_tasks=kill_tasks)

    async def kill_tasks(self) -> None:
        """Kill every task on every running agent, while frameworks can still hear of it."""
        await asyncio.gather(*(a.tasks.kill_all() for a in self.agents if not a.stopped),
                             *(a.executors.kill_all() for a in self.agents if not a.stopped))

    async def stop(self, kill_tasks: bool = True) -> None:
        for agent in self.agents:
            if not agent.stopped:
                await agent.stop(kill_tasks=kill_tasks)
        if self.master is not None and not self.master.stopped:
            await self.master.stop()


def default_work_dir() -> Path:
    base = os.environ.get("MESOSLITE_HOME")
    return Path(base).expanduser() if base else Path("~/.mesoslite").expanduser()
