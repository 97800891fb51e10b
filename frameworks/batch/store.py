"""The batch framework's durable state (SQLAlchemy; SQLite by default, or PostgreSQL).

Tables: ``batch_meta`` (the framework id), ``batch_jobs``, ``batch_runs`` and
``batch_attempts``, each row a JSON document keyed by its id, with the columns the
framework queries by (job, state, creation time) beside it.  ``BatchStore`` is the
only code that writes them; ``Journal`` groups the writes of one event-loop moment
into one transaction (group commit) and lets callers wait until their writes are
durable before doing what the writes protect (an ACCEPT, an acknowledgement, an
HTTP 201).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Column, Float, Index, MetaData, String, Table, Text, delete, select

from mesoslite.store.db import make_engine, redact_url

log = logging.getLogger(__name__)
metadata = MetaData()

meta = Table("batch_meta", metadata,
             Column("key", String(64), primary_key=True),
             Column("value", Text, nullable=False))
jobs = Table("batch_jobs", metadata,
             Column("id", String(300), primary_key=True),
             Column("data", Text, nullable=False))
runs = Table("batch_runs", metadata,
             Column("id", String(400), primary_key=True),
             Column("job_id", String(300), nullable=False),
             Column("state", String(20), nullable=False),
             Column("created_at", Float, nullable=False),
             Column("data", Text, nullable=False),
             Index("batch_runs_job", "job_id", "created_at"),
             Index("batch_runs_state", "state"))
attempts = Table("batch_attempts", metadata,
                 Column("id", String(500), primary_key=True),
                 Column("run_id", String(400), nullable=False, index=True),
                 Column("data", Text, nullable=False))

_enc = msgspec.json.Encoder()
_dec = msgspec.json.decode


@dataclass
class Writes:
    """One group commit.  Later puts of the same id replace earlier ones."""

    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted_jobs: set[str] = field(default_factory=set)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    attempts: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.jobs or self.deleted_jobs or self.runs or self.attempts or self.meta)


class BatchStore:
    """Synchronous access to the tables; call from a worker thread in servers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        return redact_url(self.url)

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(meta.c.value).where(meta.c.key == key)).first()
            return row[0] if row else None

    def load_jobs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [_dec(r[0]) for r in conn.execute(select(jobs.c.data))]

    def load_active_runs(self) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
        """Every ACTIVE run with its attempts (what a restarted framework adopts)."""
        with self.engine.connect() as conn:
            docs = [_dec(r[0]) for r in conn.execute(
                select(runs.c.data).where(runs.c.state == "ACTIVE"))]
            return [(d, self._attempts(conn, d["id"])) for d in docs]

    def get_run(self, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(runs.c.data).where(runs.c.id == run_id)).first()
            return (_dec(row[0]), self._attempts(conn, run_id)) if row else None

    def list_runs(self, job_id: str | None = None, limit: int = 50,
                  states: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """Run documents, newest first (without attempts)."""
        query = select(runs.c.data).order_by(runs.c.created_at.desc()).limit(limit)
        if job_id is not None:
            query = query.where(runs.c.job_id == job_id)
        if states:
            query = query.where(runs.c.state.in_(states))
        with self.engine.connect() as conn:
            return [_dec(r[0]) for r in conn.execute(query)]

    @staticmethod
    def _attempts(conn: Any, run_id: str) -> list[dict[str, Any]]:
        return [_dec(r[0]) for r in conn.execute(
            select(attempts.c.data).where(attempts.c.run_id == run_id))]

    def apply(self, writes: Writes) -> None:
        """Write the batch atomically: all of it or (on an exception) none of it."""
        with self.engine.begin() as conn:
            if writes.deleted_jobs:
                conn.execute(delete(jobs).where(jobs.c.id.in_(sorted(writes.deleted_jobs))))
            _upsert(conn, jobs, ["id"], [{"id": k, "data": _json(v)}
                                         for k, v in writes.jobs.items()])
            _upsert(conn, runs, ["id"], [
                {"id": k, "job_id": v["job_id"], "state": v["state"],
                 "created_at": v["created_at"], "data": _json(v)}
                for k, v in writes.runs.items()])
            _upsert(conn, attempts, ["id"], [
                {"id": k, "run_id": v["run_id"], "data": _json(v)}
                for k, v in writes.attempts.items()])
            _upsert(conn, meta, ["key"], [{"key": k, "value": v}
                                          for k, v in writes.meta.items()])


def _json(doc: dict[str, Any]) -> str:
    return _enc.encode(doc).decode()


def _upsert(conn: Any, table: Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """Insert or replace ``rows`` by primary key in one statement (native upsert)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), rows)


class Journal:
    """Group commit in front of a ``BatchStore``.

    ``put_*`` records a write (synchronously: callers keep the event loop's atomicity
    between awaits); ``await flush()`` returns once every write put before the call is
    committed.  Writes put while a commit runs go into the next one, so commits batch
    themselves under load.  A failing commit (database down) is retried with backoff:
    nothing put is dropped, and nobody waiting on it proceeds until it landed.
    """

    def __init__(self, store: BatchStore, retry_max: float = 5.0) -> None:
        self.store = store
        self.retry_max = retry_max
        self._pending = Writes()
        self._next: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.commits = 0

    def put_job(self, job_id: str, doc: dict[str, Any]) -> None:
        self._pending.deleted_jobs.discard(job_id)
        self._pending.jobs[job_id] = doc

    def delete_job(self, job_id: str) -> None:
        self._pending.jobs.pop(job_id, None)
        self._pending.deleted_jobs.add(job_id)

    def put_run(self, doc: dict[str, Any]) -> None:
        self._pending.runs[doc["id"]] = doc

    def put_attempt(self, doc: dict[str, Any]) -> None:
        self._pending.attempts[doc["id"]] = doc

    def put_meta(self, key: str, value: str) -> None:
        self._pending.meta[key] = value

    async def flush(self) -> None:
        """Wait until everything put so far is committed."""
        if not self._pending and self._task is None:
            return
        loop = asyncio.get_running_loop()
        if self._next is None:
            self._next = loop.create_future()
        waiter = self._next
        if self._task is None:
            self._task = asyncio.create_task(self._commit_loop())
        await asyncio.shield(waiter)

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background now (kept referenced until it ends)."""
        task = asyncio.ensure_future(coro)
        _background.add(task)
        task.add_done_callback(_background.discard)

    def after_commit(self, action: Callable[[], Any]) -> None:
        """Run ``action`` (a coroutine function or plain callable) once the writes
        put so far are committed, without making the caller wait."""

        async def run() -> None:
            await self.flush()
            result = action()
            if asyncio.iscoroutine(result):
                await result

        self.spawn(run())

    async def _commit_loop(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, Writes()
                done, self._next = self._next, None
                await self._commit(batch)
                self.commits += 1
                if done is not None and not done.done():
                    done.set_result(None)
        finally:
            self._task = None
            if self._next is not None and not self._pending:
                # Waiters that arrived with nothing new to write: their writes were in
                # the batch just committed.
                nxt, self._next = self._next, None
                if not nxt.done():
                    nxt.set_result(None)

    async def _commit(self, batch: Writes) -> None:
        delay = 0.1
        while True:
            try:
                await asyncio.to_thread(self.store.apply, batch)
                return
            except Exception as exc:  # noqa: BLE001 - the database may come back
                log.warning("batch store commit failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)


_background: set[asyncio.Task[None]] = set()
