"""The acknowledgement checker: a framework launcher that verifies, at the moment of
every acknowledgement, that the acknowledged update is already in the store.

The framework kit's rule is acknowledge-after-write: the runner commits a generation
(``DocumentStore.apply``) and only then sends the acknowledgements filed with it,
through ``Driver.acknowledge`` (defined in ``mesoslite/scheduler/actions.py``,
``CallMethods``; the kit's runner calls it with implicit acknowledgements off).
Acknowledgements are not persisted anywhere, so the soak checks the rule from the
outside by running each framework as::

    python -m mesoslite.testing.soak.acks --ack-log PATH --kind services|batch \\
        --db SQLITE_FILE -- services --master URLS --host 127.0.0.1 --port P ...

(what follows ``--`` is what ``python -m mesoslite.cli.main`` would get).  Before it
hands over to ``mesoslite.cli.main.main()``, the launcher patches the driver so that

* every UPDATE event received is remembered: update uuid -> the state it reports;
* every ``Driver.acknowledge`` first reads the task's durable state from the store
  file (SQLite, opened read-only, synchronously: nothing else runs on the event loop
  in between), appends one JSON line to the ack log, flushed and fsynced, and only
  then sends the real acknowledgement.

Contract of a line: ``{"t": time.time(), "kind", "task_id", "uuid": hex,
"acked_state": the update's Mesos state, "durable_state": the store's state or
"gone", "ok": rank(durable) >= rank(acked)}``.  Ranks (as in
``tests/services/test_svc_ack_after_write.py``): LAUNCHING / STAGING 0, STARTING 1,
RUNNING 2, anything else 3 (terminal states, UNREACHABLE, KILLING, LOST, and "gone":
services deletes a task's row on a terminal or UNREACHABLE update; batch never
deletes an attempt row, so "gone" there means a task the framework does not know).
Because the line is durable before the acknowledgement is sent, every acknowledgement
that left the process has its line, whatever moment a ``kill -9`` hits; a line may
exist for an acknowledgement that never left (the kill fell between the two), which
is harmless: the check holds for it all the same.

Where the launcher cannot do its part it errs towards not acknowledging (the agent
re-sends the update, and the next acknowledgement is checked): an ack log that
cannot be written means the acknowledgement is not sent.  A store that cannot be read
is logged as ``durable_state: "unreadable: ..."`` with ``ok`` false (it is reported,
not hidden) and the acknowledgement goes on.

Readers: ``read_ack_log`` (a torn last line, from a kill or a read racing the write,
is skipped) and ``ack_violations`` (one ``Violation("ack-durable", ...)`` per line
with ``ok`` false).  ``AckCheckedProcess`` is a ``Process`` spawning the launcher;
``services_process`` / ``batch_process`` build the usual command lines.  SQLite only:
a framework given ``--store`` (PostgreSQL) cannot be checked this way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mesoslite.testing.processes import Process, free_port
from mesoslite.testing.soak.report import Violation

log = logging.getLogger(__name__)

INVARIANT = "ack-durable"
GONE = "gone"  # the store has no row for the task
UNKNOWN = "unknown"  # an acknowledgement of an update this process never received

# kind -> (table, state of a row whose document has none).  Services' task documents
# omit defaults (msgspec ``omit_defaults``), so a STAGING task's ``data`` has no
# "state"; batch attempts always carry theirs.
STORES: dict[str, tuple[str, str]] = {
    "services": ("services_tasks", "TASK_STAGING"),  # frameworks/services/store.py TASKS
    "batch": ("batch_attempts", "LAUNCHING"),  # frameworks/batch/store.py ATTEMPTS
}
DB_NAMES = {"services": "services.db", "batch": "batch.db"}  # in the work dir

# Mesos states (TASK_*) and batch AttemptStates on one scale; anything else is 3.
_RANKS = {"LAUNCHING": 0, "STAGING": 0, "STARTING": 1, "RUNNING": 2}
# How many update uuids the launcher remembers; old ones were acknowledged long ago
# (a soak sees a few thousand updates), the cap only keeps a leak bounded.
SEEN_MAX = 200_000
# How long a read waits for a lock (WAL readers are not blocked by the writer; this
# covers a checkpoint or a recovery after a kill).
READ_TIMEOUT = 5.0


def rank(state: str) -> int:
    """Where ``state`` (``TASK_RUNNING``, ``RUNNING``, ``gone`` ...) stands on the scale
    LAUNCHING/STAGING 0 < STARTING 1 < RUNNING 2 < everything else 3."""
    return _RANKS.get(state.removeprefix("TASK_"), 3)


def durable_state(kind: str, db: Path, task_id: str) -> str:
    """The task's state as the store file holds it now (``GONE`` without a row).
    Opens the file read-only: the checker must never write the framework's store.
    Raises ``sqlite3.Error`` when it cannot be read."""
    table, default = STORES[kind]
    uri = Path(db).resolve().as_uri() + "?mode=ro"  # as_uri quotes what a URI must
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=READ_TIMEOUT)) as conn:
        row = conn.execute(f"SELECT data FROM {table} WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        return GONE
    return str(json.loads(row[0]).get("state", default))


def _append(log_file: Path | IO[str], line: str) -> None:
    """Append ``line`` and make it durable before returning."""
    if isinstance(log_file, Path):
        with open(log_file, "a") as f:
            _append(f, line)
        return
    log_file.write(line)
    log_file.flush()
    os.fsync(log_file.fileno())


def check_and_log(log_file: Path | IO[str], kind: str, db: Path, task_id: str, uuid: bytes,
                  acked_state: str) -> bool:
    """Read ``task_id``'s durable state from ``db``, append the ack line to
    ``log_file`` (a path, or a text file open for appending) durably, and return
    ``ok``.  Raises ``OSError`` when the line cannot be written: the caller must then
    not acknowledge."""
    try:
        durable = durable_state(kind, db, task_id)
    except sqlite3.Error as exc:
        durable = f"unreadable: {exc}"
    ok = acked_state != UNKNOWN and not durable.startswith("unreadable") \
        and rank(durable) >= rank(acked_state)
    line = json.dumps({"t": time.time(), "kind": kind, "task_id": task_id,
                       "uuid": uuid.hex(), "acked_state": acked_state,
                       "durable_state": durable, "ok": ok})
    _append(log_file, line + "\n")
    return ok


# ------------------------------------------------------------------ the launcher


def install(ack_log: Path, kind: str, db: Path) -> None:
    """Patch the scheduler driver of this process (see the module docstring)."""
    from mesoslite.scheduler import driver as driver_module
    from mesoslite.scheduler.driver import Driver

    seen: OrderedDict[bytes, str] = OrderedDict()  # update uuid -> its state
    real_callback_for = driver_module.callback_for

    # The driver maps every event through ``callback_for`` before the scheduler sees
    # it, so this is where the state an update reports is known with its uuid (the
    # acknowledgement itself carries only the uuid).
    def recording_callback_for(event: Any) -> Any:
        if event.update is not None and event.update.status.uuid:
            status = event.update.status
            seen[status.uuid] = status.state.value
            seen.move_to_end(status.uuid)
            while len(seen) > SEEN_MAX:
                seen.popitem(last=False)
        return real_callback_for(event)

    real_acknowledge = Driver.acknowledge
    # One handle for the process's life: appends with O_APPEND, fsynced per line.
    out = open(ack_log, "a")  # noqa: SIM115 - closed by the process's exit

    async def checked_acknowledge(self: Driver, agent_id: Any, task_id: Any,
                                  uuid: bytes) -> None:
        task = str(getattr(task_id, "value", task_id))
        try:
            check_and_log(out, kind, db, task, uuid, seen.get(uuid, UNKNOWN))
        except OSError as exc:
            # Unrecorded acknowledgements would make the check silently incomplete;
            # an unsent one only makes the agent re-send the update.
            log.warning("ack log %s not writable (%s): not acknowledging task %s",
                        ack_log, exc, task)
            return
        await real_acknowledge(self, agent_id, task_id, uuid)

    driver_module.callback_for = recording_callback_for  # type: ignore[assignment]
    Driver.acknowledge = checked_acknowledge  # type: ignore[method-assign]


def repair_log(path: Path) -> None:
    """Cut a torn last line (a kill in the middle of a write) before appending, so the
    next line does not glue onto it and only the last line of a log can be torn.  The
    torn line's acknowledgement was never sent (it waits for the fsync)."""
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        if data and not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)
            f.flush()
            os.fsync(f.fileno())


def main(argv: list[str] | None = None) -> None:
    """``python -m mesoslite.testing.soak.acks --ack-log P --kind K --db F -- ARGS``."""
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        sys.exit("usage: python -m mesoslite.testing.soak.acks --ack-log PATH "
                 "--kind services|batch --db SQLITE_FILE -- <mesoslite arguments>")
    cut = argv.index("--")
    parser = argparse.ArgumentParser(prog="python -m mesoslite.testing.soak.acks")
    parser.add_argument("--ack-log", type=Path, required=True)
    parser.add_argument("--kind", choices=sorted(STORES), required=True)
    parser.add_argument("--db", type=Path, required=True)
    opts = parser.parse_args(argv[:cut])
    ack_log, db = opts.ack_log.resolve(), opts.db.resolve()
    ack_log.parent.mkdir(parents=True, exist_ok=True)
    repair_log(ack_log)
    install(ack_log, opts.kind, db)
    from mesoslite.cli.main import main as cli_main

    sys.argv = ["mesoslite", *argv[cut + 1:]]
    cli_main()


# ------------------------------------------------------------------ reading the log


def read_ack_log(path: Path) -> list[dict[str, Any]]:
    """Every complete line of the ack log (none if it does not exist yet).  The last
    line is skipped when torn (no newline yet, or not JSON): the launcher may be
    killed, or still writing, as it is read.  A bad line elsewhere raises
    ``ValueError``: the launcher never leaves one there."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    # text ends with "\n" when its last line is complete: then lines[-1] == ""
    complete, tail = lines[:-1], lines[-1]
    out = []
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if number == len(complete) and not tail:
                break  # torn and then terminated by nothing else: treat as torn
            raise ValueError(f"{path}:{number}: not an ack line: {line[:120]!r}") from exc
    return out


def ack_violations(path: Path, since: float = 0.0) -> list[Violation]:
    """One ``ack-durable`` violation per line (at or after ``since``) whose
    acknowledged update was not in the store when it was acknowledged."""
    out = []
    for line in read_ack_log(path):
        if line.get("ok", False) or line.get("t", 0.0) < since:
            continue
        message = (f"{line.get('kind')} acknowledged {line.get('acked_state')} of task "
                   f"{line.get('task_id')} (update {str(line.get('uuid', ''))[:8]}) while "
                   f"its store held {line.get('durable_state')}")
        out.append(Violation(INVARIANT, float(line.get("t", 0.0)), message, dict(line)))
    return out


# ------------------------------------------------------------------ processes


@dataclass(kw_only=True)
class AckCheckedProcess(Process):
    """A framework ``Process`` run through the launcher: same log, environment and
    session as ``Process``; ``ack_log`` receives the ack lines, ``db`` is the
    framework's SQLite store file, ``kind`` "services" or "batch"."""

    ack_log: Path
    kind: str
    db: Path

    def _spawn(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mesoslite.testing.soak.acks",
                 "--ack-log", str(self.ack_log), "--kind", self.kind, "--db", str(self.db),
                 "--", *self.args],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                start_new_session=True,
            )


def _no_store_option(extra: tuple[str, ...]) -> None:
    if any(a == "--store" or a.startswith("--store=") for a in extra):
        raise ValueError("the ack checker reads the SQLite store in the work dir; "
                         "--store cannot be checked")


def services_process(master_urls: list[str], work_dir: Path, ack_log: Path,
                     *extra: str) -> AckCheckedProcess:
    """The services framework on a free port, store ``work_dir/services.db``."""
    _no_store_option(extra)
    port = free_port()
    args = ["services", "--master", ",".join(master_urls), "--host", "127.0.0.1",
            "--port", str(port), "--work-dir", str(work_dir), "--no-dns",
            "--reconcile-interval", "5", *extra]
    work_dir.mkdir(parents=True, exist_ok=True)
    return AckCheckedProcess(args, work_dir / "process.log", port, ack_log=ack_log,
                             kind="services", db=work_dir / DB_NAMES["services"])


def batch_process(master_urls: list[str], work_dir: Path, ack_log: Path,
                  *extra: str) -> AckCheckedProcess:
    """The batch framework (``batch server``) on a free port, store
    ``work_dir/batch.db``."""
    _no_store_option(extra)
    port = free_port()
    args = ["batch", "server", "--master", ",".join(master_urls), "--host", "127.0.0.1",
            "--port", str(port), "--work-dir", str(work_dir), "--reconcile-interval", "5",
            *extra]
    work_dir.mkdir(parents=True, exist_ok=True)
    return AckCheckedProcess(args, work_dir / "process.log", port, ack_log=ack_log,
                             kind="batch", db=work_dir / DB_NAMES["batch"])


if __name__ == "__main__":
    main()
