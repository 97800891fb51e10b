"""The journal's other half: writing a generation to SQL in one transaction.

A framework declares its tables with SQLAlchemy (each row a JSON document keyed by
its id, plus the columns it queries by) and an encoder per table for its
``Journal``; ``DocumentStore.apply`` writes a taken generation: every row upserted
(the dialect's native ``ON CONFLICT``), every key mapped to None deleted, all or
nothing.  SQLite by default, PostgreSQL when the URL says so.  Calls block: run them
in a worker thread (the runner does).
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Column, MetaData, String, Table, Text, bindparam, delete
from sqlalchemy.sql.schema import SchemaItem

from mesoslite.framework.journal import Batch, Key, Row
from mesoslite.store.db import make_engine, redact_url, upsert

_enc = msgspec.json.Encoder()


def to_json(doc: Any) -> str:
    """A document as the text of a JSON column."""
    return _enc.encode(doc).decode()


def meta_table(name: str, metadata: MetaData) -> Table:
    """A key/value table, what ``Journal(meta_table=name)`` writes."""
    return Table(name, metadata, Column("key", String(64), primary_key=True),
                 Column("value", Text, nullable=False))


def document_table(name: str, metadata: MetaData, key_length: int, *items: SchemaItem,
                   keys: tuple[str, ...] = ("id",)) -> Table:
    """A table of JSON documents (``data``) under a string primary key (``keys``), with
    the extra columns and indexes a framework queries by."""
    key_columns = [Column(k, String(key_length), primary_key=True) for k in keys]
    return Table(name, metadata, *key_columns, *items, Column("data", Text, nullable=False))


class DocumentStore:
    """The tables of ``metadata`` at ``url`` (created when missing)."""

    def __init__(self, url: str, metadata: MetaData) -> None:
        self.url = url
        self.metadata = metadata
        self.engine = make_engine(url)
        metadata.create_all(self.engine)

    def describe(self) -> str:
        """The URL without its password, for logs."""
        return redact_url(self.url)

    def close(self) -> None:
        self.engine.dispose()

    def apply(self, batch: Batch) -> None:
        """Write ``batch``: all of it or (on an exception) none of it."""
        with self.engine.begin() as conn:
            for name, rows in batch.rows.items():
                _write(conn, self.metadata.tables[name], rows)


def _write(conn: Any, table: Table, rows: dict[Key, Row | None]) -> None:
    """Upsert the rows given, delete the keys mapped to None."""
    keys = [c.name for c in table.primary_key.columns]
    gone = [dict(zip(keys, k, strict=True)) for k, row in rows.items() if row is None]
    if gone:
        where = [table.c[name] == bindparam(f"k_{name}") for name in keys]
        conn.execute(delete(table).where(*where),
                     [{f"k_{n}": v for n, v in g.items()} for g in gone])
    upsert(conn, table, [row for row in rows.values() if row is not None])
