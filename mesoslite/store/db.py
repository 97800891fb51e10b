"""Database engines: SQLite (the embedded default) and PostgreSQL, via SQLAlchemy.

``make_engine`` is the one place that knows engine-specific settings: SQLite runs in
WAL mode with ``synchronous=FULL`` so a committed transaction survives power loss,
and with a busy timeout so two processes sharing a file wait rather than fail.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool


def sqlite_url(path: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(path).absolute()}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; creates the SQLite file's directory when needed."""
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30})

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
