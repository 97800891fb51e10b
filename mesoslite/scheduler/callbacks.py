"""The ``Scheduler`` callback interface a framework implements.

Subclass ``Scheduler`` and override the callbacks you need; every default does
nothing.  Callbacks may be ``async def`` (recommended) or plain methods.  The driver
calls them one at a time, in the order the master sent the events, and waits for
each to finish before reading the next event, so a callback sees a consistent
world but must not block the event loop for long (offload heavy work with
``asyncio.to_thread``).  A callback that raises is logged and the driver carries on;
an ``update`` callback that raises is not acknowledged, so the agent re-sends it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesoslite.messages.mesos import (
    InverseOffer,
    MasterInfo,
    Offer,
    OperationStatus,
    TaskStatus,
)

if TYPE_CHECKING:
    from mesoslite.scheduler.driver import Driver


class Scheduler:
    """Base class for framework schedulers (asyncio); override what you need."""

    async def subscribed(
        self, driver: Driver, framework_id: str, master_info: MasterInfo | None
    ) -> None:
        """The master accepted SUBSCRIBE (first time or after a re-subscription).

        ``framework_id`` is stable across re-subscriptions; persist it if the
        framework must fail over to a new process (pass it back in
        ``FrameworkInfo.id``).  A good place to ``reconcile`` tasks.
        """

    async def disconnected(self, driver: Driver) -> None:
        """The event stream was lost (dropped, or heartbeats missed).

        Outstanding offers are void; the driver re-subscribes by itself and calls
        ``subscribed`` again when it succeeds.  Calls fail until then.
        """

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        """New resource offers.  Accept, launch into or decline each one: an offer
        left alone stays allocated to this framework until the master rescinds it."""

    async def rescinded(self, driver: Driver, offer_id: str) -> None:
        """An offer is no longer valid; operations on it will fail."""

    async def inverse_offers(self, driver: Driver, inverse_offers: list[InverseOffer]) -> None:
        """The master asks for this framework's resources on some agents back: their
        machines are scheduled for maintenance (``unavailability``).  Answer with
        ``driver.accept_inverse_offers`` (the tasks will be moved off in time) or
        ``driver.decline_inverse_offers`` (they cannot): the operator sees the
        answer.  Unanswered (the default), the operator sees UNKNOWN."""

    async def inverse_offer_rescinded(self, driver: Driver, inverse_offer_id: str) -> None:
        """An inverse offer was withdrawn (the schedule changed, the agent went)."""

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        """A task status update.  With implicit acknowledgements (the default) the
        driver acknowledges it after this returns; otherwise call
        ``driver.acknowledge`` for every status with a ``uuid``."""

    async def message(self, driver: Driver, agent_id: str, executor_id: str, data: bytes) -> None:
        """A framework message sent by one of this framework's executors."""

    async def failure(
        self, driver: Driver, agent_id: str | None, executor_id: str | None, status: int | None
    ) -> None:
        """An agent was lost (``executor_id`` is None) or an executor terminated
        (``status`` is its wait status)."""

    async def operation_update(self, driver: Driver, status: OperationStatus) -> None:
        """An offer operation (RESERVE, UNRESERVE, CREATE, DESTROY) was refused
        (``OPERATION_ERROR``, with the reason) or, when it carried an ``id``, done."""

    async def error(self, driver: Driver, message: str) -> None:
        """The master reported an unrecoverable error (e.g. the framework was torn
        down).  Unless the driver was created with ``abort_on_error=False`` it stops
        after this returns and ``Driver.run`` raises ``DriverAborted``."""
