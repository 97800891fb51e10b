"""The incremental RecordIO parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesoslite.messages.scheduler import HEARTBEAT, encode_record
from mesoslite.scheduler.recordio import RecordIOError, RecordIOParser, encode

records = st.lists(st.binary(max_size=300), max_size=12)


@st.composite
def split_stream(draw: st.DrawFn) -> tuple[list[bytes], list[bytes]]:
    """Records, and their encoded stream cut at arbitrary byte offsets."""
    items = draw(records)
    data = b"".join(encode(r) for r in items)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=20)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    return items, pieces


@given(split_stream())
def test_any_split_yields_the_records(case: tuple[list[bytes], list[bytes]]) -> None:
    items, pieces = case
    parser = RecordIOParser()
    out: list[bytes] = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    assert out == items
    assert parser.pending == 0


@given(records)
def test_byte_at_a_time(items: list[bytes]) -> None:
    data = b"".join(encode(r) for r in items)
    parser = RecordIOParser()
    out = [r for i in range(len(data)) for r in parser.feed(data[i : i + 1])]
    assert out == items


def test_matches_the_master_encoder() -> None:
    record = encode_record(HEARTBEAT)
    assert RecordIOParser().feed(record + record[:3]) == [b'{"type":"HEARTBEAT"}']


def test_partial_record_is_kept() -> None:
    parser = RecordIOParser()
    assert parser.feed(b"5\nab") == []
    assert parser.pending == 2
    assert parser.feed(b"cde7\n") == [b"abcde"]
    assert parser.feed(b"1234567") == [b"1234567"]


def test_zero_length_record() -> None:
    assert RecordIOParser().feed(b"0\n2\n{}") == [b"", b"{}"]


@pytest.mark.parametrize("data", [b"x\n", b"-1\n", b"\n", b"1 2\n", b"12a", b"9" * 21])
def test_malformed_header(data: bytes) -> None:
    with pytest.raises(RecordIOError, match="length header"):
        RecordIOParser().feed(data)


def test_oversized_record_rejected_before_buffering() -> None:
    with pytest.raises(RecordIOError, match="exceeds"):
        RecordIOParser(max_record_size=10).feed(b"11\n")
