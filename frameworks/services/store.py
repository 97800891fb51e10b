"""Durable state of the services framework (SQLAlchemy: SQLite or PostgreSQL).

Tables ``services_*``: apps (current definitions), their versions, deployments,
tasks and a key/value ``meta`` (the framework id).  Documents are JSON keyed by id.
This module is the only writer of those tables; ``apply`` writes one ``Changes``
batch in one transaction.  ``Committer`` groups the changes made while a commit is in
flight into the next one (group commit), so a burst of status updates costs one
fsync, and publishes a change's events only once it is durable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import Column, MetaData, String, Table, Text, bindparam, delete, select
from sqlalchemy.exc import SQLAlchemyError

from frameworks.services.deployments import Deployment
from frameworks.services.model import App
from frameworks.services.state import Changes, ServicesState, decode_app, encode_app
from frameworks.services.tasks import TaskRecord
from frameworks.services.volumes import Reservation
from mesoslite.store.db import make_engine, redact_url

log = logging.getLogger(__name__)

metadata = MetaData()
meta_table = Table("services_meta", metadata,
                   Column("key", String(64), primary_key=True),
                   Column("value", Text, nullable=False))
apps_table = Table("services_apps", metadata,
                   Column("id", String(512), primary_key=True),
                   Column("data", Text, nullable=False))
versions_table = Table("services_versions", metadata,
                       Column("app_id", String(512), primary_key=True),
                       Column("version", String(40), primary_key=True),
                       Column("data", Text, nullable=False))
deployments_table = Table("services_deployments", metadata,
                          Column("id", String(64), primary_key=True),
                          Column("data", Text, nullable=False))
tasks_table = Table("services_tasks", metadata,
                    Column("id", String(600), primary_key=True),
                    Column("app_id", String(512), nullable=False, index=True),
                    Column("data", Text, nullable=False))
reservations_table = Table("services_reservations", metadata,
                           Column("id", String(64), primary_key=True),
                           Column("app_id", String(512), nullable=False),
                           Column("data", Text, nullable=False))

_enc = msgspec.json.Encoder()


@dataclass
class Snapshot:
    apps: list[App]
    versions: list[App]
    deployments: list[Deployment]
    tasks: list[TaskRecord]
    meta: dict[str, str]
    reservations: list[Reservation] = field(default_factory=list)


class ServicesStore:
    """Blocking store calls (run them off the event loop)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def load(self) -> Snapshot:
        dec = msgspec.json.decode
        with self.engine.connect() as conn:
            apps = [decode_app(dec(r[0])) for r in conn.execute(select(apps_table.c.data))]
            versions = [decode_app(dec(r[0]))
                        for r in conn.execute(select(versions_table.c.data))]
            deployments = [msgspec.convert(dec(r[0]), Deployment)
                           for r in conn.execute(select(deployments_table.c.data))]
            tasks = [msgspec.json.decode(r[0], type=TaskRecord)
                     for r in conn.execute(select(tasks_table.c.data))]
            meta = dict(conn.execute(select(meta_table.c.key, meta_table.c.value)).all())
            reservations = [msgspec.json.decode(r[0], type=Reservation)
                            for r in conn.execute(select(reservations_table.c.data))]
        return Snapshot(apps, versions, deployments, tasks, meta, reservations)

    def apply(self, changes: Changes) -> None:
        """All of ``changes`` or (on an exception) none of it."""
        with self.engine.begin() as conn:
            _write(conn, apps_table, ["id"], {
                (k,): {"id": k, "data": _json(encode_app(v))} if v else None
                for k, v in changes.apps.items()})
            _write(conn, versions_table, ["app_id", "version"], {
                (a, ver): {"app_id": a, "version": ver, "data": _json(encode_app(v))}
                if v else None for (a, ver), v in changes.versions.items()})
            _write(conn, deployments_table, ["id"], {
                (k,): {"id": k, "data": _json(msgspec.to_builtins(v))} if v else None
                for k, v in changes.deployments.items()})
            _write(conn, tasks_table, ["id"], {
                (k,): {"id": k, "app_id": v.app_id, "data": _json(msgspec.to_builtins(v))}
                if v else None for k, v in changes.tasks.items()})
            _write(conn, meta_table, ["key"], {
                (k,): {"key": k, "value": v} for k, v in changes.meta.items()})
            _write(conn, reservations_table, ["id"], {
                (k,): {"id": k, "app_id": v.app_id, "data": _json(msgspec.to_builtins(v))}
                if v else None for k, v in changes.reservations.items()})


def _json(doc: Any) -> str:
    return _enc.encode(doc).decode()


def _write(conn: Any, table: Table, keys: list[str],
           rows: dict[tuple[str, ...], dict[str, Any] | None]) -> None:
    """Upsert the rows given, delete the keys mapped to None."""
    gone = [dict(zip(keys, k, strict=True)) for k, row in rows.items() if row is None]
    if gone:
        where = [table.c[name] == bindparam(f"k_{name}") for name in keys]
        conn.execute(delete(table).where(*where),
                     [{f"k_{n}": v for n, v in g.items()} for g in gone])
    upserts = [row for row in rows.values() if row is not None]
    if not upserts:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    stmt = dialect_insert(table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=updates), upserts)


class Committer:
    """Makes ``state``'s pending changes durable, then hands their events (maybe
    none) to ``publish``.  Concurrent ``commit()`` calls share writes (group commit).  A failed
    write is retried with backoff until it succeeds: an acknowledged change is never
    dropped, and callers wait rather than being told something false."""

    def __init__(self, store: ServicesStore, state: ServicesState,
                 publish: Callable[[list[tuple[str, dict[str, Any]]]], None],
                 retry_max: float = 5.0) -> None:
        self.store = store
        self.state = state
        self.publish = publish
        self.retry_max = retry_max
        self._lock = asyncio.Lock()
        self.commits = 0

    async def commit(self) -> None:
        """Return once every change made before this call is durable."""
        async with self._lock:
            changes, events = self.state.take_changes()
            if not changes and not events:
                return
            delay = 0.05
            while changes:
                try:
                    await asyncio.to_thread(self.store.apply, changes)
                    self.commits += 1
                    break
                except (SQLAlchemyError, OSError) as exc:  # the database may come back
                    log.warning("services store %s: write failed (%s); retrying in %.2fs",
                                redact_url(self.store.url), exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(self.retry_max, delay * 2)
            # Even with no events: the publish hook follows every committed state
            # (service discovery's endpoints change on kills that emit nothing).
            self.publish(events)
