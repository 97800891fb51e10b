"""Incremental parser for Mesos' RecordIO framing.

A RecordIO stream is a sequence of records, each ``<decimal byte length>\\n<payload>``.
HTTP delivers the stream in chunks that split records (and even the length header)
at arbitrary byte boundaries, so the parser keeps whatever it has not yet been able
to complete and returns only whole records.

Contract: feeding the bytes of a well-formed stream in any split yields exactly the
records that were encoded, in order.  A malformed header (not digits, too long) or a
record longer than ``max_record_size`` raises ``RecordIOError``; after that the
framing is lost and the parser must be discarded with its connection.
"""

from __future__ import annotations

# A length header longer than this many digits cannot describe a sane record; failing
# early stops a garbage stream from being buffered forever while we wait for "\n".
_MAX_HEADER_DIGITS = 20


class RecordIOError(ValueError):
    """The byte stream is not valid RecordIO."""


def encode(record: bytes) -> bytes:
    """Frame one record: its byte length in decimal, a newline, then the bytes."""
    return str(len(record)).encode("ascii") + b"\n" + record


class RecordIOParser:
    """Turns arbitrary chunks of a RecordIO stream into whole records."""

    def __init__(self, max_record_size: int = 64 * 1024 * 1024) -> None:
        self.max_record_size = max_record_size
        self._buffer = bytearray()
        self._length: int | None = None  # length of the record being read, once known

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a whole record."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the records it completed (possibly none)."""
        self._buffer += data
        records: list[bytes] = []
        pos = 0
        buf = self._buffer
        while True:
            if self._length is None:
                newline = buf.find(b"\n", pos)
                if newline < 0:
                    self._check_partial_header(buf, pos)
                    break
                self._length = self._parse_header(bytes(buf[pos:newline]))
                pos = newline + 1
            end = pos + self._length
            if end > len(buf):
                break
            records.append(bytes(buf[pos:end]))
            pos = end
            self._length = None
        # One compaction per feed keeps this linear in the bytes received.
        del buf[:pos]
        return records

    def _parse_header(self, header: bytes) -> int:
        if not header or not header.isdigit() or len(header) > _MAX_HEADER_DIGITS:
            raise RecordIOError(f"invalid RecordIO length header {header[:32]!r}")
        length = int(header)
        if length > self.max_record_size:
            raise RecordIOError(
                f"RecordIO record of {length} bytes exceeds the limit of "
                f"{self.max_record_size} bytes"
            )
        return length

    @staticmethod
    def _check_partial_header(buf: bytearray, pos: int) -> None:
        tail = bytes(buf[pos:])
        if len(tail) > _MAX_HEADER_DIGITS or (tail and not tail.isdigit()):
            raise RecordIOError(f"invalid RecordIO length header {tail[:32]!r}")
