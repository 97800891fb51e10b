"""Reservations made by an operator (Mesos' ``RESERVE_RESOURCES`` /
``UNRESERVE_RESOURCES`` operator calls), not through a framework's offer.

The master takes the resources from the agent's free unreserved pool (offers on the
agent are rescinded first, as Mesos does, so offered resources count as free) and
puts them in the role's reserved pool; unreserving gives back what no task and no
persistent volume of the role holds.  Each function changes the state only when it
succeeds, marks the agent dirty (the books are stored with it) and returns None, or
returns a ``Refusal`` and changes nothing but the rescinded offers.  They are the
handlers of the ``OperatorReserves`` / ``OperatorUnreserves`` stimuli
(``MasterState.handle``).  No I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesoslite.master.model import AgentState
from mesoslite.master.reservations import EMPTY, Split, split
from mesoslite.master.stimuli import OperatorReserves, OperatorUnreserves, Refusal
from mesoslite.messages.mesos import Resource
from mesoslite.resources import ResourceError, Resources

if TYPE_CHECKING:
    from mesoslite.master.state import MasterState


def read(items: list[Resource], what: str) -> Split | Refusal:
    """The call's resources: every one reserved (DYNAMIC, a named role), no volumes."""
    if not items:
        return Refusal(400, f"{what}: no resources given", "resources")
    try:
        parts = split(items, "resources")
    except ResourceError as exc:
        return Refusal(400, f"{what}: {exc}", exc.path)
    if parts.unreserved:
        return Refusal(400, f"{what}: {parts.unreserved} carry no reservation (give each "
                            "resource 'reservations': [{'type': 'DYNAMIC', 'role': ...}])",
                       "resources")
    if parts.volumes:
        return Refusal(400, f"{what}: persistent volumes are made with a framework's CREATE",
                       "resources")
    return parts


def reserve(state: MasterState, stimulus: OperatorReserves, now: float, mono: float
            ) -> Refusal | None:
    """Reserve the resources on the agent for their roles, out of its free ones."""
    agent_id, principal = stimulus.agent_id, stimulus.principal
    parts = _prepare(state, agent_id, stimulus.resources, "RESERVE_RESOURCES", mono)
    if isinstance(parts, Refusal):
        return parts
    wanted = sum(parts.reserved.values(), EMPTY)
    free = _free_unreserved(state, agent_id)
    if not free.contains(wanted):
        return Refusal(409, f"RESERVE_RESOURCES: {wanted} is more than agent {agent_id}'s "
                            f"free unreserved resources ({free or 'none'})", "resources")
    book = state.agents[agent_id].reservations
    for role, amount in parts.reserved.items():
        book.reserved[role] = book.reserved.get(role, EMPTY) + amount
        book.principals[role] = parts.principals.get(role) or principal
    _changed(state, agent_id)
    return None


def unreserve(state: MasterState, stimulus: OperatorUnreserves, now: float, mono: float
              ) -> Refusal | None:
    """Give the resources back to the agent's unreserved pool (none may be in use by
    a task or be a persistent volume's disk)."""
    agent_id = stimulus.agent_id
    parts = _prepare(state, agent_id, stimulus.resources, "UNRESERVE_RESOURCES", mono)
    if isinstance(parts, Refusal):
        return parts
    book = state.agents[agent_id].reservations
    for role, amount in parts.reserved.items():
        free = _free_reserved(state, agent_id, role)
        if not free.contains(amount):
            return Refusal(409, f"UNRESERVE_RESOURCES: {amount} is more than role '{role}'"
                                f"'s free reserved resources on agent {agent_id} "
                                f"({free or 'none'}; tasks and persistent volumes keep "
                                "theirs)", "resources")
    for role, amount in parts.reserved.items():
        left = book.reserved[role] - amount
        if left:
            book.reserved[role] = left
        else:
            del book.reserved[role]
            book.principals.pop(role, None)
    _changed(state, agent_id)
    return None


# ---------------------------------------------------------------- helpers


def _prepare(state: MasterState, agent_id: str, items: list[Resource], what: str,
             mono: float) -> Split | Refusal:
    """The call's resources, once the agent is known to be connected; its offers are
    rescinded (offered resources count as free, as in Mesos)."""
    parts = read(items, what)
    if isinstance(parts, Refusal):
        return parts
    agent = state.agents.get(agent_id)
    if agent is None:
        return Refusal(404, f"Agent {agent_id} is not known to this master", "agent_id")
    if agent.state != AgentState.ACTIVE:
        return Refusal(409, f"Agent {agent_id} is {agent.state.value}: reserve on a "
                            "connected agent", "agent_id")
    state.rescind_agent_offers(agent_id, mono)
    return parts


def _free_unreserved(state: MasterState, agent_id: str) -> Resources:
    """The agent's unreserved resources no task holds (offers already rescinded)."""
    agent = state.agents[agent_id]
    free = agent.total - sum(agent.reservations.reserved.values(), EMPTY)
    for task in state.agent_tasks(agent_id):
        if not task.released:
            free = free - (task.resources - task.reserved if task.reserved else task.resources)
    return free


def _free_reserved(state: MasterState, agent_id: str, role: str) -> Resources:
    """``role``'s reservation on the agent minus its tasks' share and volumes' disk."""
    book = state.agents[agent_id].reservations
    free = book.reserved.get(role, EMPTY)
    for task in state.agent_tasks(agent_id):
        if not task.released and task.reserved and task.role == role:
            free = free - task.reserved
    return free - Resources(scalars={"disk": book.volume_disk(role)})


def _changed(state: MasterState, agent_id: str) -> None:
    # The allocator learns the new pools as on a re-registration: the agent's running
    # tasks are re-counted against them.
    state._readd_to_allocator(state.agents[agent_id])
    state.dirty_agents.add(agent_id)
    state.changed_agents.add(agent_id)
