"""Offers: turning allocations into OFFERS events, and taking them back.

An offer holds its resources in the allocator (as allocated to its framework) until
it is accepted, declined, rescinded or times out; every path out of an offer
returns the unused resources to the allocator exactly once.
"""

from __future__ import annotations

from mesoslite.master.core import MasterCore
from mesoslite.master.maintenance import MaintenanceBook
from mesoslite.master.model import AgentRecord, AgentState, OfferRecord
from mesoslite.master.reservations import offer_resources, task_volume_ids
from mesoslite.messages.attributes import mesos_attributes
from mesoslite.messages.mesos import (
    ID,
    URL,
    AllocationInfo,
    Offer,
    from_resources,
)
from mesoslite.messages.scheduler import Event, EventType, Offers, Rescind
from mesoslite.resources import Resources


class OfferOps(MasterCore):
    offers_by_agent: dict[str, set[str]]
    offers_by_framework: dict[str, set[str]]
    maintenance: MaintenanceBook

    def _init_offers(self) -> None:
        self.offers_by_agent = {}
        self.offers_by_framework = {}
        self.maintenance = MaintenanceBook()

    def allocate(self, now: float, mono: float, full: bool) -> int:
        """Run an allocation round and send the offers; returns how many were made.

        ``full`` considers every agent; otherwise only agents whose resources changed
        since the last round.
        """
        if full:
            agent_ids = None
        else:
            if not self.changed_agents:
                return 0
            agent_ids = [a for a in self.changed_agents if a in self.agents]
        self.changed_agents = set()
        self.counters["allocation_rounds"] += 1
        allocations = self.allocator.allocate(mono, agent_ids)
        by_framework: dict[str, list[Offer]] = {}
        made: dict[tuple[str, str, str], OfferRecord] = {}
        for alloc in allocations:
            agent = self.agents.get(alloc.agent_id)
            fw = self.frameworks.get(alloc.framework_id)
            if agent is None or fw is None or agent.state != AgentState.ACTIVE or not fw.connected:
                # Cannot happen while the allocator mirrors our states; be safe anyway.
                self.allocator.recover(alloc.framework_id, alloc.role, alloc.agent_id,
                                       alloc.resources, mono, reservation=alloc.reservation)
                continue
            key = (fw.id, alloc.role, agent.id)
            offer = made.get(key)
            if offer is None:  # one offer per (framework, role, agent): reserved + not
                offer = made[key] = OfferRecord(
                    id=self.next_id("O"), framework_id=fw.id, agent_id=agent.id,
                    role=alloc.role, resources=Resources(), created=mono)
            if alloc.reservation is None:
                offer.resources = offer.resources + alloc.resources
            else:
                offer.reserved = offer.reserved + alloc.resources
        for offer in made.values():
            if offer.reserved:
                offer.volumes = self._free_volumes(offer.agent_id, offer.role, offer.reserved)
            self._add_offer(offer)
            by_framework.setdefault(offer.framework_id, []).append(self.offer_message(offer))
        for framework_id, offers in by_framework.items():
            self.counters["offers_sent"] += len(offers)
            self.to_framework(
                framework_id, Event(type=EventType.OFFERS, offers=Offers(offers=offers))
            )
        return len(allocations)

    def offer_message(self, offer: OfferRecord) -> Offer:
        agent = self.agents[offer.agent_id]
        return Offer(
            id=ID(offer.id),
            framework_id=ID(offer.framework_id),
            agent_id=ID(agent.id),
            hostname=agent.hostname,
            resources=from_resources(offer.resources, offer.role) if not offer.reserved
            else offer_resources(offer.resources, offer.reserved, offer.role,
                                 agent.reservations, offer.volumes),
            attributes=mesos_attributes(self.offer_attributes(agent)),
            executor_ids=[ID(e) for e in self.executor_ids_on(offer.framework_id, agent.id)],
            url=self.agent_url(agent),
            allocation_info=AllocationInfo(role=offer.role),
            unavailability=self.maintenance.draining(agent.hostname, agent.address),
        )

    @staticmethod
    def agent_url(agent: AgentRecord) -> URL:
        """How to reach the agent, as offers and inverse offers name it."""
        return URL(scheme="http", path="/slave(1)", address={
            "hostname": agent.hostname, "ip": agent.address, "port": agent.port})

    def executor_ids_on(self, framework_id: str, agent_id: str) -> list[str]:
        """The framework's executors running on the agent (offers name them)."""
        return sorted(key[2] for key in self.executors
                      if key[0] == agent_id and key[1] == framework_id)

    def volumes_in_use(self, agent_id: str) -> dict[str, str]:
        """Persistent volume id -> the live task (on ``agent_id``) using it."""
        out = {}
        for task in self.agent_tasks(agent_id):
            if task.reserved and not task.released:
                for vid in task_volume_ids(task.info.resources):
                    out[vid] = task.id
        return out

    def _free_volumes(self, agent_id: str, role: str, reserved: Resources) -> tuple[str, ...]:
        """The role's volumes on the agent no live task uses and no other offer holds,
        as many as the offered reserved disk covers."""
        book = self.agents[agent_id].reservations
        if not book.volumes:
            return ()
        taken = set(self.volumes_in_use(agent_id))
        for offer_id in self.offers_by_agent.get(agent_id, ()):
            taken.update(self.offers[offer_id].volumes)
        disk, out = reserved.scalar("disk"), []
        for v in sorted(book.role_volumes(role), key=lambda v: v.id):
            if v.id not in taken and v.size <= disk + 1e-9:
                disk -= v.size
                out.append(v.id)
        return tuple(out)

    @staticmethod
    def offer_attributes(agent: AgentRecord) -> dict[str, str]:
        """The agent's attributes plus ``containerizers`` ("docker,process"), so that
        frameworks place Docker tasks only where they can run (an attribute the
        operator set under that name wins)."""
        attributes = {"containerizers": ",".join(sorted(agent.containerizers))}
        attributes.update(agent.attributes)
        return attributes

    def _add_offer(self, offer: OfferRecord) -> None:
        self.offers[offer.id] = offer
        self.offers_by_agent.setdefault(offer.agent_id, set()).add(offer.id)
        self.offers_by_framework.setdefault(offer.framework_id, set()).add(offer.id)

    def pop_offer(self, offer_id: str) -> OfferRecord | None:
        """Remove an offer from the books WITHOUT returning its resources."""
        offer = self.offers.pop(offer_id, None)
        if offer is not None:
            self.offers_by_agent.get(offer.agent_id, set()).discard(offer_id)
            self.offers_by_framework.get(offer.framework_id, set()).discard(offer_id)
        return offer

    def release_offer(
        self,
        offer_id: str,
        mono: float,
        refuse_seconds: float | None = None,
        rescind: bool = False,
        unused: Resources | None = None,
    ) -> None:
        """End an offer and give its (``unused``, default all) resources back."""
        offer = self.pop_offer(offer_id)
        if offer is None:
            return
        resources = offer.resources if unused is None else unused
        if resources:
            self.allocator.recover(
                offer.framework_id, offer.role, offer.agent_id, resources, mono, refuse_seconds
            )
            self.changed_agents.add(offer.agent_id)
        if offer.reserved and unused is None:
            self.allocator.recover(offer.framework_id, offer.role, offer.agent_id,
                                   offer.reserved, mono, refuse_seconds,
                                   reservation=offer.role)
            self.changed_agents.add(offer.agent_id)
        if rescind:
            self.counters["offers_rescinded"] += 1
            self.to_framework(
                offer.framework_id,
                Event(type=EventType.RESCIND, rescind=Rescind(offer_id=ID(offer_id))),
            )

    def rescind_agent_offers(self, agent_id: str, mono: float) -> None:
        for offer_id in sorted(self.offers_by_agent.get(agent_id, set())):
            self.release_offer(offer_id, mono, rescind=True)

    def rescind_framework_offers(self, framework_id: str, mono: float) -> None:
        for offer_id in sorted(self.offers_by_framework.get(framework_id, set())):
            self.release_offer(offer_id, mono, rescind=True)

    def expire_offers(self, mono: float) -> None:
        """Rescind offers held longer than ``offer_timeout`` (Mesos' --offer_timeout)."""
        timeout = self.config.offer_timeout
        if timeout is None:
            return
        expired = [o.id for o in self.offers.values() if mono - o.created >= timeout]
        for offer_id in expired:
            self.release_offer(offer_id, mono, rescind=True)

    def offered_resources(self, agent_id: str | None = None, framework_id: str | None = None
                          ) -> Resources:
        ids = (
            self.offers_by_agent.get(agent_id, set()) if agent_id is not None
            else self.offers_by_framework.get(framework_id or "", set())
        )
        total = Resources()
        for offer_id in ids:
            offer = self.offers[offer_id]
            total = total + offer.resources + offer.reserved
        return total
