"""Which master leads: one leader, the others follow and redirect to it.

There is no home-made consensus: the store's database decides.

* ``SoleLeadership`` (SQLite, one master): leads at once.
* ``PostgresLeadership``: masters sharing a PostgreSQL store contend for a session
  advisory lock held on a dedicated connection.  The lock holder leads; it writes its
  URL to ``master_leader`` so followers can redirect.  PostgreSQL frees the lock when
  the leader's session ends (process death, or its TCP keepalives failing after a
  partition), and a leader that cannot reach the database steps down
  (``lost()`` returns).  Split brain is fenced by the epoch: every group commit of
  the master checks the epoch it was elected with (``MasterStore.apply``), and agents
  ignore commands from an older epoch.

  A follower waits on the lock itself (``pg_advisory_lock`` blocks), so PostgreSQL
  hands it over the moment the leader's session ends, not at a poll.

  Followers read the leader's URL at most once per ``interval`` (also the period at
  which a leader checks its lock's session): after a
  failover every agent and framework reconnects at once, and a database query per
  refused request slowed the new leader's recovery on the same machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from mesoslite.store.master_store import MasterStore

log = logging.getLogger(__name__)

# The advisory lock's key is derived inside the database from its name and the
# schema the store lives in, so masters of one store contend for the same lock and
# two stores sharing a PostgreSQL server (or a test schema) never do.
LOCK_KEY_SQL = "hashtextextended('mesoslite:' || current_database() || '/' || current_schema(), 0)"


class Leadership(Protocol):
    async def campaign(self) -> None:
        """Return once this master leads."""

    async def lost(self) -> None:
        """Return when this master no longer leads (only after ``campaign``)."""

    async def leader_url(self) -> str | None:
        """The current leader's URL, as followers redirect to it."""

    async def close(self) -> None: ...


class SoleLeadership:
    """A single master: always the leader."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def campaign(self) -> None:
        return None

    async def lost(self) -> None:
        await asyncio.Event().wait()  # never

    async def leader_url(self) -> str | None:
        return self.url

    async def close(self) -> None:
        return None


class PostgresLeadership:
    def __init__(self, store: MasterStore, url: str, master_id: str,
                 interval: float = 0.5, check_timeout: float = 3.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.url = url
        self.master_id = master_id
        self.interval = interval
        self.check_timeout = check_timeout
        self._monotonic = monotonic
        self._conn = None  # psycopg.AsyncConnection holding the lock
        self._leader: tuple[str | None, float] | None = None  # (url, read at)
        self._reading = asyncio.Lock()

    async def _connect(self):  # type: ignore[no-untyped-def]
        import psycopg

        conn = await psycopg.AsyncConnection.connect(
            _conninfo(self.store.url), autocommit=True,
            keepalives=1, keepalives_idle=2, keepalives_interval=1, keepalives_count=3,
            connect_timeout=5)
        # The server's view of this session dies fast too, so the lock is freed soon
        # after a leader is cut off from the database.
        for setting in ("tcp_keepalives_idle = 2", "tcp_keepalives_interval = 1",
                        "tcp_keepalives_count = 3"):
            await conn.execute(f"SET {setting}")
        return conn

    async def campaign(self) -> None:
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await self._connect()
                # Blocks until the lock is free: PostgreSQL hands it over the moment
                # the leader's session ends, rather than at our next poll.
                cur = await self._conn.execute(f"SELECT pg_advisory_lock({LOCK_KEY_SQL}), true")
                row = await cur.fetchone()
                if row and row[1]:
                    await asyncio.to_thread(self.store.set_leader, self.master_id, self.url)
                    self._leader = (self.url, self._monotonic())
                    log.info("elected leader (%s)", self.url)
                    return
            except Exception as exc:  # noqa: BLE001 - the database is outside our control
                log.warning("leader election: database unreachable (%s); retrying", exc)
                await self._drop()
            await asyncio.sleep(self.interval)

    async def lost(self) -> None:
        """Poll the lock's session; return when it is gone or unhealthy."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                assert self._conn is not None
                await asyncio.wait_for(self._conn.execute("SELECT 1"), self.check_timeout)
            except Exception as exc:  # noqa: BLE001
                log.error("lost the leader lock's database session (%s)", exc)
                await self._drop()
                return

    async def leader_url(self) -> str | None:
        """The stored leader URL, read at most once per ``interval`` however many
        requests ask at once (None: unknown, or the database unreachable)."""
        async with self._reading:  # concurrent askers share one read
            if self._leader is not None and (
                    self._monotonic() - self._leader[1] < self.interval):
                return self._leader[0]
            try:
                url = await asyncio.to_thread(self.store.leader_url)
            except Exception:  # noqa: BLE001
                url = None
            self._leader = (url, self._monotonic())
            return url

    async def _drop(self) -> None:
        self._leader = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._drop()


def _conninfo(url: str) -> str:
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix):]
    return url


def make_leadership(store: MasterStore, url: str, master_id: str) -> Leadership:
    if store.engine.dialect.name == "postgresql":
        return PostgresLeadership(store, url, master_id)
    return SoleLeadership(url)
