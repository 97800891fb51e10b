"""The master's durable state: agents, frameworks, tasks with their latest status.

Offers are deliberately not durable (Mesos does the same: they are re-made).  Each
record is a JSON document keyed by its id; ``apply`` writes one ``Writes`` batch in
one transaction (group commit: the server collects every change of an event-loop
tick into one batch).  ``MasterStore`` is the only code that writes these tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)

from mesoslite.store.db import make_engine, upsert

metadata = MetaData()

meta = Table(
    "master_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
agents = Table(
    "master_agents",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("data", Text, nullable=False),
)
frameworks = Table(
    "master_frameworks",
    metadata,
    Column("id", String(300), primary_key=True),
    Column("data", Text, nullable=False),
)
tasks = Table(
    "master_tasks",
    metadata,
    Column("framework_id", String(300), primary_key=True),
    Column("task_id", String(300), primary_key=True),
    Column("agent_id", String(300), nullable=False, index=True),
    Column("data", Text, nullable=False),
)
# Secrets (values sealed, see mesoslite/secrets) and config maps, by (kind, name).
secret_objects = Table(
    "master_secrets",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("name", String(300), primary_key=True),
    Column("data", Text, nullable=False),
)
epochs = Table(
    "master_epoch",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("epoch", Integer, nullable=False),
)
leader = Table(
    "master_leader",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("master_id", String(64), nullable=False),
    Column("url", Text, nullable=False),
)


class Deposed(Exception):
    """A newer leader has taken over: this master must not write any more."""

_enc = msgspec.json.Encoder()


@dataclass
class Writes:
    """One group commit: upserts (id -> document) and deletions."""

    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    frameworks: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    deleted_agents: set[str] = field(default_factory=set)
    deleted_tasks: set[tuple[str, str]] = field(default_factory=set)
    meta: dict[str, str] = field(default_factory=dict)
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    deleted_secrets: set[tuple[str, str]] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.agents or self.frameworks or self.tasks or self.deleted_tasks
                    or self.deleted_agents
                    or self.meta or self.secrets or self.deleted_secrets)


class MasterStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Masters started together on a fresh database would race to create
                # the tables (a unique violation in pg_type): one at a time.  The key
                # is per database and schema, and differs from the leadership lock's.
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended("
                                  "'mesoslite-schema:' || current_database() || '/' || "
                                  "current_schema(), 0))"))
            metadata.create_all(conn)

    def close(self) -> None:
        self.engine.dispose()

    def next_epoch(self) -> int:
        """Increment and return the leader epoch (one row, updated in a transaction)."""
        with self.engine.begin() as conn:
            row = conn.execute(select(epochs.c.epoch).where(epochs.c.id == 1)
                               .with_for_update()).first()
            if row is None:
                conn.execute(insert(epochs).values(id=1, epoch=1))
                return 1
            epoch = row[0] + 1
            conn.execute(update(epochs).where(epochs.c.id == 1).values(epoch=epoch))
            return epoch

    def load(self) -> dict[str, list[dict[str, Any]]]:
        dec = msgspec.json.decode
        with self.engine.connect() as conn:
            return {
                "agents": [dec(r[0]) for r in conn.execute(select(agents.c.data))],
                "frameworks": [dec(r[0]) for r in conn.execute(select(frameworks.c.data))],
                "tasks": [dec(r[0]) for r in conn.execute(select(tasks.c.data))],
                "meta": [{"key": k, "value": v} for k, v in conn.execute(select(meta))],
                "secrets": [dec(r[0]) for r in conn.execute(select(secret_objects.c.data))],
            }

    def set_leader(self, master_id: str, url: str) -> None:
        with self.engine.begin() as conn:
            upsert(conn, leader, [{"id": 1, "master_id": master_id, "url": url}])

    def leader_url(self) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(leader.c.url).where(leader.c.id == 1)).first()
            return row[0] if row else None

    def apply(self, writes: Writes, epoch: int | None = None) -> None:
        """Write the batch atomically: all of it or (on an exception) none of it.

        With ``epoch``, the batch is fenced: it commits only while ``epoch`` is still
        the newest leader epoch, else ``Deposed`` is raised and nothing is written.
        """
        with self.engine.begin() as conn:
            if epoch is not None:
                # A row lock on the epoch row serialises us against a new leader's
                # next_epoch(): either we commit first or we see the new epoch.
                row = conn.execute(select(epochs.c.epoch).where(epochs.c.id == 1)
                                   .with_for_update(read=True)).first()
                if row is not None and row[0] != epoch:
                    raise Deposed(f"epoch {epoch} was superseded by {row[0]}")
            if writes.deleted_agents:
                conn.execute(delete(agents).where(agents.c.id == bindparam("aid")),
                             [{"aid": aid} for aid in writes.deleted_agents])
            upsert(conn, agents, [
                {"id": k, "data": _json(v)} for k, v in writes.agents.items()])
            upsert(conn, frameworks, [
                {"id": k, "data": _json(v)} for k, v in writes.frameworks.items()])
            gone = writes.deleted_tasks - set(writes.tasks)
            if gone:
                conn.execute(
                    delete(tasks).where(tasks.c.framework_id == bindparam("fid"),
                                        tasks.c.task_id == bindparam("tid")),
                    [{"fid": fid, "tid": tid} for fid, tid in gone])
            upsert(conn, tasks, [
                {"framework_id": fid, "task_id": tid, "agent_id": doc["agent_id"],
                 "data": _json(doc)} for (fid, tid), doc in writes.tasks.items()])
            upsert(conn, meta, [{"key": k, "value": v}
                                          for k, v in writes.meta.items()])
            if writes.deleted_secrets:
                conn.execute(delete(secret_objects).where(
                    secret_objects.c.kind == bindparam("k"),
                    secret_objects.c.name == bindparam("n")),
                    [{"k": k, "n": n} for k, n in writes.deleted_secrets])
            upsert(conn, secret_objects, [
                {"kind": k, "name": n, "data": _json(doc)}
                for (k, n), doc in writes.secrets.items()])


def _json(doc: dict[str, Any]) -> str:
    return _enc.encode(doc).decode()
