"""Reservation records in the framework's state, and the DESTROY of wiped volumes.

``bind`` / ``wipe`` change ``ServicesState.reservations`` and record the writes for
the next commit.  ``destroy_launches`` runs at the start of an offer round: for every
reservation being destroyed whose volumes no live task uses and whose agent offers
them (reserved offers come to the framework's role only), it ACCEPTs that agent's
offers with DESTROY (the agent removes the volumes and their data) and UNRESERVE
(the reserved resources go back to the pool), and forgets the reservation.  Those
offers are used up; the round places tasks with the rest.  A refused call brings
the reservation back for a later round.  While destroys wait, the framework keeps
offers coming (``destroys_waiting``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

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
from mesoslite.framework import AgentLaunch
from mesoslite.framework.offers import AgentOffers
from mesoslite.resources import Resources

log = logging.getLogger(__name__)


def bind(state: ServicesState, app: App, reservation: Reservation, task_id: str
         ) -> list[dict[str, str]]:
    """``task_id`` launches on ``reservation``: record it (and the volume ids it uses);
    returns the task's ``localVolumes``."""
    local = local_volumes_json(app, reservation)
    reservation.task_id = task_id
    reservation.volumes = sorted(set(reservation.volumes) | {v["persistenceId"] for v in local})
    state.put_reservation(reservation)
    return local


def wipe(state: ServicesState, app_id: str) -> int:
    """``DELETE ...?wipe=true``: destroy the app's volumes once its tasks are gone."""
    marked = mark_wipe(state.reservations, app_id)
    for r in marked:
        state.put_reservation(r)
    return len(marked)


def wipe_instances(state: ServicesState, task_ids: set[str]) -> int:
    """A kill with ``wipe=true``: the volumes of these tasks' instances are destroyed
    once the tasks are gone, and their replacements start on new reservations."""
    marked = [r for r in state.reservations.values()
              if r.task_id in task_ids and not r.destroying]
    for r in marked:
        r.destroying = True
        state.put_reservation(r)
    return len(marked)


def destroys_waiting(state: ServicesState) -> int:
    return len(destroy_ready(state.reservations, set(state.tasks)))


def destroy_launches(state: ServicesState, groups: dict[str, AgentOffers],
                     role: Callable[[], str]) -> list[AgentLaunch]:
    """The DESTROY + UNRESERVE due on the offered agents (once every volume to destroy
    is in the offers), one launch per agent; those agents leave ``groups``.  The
    reservations are forgotten now; a refused ACCEPT brings them back (``restore``).
    ``role()``: the role they were made for."""
    due: dict[str, list[Reservation]] = defaultdict(list)
    for r in destroy_ready(state.reservations, set(state.tasks)):
        if r.agent_id in groups:
            due[r.agent_id].append(r)
    out = []
    for agent_id, reservations in due.items():
        group = groups[agent_id]
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
        groups.pop(agent_id)
        log.info("destroying persistent volumes %s on agent %s", ids, agent_id)
        for r in reservations:
            state.drop_reservation(r.id)
        out.append(AgentLaunch(agent_id, tuple(release_operations(volumes, reserved, role())),
                               context=tuple(reservations)))
    return out


def restore(state: ServicesState, launch: AgentLaunch) -> None:
    """A DESTROY the master refused: keep the reservations for a later round."""
    if isinstance(launch.context, tuple):
        for r in launch.context:
            if isinstance(r, Reservation):
                log.warning("DESTROY of the volumes of %s on %s refused; retrying later",
                            r.app_id, r.agent_id)
                state.put_reservation(r)
