"""Which ``Scheduler`` callback an ``Event`` becomes, and with what arguments.

Pure: the driver decodes an event, asks ``callback_for`` and calls
``getattr(scheduler, name)(driver, *args)``.  Identifiers are unwrapped to plain
strings; offers and task statuses stay typed structs.
"""

from __future__ import annotations

from mesoslite.messages.scheduler import Event, EventType

Callback = tuple[str, tuple[object, ...]]


def callback_for(event: Event) -> Callback | None:
    """``(callback name, arguments after the driver)`` for ``event``, or None when
    there is nothing to deliver (HEARTBEAT, event types the API does not surface,
    or an event missing its payload)."""
    t = event.type
    if t == EventType.SUBSCRIBED and event.subscribed is not None:
        sub = event.subscribed
        return "subscribed", (sub.framework_id.value, sub.master_info)
    if t == EventType.OFFERS:
        return "offers", (list(event.offers.offers) if event.offers else [],)
    if t == EventType.RESCIND and event.rescind is not None:
        return "rescinded", (event.rescind.offer_id.value,)
    if t == EventType.INVERSE_OFFERS and event.inverse_offers is not None:
        return "inverse_offers", (list(event.inverse_offers.inverse_offers),)
    if t == EventType.RESCIND_INVERSE_OFFER and event.rescind_inverse_offer is not None:
        return "inverse_offer_rescinded", (event.rescind_inverse_offer.inverse_offer_id.value,)
    if t == EventType.UPDATE and event.update is not None:
        return "update", (event.update.status,)
    if t == EventType.MESSAGE and event.message is not None:
        m = event.message
        return "message", (m.agent_id.value, m.executor_id.value, m.data)
    if t == EventType.FAILURE and event.failure is not None:
        f = event.failure
        agent = f.agent_id.value if f.agent_id else None
        executor = f.executor_id.value if f.executor_id else None
        return "failure", (agent, executor, f.status)
    if t == EventType.UPDATE_OPERATION_STATUS and event.update_operation_status is not None:
        return "operation_update", (event.update_operation_status.status,)
    if t == EventType.ERROR:
        return "error", (event.error.message if event.error else "(no message)",)
    return None
