"""The batch framework's durable state (SQLAlchemy; SQLite by default, or PostgreSQL).

Tables: ``batch_meta`` (the framework id), ``batch_jobs``, ``batch_runs`` and
``batch_attempts``, each row a JSON document keyed by its id, with the columns the
framework queries by (job, state, creation time) beside it.  They are written through
the framework kit's journal (``batch_journal``: ``BatchState`` puts records, the kit's
runner writes one generation per transaction, before anything those writes protect
is done: an ACCEPT, an acknowledgement, an HTTP 201).  ``BatchStore`` reads them.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from sqlalchemy import Column, Float, Index, MetaData, String, func, select

from mesoslite.framework import DocumentStore, Journal
from mesoslite.framework.store import document_table, meta_table, to_json

log = logging.getLogger(__name__)
metadata = MetaData()

META, JOBS, RUNS, ATTEMPTS = "batch_meta", "batch_jobs", "batch_runs", "batch_attempts"
meta = meta_table(META, metadata)
jobs = document_table(JOBS, metadata, 300)
runs = document_table(RUNS, metadata, 400,
                      Column("job_id", String(300), nullable=False),
                      Column("state", String(20), nullable=False),
                      Column("created_at", Float, nullable=False),
                      Index("batch_runs_job", "job_id", "created_at"),
                      Index("batch_runs_state", "state"))
attempts = document_table(ATTEMPTS, metadata, 500,
                          Column("run_id", String(400), nullable=False, index=True))

_dec = msgspec.json.decode


def _run_row(run: Any) -> dict[str, Any]:
    doc = run.to_json()
    return {"id": doc["id"], "job_id": doc["job_id"], "state": doc["state"],
            "created_at": doc["created_at"], "data": to_json(doc)}


def batch_journal() -> Journal:
    """A journal for these tables: jobs are ``JobRecord``s, runs ``Run``s (without their
    attempts), attempts ``Attempt``s, meta ``(key, value)`` pairs."""
    return Journal({
        JOBS: lambda job: {"id": job.spec.id, "data": to_json(job.to_json())},
        RUNS: _run_row,
        ATTEMPTS: lambda a: {"id": a.id, "run_id": a.run_id, "data": to_json(a.to_json())},
    }, meta_table=META)


class BatchStore(DocumentStore):
    """Synchronous reads of the tables; call from a worker thread in servers."""

    def __init__(self, url: str) -> None:
        super().__init__(url, metadata)

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

    def count_runs(self, job_id: str) -> dict[str, int]:
        """The job's runs by state (``{"SUCCEEDED": 3, ...}``)."""
        query = (select(runs.c.state, func.count()).where(runs.c.job_id == job_id)
                 .group_by(runs.c.state))
        with self.engine.connect() as conn:
            return {state: count for state, count in conn.execute(query)}

    def attempt_ids(self, run_ids: list[str]) -> dict[str, list[str]]:
        """The ids of each run's attempts (its Mesos task ids)."""
        out: dict[str, list[str]] = {r: [] for r in run_ids}
        if not run_ids:
            return out
        query = select(attempts.c.id, attempts.c.run_id).where(attempts.c.run_id.in_(run_ids))
        with self.engine.connect() as conn:
            for attempt, run_id in conn.execute(query):
                out[run_id].append(attempt)
        return out

    @staticmethod
    def _attempts(conn: Any, run_id: str) -> list[dict[str, Any]]:
        return [_dec(r[0]) for r in conn.execute(
            select(attempts.c.data).where(attempts.c.run_id == run_id))]
