"""Copy a container's stdout/stderr from the engine into the task's sandbox files.

The engine keeps every container's output (json-file driver, see ``docker_spec``);
``LogCopier`` streams it through the logs API with timestamps and appends each entry to
``<sandbox>/stdout`` or ``<sandbox>/stderr``.  What has been copied is a *position*:
the timestamp of the last entry copied, how many entries carried exactly that
timestamp, and the size of both files after it.  The position is written next to the
container's other records (atomically, at most every ``PERSIST_INTERVAL`` s and at the
end of every stream), so an agent restarted after ``kill -9`` truncates the files back
to the last recorded position and asks the engine for the entries ``since`` that
timestamp: nothing is lost and nothing is copied twice.  What the files held before
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
from dataclasses import asdict, dataclass
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
class LogPosition:
    ts: int = 0  # ns since the epoch of the last entry copied (0: nothing yet)
    n: int = 0  # entries copied that carry exactly ``ts``
    stdout: int = 0  # size of the sandbox's stdout file after those entries
    stderr: int = 0

    def since_param(self) -> str | None:
        if not self.ts:
            return None
        return f"{self.ts // 10**9}.{self.ts % 10**9:09d}"


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
        self.pos = LogPosition(stdout=sizes[1], stderr=sizes[STREAM_STDERR])
        self.persist()

    def restore(self) -> None:
        """Resume from the recorded position: files cut back to what it covers."""
        try:
            self.pos = LogPosition(**json.loads(self._pos_path.read_text()))
        except (OSError, ValueError, TypeError):
            self.pos = LogPosition()  # nothing recorded: copy everything again
        for stream, path in self._paths.items():
            size = self.pos.stderr if stream == STREAM_STDERR else self.pos.stdout
            with open(path, "ab") as f:  # creates it when missing
                f.truncate(size)

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
        skip = self.pos.n  # the engine's `since` is inclusive: these were copied already
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
                if ts < self.pos.ts or (ts == self.pos.ts and skip > 0):
                    skip -= ts == self.pos.ts
                    continue
                self._append(files, stream, ts, payload)
        finally:
            for f in files.values():
                f.close()

    def _append(self, files: dict[int, Any], stream: int, ts: int, payload: bytes) -> None:
        stream = STREAM_STDERR if stream == STREAM_STDERR else 1
        files[stream].write(payload)
        pos = self.pos
        if stream == STREAM_STDERR:
            pos.stderr += len(payload)
        else:
            pos.stdout += len(payload)
        if ts == pos.ts:
            pos.n += 1
        else:
            pos.ts, pos.n = ts, 1
        if time.monotonic() - self._persisted_at >= PERSIST_INTERVAL:
            self.persist()

    def persist(self) -> None:
        """Write the position (temporary file + rename: never torn; no fsync, as a
        host crash takes the containers with it)."""
        tmp = self._pos_path.with_name(f".{POSITION_FILE}.tmp")
        try:
            tmp.write_text(json.dumps(asdict(self.pos)))
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
