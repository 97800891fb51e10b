"""Mesos offers -> placement agents, and placement answers -> concrete host ports.

An agent may have several outstanding offers; the placement engine thinks in agents,
so offers are grouped per agent (``group_offers``) and their resources summed.  A
LAUNCH must name every offer of the agent it uses, which ``AgentOffers.offer_ids``
gives.

Fixed host ports (Marathon's ``requirePorts`` or a non-zero Docker ``hostPort``) are
not a count the engine can hand out: each requested fixed port ``p`` becomes a scalar
resource ``port:p`` of capacity 1 on the agents whose offers contain it, tasks that
need it demand 1 of it, and ``p`` is taken out of the dynamic pool so the engine
never also hands it to a task wanting "any port".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgspec

from mesoslite.messages.mesos import Offer, Resource, to_resources
from mesoslite.placement import Agent
from mesoslite.resources import Resources
from mesoslite.scheduler import offer_resources, offer_text_attributes


@dataclass
class AgentOffers:
    """All outstanding offers of one agent."""

    agent_id: str
    hostname: str
    address: str | None
    offers: list[Offer] = field(default_factory=list)
    resources: Resources = field(default_factory=Resources)  # unreserved
    attributes: dict[str, str] = field(default_factory=dict)
    # resources reserved for the framework's role, and the free persistent volumes
    # among them (id -> size); see docs/storage.md
    reserved: Resources = field(default_factory=Resources)
    volumes: dict[str, float] = field(default_factory=dict)

    @property
    def offer_ids(self) -> list[str]:
        return [o.id.value for o in self.offers]


def group_offers(offers: Iterable[Offer]) -> dict[str, AgentOffers]:
    """Offers by agent id, resources summed, attributes as text (``hostname`` set)."""
    out: dict[str, AgentOffers] = {}
    for offer in offers:
        agent = offer.agent_id.value
        group = out.get(agent)
        if group is None:
            address = offer.url.address.get("ip") if offer.url and offer.url.address else None
            attributes = offer_text_attributes(offer)
            attributes["hostname"] = offer.hostname
            group = out[agent] = AgentOffers(agent, offer.hostname,
                                             str(address) if address else None,
                                             attributes=attributes)
        group.offers.append(offer)
        if not any(_reserved(r) for r in offer.resources):
            group.resources = group.resources + offer_resources(offer)
            continue
        for r in offer.resources:
            value = to_resources([msgspec.structs.replace(
                r, role=None, reservations=[], reservation=None, disk=None)])
            if not _reserved(r):
                group.resources = group.resources + value
                continue
            group.reserved = group.reserved + value
            if r.disk is not None and r.disk.persistence is not None:
                group.volumes[r.disk.persistence.id] = value.scalar("disk")
    return out


def _reserved(resource: Resource) -> bool:
    return bool(resource.reservations) or resource.role not in (None, "*")


def fixed_port_resource(port: int) -> str:
    """The scalar resource name standing for one fixed host port."""
    return f"port:{port}"


def placement_agents(groups: Iterable[AgentOffers], fixed_ports: Iterable[int] = ()
                     ) -> list[Agent]:
    """Placement ``Agent``s for the offered agents.

    ``fixed_ports``: host ports some pending task needs by number; each becomes a
    ``port:N`` scalar on the agents offering it and leaves their dynamic pool.
    """
    wanted = set(fixed_ports)
    agents = []
    for group in groups:
        available = set(group.resources.port_list()) if wanted else set()
        taken = sorted(wanted & available)
        pool = group.resources
        scalars = dict(pool.scalars)
        if taken:
            pool = pool - Resources(ranges={"ports": [(p, p) for p in taken]})
            scalars.update({fixed_port_resource(p): 1.0 for p in taken})
        agents.append(Agent(group.agent_id, scalars, pool.ports(), group.attributes))
    return agents


def assign_ports(requested: Sequence[int], dynamic: Sequence[int]) -> list[int]:
    """Host ports in request order: a fixed request keeps its number, each 0 takes the
    next port the engine chose.  Raises ``ValueError`` if the counts disagree."""
    pool = iter(dynamic)
    out = []
    for port in requested:
        if port:
            out.append(port)
            continue
        try:
            out.append(next(pool))
        except StopIteration:
            raise ValueError("fewer dynamic ports assigned than requested") from None
    if next(pool, None) is not None:
        raise ValueError("more dynamic ports assigned than requested")
    return out
