"""Database engines: SQLite (the embedded default) and PostgreSQL, via SQLAlchemy.

``make_engine`` is the one place that knows engine-specific settings: SQLite runs in
WAL mode with ``synchronous=FULL`` so a committed transaction survives power loss,
and with a busy timeout so two processes sharing a file wait rather than fail.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.pool import QueuePool, StaticPool


def sqlite_url(path: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(path).absolute()}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; creates the SQLite file's directory when needed."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled connections: opening one per transaction costs the pragmas, and the
        # close of the last connection checkpoints and removes the WAL (fsyncs) --
        # about 1 ms per commit.  Each connection is used by one thread at a time.
        # An in-memory database lives in its connection: one, shared.
        in_memory = path in ("", ":memory:")
        pool = {"poolclass": StaticPool} if in_memory else {
            "poolclass": QueuePool, "pool_size": 2, "max_overflow": 8}
        engine = create_engine(url, **pool,  # type: ignore[arg-type]
                               connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        # psycopg 3 is the driver we depend on; plain postgresql:// would pick psycopg2.
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def redact_url(url: str) -> str:
    """The URL without its password, for logs and errors."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


def upsert(conn: Any, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert or replace ``rows`` by ``table``'s primary key, in one batched statement.

    Both engines have a native upsert keyed on the primary key, which (unlike
    delete-then-insert with a row-value IN) uses the index.  The statement is built
    once per table and dialect and kept in ``table.info``: building it (its
    ``excluded`` columns above all) cost more than executing it."""
    if not rows:
        return
    dialect = conn.dialect.name
    stmt = table.info.get(("upsert", dialect))
    if stmt is None:
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        keys = [c.name for c in table.primary_key.columns]
        base = dialect_insert(table)
        updates = {c.name: base.excluded[c.name] for c in table.columns if c.name not in keys}
        stmt = base.on_conflict_do_update(index_elements=keys, set_=updates)
        table.info[("upsert", dialect)] = stmt
    conn.execute(stmt, rows)
