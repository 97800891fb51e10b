"""The master process: wiring of the state machine to HTTP, WebSockets, the store
and timers.  No decisions are made here.

The HTTP, WebSocket and timer code turns what happens into stimuli and hands each to
``handle`` (the state machine's one entry point, with the clock's time); when the
state has output, the flusher wakes: it runs a partial allocation round, takes the
changed records as one ``Writes`` batch, commits it (in a worker thread, retried
until it succeeds), and only then executes the commands of that flush (so nothing is
promised before it is durable).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import ssl
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from mesoslite import __version__
from mesoslite.auth import PRINCIPAL, Auth
from mesoslite.clock import Clock, ListeningClock
from mesoslite.httpapi import HTTPError, error_response, json_response, make_app
from mesoslite.master.agent_link import AgentLink, AgentLinkHandler
from mesoslite.master.core import MasterConfig
from mesoslite.master.dashboard_http import DashboardHTTP
from mesoslite.master.events import MasterEvents
from mesoslite.master.events_http import EventsHTTP
from mesoslite.master.leadership import Leadership, SoleLeadership, make_leadership
from mesoslite.master.maintenance_http import MaintenanceHTTP
from mesoslite.master.metrics import CONTENT_TYPE, MasterMetrics
from mesoslite.master.model import (
    CloseAgentLink,
    CloseStream,
    Command,
    SendToAgent,
    SendToFramework,
)
from mesoslite.master.openapi_doc import master_openapi
from mesoslite.master.operator_reads_http import OperatorReadsHTTP
from mesoslite.master.operator_teardown import TeardownHTTP
from mesoslite.master.quota_http import QuotaHTTP
from mesoslite.master.scheduler_api import FrameworkStream, SchedulerAPI
from mesoslite.master.secrets import MasterSecrets
from mesoslite.master.secrets_http import SecretsHTTP
from mesoslite.master.state import MasterState
from mesoslite.master.stimuli import AllocationRound, Recover, Result, Stimulus, Tick
from mesoslite.master.usage import UsageCollector
from mesoslite.master.views import state_view, tasks_view
from mesoslite.messages.agent import AckUpdates, MasterMessage, Ping, RunTasks
from mesoslite.messages.scheduler import HEARTBEAT, Error, Event, EventType
from mesoslite.secrets.crypto import Keyring, load_keyring
from mesoslite.store.db import redact_url
from mesoslite.store.master_store import Deposed, MasterStore, Writes

log = logging.getLogger(__name__)
# The cyclic collector's thresholds while leading (see _lead): generation 0 every
# 10,000 net allocations instead of 700.
GC_THRESHOLDS = (10_000, 10, 10)


class MasterServer:
    def __init__(self, config: MasterConfig, store_url: str, clock: Clock | None = None,
                 ssl_context: ssl.SSLContext | None = None, auth: Auth | None = None,
                 secrets_key: Keyring | None = None) -> None:
        """``secrets_key`` seals secrets at rest (default: ``$MESOSLITE_SECRETS_KEY``;
        none: secrets are disabled, config maps still work)."""
        self.config = config
        # Agent liveness is judged in time this master could listen (see ListeningClock).
        self.clock = clock or ListeningClock()
        self.store = MasterStore(store_url)
        self.auth = auth or Auth()
        self.secrets = MasterSecrets(secrets_key or load_keyring(None), self.auth,
                                     self._commit)
        self.state = MasterState(str(uuid.uuid4()), config, secrets_check=self.secrets.check)
        self.events = MasterEvents(self.state)
        self.metrics = MasterMetrics(self.state, self.events)
        self.streams: dict[str, FrameworkStream] = {}
        self.retired_streams: dict[str, FrameworkStream] = {}
        self.links: dict[str, AgentLink] = {}
        self.metrics.registry.register(UsageCollector(self.state, self.state.usage))
        self.start_time = self.clock.now()
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()  # one tick at a time (the loop or a caller)
        self._tasks: list[asyncio.Task[Any]] = []
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="master-store")
        self._runner: web.AppRunner | None = None
        self._ping_seq = 0
        self._stopped = False
        self.ssl_context = ssl_context
        self.elected = asyncio.Event()
        self.held_requests = 0  # requests waiting for this master's recovery
        self.stopped_event = asyncio.Event()
        self.deposed = False
        self.leadership: Leadership = SoleLeadership("")
        self._lead_task: asyncio.Task[None] | None = None
        self.port = config.port

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", wait_elected: bool | None = None) -> int:
        """Listen, then campaign for leadership; return the port.

        A sole master (SQLite store) leads at once and ``start`` returns once it has
        recovered.  Masters sharing PostgreSQL return as soon as they listen
        (``wait_elected`` to wait); followers redirect to the leader meanwhile.
        """
        if isinstance(self.clock, ListeningClock):
            self.clock.start()
        self._runner = web.AppRunner(self.make_app(), handler_cancellation=True,
                                     access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, self.config.port,
                           ssl_context=self.ssl_context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.config.port = self.port
        scheme = "https" if self.ssl_context else "http"
        url = self.config.advertise_url or f"{scheme}://{self.config.hostname}:{self.port}"
        self.leadership = make_leadership(self.store, url, self.state.master_id)
        self._lead_task = asyncio.create_task(self._lead())
        if wait_elected or (wait_elected is None and isinstance(self.leadership,
                                                                  SoleLeadership)):
            await self.wait_elected()
        return self.port

    async def wait_elected(self) -> None:
        """Until this master leads (raises if it stopped before that)."""
        elected = asyncio.create_task(self.elected.wait())
        done, _ = await asyncio.wait({elected, self._lead_task},
                                     return_when=asyncio.FIRST_COMPLETED)
        if elected not in done:
            elected.cancel()
            self._lead_task.result()
            raise RuntimeError("master stopped before it was elected")

    async def _lead(self) -> None:
        await self.leadership.campaign()
        loop = asyncio.get_running_loop()
        epoch = await loop.run_in_executor(self._db, self.store.next_epoch)
        # Loading and rebuilding the state allocate only what lives on (or is freed by
        # reference counting): the cyclic collector would walk the growing heap again
        # and again for nothing (failover.py, 4,000 agents: load and recovery 0.46 ->
        # 0.15 CPU s).  It is back on before anything else runs.
        gc.disable()
        try:
            snapshot = await loop.run_in_executor(self._db, self.store.load)
            self.secrets.recover(snapshot.get("secrets", []))
            self.handle(Recover(snapshot, epoch))
            self.events.prime()
            counts = {kind: len(snapshot[kind]) for kind in ("agents", "frameworks", "tasks")}
            del snapshot  # its documents are garbage now, freed by reference counting
            # The recovered state lives as long as this leader: keep it out of the
            # cyclic collector's full passes, which walk all of it several times while
            # every agent and framework re-registers (failover.py, 2,000 agents: the new
            # leader's full collections 0.75 -> 0.48 s, its CPU 1.78 -> 1.50 s).
            gc.freeze()
        finally:
            gc.enable()
        # Young objects are many and short-lived here (a link, a request, an offer per
        # agent): collecting them every 700 allocations (the default) cost the new
        # leader more than the registrations themselves (failover.py, 4,000 agents:
        # collections 2.1 -> 0.7 s, leader CPU 2.95 -> 2.30 s).  Cycles are still
        # collected, later.
        gc.set_threshold(*GC_THRESHOLDS)
        log.info("master %s leads (epoch %d): recovered %d agents, %d frameworks, %d tasks"
                 " from %s", self.state.master_id, self.state.epoch, counts["agents"],
                 counts["frameworks"], counts["tasks"],
                 redact_url(self.store.url), extra={"master_id": self.state.master_id})
        self.start_time = self.clock.now()
        for coro in (self._flush_loop(), self._allocation_loop(), self._timer_loop(),
                     self._ping_loop(), self._heartbeat_loop()):
            self._tasks.append(asyncio.create_task(coro))
        self.elected.set()
        await self.leadership.lost()
        await self._step_down("lost the leadership lock")

    async def _step_down(self, why: str) -> None:
        """A leader that may have been replaced stops at once (Mesos' masters abort
        too); its process manager restarts it, and it comes back as a follower."""
        log.critical("stepping down: %s", why)
        self.deposed = True
        asyncio.get_running_loop().create_task(self.stop())

    @property
    def stopped(self) -> bool:
        return self._stopped

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.stopped_event.set()
        if isinstance(self.clock, ListeningClock):
            self.clock.stop()
        for stream in list(self.streams.values()):
            stream.close()
        for link in list(self.links.values()):
            link.close()
        current = asyncio.current_task()
        tasks = [t for t in [*self._tasks, self._lead_task] if t is not None and t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.leadership.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._db.shutdown(wait=True)
        self.store.close()

    def make_app(self) -> web.Application:
        # Agents prove themselves with the shared agent secret on the link instead.
        public = {"/health", "/agent/v1/link"} if self.config.agent_secret else {"/health"}
        app = make_app(middlewares=[self.auth.middleware(public)])
        api = SchedulerAPI(self)
        links = AgentLinkHandler(self)
        # Mesos serves the scheduler API under /master too; clients use either path
        for path in ("/api/v1/scheduler", "/master/api/v1/scheduler"):
            app.router.add_post(path, api.handle)
        app.router.add_get("/agent/v1/link", links.handle)
        for path in ("/master/state", "/master/state.json", "/state", "/state.json"):
            app.router.add_get(path, self._state)
        app.router.add_get("/master/tasks", self._tasks_view)
        app.router.add_get("/master/redirect", self._redirect)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/version", self._version)
        app.router.add_get("/openapi.json", self._openapi)
        EventsHTTP(self).add_routes(app)
        OperatorReadsHTTP(self).add_routes(app)
        QuotaHTTP(self).add_routes(app)
        TeardownHTTP(self).add_routes(app)
        MaintenanceHTTP(self).add_routes(app)
        SecretsHTTP(self).add_routes(app)
        DashboardHTTP(self).add_routes(app)
        return app

    # ---------------------------------------------------------------- hooks

    async def check_leader(self, request: web.Request) -> None:
        """Followers answer 307 to the leader (Mesos' behaviour), 503 without one.

        A master that won the election but is still loading the state holds the
        request until it leads (at most ``recovery_hold`` s): after a failover every
        agent and framework reconnects at once, and a 503 would send each into its
        backoff just before the new leader is ready.
        """
        if self.elected.is_set() and not self.deposed:
            return
        leader = await self.leadership.leader_url()
        if leader and not self.deposed and leader != self.leadership_url():
            raise web.HTTPTemporaryRedirect(leader.rstrip("/") + request.path_qs)
        if leader and leader == self.leadership_url() and await self._until_elected():
            return
        raise HTTPError(503, "No leading master is elected yet; retry shortly")

    async def _until_elected(self) -> bool:
        """Wait (bounded) for this master's recovery; True once it leads."""
        self.held_requests += 1
        try:
            async with asyncio.timeout(self.config.recovery_hold):  # keeps cancellations
                await self.elected.wait()
        except TimeoutError:
            return False
        finally:
            self.held_requests -= 1
        return not self.deposed

    def leadership_url(self) -> str:
        return getattr(self.leadership, "url", "")

    def authorize_subscribe(self, request: web.Request, call: Any) -> None:
        """The framework registers as the principal it authenticated as, in roles its
        ACLs allow (Mesos checks FrameworkInfo.principal the same way)."""
        principal = request.get(PRINCIPAL)
        info = call.subscribe.framework_info
        if principal is not None:
            if info.principal not in (None, principal):
                raise HTTPError(403, f"FrameworkInfo.principal '{info.principal}' is not the"
                                f" authenticated principal '{principal}'")
            info.principal = principal
        for role in info.effective_roles():
            self.auth.require(request, "register_framework", role)

    def authorize_call(self, request: web.Request, call: Any) -> None:
        """Only the principal a framework subscribed as may act for it."""
        if not self.auth.enabled:
            return
        fw = self.state.frameworks[call.framework_id.value]
        if request.get(PRINCIPAL) != fw.info.principal:
            raise HTTPError(403, "Calls for a framework must come from its principal")
        if call.type.value == "TEARDOWN":
            self.auth.require(request, "teardown_framework", fw.info.principal or "")

    # ---------------------------------------------------------------- loops

    def handle(self, stimulus: Stimulus) -> Result:
        """Hand ``stimulus`` to the state machine now; wake the flusher when that
        left something to store or send."""
        result = self.state.handle(stimulus, self.clock.now(), self.clock.monotonic())
        if self.state.pending:
            self.kick()
        return result

    def kick(self) -> None:
        self._wake.set()

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """One tick: allocate, store what changed, then send the commands and events
        (nothing goes out before its state is committed).  A caller that needs a
        change durable before it answers (an operator call) awaits this."""
        async with self._flushing:
            clock = self.clock
            with self.metrics.allocation_seconds.time():
                self.state.handle(AllocationRound(full=False), clock.now(), clock.monotonic())
            events = self.events.collect()  # from the dirty records: before take_writes
            commands = self.state.drain()
            writes = self.state.take_writes()
            if writes:
                await self._commit(writes)
            self._dispatch(commands)
            self.events.publish(events)

    async def _commit(self, writes: Writes) -> None:
        """Commit, retrying with backoff: nothing is sent until this succeeds."""
        delay = 0.05
        loop = asyncio.get_running_loop()
        while True:
            try:
                with self.metrics.store_commit_seconds.time():
                    await loop.run_in_executor(self._db, self.store.apply, writes,
                                               self.state.epoch)
                return
            except Deposed as exc:
                await self._step_down(str(exc))
                raise asyncio.CancelledError from exc
            except Exception as exc:  # noqa: BLE001 - the store is outside our control
                log.error("store commit failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _dispatch(self, commands: list[Command]) -> None:
        per_agent: dict[str, list[MasterMessage]] = {}
        closing: list[CloseAgentLink] = []  # after the messages queued before them
        for command in commands:
            if isinstance(command, SendToFramework):
                stream = self.streams.get(command.framework_id)
                if stream is not None:
                    if command.event.type == EventType.SUBSCRIBED:
                        stream.subscribed_sent = True
                    stream.send(command.event)
            elif isinstance(command, SendToAgent):
                _append_merged(per_agent.setdefault(command.agent_id, []), command.message)
            elif isinstance(command, CloseStream):
                self._close_stream(command)
            elif isinstance(command, CloseAgentLink):
                closing.append(command)
        for agent_id, messages in per_agent.items():
            link = self.links.get(agent_id)
            if link is not None:
                for message in messages:
                    if isinstance(message, RunTasks):  # the tasks' secret values
                        message = self.secrets.with_values(message)
                    link.send(message)
        for command in closing:
            link = self.links.get(command.agent_id)
            if link is not None and link.connection == command.connection:
                link.close()

    def _close_stream(self, command: CloseStream) -> None:
        stream = self.retired_streams.pop(command.stream_id, None)
        current = self.streams.get(command.framework_id)
        if stream is None and current is not None and current.stream_id == command.stream_id:
            stream = current
        if stream is None:
            return
        if command.error:
            stream.send(Event(type=EventType.ERROR, error=Error(message=command.error)))
        stream.close()

    async def _allocation_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.allocation_interval)
            with self.metrics.allocation_seconds.time():
                self.handle(AllocationRound(full=True))

    async def _timer_loop(self) -> None:
        interval = max(0.02, min(1.0, self.config.agent_ping_timeout / 4))
        while True:
            await asyncio.sleep(interval)
            self.handle(Tick())

    async def _ping_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.agent_ping_timeout)
            self._ping_seq += 1
            for link in list(self.links.values()):
                link.send(Ping(seq=self._ping_seq, epoch=self.state.epoch))

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval)
            for stream in list(self.streams.values()):
                if stream.subscribed_sent:
                    stream.send(HEARTBEAT)

    # ---------------------------------------------------------------- status endpoints

    async def _state(self, request: web.Request) -> web.Response:
        await self.check_leader(request)
        self.auth.require(request, "view_state", "master")
        return json_response(state_view(self.state, self.start_time, self.state.usage))

    async def _tasks_view(self, request: web.Request) -> web.Response:
        await self.check_leader(request)
        self.auth.require(request, "view_state", "master")
        try:
            limit = int(request.query.get("limit", "100"))
            offset = int(request.query.get("offset", "0"))
        except ValueError:
            return error_response(400, "'limit' and 'offset' must be integers",
                                  [("limit", ["must be an integer"])])
        if limit < 0 or offset < 0:
            return error_response(400, "'limit' and 'offset' must not be negative")
        return json_response(tasks_view(self.state, limit, offset))

    async def _redirect(self, request: web.Request) -> web.Response:
        """Mesos' /master/redirect: 307 to the leading master."""
        leader = await self.leadership.leader_url()
        if not leader:
            raise HTTPError(503, "No leading master is elected yet")
        raise web.HTTPTemporaryRedirect(leader)

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        self.auth.require(request, "view_state", "metrics")
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _openapi(self, request: web.Request) -> web.Response:
        return json_response(master_openapi())

    async def _version(self, request: web.Request) -> web.Response:
        return json_response({"version": __version__, "build_date": "", "build_time": 0,
                              "build_user": "", "git_sha": "", "git_branch": "",
                              "git_tag": __version__})


def _append_merged(queue: list[MasterMessage], message: MasterMessage) -> None:
    """Coalesce adjacent launches and acks for one agent into one message each."""
    last = queue[-1] if queue else None
    if isinstance(message, RunTasks) and isinstance(last, RunTasks):
        last.launches.extend(message.launches)
    elif isinstance(message, AckUpdates) and isinstance(last, AckUpdates):
        last.acks.extend(message.acks)
    else:
        queue.append(message)
