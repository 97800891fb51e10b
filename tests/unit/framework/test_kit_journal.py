"""The kit's journal: acknowledgements leave only with the receipt of their write."""

from __future__ import annotations

import pytest

from mesoslite.framework import Acknowledge, Journal, Receipt


def journal() -> Journal:
    return Journal({"tasks": lambda t: {"id": t["id"], "state": t["state"]}})


def test_a_receipt_cannot_be_made_outside_the_journal() -> None:
    with pytest.raises(TypeError, match="only a Journal"):
        Receipt(0, object())
    with pytest.raises(TypeError, match="Receipt"):
        Acknowledge("a1", "t1", b"u", receipt=0)  # type: ignore[arg-type]


def test_an_update_folded_in_during_a_write_waits_for_the_next_one() -> None:
    j = journal()
    task = {"id": "t1", "state": "RUNNING"}
    j.put("tasks", "t1", task)
    j.acknowledge_after_write("a1", "t1", b"running")
    first = j.take()
    assert first is not None
    # while ``first`` is being written, the task fails and its update is folded in
    task = {"id": "t1", "state": "FAILED"}
    j.put("tasks", "t1", task)
    j.acknowledge_after_write("a1", "t1", b"failed")
    acks = j.committed(first)
    assert [a.uuid for a in acks] == [b"running"]  # not the update the write lacks
    second = j.take()
    assert second is not None and second.rows["tasks"][("t1",)] == task
    assert [a.uuid for a in j.committed(second)] == [b"failed"]
    assert j.take() is None


def test_generations_are_written_one_at_a_time_and_in_order() -> None:
    j = journal()
    j.put("tasks", "t1", {"id": "t1", "state": "RUNNING"})
    batch = j.take()
    assert batch is not None
    j.acknowledge_after_write("a1", "t1", b"again")  # a retransmission, nothing to write
    with pytest.raises(RuntimeError, match="still being written"):
        j.take()
    j.committed(batch)
    follow = j.take()
    assert follow is not None and not follow  # no rows, but it waits its turn
    assert [a.uuid for a in j.committed(follow)] == [b"again"]
    with pytest.raises(RuntimeError):
        j.committed(follow)  # a generation is released once


def test_values_are_encoded_when_taken_and_notes_go_with_their_generation() -> None:
    j = journal()
    task = {"id": "t1", "state": "STAGING"}
    j.put("tasks", "t1", task)
    j.note("task staged")
    task["state"] = "RUNNING"  # changed again before the write: written once, as it is now
    j.delete("tasks", "t2")
    batch = j.take()
    assert batch is not None
    assert batch.rows == {"tasks": {("t1",): {"id": "t1", "state": "RUNNING"}, ("t2",): None}}
    assert batch.notes == ["task staged"]
    with pytest.raises(KeyError, match="no table"):
        j.put("nope", "x", {})
