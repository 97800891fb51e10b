"""The agent process: recovers its checkpoints, keeps one link to the master, runs
tasks through its containerizers, and serves sandboxes and status over HTTP."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
from aiohttp import web

from mesoslite import __version__
from mesoslite.agent.checkpoint import Checkpoints
from mesoslite.agent.checks import CheckMonitor
from mesoslite.agent.containerizers.base import Containerizer, LaunchSpec
from mesoslite.agent.executor_api import PATH as EXECUTOR_API_PATH
from mesoslite.agent.executor_api import ExecutorAPI
from mesoslite.agent.executors import ExecutorManager, ExecutorSettings
from mesoslite.agent.fetcher import DEFAULT_MAX_DOWNLOAD_MB, Fetcher
from mesoslite.agent.health import HealthMonitor
from mesoslite.agent.host import ephemeral_overlap, local_port_range
from mesoslite.agent.lifecycle import AgentTaskState
from mesoslite.agent.metrics import AgentMetrics
from mesoslite.agent.openapi_doc import agent_openapi
from mesoslite.agent.operator_api import AgentOperatorAPI
from mesoslite.agent.sandbox_http import SandboxHTTP
from mesoslite.agent.secrets import AgentSecrets, file_owner
from mesoslite.agent.status_updates import StatusUpdateManager
from mesoslite.agent.tasks import AgentIdentity, TaskManager
from mesoslite.agent.usage import AgentVolumes, UsageSampler, monitor_statistics
from mesoslite.agent.volumes import VolumeManager
from mesoslite.auth import Auth
from mesoslite.clock import Clock, ListeningClock, SystemClock
from mesoslite.httpapi import json_response, make_app
from mesoslite.messages.agent import (
    AckUpdates,
    AgentMessage,
    DestroyVolumes,
    FrameworkMessage,
    KillTask,
    Ping,
    Pong,
    ProtocolError,
    Refused,
    Register,
    Registered,
    RunTasks,
    ShutdownExecutor,
    ShutdownFramework,
    StatusUpdate,
    StatusUpdates,
    Usage,
    decode_from_master,
    encode,
)
from mesoslite.messages.mesos import from_resources
from mesoslite.resources import Resources

log = logging.getLogger(__name__)


@dataclass
class AgentConfig:
    masters: list[str]
    work_dir: Path
    resources: Resources
    host: str = "127.0.0.1"
    port: int = 5051
    hostname: str | None = None
    advertise_address: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    containerizers: list[str] = field(default_factory=lambda: ["process"])
    # Mesos' agent starts resending unacknowledged updates after 10 s: shorter
    # intervals make every update in flight during a launch burst go out again.
    status_update_retry: float = 10.0
    reconnect_max: float = 5.0
    agent_secret: str | None = None
    usage_interval: float = 5.0  # seconds between usage reports (0: none)
    allowed_host_paths: list[str] = field(default_factory=list)  # host-path volume prefixes
    # custom executors (docs/executors.md): seconds to SUBSCRIBE after starting, and
    # to re-subscribe after an agent restart
    executor_registration_timeout: float = 60.0
    executor_reregistration_timeout: float = 30.0
    # The fetcher (docs/fetcher.md): cache size (0: no cache), per-download limits.
    fetcher_cache_size_mb: float = 2048.0
    fetcher_timeout: float = 300.0
    fetcher_max_size_mb: float = DEFAULT_MAX_DOWNLOAD_MB
    # Mesos' --switch_user: tasks run as their (framework's) user (agent/task_user.py)
    switch_user: bool = True


class Agent:
    REGISTER_TIMEOUT = 30.0  # for the master's answer to a registration
    def __init__(self, config: AgentConfig, containerizers: dict[str, Containerizer],
                 clock: Clock | None = None, auth: Auth | None = None,
                 ssl_context: ssl.SSLContext | None = None,
                 master_ssl: ssl.SSLContext | None = None) -> None:
        """``auth`` guards the agent's own HTTP API, ``ssl_context`` serves it over TLS,
        ``master_ssl`` verifies an https master."""
        self.config = config
        self.auth = auth or Auth()
        self.ssl_context = ssl_context
        self.master_ssl = master_ssl
        self.clock = clock or SystemClock()
        # The master link's silence is measured in time this agent could listen.
        self.listening = ListeningClock()
        self.cp = Checkpoints(config.work_dir)
        self.io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent-io")
        self.agent_id: str | None = self.cp.agent_id()
        self.hostname = config.hostname or socket.gethostname()
        self.address = config.advertise_address or config.host
        self.metrics = AgentMetrics()
        self.updates = StatusUpdateManager(self.cp, self._send_updates, self.clock, self.io,
                                           retry_base=config.status_update_retry,
                                           observer=self.metrics)
        self.containerizers = containerizers
        self.tasks = TaskManager(
            AgentIdentity(lambda: self.agent_id or "", self.hostname, self.address, config.port),
            containerizers, self.cp, self.updates, self.io, self.clock, observer=self.metrics)
        self.executors = ExecutorManager(
            self.tasks.identity,
            containerizers, self.cp, self.updates, self.io, self.clock, self._send_message,
            ExecutorSettings(registration_timeout=config.executor_registration_timeout,
                             reregistration_timeout=config.executor_reregistration_timeout,
                             switch_user=config.switch_user))
        self.tasks.switch_user = config.switch_user
        self.health = HealthMonitor(self.tasks, self.clock)
        self.checks = CheckMonitor(self.tasks, self.health.prober, self.clock)
        self.tasks.on_running = self._task_running
        self.tasks.on_ended = self._task_ended
        self.volumes = AgentVolumes(self.tasks, VolumeManager(
            config.work_dir, config.allowed_host_paths), self.io)
        self.tasks.prepare_spec = self.volumes.prepare
        self.secrets = AgentSecrets(self.cp, self.io)  # docs/secrets.md
        self.tasks.secrets = self.secrets
        self.fetcher = Fetcher(config.work_dir / "fetcher-cache", config.fetcher_cache_size_mb,
                               config.fetcher_timeout,
                               max_download_mb=config.fetcher_max_size_mb)
        self.tasks.fetch = self._fetch_uris
        self.executors.fetch = self.fetcher.fetch  # an executor's command.uris
        self.usage = UsageSampler(self.tasks, self.volumes.volumes, self._send_usage,
                                  config.usage_interval)
        self.metrics.collect_from(self)
        self.max_epoch = 0
        self.last_refusal: str | None = None
        self.registered = asyncio.Event()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._loops: list[asyncio.Task[Any]] = []
        self._jobs: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def _task_running(self, task: AgentTaskState) -> None:
        self.health.start(task)
        self.checks.start(task)

    def _task_ended(self, task: AgentTaskState) -> None:
        self.health.stop(task)
        self.checks.stop(task)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> int:
        """Recover tasks, serve HTTP, connect to the master; return the HTTP port."""
        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        recovered = list(self.cp.tasks())
        await self.executors.recover()
        await self.tasks.recover(recovered, also_known=self.executors.container_ids())
        # Secret tmpfs mounts of tasks that ended while the agent was down.
        await self.secrets.sweep([self.cp.sandbox(t.framework_id, t.task_id)
                                  for t in self.tasks.tasks.values()
                                  if t.container is not None])
        # Executors keep one connection for their calls and may be quiet for long
        # (pymesos' driver loses an update sent on a connection the agent closed).
        self._runner = web.AppRunner(self._make_app(), access_log=None,
                                     keepalive_timeout=24 * 3600)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port,
                           ssl_context=self.ssl_context)
        await site.start()
        self.config.port = self._runner.addresses[0][1]
        self.tasks.identity.port = self.config.port
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.master_ssl) if self.master_ssl else None)
        self.listening.start()
        self._loops = [asyncio.create_task(self._link_loop()),
                       asyncio.create_task(self._retry_loop())]
        if self.config.usage_interval > 0:
            self._loops.append(asyncio.create_task(self.usage.run()))
        log.info("agent %s on %s:%d, %d tasks recovered", self.agent_id or "(new)",
                 self.address, self.config.port, len(recovered))
        if overlap := ephemeral_overlap(self.config.resources, local_port_range()):
            log.warning("offered ports %s lie in the kernel's ephemeral port range: tasks "
                        "given them may fail to listen (address in use); offer ports "
                        "below it, as the default [31000-32000] does",
                        ",".join(f"{lo}-{hi}" for lo, hi in overlap))
        return self.config.port

    @property
    def stopped(self) -> bool:
        return self._stopping

    async def stop(self, kill_tasks: bool = False) -> None:
        """Stop the agent.  Tasks keep running unless ``kill_tasks`` (``mesoslite up``)."""
        if self._stopping:
            return
        self._stopping = True
        await self.checks.close()
        await self.health.close()
        if kill_tasks:
            await asyncio.gather(self.tasks.kill_all(), self.executors.kill_all())
            await self._drain_updates()
        for loop_task in self._loops:
            loop_task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self.listening.stop()
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()
        self.executors.close_streams()
        if self._runner is not None:
            await self._runner.cleanup()
        for containerizer in self.containerizers.values():
            await containerizer.close()
        await self.fetcher.close()
        self.io.shutdown(wait=True)

    async def _drain_updates(self, timeout: float = 5.0) -> None:
        """Give terminal updates a moment to be acknowledged before leaving."""
        deadline = self.clock.monotonic() + timeout
        while self.updates.unacknowledged() and self.clock.monotonic() < deadline:
            await asyncio.sleep(0.05)

    # ---------------------------------------------------------------- master link

    async def _link_loop(self) -> None:
        """Stay linked to the leading master: try the configured masters in turn, and
        follow a follower's 307 to the leader straight away."""
        delay = 0.1
        attempt = 0
        leader: str | None = None
        while not self._stopping:
            master = leader or self.config.masters[attempt % len(self.config.masters)]
            leader = None
            attempt += 1
            try:
                await self._connect(master)
                if self.registered.is_set():
                    delay = 0.1
                # else refused (e.g. its machine is DOWN): keep backing off
            except aiohttp.WSServerHandshakeError as exc:
                location = exc.headers.get("Location") if exc.headers else None
                if exc.status == 307 and location:
                    leader = location.split("/agent/v1/link")[0]
                    log.info("master %s is not the leader; following it to %s", master, leader)
                    continue
                log.debug("master %s refused the link: %s", master, exc.status)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.debug("master %s unreachable: %s", master, exc)
            except ProtocolError as exc:
                log.error("master %s sent a bad frame: %s", master, exc)
            self.registered.clear()
            self._ws = None
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, self.config.reconnect_max)

    async def _connect(self, master: str) -> None:
        assert self._session is not None
        url = master.rstrip("/") + "/agent/v1/link"
        async with self._session.ws_connect(url, max_msg_size=64 * 2**20,
                                            heartbeat=None) as ws:
            await ws.send_str(encode(self._register_message()).decode())
            silence = self.REGISTER_TIMEOUT
            heard = self.listening.monotonic()
            while True:
                remaining = silence - (self.listening.monotonic() - heard)
                if remaining <= 0:
                    # The master pings every interval: this much silence means a dead
                    # (perhaps half-open) link. Drop it and register again.
                    log.warning("no word from master %s for %.1fs: reconnecting", master,
                                silence)
                    return
                try:
                    frame = await ws.receive(timeout=remaining)
                except TimeoutError:
                    continue  # re-measured above: a stall of our own is not silence
                heard = self.listening.monotonic()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                message = decode_from_master(frame.data)
                if message.epoch < self.max_epoch:
                    log.warning("ignoring %s from a deposed master (epoch %d < %d)",
                                type(message).__name__, message.epoch, self.max_epoch)
                    continue
                self.max_epoch = max(self.max_epoch, message.epoch)
                if isinstance(message, Registered):
                    silence = message.link_timeout_seconds
                    await self._on_registered(ws, message)
                elif isinstance(message, Refused):
                    self.last_refusal = message.message
                    log.error("master refused registration: %s", message.message)
                    return
                else:
                    await self._on_command(ws, message)

    def _register_message(self) -> Register:
        cfg = self.config
        executor_tasks, executors = self.executors.for_register()
        executors += self.tasks.group_executors()
        frameworks = dict(self.tasks.frameworks)
        for run in self.executors.runs.values():
            frameworks.setdefault(run.key[0], run.cp.framework)
        return Register(
            agent_id=self.agent_id, hostname=self.hostname, address=self.address,
            port=cfg.port, resources=from_resources(cfg.resources),
            attributes=cfg.attributes, containerizers=sorted(self.containerizers),
            tasks=self.tasks.for_register() + executor_tasks,
            frameworks=[frameworks[f] for f in sorted(frameworks)],
            version=__version__, secret=cfg.agent_secret, executors=executors,
        )

    async def _on_registered(self, ws: aiohttp.ClientWebSocketResponse, msg: Registered) -> None:
        if self.agent_id != msg.agent_id:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self.io, self.cp.save_agent_id, msg.agent_id)
            except OSError as exc:
                # e.g. a full disk: keep the id in memory, so that re-registering does
                # not make the master count a new agent each time
                log.error("cannot checkpoint the agent id: %s", exc)
            self.agent_id = msg.agent_id
        self._ws = ws
        self.registered.set()
        log.info("registered with master %s as %s (epoch %d)", msg.master_id, msg.agent_id,
                 msg.epoch, extra={"agent_id": msg.agent_id, "master_id": msg.master_id})
        for (fid, tid), task in list(self.tasks.tasks.items()):
            if tid in msg.kill_task_ids:
                await self.tasks.kill(fid, tid, message="Framework was removed")
        for fid, tid in list(self.executors.tasks):
            if tid in msg.kill_task_ids:
                await self.executors.kill(fid, tid)
        self.updates.resend_all()

    async def _on_command(self, ws: aiohttp.ClientWebSocketResponse, message: Any) -> None:
        if isinstance(message, Ping):
            await ws.send_str(encode(Pong(seq=message.seq)).decode())
        elif isinstance(message, RunTasks):
            values = {(v.framework_id, v.task_id): v for v in message.secrets}
            for launch in message.launches:
                fid = launch.framework.id.value if launch.framework.id else ""
                if launch.group:  # one task group (agent/task_groups.py)
                    self.tasks.start_group(launch, values)
                    continue
                for info in launch.tasks:
                    if info.executor is not None:
                        self._background(self.executors.launch(launch.framework, info))
                        continue
                    self.tasks.start_launch(launch.framework, info,
                                            values.get((fid, info.task_id.value)))
        elif isinstance(message, KillTask):
            if self.executors.owns(message.framework_id, message.task_id):
                self._background(self.executors.kill(message.framework_id, message.task_id))
            else:
                self._background(self.tasks.kill(message.framework_id, message.task_id,
                                                 message.grace_period_seconds))
        elif isinstance(message, AckUpdates):
            for ack in message.acks:
                if self.executors.owns(ack.framework_id, ack.task_id):
                    await self.executors.acknowledged(ack.framework_id, ack.task_id, ack.uuid)
                else:
                    await self.tasks.acknowledged(ack.framework_id, ack.task_id, ack.uuid)
        elif isinstance(message, ShutdownFramework):
            self._background(self.tasks.shutdown_framework(message.framework_id))
            self._background(self.executors.shutdown_framework(message.framework_id))
        elif isinstance(message, ShutdownExecutor):
            self._background(self.executors.shutdown(message.framework_id, message.executor_id))
        elif isinstance(message, FrameworkMessage):
            if not self.executors.message_to_executor(
                    message.framework_id, message.executor_id, message.data):
                self._store_framework_message(message)
        elif isinstance(message, DestroyVolumes):
            asyncio.create_task(self.volumes.destroy(message))

    async def _fetch_uris(self, task: AgentTaskState, spec: LaunchSpec) -> None:
        """The task's ``CommandInfo.uris`` into its sandbox (``FetchError`` is a
        ``LaunchError``: the task fails with it)."""
        command = task.info.command
        if command is not None and command.uris:
            owner = file_owner(spec, task.cp.containerizer)  # the task's user, as secrets
            mine = (os.geteuid(), os.getegid())
            await self.fetcher.fetch(command.uris, spec.sandbox,
                                     owner=owner if owner != mine else None)

    def _store_framework_message(self, message: FrameworkMessage) -> None:
        sandbox = self.cp.sandbox(message.framework_id, message.executor_id)
        if sandbox.exists():
            with open(sandbox / "framework_messages", "ab") as f:
                f.write(message.data + b"\n")

    def _background(self, coro: Any) -> None:
        job = asyncio.create_task(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def _send_message(self, message: AgentMessage) -> bool:
        """Send ``message`` on the master link now; False when there is none."""
        ws = self._ws
        if ws is None or ws.closed or not self.registered.is_set():
            return False
        asyncio.create_task(_send_quietly(ws, encode(message).decode()))
        return True

    def _send_updates(self, updates: list[StatusUpdate]) -> bool:
        ws = self._ws
        if ws is None or ws.closed or not self.registered.is_set():
            return False
        data = encode(StatusUpdates(updates=updates)).decode()
        asyncio.create_task(_send_quietly(ws, data))
        return True

    def _send_usage(self, usage: Usage) -> bool:
        ws = self._ws
        if ws is None or ws.closed or not self.registered.is_set():
            return False
        asyncio.create_task(_send_quietly(ws, encode(usage).decode()))
        return True

    async def _retry_loop(self) -> None:
        while True:
            await asyncio.sleep(min(0.5, self.config.status_update_retry / 2))
            self.updates.retry_due()

    # ---------------------------------------------------------------- HTTP

    def _make_app(self) -> web.Application:
        auth = self.auth

        # Executors authenticate with their own token (executor_api.py).
        public = {"/health", "/ping", EXECUTOR_API_PATH}

        @web.middleware
        async def authorize(request: web.Request, handler: Any) -> web.StreamResponse:
            if request.path not in public:
                auth.require(request, "view_state", "agent")
            return await handler(request)

        app = make_app(middlewares=[auth.middleware(public), authorize])
        ExecutorAPI(self.executors, require_token=auth.enabled).add_routes(app)
        files = SandboxHTTP(self.cp)
        files.add_routes(app)
        AgentOperatorAPI(self, files).add_routes(app)
        app.router.add_get("/state", self._state)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self.metrics.handle)
        app.router.add_get("/monitor/statistics", self._statistics)  # Mesos' shape
        app.router.add_get("/monitor/statistics.json", self._statistics)
        app.router.add_get("/openapi.json", self._openapi)
        return app

    async def _statistics(self, request: web.Request) -> web.Response:
        return json_response(monitor_statistics(self.tasks, self.usage.latest))

    async def _state(self, request: web.Request) -> web.Response:
        return json_response({
            "id": self.agent_id,
            "hostname": self.hostname,
            "address": self.address,
            "port": self.config.port,
            "version": __version__,
            "registered": self.registered.is_set(),
            "resources": self.config.resources.to_mapping(),
            "attributes": self.config.attributes,
            "containerizers": sorted(self.containerizers),
            "tasks": [
                {"framework_id": t.framework_id, "id": t.task_id, "state": t.state.value,
                 "executor_id": t.executor_id,
                 "container_id": t.cp.container_id, "containerizer": t.cp.containerizer,
                 "sandbox": str(self.cp.sandbox(t.framework_id, t.task_id))}
                for t in self.tasks.tasks.values()
            ] + [
                {"framework_id": fid, "id": tid, "state": task.state.value,
                 "executor_id": key[1], "sandbox": str(self.cp.executor_sandbox(*key))}
                for (fid, tid), (key, task) in sorted(self.executors.tasks.items())
            ],
            "executors": self.executors.state_view(),
            "unacknowledged_updates": self.updates.unacknowledged(),
            "usage": msgspec.to_builtins(self.usage.latest) if self.usage.latest else None,
        })

    async def _openapi(self, request: web.Request) -> web.Response:
        return json_response(agent_openapi())

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK\n")


async def _send_quietly(ws: aiohttp.ClientWebSocketResponse, data: str) -> None:
    try:
        await ws.send_str(data)
    except (ConnectionResetError, RuntimeError, aiohttp.ClientError):
        pass  # the retry loop resends once the link is back
