"""LogCopier against a stand-in for the engine's logs endpoint that answers as the engine
does: entries in *file* order (which across stdout and stderr is not timestamp order,
see docker_logs), ``since`` inclusive, the multiplexed frame format."""

from __future__ import annotations

import datetime as dt
import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from mesoslite.agent.containerizers.docker_logs import (
    POSITION_FILE,
    STREAM_STDERR,
    LogCopier,
    LogPosition,
    StreamMark,
)

OUT, ERR = 1, STREAM_STDERR
SECOND = 10**9
T0 = 1_800_000_000 * SECOND  # some time in 2027


def stamp(ns: int) -> bytes:
    whole = dt.datetime.fromtimestamp(ns // SECOND, dt.UTC)
    return f"{whole:%Y-%m-%dT%H:%M:%S}.{ns % SECOND:09d}Z".encode()


class Engine:
    """The logs endpoint of one container: ``entries`` is its json-file in file order."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, int, bytes]] = []  # (stream, ns, payload)
        self.asked: list[dict[str, Any]] = []

    # the docker SDK's low-level helpers LogCopier uses
    def _url(self, path: str, docker_id: str) -> str:
        return path.format(docker_id)

    def _get(self, url: str, params: dict[str, Any], stream: bool, timeout: Any) -> Any:
        self.asked.append(dict(params))
        since = params.get("since")
        floor = 0
        if since is not None:
            whole, frac = since.split(".")
            floor = int(whole) * SECOND + int(frac)
        body = b""
        for stream_no, ns, payload in self.entries:
            if ns < floor:  # the engine skips entries *before* since: since is inclusive
                continue
            data = stamp(ns) + b" " + payload
            body += struct.pack(">BxxxL", stream_no, len(data)) + data
        return _Response(body)

    def _raise_for_status(self, res: Any) -> None:
        pass

    def _get_raw_response_socket(self, res: Any) -> Any:
        return None

    def _disable_socket_timeout(self, sock: Any) -> None:
        pass


class _Response:
    def __init__(self, body: bytes) -> None:
        self.raw = io.BytesIO(body)

    def close(self) -> None:
        pass


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    (tmp_path / "meta").mkdir()
    return tmp_path


def copier(engine: Engine, sandbox: Path) -> LogCopier:
    return LogCopier(lambda: engine, "c1", sandbox, sandbox / "meta")


def files(sandbox: Path) -> tuple[bytes, bytes]:
    return (sandbox / "stdout").read_bytes(), (sandbox / "stderr").read_bytes()


def test_a_line_stamped_before_one_of_the_other_stream_but_written_after_it_is_copied(sandbox):
    # What the engine wrote for `echo to-stdout; echo to-stderr >&2` one time in four:
    # stdout was stamped first, but stderr reached the file first.
    engine = Engine()
    engine.entries = [(ERR, T0 + 20, b"to-stderr\n"), (OUT, T0 + 10, b"to-stdout\n")]
    c = copier(engine, sandbox)
    c.begin()
    c.copy(follow=True)
    assert files(sandbox) == (b"to-stdout\n", b"to-stderr\n")


def test_reopened_streams_copy_each_line_once_whatever_the_interleaving(sandbox):
    engine = Engine()
    c = copier(engine, sandbox)
    c.begin()
    c.note_created(stamp(T0).decode())
    # Three stream openings, each seeing more of the file (as a follow stream that
    # broke twice, or an agent that restarted, would).
    batches = [
        [(OUT, T0 + 5, b"o1\n"), (ERR, T0 + 9, b"e1\n"), (OUT, T0 + 7, b"o2\n")],
        [(ERR, T0 + 9, b"e1b\n"), (OUT, T0 + 12, b"o3\n"), (ERR, T0 + 11, b"e2\n")],
        [(OUT, T0 + 12, b"o3b\n"), (ERR, T0 + 30, b"e3\n"), (OUT, T0 + 20, b"o4\n")],
    ]
    for batch in batches:
        engine.entries += batch
        c.copy(follow=False)
    assert files(sandbox) == (b"o1\no2\no3\no3b\no4\n", b"e1\ne1b\ne2\ne3\n")
    # Each reopening asked for the entries since the older stream's mark.
    assert [a.get("since") for a in engine.asked] == [
        f"{T0 // SECOND}.000000000", f"{T0 // SECOND}.000000007",
        f"{T0 // SECOND}.000000011"]


def test_a_stream_with_nothing_copied_yet_reads_from_the_floor_or_the_start(sandbox):
    engine = Engine()
    engine.entries = [(OUT, T0 + 50, b"o1\n")]
    c = copier(engine, sandbox)
    c.begin()
    c.copy(follow=False)
    c.copy(follow=False)
    assert "since" not in engine.asked[1]  # no floor known: from the start
    c.note_created(stamp(T0 + 3).decode())
    c.copy(follow=False)
    assert engine.asked[2]["since"] == f"{T0 // SECOND}.000000003"
    engine.entries.insert(0, (ERR, T0 + 40, b"e1\n"))  # written late, stamped early
    c.copy(follow=False)
    assert files(sandbox) == (b"o1\n", b"e1\n")


def test_restore_cuts_back_to_the_recorded_marks_and_copies_the_rest_once(sandbox):
    engine = Engine()
    engine.entries = [(OUT, T0 + 1, b"o1\n"), (ERR, T0 + 2, b"e1\n")]
    c = copier(engine, sandbox)
    c.begin()
    c.copy(follow=False)
    # Written after the last recorded position: an agent killed here loses nothing.
    engine.entries += [(ERR, T0 + 4, b"e2\n"), (OUT, T0 + 3, b"o2\n")]
    with open(sandbox / "stdout", "ab") as f:
        f.write(b"o2\n")  # copied, but the position was not persisted yet
    again = copier(engine, sandbox)
    again.restore()
    assert files(sandbox) == (b"o1\n", b"e1\n")
    again.copy(follow=False)
    assert files(sandbox) == (b"o1\no2\n", b"e1\ne2\n")


def test_a_position_recorded_by_an_older_agent_still_resumes(sandbox):
    (sandbox / "stdout").write_bytes(b"o1\nextra")
    (sandbox / "stderr").write_bytes(b"")
    old = {"ts": T0 + 1, "n": 1, "stdout": 3, "stderr": 0}
    (sandbox / "meta" / POSITION_FILE).write_text(json.dumps(old))
    engine = Engine()
    engine.entries = [(OUT, T0 + 1, b"o1\n"), (ERR, T0 + 2, b"e1\n"), (OUT, T0 + 3, b"o2\n")]
    c = copier(engine, sandbox)
    c.restore()
    assert c.pos == LogPosition(stdout=StreamMark(T0 + 1, 0, 3), stderr=StreamMark(T0 + 1, 0, 0))
    c.copy(follow=False)
    # The old format shared one count across streams: the entry stamped exactly at
    # its ts may come twice, nothing is lost.
    assert files(sandbox) == (b"o1\no1\no2\n", b"e1\n")


def test_an_unreadable_position_copies_everything_again(sandbox):
    (sandbox / "stdout").write_bytes(b"junk")
    (sandbox / "meta" / POSITION_FILE).write_text('{"stdout": {"nope": 1}}')
    engine = Engine()
    engine.entries = [(OUT, T0 + 1, b"o1\n")]
    c = copier(engine, sandbox)
    c.restore()
    c.copy(follow=False)
    assert files(sandbox) == (b"o1\n", b"")
