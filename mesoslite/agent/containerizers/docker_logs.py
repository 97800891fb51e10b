"""Copy a container's stdout/stderr from the engine into the task's sandbox files.

The engine keeps every container's output (json-file driver, see ``docker_spec``);
``LogCopier`` streams it through the logs API with timestamps and appends each entry to
``<sandbox>/stdout`` or ``<sandbox>/stderr``.

The engine stamps and writes each stream from its own goroutine, so *across* streams the
log is not in timestamp order (a stderr line can be written before a stdout line that
was stamped earlier: about one short-lived container in four here); *within* one stream
it is.  What has been copied is therefore a *position per stream*: the timestamp of its
last entry copied, how many of its entries carried exactly that timestamp, and the size
of its sandbox file after them, plus a *floor* (the container's creation time as the
engine reports it: no entry is older).  The engine is asked for the entries ``since``
the older of the two marks (the floor for a stream that has copied nothing yet), and
each entry at or before its own stream's mark is skipped.

The position is written next to the container's other records (atomically, at most
every ``PERSIST_INTERVAL`` s and at the end of every stream), so an agent restarted
after ``kill -9`` truncates the files back to the last recorded position and asks the
engine again: nothing is lost and nothing is copied twice.  What the files held before
the container started (the fetcher's log) is part of the first position, so it stays.

Blocking (the docker SDK is): runs in the container's watcher thread.  Uses the SDK's
low-level request helpers (``_get``, ``_url``, ...) because its public ``logs()``
stream drops the stdout/stderr distinction of the multiplexed stream.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

POSITION_FILE = "logs.json"
PERSIST_INTERVAL = 0.25  # seconds between position writes while output flows
STREAM_STDERR = 2
_TIMESTAMP = re.compile(
    rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$")


def parse_timestamp(text: bytes) -> int:
    """Nanoseconds since the epoch of an RFC 3339 timestamp as the engine writes it."""
    m = _TIMESTAMP.match(text)
    if m is None:
        raise ValueError(f"not a log timestamp: {text[:40]!r}")
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    seconds = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))
    zone = m.group(8)
    if zone != b"Z":
        sign = 1 if zone[:1] == b"+" else -1
        seconds -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    fraction = (m.group(7) or b"").ljust(9, b"0")
    return seconds * 10**9 + int(fraction)


@dataclass
class StreamMark:
    """How far one stream (stdout or stderr) has been copied."""

    ts: int = 0  # ns since the epoch of its last entry copied (0: nothing yet)
    n: int = 0  # its entries copied that carry exactly ``ts``
    size: int = 0  # size of its sandbox file after those entries


@dataclass
class LogPosition:
    """What has been copied: a mark per stream and the floor (see the module docstring)."""

    stdout: StreamMark = field(default_factory=StreamMark)
    stderr: StreamMark = field(default_factory=StreamMark)
    floor: int = 0  # ns: no entry of this container is older (0: unknown)

    def mark(self, stream: int) -> StreamMark:
        return self.stderr if stream == STREAM_STDERR else self.stdout

    def since_param(self) -> str | None:
        """The engine's ``since`` (inclusive): the oldest point either stream may still
        need, or None (from the start) when that is unknown."""
        since = min(m.ts or self.floor for m in (self.stdout, self.stderr))
        if not since:
            return None
        return f"{since // 10**9}.{since % 10**9:09d}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> LogPosition:
        """Read a recorded position.  A position written before marks were per stream
        (``ts``/``n`` shared, sizes as ints) resumes both streams at its ``ts``: at worst
        an entry stamped exactly then is copied twice, never one lost.  Raises
        TypeError/ValueError/KeyError on anything else."""
        if isinstance(doc.get("stdout"), int):
            ts = int(doc["ts"])
            return cls(stdout=StreamMark(ts, 0, int(doc["stdout"])),
                       stderr=StreamMark(ts, 0, int(doc["stderr"])))
        return cls(stdout=StreamMark(**doc["stdout"]), stderr=StreamMark(**doc["stderr"]),
                   floor=int(doc.get("floor", 0)))


class LogCopier:
    """Copies one container's output; see the module docstring.

    ``api`` returns the docker ``APIClient`` to use (called per request);
    ``meta_dir`` holds the position file.  ``interrupt()`` (any thread) ends a
    ``copy()`` in progress at once.
    """

    def __init__(self, api: Callable[[], Any], docker_id: str, sandbox: Path,
                 meta_dir: Path) -> None:
        self._api = api
        self._docker_id = docker_id
        self._paths = {1: sandbox / "stdout", STREAM_STDERR: sandbox / "stderr"}
        self._pos_path = meta_dir / POSITION_FILE
        self.pos = LogPosition()
        self._persisted_at = 0.0
        self._sock: Any = None
        self._lock = threading.Lock()
        self._interrupted = False

    def begin(self) -> None:
        """A new container: what the files hold already (the fetch log, notes written
        before the launch) counts as copied, so a later ``restore`` keeps it."""
        sizes = {s: p.stat().st_size if p.exists() else 0 for s, p in self._paths.items()}
        self.pos = LogPosition(stdout=StreamMark(size=sizes[1]),
                               stderr=StreamMark(size=sizes[STREAM_STDERR]))
        self.persist()

    def note_created(self, created: Any) -> None:
        """The container's ``Created`` time as the engine reports it (its own clock, as
        the entries' stamps are): the floor, so a stream that has copied nothing yet
        need not read the log from the start.  Anything unreadable is ignored."""
        if self.pos.floor or not isinstance(created, str):
            return
        try:
            self.pos.floor = parse_timestamp(created.encode())
        except ValueError:
            pass

    def restore(self) -> None:
        """Resume from the recorded position: files cut back to what it covers."""
        try:
            self.pos = LogPosition.from_json(json.loads(self._pos_path.read_text()))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            self.pos = LogPosition()  # nothing recorded: copy everything again
        for stream, path in self._paths.items():
            with open(path, "ab") as f:  # creates it when missing
                f.truncate(self.pos.mark(stream).size)

    def copy(self, follow: bool) -> None:
        """Copy entries after the position until the stream ends (with ``follow``: until
        the container stops).  Raises what the engine or the files raise."""
        params: dict[str, Any] = {"stdout": 1, "stderr": 1, "timestamps": 1,
                                  "follow": 1 if follow else 0, "tail": "all"}
        if (since := self.pos.since_param()) is not None:
            params["since"] = since
        api = self._api()
        res = api._get(api._url("/containers/{0}/logs", self._docker_id), params=params,
                       stream=True, timeout=None)
        try:
            api._raise_for_status(res)
            sock = api._get_raw_response_socket(res)
            api._disable_socket_timeout(sock)
            with self._lock:
                if self._interrupted:
                    return
                self._sock = sock
            self._copy_frames(res.raw)
        finally:
            with self._lock:
                self._sock = None
            res.close()
            self.persist()

    def _copy_frames(self, raw: Any) -> None:
        files = {s: open(p, "ab", buffering=0) for s, p in self._paths.items()}  # noqa: SIM115
        # The engine's `since` is inclusive: each stream's entries at its mark's
        # timestamp were copied already, and so was everything before it.
        skip = {s: self.pos.mark(s).n for s in self._paths}
        try:
            while True:
                header = _read_exactly(raw, 8)
                if len(header) < 8:
                    return
                stream, length = struct.unpack(">BxxxL", header)
                data = _read_exactly(raw, length)
                if len(data) < length:
                    return
                stamp, _, payload = data.partition(b" ")
                ts = parse_timestamp(stamp)
                stream = STREAM_STDERR if stream == STREAM_STDERR else 1
                mark = self.pos.mark(stream)
                if ts < mark.ts or (ts == mark.ts and skip[stream] > 0):
                    skip[stream] -= ts == mark.ts
                    continue
                self._append(files, stream, ts, payload)
        finally:
            for f in files.values():
                f.close()

    def _append(self, files: dict[int, Any], stream: int, ts: int, payload: bytes) -> None:
        files[stream].write(payload)
        mark = self.pos.mark(stream)
        mark.size += len(payload)
        if ts == mark.ts:
            mark.n += 1
        else:
            mark.ts, mark.n = ts, 1
        if time.monotonic() - self._persisted_at >= PERSIST_INTERVAL:
            self.persist()

    def persist(self) -> None:
        """Write the position (temporary file + rename: never torn; no fsync, as a
        host crash takes the containers with it)."""
        tmp = self._pos_path.with_name(f".{POSITION_FILE}.tmp")
        try:
            tmp.write_text(json.dumps(self.pos.to_json()))
            os.replace(tmp, self._pos_path)
        except OSError:
            return  # the sandbox is gone (garbage collected): nothing left to resume
        self._persisted_at = time.monotonic()

    def interrupt(self) -> None:
        """End ``copy()`` in progress (and any later one) from another thread."""
        with self._lock:
            self._interrupted = True
            sock = self._sock
        if sock is not None:
            try:
                getattr(sock, "_sock", sock).shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _read_exactly(raw: Any, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = raw.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data
