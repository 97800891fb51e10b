"""A framework for tests: records every event and lets the test decide what to do.

``RecordingFramework`` runs a ``Driver`` in the background; the test reads what it
received (offers, updates, rescinds, errors) and polls with ``wait_for``.  Offers are
kept until the test uses them, so a test can accept, decline or hold each one.
"""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Callable

from mesoslite.messages.mesos import (
    ID,
    CapabilityType,
    Filters,
    FrameworkCapability,
    FrameworkInfo,
    InverseOffer,
    MasterInfo,
    Offer,
    OperationStatus,
    TaskInfo,
    TaskState,
    TaskStatus,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import Driver, Scheduler, offer_resources, task_info
from mesoslite.testing.poll import wait_for, within


class RecordingScheduler(Scheduler):
    def __init__(self) -> None:
        self.framework_ids: list[str] = []
        self.open_offers: dict[str, Offer] = {}  # outstanding, by offer id
        self.all_offers: list[Offer] = []
        self.rescinds: list[str] = []
        self.inverse_offers_got: list[InverseOffer] = []  # INVERSE_OFFERS events
        self.inverse_rescinds: list[str] = []
        self.updates: list[TaskStatus] = []
        self.errors: list[str] = []
        self.operations: list[OperationStatus] = []  # UPDATE_OPERATION_STATUS events
        self.disconnects = 0
        self.messages: list[tuple[str, str, bytes]] = []  # (agent, executor, data)
        self.failures: list[tuple[str | None, str | None, int | None]] = []
        self.on_update: Callable[[TaskStatus], None] | None = None

    async def subscribed(self, driver: Driver, framework_id: str, master_info: MasterInfo | None
                         ) -> None:
        self.framework_ids.append(framework_id)

    async def disconnected(self, driver: Driver) -> None:
        self.disconnects += 1
        self.open_offers.clear()

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        for offer in offers:
            self.open_offers[offer.id.value] = offer
            self.all_offers.append(offer)

    async def rescinded(self, driver: Driver, offer_id: str) -> None:
        self.rescinds.append(offer_id)
        self.open_offers.pop(offer_id, None)

    async def inverse_offers(self, driver: Driver, inverse_offers: list[InverseOffer]) -> None:
        self.inverse_offers_got.extend(inverse_offers)

    async def inverse_offer_rescinded(self, driver: Driver, inverse_offer_id: str) -> None:
        self.inverse_rescinds.append(inverse_offer_id)

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        self.updates.append(status)
        if self.on_update is not None:
            self.on_update(status)

    async def error(self, driver: Driver, message: str) -> None:
        self.errors.append(message)

    async def message(self, driver: Driver, agent_id: str, executor_id: str, data: bytes
                      ) -> None:
        self.messages.append((agent_id, executor_id, data))

    async def failure(self, driver: Driver, agent_id: str | None, executor_id: str | None,
                      status: int | None) -> None:
        self.failures.append((agent_id, executor_id, status))

    async def operation_update(self, driver: Driver, status: OperationStatus) -> None:
        self.operations.append(status)

    # -- queries ----------------------------------------------------------------

    def states(self, task_id: str) -> list[TaskState]:
        """The task's states in order; a retransmitted update (same uuid: delivery is
        at-least-once) counts once."""
        seen: set[bytes] = set()
        out = []
        for u in self.updates:
            if u.task_id.value != task_id or (u.uuid is not None and u.uuid in seen):
                continue
            if u.uuid is not None:
                seen.add(u.uuid)
            out.append(u.state)
        return out

    def last(self, task_id: str) -> TaskStatus | None:
        for status in reversed(self.updates):
            if status.task_id.value == task_id:
                return status
        return None


class RecordingFramework:
    def __init__(
        self,
        master: str,
        name: str = "test",
        partition_aware: bool = True,
        failover_timeout: float = 60.0,
        roles: list[str] | None = None,
        framework_id: str | None = None,
        implicit_acks: bool = True,
        extra_capabilities: list[CapabilityType] | None = None,
        user: str | None = None,
    ) -> None:
        caps = list(extra_capabilities or [])
        if partition_aware:
            caps.append(CapabilityType.PARTITION_AWARE)
        if roles and len(roles) > 1:
            caps.append(CapabilityType.MULTI_ROLE)
        self.info = FrameworkInfo(
            user=getpass.getuser() if user is None else user, name=name, failover_timeout=failover_timeout,
            id=ID(framework_id) if framework_id else None,
            roles=roles if roles and len(roles) > 1 else [],
            role=roles[0] if roles and len(roles) == 1 else None,
            capabilities=[FrameworkCapability(type=c) for c in caps],
        )
        self.sched = RecordingScheduler()
        self.driver = Driver(self.sched, self.info, master, implicit_acknowledgements=implicit_acks)
        self._run: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self.sched.framework_ids[-1]

    async def start(self, timeout: float = 10.0) -> RecordingFramework:
        self._run = asyncio.create_task(self.driver.run())
        await wait_for(lambda: self.sched.framework_ids or (self._run and self._run.done()),
                       timeout, message="SUBSCRIBED")
        if self._run.done():
            self._run.result()  # raise what ended it
        return self

    async def stop(self) -> None:
        """Stop the driver (the framework stays registered until its failover timeout)."""
        self.driver.stop()
        if self._run is not None:
            # how the driver ended is not the point here, but a stop that hangs is
            await within(10, "the test framework's driver to stop",
                         asyncio.wait({self._run}))

    # -- conveniences -------------------------------------------------------------

    async def offer(self, agent_id: str | None = None, timeout: float = 10.0) -> Offer:
        """An outstanding offer (for ``agent_id`` if given), waiting for one to come."""
        def pick() -> Offer | None:
            for offer in self.sched.open_offers.values():
                if agent_id is None or offer.agent_id.value == agent_id:
                    return offer
            return None

        return await wait_for(pick, timeout, message=f"an offer for {agent_id or 'any agent'}")

    async def launch(self, offer: Offer, tasks: list[TaskInfo], refuse_seconds: float | None = None
                     ) -> None:
        self.sched.open_offers.pop(offer.id.value, None)
        filters = Filters(refuse_seconds=refuse_seconds) if refuse_seconds is not None else None
        await self.driver.launch([offer], tasks, filters)

    async def run_task(self, task_id: str, cmd: str, cpus: float = 0.1, mem: float = 32.0,
                       agent_id: str | None = None, ports: int = 0, **kwargs: object) -> Offer:
        """Launch one shell task into the next suitable offer (taking ``ports`` host
        ports from it); returns the offer used."""
        need = Resources.of(cpus=cpus, mem=mem)

        def fits(o: Offer) -> bool:
            free = offer_resources(o)
            return need <= free and len(free.port_list()) >= ports

        offer = await wait_for(lambda: next(
            (o for o in self.sched.open_offers.values()
             if (agent_id is None or o.agent_id.value == agent_id) and fits(o)), None),
            message=f"an offer fitting {task_id}")
        chosen = offer_resources(offer).take_ports(ports).port_list() if ports else []
        task = task_info(task_id, task_id, offer.agent_id, cmd=cmd, cpus=cpus, mem=mem,
                         ports=chosen, **kwargs)  # type: ignore[arg-type]
        await self.launch(offer, [task])
        return offer

    async def wait_state(self, task_id: str, state: TaskState, timeout: float = 15.0
                         ) -> TaskStatus:
        def seen() -> TaskStatus | None:
            for status in self.sched.updates:
                if status.task_id.value == task_id and status.state == state:
                    return status
            return None

        try:
            return await wait_for(seen, timeout, message=f"{task_id} to reach {state.value}")
        except AssertionError as exc:
            states = [s.value for s in self.sched.states(task_id)]
            last = self.sched.last(task_id)
            detail = (f" (last: {last.reason.value if last.reason else '-'}: {last.message})"
                      if last is not None else "")
            raise AssertionError(f"{exc}; states seen: {states}{detail}") from None

