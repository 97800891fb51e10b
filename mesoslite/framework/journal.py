"""One journal per framework: group commit, and acknowledgements that wait for it.

``Journal`` is the pure half (no I/O): the framework's state records what changed
(``put`` / ``delete``, by table and key) and the core files the acknowledgement of
every status update with a uuid (``acknowledge_after_write``).  Both land in the
*generation* being filled.  The runner ``take``s a generation, writes it to the store
in one transaction, and only then calls ``committed``, which is the one place an
``Acknowledge`` can be made: its constructor wants a ``Receipt``, and only this
module can issue one.  So an acknowledgement cannot go out before the write that
holds its update, by construction rather than by convention.

Why generations: an update folded in while generation N is being written is not in
N; its acknowledgement is filed with N + 1 and waits for that write.  Generations are
written one at a time, in order, so an acknowledgement never overtakes an earlier
write either (a retransmitted update whose first copy is still being written waits
behind it).

Values are encoded to rows when their generation is taken, on the caller's thread:
a record changed five times in one generation is encoded once, and the store's
worker thread never reads an object the event loop may be changing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, ...]
Row = dict[str, Any]
Encoder = Callable[[Any], Row]

_ISSUER = object()  # only this module can make a Receipt


class Receipt:
    """Proof that generation ``generation`` of a journal is durable."""

    __slots__ = ("generation",)

    def __init__(self, generation: int, issuer: object) -> None:
        if issuer is not _ISSUER:
            raise TypeError("only a Journal issues receipts, once a write is durable")
        self.generation = generation

    def __repr__(self) -> str:
        return f"Receipt({self.generation})"


@dataclass(frozen=True, slots=True)
class Acknowledge:
    """Acknowledge a status update: made by ``Journal.committed`` only."""

    agent_id: str
    task_id: str
    uuid: bytes
    receipt: Receipt

    def __post_init__(self) -> None:
        if not isinstance(self.receipt, Receipt):
            raise TypeError("an Acknowledge needs the Receipt of the write holding its update")


@dataclass
class Batch:
    """One generation, taken for writing: ``rows[table][key]`` is the row to upsert,
    or None to delete."""

    generation: int
    rows: dict[str, dict[Key, Row | None]]
    acks: list[tuple[str, str, bytes]]
    notes: list[Any] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any(self.rows.values())


@dataclass
class _Generation:
    values: dict[str, dict[Key, Any]] = field(default_factory=dict)  # None: delete
    acks: list[tuple[str, str, bytes]] = field(default_factory=list)
    notes: list[Any] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.acks or self.notes) or any(self.values.values())


class Journal:
    """See the module docstring.  ``encoders`` maps each table name to the function
    turning a value put there into its row (the columns the store writes);
    ``meta_table`` names a table of ``key``/``value`` text columns for ``put_meta``
    (the framework id, say)."""

    def __init__(self, encoders: Mapping[str, Encoder] | None = None,
                 meta_table: str | None = None) -> None:
        self.encoders = dict(encoders or {})
        self.meta_table = meta_table
        if meta_table is not None:
            self.encoders[meta_table] = lambda item: {"key": item[0], "value": item[1]}
        self._open = _Generation()
        self._generation = 0  # the number of the generation being filled
        self._in_flight: int | None = None
        self.commits = 0

    # ------------------------------------------------------------ recording

    def put(self, table: str, key: str | Key, value: Any) -> None:
        """Write ``value`` (encoded by the table's encoder) under ``key``."""
        if table not in self.encoders:
            raise KeyError(f"no table {table!r} in this journal")
        self._open.values.setdefault(table, {})[_key(key)] = value

    def delete(self, table: str, key: str | Key) -> None:
        if table not in self.encoders:
            raise KeyError(f"no table {table!r} in this journal")
        self._open.values.setdefault(table, {})[_key(key)] = None

    def put_meta(self, key: str, value: str) -> None:
        """Write ``value`` under ``key`` in the meta table (none: nothing to keep)."""
        if self.meta_table is not None:
            self.put(self.meta_table, key, (key, value))

    def acknowledge_after_write(self, agent_id: str, task_id: str, uuid: bytes) -> None:
        """File the acknowledgement of an update just folded into the state: it is
        released with the generation being filled, once that is durable."""
        self._open.acks.append((agent_id, task_id, uuid))

    def note(self, item: Any) -> None:
        """Keep ``item`` (an event to announce, say) until the generation being filled
        is durable: the runner hands it on with that generation's ``notes``."""
        self._open.notes.append(item)

    @property
    def pending(self) -> bool:
        """Whether anything waits to be taken (writes or acknowledgements)."""
        return bool(self._open)

    # ------------------------------------------------------------ committing

    def take(self) -> Batch | None:
        """The open generation, encoded, for the store; None when nothing waits.
        One generation at a time: ``committed`` (or ``failed``) must come first."""
        if self._in_flight is not None:
            raise RuntimeError(f"generation {self._in_flight} is still being written")
        if not self._open:
            return None
        gen, self._open = self._open, _Generation()
        number = self._generation
        self._generation += 1
        self._in_flight = number
        rows = {table: {k: (None if v is None else self.encoders[table](v))
                        for k, v in values.items()}
                for table, values in gen.values.items() if values}
        return Batch(number, rows, gen.acks, gen.notes)

    def committed(self, batch: Batch) -> list[Acknowledge]:
        """``batch`` is durable: the acknowledgements filed with it may go now."""
        if batch.generation != self._in_flight:
            raise RuntimeError(f"generation {batch.generation} was not the one taken")
        self._in_flight = None
        self.commits += 1
        receipt = Receipt(batch.generation, _ISSUER)
        return [Acknowledge(a, t, u, receipt) for a, t, u in batch.acks]


def _key(key: str | Key) -> Key:
    return (key,) if isinstance(key, str) else tuple(key)
