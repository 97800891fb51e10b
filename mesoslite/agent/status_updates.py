"""Reliable status updates: at-least-once from agent to framework.

Each task has an ordered stream of updates.  An update is checkpointed before it is
sent; the head of each stream is (re)sent with exponential backoff until the
framework's acknowledgement for its uuid comes back through the master, then the
next one goes.  Sends are batched: every head due in one event-loop tick travels in
one ``StatusUpdates`` message.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from mesoslite.agent.checkpoint import Checkpoints, UpdatesCheckpoint
from mesoslite.agent.observer import AgentObserver, NoObserver
from mesoslite.clock import Clock
from mesoslite.messages.agent import StatusUpdate
from mesoslite.messages.mesos import TaskStatus

log = logging.getLogger(__name__)

Key = tuple[str, str]


@dataclass
class _Stream:
    latest: TaskStatus
    pending: deque[StatusUpdate] = field(default_factory=deque)
    next_retry: float = 0.0
    backoff: float = 0.0
    sent: bytes | None = None  # uuid of the update last sent (a resend repeats it)


class StatusUpdateManager:
    def __init__(
        self,
        checkpoints: Checkpoints,
        send: Callable[[list[StatusUpdate]], bool],
        clock: Clock,
        io: Executor,
        retry_base: float = 2.0,
        retry_max: float = 60.0,
        observer: AgentObserver | None = None,
    ) -> None:
        """``send`` transmits a batch and returns False when there is no link;
        ``observer`` hears of every batch sent."""
        self._cp = checkpoints
        self._send = send
        self._observer: AgentObserver = observer or NoObserver()
        self._clock = clock
        self._io = io
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.streams: dict[Key, _Stream] = {}
        self._due: set[Key] = set()
        self._flush_scheduled = False

    # ---------------------------------------------------------------- state

    def recover(self, framework_id: str, task_id: str, cp: UpdatesCheckpoint) -> None:
        stream = _Stream(latest=cp.latest, pending=deque(cp.pending))
        self.streams[(framework_id, task_id)] = stream
        if stream.pending:
            self._due.add((framework_id, task_id))

    def latest(self, framework_id: str, task_id: str) -> TaskStatus | None:
        stream = self.streams.get((framework_id, task_id))
        return stream.latest if stream else None

    def unacknowledged(self) -> int:
        return sum(len(s.pending) for s in self.streams.values())

    # ---------------------------------------------------------------- updates

    def knows(self, framework_id: str, task_id: str, uuid_: bytes) -> bool:
        """Whether the update ``uuid_`` is pending or the task's latest (an executor
        re-sending an update the agent already holds)."""
        stream = self.streams.get((framework_id, task_id))
        if stream is None:
            return False
        return stream.latest.uuid == uuid_ or any(
            u.status.uuid == uuid_ for u in stream.pending)

    def is_head(self, framework_id: str, task_id: str, uuid_: bytes) -> bool:
        """Whether an acknowledgement of ``uuid_`` would apply now."""
        stream = self.streams.get((framework_id, task_id))
        return bool(stream and stream.pending and stream.pending[0].status.uuid == uuid_)

    async def add(self, framework_id: str, status: TaskStatus, keep_uuid: bool = False) -> None:
        """Checkpoint a new update, then queue it (sent when it reaches the head).
        The update gets a fresh uuid unless ``keep_uuid`` (an executor's update keeps
        the executor's, which its ACKNOWLEDGED event names)."""
        if not keep_uuid or status.uuid is None:
            status.uuid = uuid.uuid4().bytes
        status.timestamp = status.timestamp or self._clock.now()
        key = (framework_id, status.task_id.value)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = _Stream(latest=status)
        stream.latest = status
        stream.pending.append(StatusUpdate(framework_id=framework_id, status=status))
        await self._checkpoint(key, stream)
        if stream.pending and stream.pending[0].status.uuid == status.uuid:
            self._make_due(key)
        elif stream.pending:
            # The head is still waiting for its ack; refresh latest_state on resend.
            pass

    async def acknowledge(self, framework_id: str, task_id: str, uuid_: bytes) -> bool:
        """Apply an ack; True when the task's terminal update has been acknowledged
        and nothing else is pending (the task can be forgotten)."""
        key = (framework_id, task_id)
        stream = self.streams.get(key)
        if stream is None or not stream.pending or stream.pending[0].status.uuid != uuid_:
            return False  # duplicate or stale ack: harmless
        acked = stream.pending.popleft()
        stream.backoff = 0.0
        await self._checkpoint(key, stream)
        if stream.pending:
            self._make_due(key)
            return False
        return acked.status.state.terminal

    def forget(self, framework_id: str, task_id: str) -> None:
        self.streams.pop((framework_id, task_id), None)
        self._due.discard((framework_id, task_id))

    async def _checkpoint(self, key: Key, stream: _Stream) -> None:
        cp = UpdatesCheckpoint(latest=stream.latest, pending=list(stream.pending))
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._io, self._cp.save_updates, key[0], key[1], cp)
        except OSError as exc:
            # A full or failing disk: the update still goes out (the framework learns
            # what happened) but would not survive an agent restart.
            log.error("cannot checkpoint updates of task %s: %s", key[1], exc)

    # ---------------------------------------------------------------- sending

    def resend_all(self) -> None:
        """After (re)registering: every head goes out now."""
        for key, stream in self.streams.items():
            if stream.pending:
                stream.backoff = 0.0
                self._due.add(key)
        self._schedule_flush()

    def retry_due(self) -> None:
        """Called periodically: resend heads whose retry time has come."""
        now = self._clock.monotonic()
        for key, stream in self.streams.items():
            if stream.pending and stream.next_retry and now >= stream.next_retry:
                self._due.add(key)
        if self._due:
            self._schedule_flush()

    def _make_due(self, key: Key) -> None:
        self._due.add(key)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch: list[StatusUpdate] = []
        heads: list[_Stream] = []
        now = self._clock.monotonic()
        for key in sorted(self._due):
            stream = self.streams.get(key)
            if stream is None or not stream.pending:
                continue
            head = stream.pending[0]
            batch.append(StatusUpdate(framework_id=head.framework_id, status=head.status,
                                      latest_state=stream.latest.state))
            heads.append(stream)
            stream.backoff = min(self.retry_max, (stream.backoff * 2) or self.retry_base)
            stream.next_retry = now + stream.backoff
        self._due.clear()
        if not batch:
            return
        if not self._send(batch):
            log.debug("no master link: %d updates wait for the next registration", len(batch))
            return
        resent = 0
        for stream, update in zip(heads, batch, strict=True):
            resent += stream.sent == update.status.uuid
            stream.sent = update.status.uuid
        self._observer.on_sent(len(batch) - resent, resent)
