"""Event -> callback mapping."""

from __future__ import annotations

import pytest

from mesoslite.messages.mesos import (
    ID,
    InverseOffer,
    MasterInfo,
    TaskState,
    TaskStatus,
    TimeInfo,
    Unavailability,
)
from mesoslite.messages.scheduler import (
    Error,
    Event,
    EventMessage,
    EventType,
    Failure,
    InverseOffers,
    Offers,
    Rescind,
    RescindInverseOffer,
    Subscribed,
    Update,
    decode_event,
)
from mesoslite.scheduler.events import callback_for

STATUS = TaskStatus(task_id=ID("t1"), state=TaskState.TASK_RUNNING)
MASTER = MasterInfo(id="m", ip=1, port=5050)
INVERSE = InverseOffer(id=ID("io1"), framework_id=ID("f"), agent_id=ID("a"),
                       unavailability=Unavailability(start=TimeInfo(nanoseconds=1)))


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            Event(EventType.SUBSCRIBED, subscribed=Subscribed(ID("f"), master_info=MASTER)),
            ("subscribed", ("f", MASTER)),
        ),
        (Event(EventType.OFFERS, offers=Offers()), ("offers", ([],))),
        (Event(EventType.OFFERS), ("offers", ([],))),
        (Event(EventType.RESCIND, rescind=Rescind(ID("o"))), ("rescinded", ("o",))),
        (Event(EventType.UPDATE, update=Update(STATUS)), ("update", (STATUS,))),
        (
            Event(EventType.MESSAGE, message=EventMessage(ID("a"), ID("e"), b"x")),
            ("message", ("a", "e", b"x")),
        ),
        (Event(EventType.FAILURE, failure=Failure(ID("a"))), ("failure", ("a", None, None))),
        (Event(EventType.ERROR, error=Error("gone")), ("error", ("gone",))),
        (Event(EventType.INVERSE_OFFERS, inverse_offers=InverseOffers([INVERSE])),
         ("inverse_offers", ([INVERSE],))),
        (Event(EventType.RESCIND_INVERSE_OFFER, rescind_inverse_offer=RescindInverseOffer(
            ID("io1"))), ("inverse_offer_rescinded", ("io1",))),
        (Event(EventType.ERROR), ("error", ("(no message)",))),
    ],
)
def test_callback_for(event: Event, expected: tuple) -> None:
    assert callback_for(event) == expected


@pytest.mark.parametrize(
    "event",
    [
        Event(EventType.HEARTBEAT),
        Event(EventType.INVERSE_OFFERS),
        Event(EventType.SUBSCRIBED),
        Event(EventType.UPDATE),
    ],
)
def test_nothing_to_deliver(event: Event) -> None:
    assert callback_for(event) is None


def test_mesos_json_with_unknown_fields_maps() -> None:
    raw = (
        b'{"type":"UPDATE","update":{"status":{"task_id":{"value":"t1"},'
        b'"state":"TASK_FINISHED","uuid":"AAECAwQFBgcICQoLDA0ODw==",'
        b'"agent_id":{"value":"a1"},"some_future_field":1}}}'
    )
    name, (status,) = callback_for(decode_event(raw))  # type: ignore[misc]
    assert name == "update" and status.uuid == bytes(range(16))
