"""Reservation records in the framework's state, and the DESTROY of wiped volumes.

``bind`` / ``wipe`` change ``ServicesState.reservations`` and record the writes for
the next commit.  ``destroy_volumes`` runs at the start of an offer round: for every
reservation being destroyed whose volumes no live task uses and whose agent offers
them (reserved offers come to the framework's role only), it ACCEPTs that agent's
offers with DESTROY (the agent removes the volumes and their data) and UNRESERVE
(the reserved resources go back to the pool), then forgets the reservation.  Those
offers are used up; the caller places tasks with the rest.  A refused call keeps
the reservation for a later round.  While destroys wait, the controller keeps
offers coming (``destroys_waiting``).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from mesoslite.framework.offers import AgentOffers
from frameworks.services.model import App
from frameworks.services.state import ServicesState
from frameworks.services.volumes import (
    Reservation,
    destroy_ready,
    local_volumes_json,
    mark_wipe,
    release_operations,
    volume_resources_of,
)
from mesoslite.messages.mesos import Filters
from mesoslite.resources import Resources
from mesoslite.scheduler import CallError, Driver, DriverError

log = logging.getLogger(__name__)


def put(state: ServicesState, reservation: Reservation) -> None:
    state.reservations[reservation.id] = reservation
    state.changes.reservations[reservation.id] = reservation


def drop(state: ServicesState, reservation_id: str) -> None:
    if state.reservations.pop(reservation_id, None) is not None:
        state.changes.reservations[reservation_id] = None


def bind(state: ServicesState, app: App, reservation: Reservation, task_id: str
         ) -> list[dict[str, str]]:
    """``task_id`` launches on ``reservation``: record it (and the volume ids it uses);
    returns the task's ``localVolumes``."""
    local = local_volumes_json(app, reservation)
    reservation.task_id = task_id
    reservation.volumes = sorted(set(reservation.volumes) | {v["persistenceId"] for v in local})
    put(state, reservation)
    return local


def wipe(state: ServicesState, app_id: str) -> int:
    """``DELETE ...?wipe=true``: destroy the app's volumes once its tasks are gone."""
    marked = mark_wipe(state.reservations, app_id)
    for r in marked:
        put(state, r)
    return len(marked)


def destroys_waiting(state: ServicesState) -> int:
    return len(destroy_ready(state.reservations, set(state.tasks)))


async def destroy_volumes(state: ServicesState, driver: Driver,
                          groups: dict[str, AgentOffers]) -> dict[str, AgentOffers]:
    """Send the DESTROY + UNRESERVE due on the offered agents (once every volume to
    destroy is in the offers); returns the offers left."""
    due: dict[str, list[Reservation]] = defaultdict(list)
    for r in destroy_ready(state.reservations, set(state.tasks)):
        if r.agent_id in groups:
            due[r.agent_id].append(r)
    if not due:
        return groups
    left = dict(groups)
    role = driver.framework_info.role or "*"
    for agent_id, reservations in due.items():
        group = left[agent_id]
        volumes = {r.id: volume_resources_of(state.apps.get(r.app_id), r)
                   for r in reservations}
        ids = sorted(v.disk.persistence.id for vs in volumes.values() for v in vs
                     if v.disk is not None and v.disk.persistence is not None)
        if not set(ids) <= set(group.volumes):
            continue  # not all offered yet (e.g. a task still stopping)
        reserved = Resources()
        for r in reservations:
            reserved = reserved + Resources(scalars=r.resources)
        if not group.reserved.contains(reserved):
            continue
        left.pop(agent_id)
        try:
            await driver.accept(group.offer_ids, release_operations(volumes, reserved, role),
                                Filters(refuse_seconds=0.0))
        except (CallError, DriverError) as exc:
            log.warning("DESTROY of %d volume(s) on %s not sent (%s); retrying", len(ids),
                        agent_id, exc)
            continue
        log.info("destroyed persistent volumes %s on agent %s", ids, agent_id)
        for r in reservations:
            drop(state, r.id)
    return left
