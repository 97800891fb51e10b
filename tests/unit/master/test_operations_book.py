"""The operation book survives a master restart: unacknowledged updates are resent by
the new leader with the same uuid (the pure part of ``master/operations.py``)."""

from __future__ import annotations

import itertools

from mesoslite.master import operations
from mesoslite.messages.mesos import ID, Operation, OperationState, OperationType


class Book:
    """What ``operations`` reads and writes of the master's state."""

    def __init__(self) -> None:
        self.operations: dict = {}
        self.meta_writes: dict[str, str] = {}
        self.sent: list = []
        self._n = itertools.count()

    def next_id(self, kind: str) -> str:
        return f"m-{kind}{next(self._n)}"

    def to_framework(self, framework_id: str, event) -> None:
        self.sent.append((framework_id, event.update_operation_status.status))


def test_unacknowledged_updates_are_resent_with_backoff_and_after_a_restart():
    old = Book()
    op = Operation(type=OperationType.RESERVE, id=ID("r1"))
    operations.report(old, "fw", "a1", op, OperationState.OPERATION_FINISHED, None, mono=0)
    [(_, status)] = old.sent
    assert status.uuid is not None
    operations.resend_due(old, mono=operations.FIRST_RESEND - 1)
    assert len(old.sent) == 1
    operations.resend_due(old, mono=operations.FIRST_RESEND)
    operations.resend_due(old, mono=2 * operations.FIRST_RESEND)  # backoff: not yet
    assert len(old.sent) == 2
    # a new leader loads the book and resends at once, the same uuid
    new = Book()
    operations.recover(new, old.meta_writes[operations.OPERATIONS_META], mono=100)
    operations.resend_due(new, mono=100)
    assert [s.uuid for _, s in new.sent] == [status.uuid]


def test_operations_without_an_id_are_not_tracked():
    book = Book()
    op = Operation(type=OperationType.RESERVE)
    operations.report(book, "fw", "a1", op, OperationState.OPERATION_ERROR, "no", mono=0)
    assert book.operations == {} and book.sent[0][1].uuid is None
