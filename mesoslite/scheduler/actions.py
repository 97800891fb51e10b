"""The driver's call methods, one per Mesos scheduler call.

``CallMethods`` is mixed into ``Driver``; it only builds calls (with
``mesoslite.scheduler.calls``) and hands them to ``send``, which stamps the
framework id and stream id on and POSTs them.  Every method raises
``NotSubscribedError`` while the driver holds no subscription, ``CallError`` when
the master refuses the call (4xx with its message) and ``MasterConnectionError``
when the master cannot be reached.  A 202 means the master accepted the call for
processing, not that it succeeded: failures arrive as events (e.g. TASK_ERROR).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mesoslite.messages.mesos import ExecutorInfo, Filters, Operation, OperationStatus, TaskInfo
from mesoslite.messages.scheduler import Call
from mesoslite.scheduler import calls
from mesoslite.scheduler.calls import IdLike, OfferRef


class CallMethods:
    """Scheduler calls on top of ``send`` (implemented by ``Driver``)."""

    async def send(self, call: Call) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _note_suppression(self, roles: list[str], suppressed: bool) -> None:
        """Record suppressed roles so a re-subscription keeps them suppressed."""

    async def accept(
        self,
        offer_ids: Iterable[OfferRef],
        operations: Sequence[Operation],
        filters: Filters | None = None,
    ) -> None:
        """ACCEPT offers (all from one agent) with ``operations``; what they leave
        unused goes back to the master, refused to this framework for ``filters``."""
        await self.send(calls.accept(offer_ids, operations, filters))

    async def launch(
        self,
        offer_ids: Iterable[OfferRef],
        tasks: Sequence[TaskInfo],
        filters: Filters | None = None,
    ) -> None:
        """ACCEPT with one LAUNCH operation for ``tasks``."""
        await self.accept(offer_ids, [calls.launch_operation(tasks)], filters)

    async def launch_group(
        self,
        offer_ids: Iterable[OfferRef],
        executor: ExecutorInfo,
        tasks: Sequence[TaskInfo],
        filters: Filters | None = None,
    ) -> None:
        """ACCEPT with one LAUNCH_GROUP operation (``tasks`` start together)."""
        await self.accept(offer_ids, [calls.launch_group_operation(executor, tasks)], filters)

    async def decline(
        self, offer_ids: Iterable[OfferRef], refuse_seconds: float | None = None
    ) -> None:
        """DECLINE offers; ``refuse_seconds`` keeps them from this framework that long."""
        await self.send(calls.decline(offer_ids, refuse_seconds))

    async def accept_inverse_offers(self, inverse_offer_ids: Iterable[IdLike],
                                    refuse_seconds: float | None = None) -> None:
        """Tell the operator the resources named by these inverse offers will be
        freed before their unavailability (see ``Scheduler.inverse_offers``)."""
        await self.send(calls.answer_inverse_offers(inverse_offer_ids, True, refuse_seconds))

    async def decline_inverse_offers(self, inverse_offer_ids: Iterable[IdLike],
                                     refuse_seconds: float | None = None) -> None:
        """Tell the operator these resources cannot be freed in time."""
        await self.send(calls.answer_inverse_offers(inverse_offer_ids, False, refuse_seconds))

    async def revive(self, roles: Iterable[str] | None = None) -> None:
        """REVIVE offers for ``roles`` (None: all) and clear their suppression."""
        roles = list(roles or [])
        await self.send(calls.revive(roles))
        self._note_suppression(roles, suppressed=False)

    async def suppress(self, roles: Iterable[str] | None = None) -> None:
        """SUPPRESS offers for ``roles`` (None: all).  Remembered, and sent as
        ``suppressed_roles`` when the driver re-subscribes, until ``revive``."""
        roles = list(roles or [])
        await self.send(calls.suppress(roles))
        self._note_suppression(roles, suppressed=True)

    async def kill(
        self, task_id: IdLike, agent_id: IdLike | None = None, grace_period: float | None = None
    ) -> None:
        """KILL a task; ``grace_period`` (s) between SIGTERM and SIGKILL, if given."""
        await self.send(calls.kill(task_id, agent_id, grace_period))

    async def shutdown(self, executor_id: IdLike, agent_id: IdLike) -> None:
        """SHUTDOWN an executor (and so all its tasks)."""
        await self.send(calls.shutdown(executor_id, agent_id))

    async def acknowledge(self, agent_id: IdLike, task_id: IdLike, uuid: bytes) -> None:
        """Acknowledge a status update (needed only with implicit acknowledgements off)."""
        await self.send(calls.acknowledge(agent_id, task_id, uuid))

    async def acknowledge_operation_status(self, status: OperationStatus) -> None:
        """Acknowledge an operation status update that carries a uuid (needed only with
        implicit acknowledgements off)."""
        await self.send(calls.acknowledge_operation_status(status))

    async def reconcile_operations(
            self, operations: Iterable[tuple[IdLike, IdLike | None]] | None = None) -> None:
        """Ask for the latest status of ``(operation_id, agent_id | None)`` pairs, or of
        every operation the master tracks for this framework; answers arrive as
        ``operation_update`` callbacks, without a uuid."""
        await self.send(calls.reconcile_operations(operations))

    async def reconcile(self, tasks: Iterable[tuple[IdLike, IdLike | None]] | None = None) -> None:
        """Ask for the latest state of ``(task_id, agent_id | None)`` pairs, or of every
        task the master knows (None or empty); answers arrive as ``update`` callbacks."""
        await self.send(calls.reconcile(tasks))

    async def message(self, agent_id: IdLike, executor_id: IdLike, data: bytes) -> None:
        """Send ``data`` to one of this framework's executors."""
        await self.send(calls.message(agent_id, executor_id, data))

    async def teardown(self) -> None:
        """Remove the framework from the master (its tasks are killed), then stop."""
        await self.send(calls.teardown())
        self.stop()
