"""Fixtures for secrets and config maps on a real in-process cluster.

``stack`` is a master with a secrets key (a file, as ``mesoslite up`` writes it), one
agent running both the process and the Docker containerizer, the services and the
batch framework, each behind a ``RecordingApi``: every answer any test reads is kept,
so a canary secret value can be searched for in all of them afterwards.  ``Streams``
follows the master's, the services' and the batch framework's event streams from the
start for the same purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import docker
import pytest

from frameworks.batch.server import BatchConfig, BatchServer
from frameworks.services.server import ServicesServer
from mesoslite.resources import Resources
from mesoslite.secrets.crypto import ensure_key_file
from mesoslite.testing.cluster import ClusterSpec, LocalCluster
from mesoslite.testing.poll import CLUSTER_LIMIT, SERVER_LIMIT, wait_for, within
from tests.batch.conftest import fast_scheduler
from tests.docker.conftest import docker_engine, remove_runtime_containers, runtime_id
from tests.services.conftest import _remove_apps, fast_master, fast_services

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["docker_engine"]  # the session fixture, shared with tests/docker

IMAGE = "mesoslite/busybox:latest"
# A port range of its own, away from the other suites'.
RESOURCES = Resources.parse("cpus:4;mem:2048;disk:1024;ports:[25000-25199]")


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RecordingApi:
    """An HTTP client for one server that keeps every answer (status line, headers,
    body) in ``seen``."""

    def __init__(self, url: str, seen: list[str]) -> None:
        self.url = url
        self.seen = seen

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as s, s.request(
                method, self.url + path, json=body) as r:
            raw = await r.read()
            self.seen.append(f"{method} {path} -> {r.status} {dict(r.headers)}\n"
                             f"{raw.decode('utf-8', 'replace')}")
            try:
                data = await r.json(content_type=None) if raw else None
            except ValueError:
                data = raw.decode()
            return r.status, data

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, data = await self.call(method, path, body)
        assert 200 <= status < 300, f"{method} {path} -> {status}: {data}"
        return data


class Streams:
    """Readers of SSE streams, each appending every byte it gets to ``seen``."""

    def __init__(self) -> None:
        self.seen: dict[str, bytearray] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._open: dict[str, asyncio.Event] = {}

    async def follow(self, url: str) -> None:
        self.seen[url] = bytearray()
        self._open[url] = asyncio.Event()
        self._tasks.append(asyncio.create_task(self._read(url)))
        await wait_for(self._open[url].is_set, 10, message=f"{url} streaming")

    async def _read(self, url: str) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as s, s.get(url) as r:
            assert r.status == 200, f"{url} -> {r.status}"
            self._open[url].set()
            async for chunk in r.content.iter_any():
                self.seen[url] += chunk

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task


@dataclass
class Stack:
    tmp: Path
    cluster: LocalCluster
    services_server: ServicesServer
    batch_server: BatchServer
    seen: list[str] = field(default_factory=list)
    streams: Streams = field(default_factory=Streams)

    def __post_init__(self) -> None:
        self.master = RecordingApi(self.cluster.master_url, self.seen)
        self.services = RecordingApi(self.services_server.url, self.seen)
        self.batch = RecordingApi(self.batch_server.url, self.seen)

    async def put_secret(self, name: str, **values: str) -> dict[str, Any]:
        return await self.master.ok("PUT", f"/master/secrets/{name}",
                                    {"string_data": values})

    def sandbox(self, task_id: str) -> Path:
        found = list(self.cluster.spec.work_dir.glob(f"agent*/sandboxes/*/{task_id}"))
        assert len(found) == 1, f"sandboxes of {task_id}: {found}"
        return found[0]

    async def output(self, task_id: str, *needles: str, timeout: float = 60.0) -> str:
        """The task's stdout once it holds every one of ``needles``."""
        def check() -> str | None:
            found = list(self.cluster.spec.work_dir.glob(f"agent*/sandboxes/*/{task_id}/stdout"))
            text = found[0].read_text() if found else ""
            return text if all(n in text for n in needles) else None

        return await wait_for(check, timeout, interval=0.1,
                              message=f"{task_id}'s stdout to show {needles}")


async def cli(master_url: str, *args: str, **env: str) -> tuple[int, str, str]:
    """``mesoslite ARGS`` as a process against the master: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mesoslite.cli.main", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "MESOSLITE_MASTER": master_url, **env}, cwd=ROOT)
    try:
        out, err = await within(60, f"`mesoslite {' '.join(args)}` to exit", proc.communicate())
    finally:
        if proc.returncode is None:
            proc.kill()  # timed out: leave no process behind
    return proc.returncode or 0, out.decode(), err.decode()


async def start_stack(tmp: Path, containerizers: list[str]) -> Stack:
    spec = ClusterSpec(work_dir=tmp / "cluster", agents=1, agent_resources=RESOURCES,
                       master_config=fast_master(), containerizers=containerizers,
                       status_update_retry=0.2,
                       secrets_key=ensure_key_file(tmp / "keys" / "secrets.key"))
    cluster = LocalCluster(spec)
    await within(CLUSTER_LIMIT, "the cluster to start", cluster.start())
    services = ServicesServer(fast_services(tmp / "services", cluster.master_url))
    await within(SERVER_LIMIT, "the services framework to start", services.start())
    await wait_for(lambda: services.reconciled,
                   10, message="services subscribed")
    batch = BatchServer(BatchConfig(masters=[cluster.master_url], work_dir=tmp / "batch",
                                    port=0, settings=fast_scheduler(),
                                    driver_backoff_max=0.5))
    await within(SERVER_LIMIT, "the batch framework to start", batch.start())
    await wait_for(lambda: batch.subscribed, 10, message="batch subscribed")
    return Stack(tmp, cluster, services, batch)


async def stop_stack(stack: Stack, engine: docker.DockerClient | None) -> None:
    await stack.streams.close()
    await _remove_apps(stack.services_server)
    await within(CLUSTER_LIMIT, "the cluster to stop", stack.cluster.stop(kill_tasks=True))
    await within(SERVER_LIMIT, "the services framework to stop", stack.services_server.stop())
    await within(SERVER_LIMIT, "the batch framework to stop", stack.batch_server.stop())
    if engine is not None:
        for work_dir in stack.cluster.spec.work_dir.glob("agent*"):
            if (work_dir / "runtime_id").exists():
                remove_runtime_containers(engine, runtime_id(work_dir))


@pytest.fixture
async def stack(tmp_path: Path, docker_engine: docker.DockerClient) -> AsyncIterator[Stack]:
    """Process and Docker tasks, services and batch, a master with a key."""
    s = await start_stack(tmp_path, ["docker", "process"])
    yield s
    await stop_stack(s, docker_engine)


@pytest.fixture
async def process_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Process tasks only (no Docker engine needed)."""
    s = await start_stack(tmp_path, ["process"])
    yield s
    await stop_stack(s, None)
