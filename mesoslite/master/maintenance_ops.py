"""What maintenance does to the master: the operator's schedule, START and STOP
(machines DOWN and back UP), and inverse offers.

The handlers of the ``OperatorSchedulesMaintenance`` / ``OperatorStartsMaintenance``
/ ``OperatorStopsMaintenance`` stimuli and of the ACCEPT_INVERSE_OFFERS /
DECLINE_INVERSE_OFFERS calls; each returns a ``Refusal`` and changes nothing, or
changes the state and returns None.  As in Mesos:

* a new schedule rescinds the offers and inverse offers of every agent whose
  unavailability changed (they are made again, with the new one);
* each allocation round sends an inverse offer to every framework that uses an
  agent on a DRAINING machine (a task, an executor or an offer there), unless one is
  outstanding or the framework's last answer filters it (``refuse_seconds``);
  the answers are kept per agent and framework for GET_MAINTENANCE_STATUS;
* START removes the machines' agents: their tasks are killed on the agent and
  reported TASK_LOST (REASON_AGENT_REMOVED), frameworks get FAILURE for the agent,
  and the agents are refused until STOP_MAINTENANCE.

No I/O: the master's outbox carries what must be sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesoslite.master.allocator import DEFAULT_REFUSE_SECONDS, refuse_duration
from mesoslite.master.maintenance import (
    InverseOfferRecord,
    MachineKey,
    MaintenanceBook,
    check_machines,
    check_schedule,
    machine_key,
    show,
)
from mesoslite.master.model import AgentRecord, AgentState, CloseAgentLink
from mesoslite.master.stimuli import (
    OperatorSchedulesMaintenance,
    OperatorStartsMaintenance,
    OperatorStopsMaintenance,
    Refusal,
)
from mesoslite.messages.agent import ShutdownFramework
from mesoslite.messages.maintenance import (
    ClusterStatus,
    DrainingMachine,
    InverseOfferAnswer,
    InverseOfferStatus,
    MachineMode,
)
from mesoslite.messages.mesos import ID, InverseOffer, MachineID, Reason, TaskState, TimeInfo
from mesoslite.messages.scheduler import (
    Call,
    Event,
    EventType,
    Failure,
    InverseOffers,
    RescindInverseOffer,
)

if TYPE_CHECKING:
    from mesoslite.master.state import MasterState

MAINTENANCE_META = "maintenance"  # the store's meta key for the book
DOWN_MESSAGE = "Operator initiated 'Machine DOWN'"


def _stored(state: MasterState) -> None:
    """The book changed: store it with the next flush."""
    state.meta_writes[MAINTENANCE_META] = state.maintenance.to_store()


# ---------------------------------------------------------------- operator calls


def update_schedule(state: MasterState, stimulus: OperatorSchedulesMaintenance, now: float,
                    mono: float) -> Refusal | None:
    book = state.maintenance
    refusal = check_schedule(stimulus.schedule, book.down, now, "schedule")
    if refusal is not None:
        return refusal
    before = {a.id: book.draining(a.hostname, a.address) for a in state.agents.values()}
    book.schedule = stimulus.schedule
    for agent in list(state.agents.values()):
        if book.draining(agent.hostname, agent.address) != before[agent.id]:
            _unavailability_changed(state, agent.id, mono)
    _stored(state)
    return None


def _machines_refusal(book: MaintenanceBook, machines: list[MachineID], down: bool
                      ) -> Refusal | None:
    """Why START (``down``) or STOP of ``machines`` cannot be done: a bad machine id,
    one not in the schedule, one already DOWN (START) or not DOWN (STOP)."""
    refusal = check_machines(machines, "machines")
    if refusal is not None:
        return refusal
    scheduled = {machine_key(m) for m in book.machines()}
    for i, machine in enumerate(machines):
        where = f"machines[{i}]"
        if machine_key(machine) not in scheduled:
            return Refusal(400, f"Machine '{show(machine)}' is not part of a maintenance "
                                "schedule", where)
        if (machine_key(machine) in book.down) == down:
            mode, verb = ("DRAINING", "down") if down else ("DOWN", "up")
            return Refusal(400, f"Machine '{show(machine)}' is not in {mode} mode and "
                                f"cannot be brought {verb}", where)
    return None


def start(state: MasterState, stimulus: OperatorStartsMaintenance, now: float, mono: float
          ) -> Refusal | None:
    book = state.maintenance
    refusal = _machines_refusal(book, stimulus.machines, down=True)
    if refusal is not None:
        return refusal
    for machine in stimulus.machines:
        book.down[machine_key(machine)] = machine
    for agent in list(state.agents.values()):
        if book.mode(agent.hostname, agent.address) == MachineMode.DOWN:
            remove_agent(state, agent, DOWN_MESSAGE, now, mono)
    _stored(state)
    return None


def stop(state: MasterState, stimulus: OperatorStopsMaintenance, now: float, mono: float
         ) -> Refusal | None:
    book = state.maintenance
    refusal = _machines_refusal(book, stimulus.machines, down=False)
    if refusal is not None:
        return refusal
    up = {machine_key(m) for m in stimulus.machines}
    for key in up:
        del book.down[key]
    for window in book.schedule.windows:  # UP machines leave the schedule
        window.machine_ids = [m for m in window.machine_ids if machine_key(m) not in up]
    book.schedule.windows = [w for w in book.schedule.windows if w.machine_ids]
    _stored(state)
    return None


# ---------------------------------------------------------------- agents


def refuse_registration(book: MaintenanceBook, hostname: str, ip: str) -> Refusal | None:
    """Agents on a DOWN machine may not register (until STOP_MAINTENANCE)."""
    if book.mode(hostname, ip) == MachineMode.DOWN:
        found = book.window_of(hostname, ip)
        machine = show(found[0]) if found else hostname
        return Refusal(403, f"Machine '{machine}' is DOWN for maintenance: agents on it may "
                            "register after STOP_MAINTENANCE")
    return None


def remove_agent(state: MasterState, agent: AgentRecord, why: str, now: float,
                 mono: float) -> None:
    """Remove an agent from the cluster, as Mesos' removeSlave: its tasks are shut
    down on the agent and reported TASK_LOST, the link closes, every framework gets
    FAILURE for the agent, and the record goes (from the store too)."""
    if agent.state == AgentState.ACTIVE:
        for framework_id in sorted(_users(state, agent.id, offers=False)):
            state.to_agent(agent.id, ShutdownFramework(framework_id=framework_id))
        state.outbox.append(CloseAgentLink(agent.id, agent.connection))
    state.rescind_agent_offers(agent.id, mono)
    _rescind_agent_inverse_offers(state, agent.id)
    state.maintenance.forget_agent(agent.id)
    for task in state.agent_tasks(agent.id):
        if not task.latest_state.terminal:
            status = state.master_update(
                task.framework_id, task.id, agent.id, TaskState.TASK_LOST,
                Reason.REASON_AGENT_REMOVED, f"Agent {agent.hostname} removed: {why}", now)
            state.transition(task, status, mono, at=now)
            state.send_update(task.framework_id, status)
        state.retire_task(task, mono)
    if agent.id in state.in_allocator:
        state.allocator.remove_agent(agent.id)
        state.in_allocator.discard(agent.id)
    state.forget_agent_executors(agent.id)
    del state.agents[agent.id]
    state.usage.pop(agent.id, None)
    state.changed_agents.discard(agent.id)
    state.dirty_agents.add(agent.id)  # gone from ``agents``: deleted from the store
    state.maintenance.remember_removed(agent.id)
    lost = Event(type=EventType.FAILURE, failure=Failure(agent_id=ID(agent.id)))
    for framework_id in sorted(state.frameworks):
        state.to_framework(framework_id, lost)


def _users(state: MasterState, agent_id: str, offers: bool = True) -> set[str]:
    """Frameworks holding something on the agent: a live task, an executor, an offer
    (``offers``)."""
    users = {state.tasks[k].framework_id for k in state.tasks_by_agent.get(agent_id, ())
             if not state.tasks[k].latest_state.terminal}
    users.update(key[1] for key in state.executors if key[0] == agent_id)
    if offers:
        users.update(state.offers[o].framework_id
                     for o in state.offers_by_agent.get(agent_id, ()))
    return users


def _unavailability_changed(state: MasterState, agent_id: str, mono: float) -> None:
    """Offers are made again with the new unavailability; inverse offers too."""
    state.rescind_agent_offers(agent_id, mono)
    _rescind_agent_inverse_offers(state, agent_id)
    state.maintenance.forget_agent(agent_id)


# ---------------------------------------------------------------- inverse offers


def make_inverse_offers(state: MasterState, now: float, mono: float) -> None:
    """Withdraw the inverse offers that no longer hold, then send new ones (see the
    module docstring)."""
    book = state.maintenance
    _prune(state, mono)
    if not book.schedule.windows:
        return
    made: dict[str, list[InverseOffer]] = {}
    for agent in state.agents.values():
        if agent.state != AgentState.ACTIVE:
            continue
        unavailability = book.draining(agent.hostname, agent.address)
        if unavailability is None:
            continue
        for framework_id in sorted(_users(state, agent.id)):
            fw = state.frameworks.get(framework_id)
            key = (framework_id, agent.id)
            if fw is None or not fw.connected or key in book.outstanding or (
                    book.refused.get(key, -1.0) > mono):
                continue
            record = InverseOfferRecord(state.next_id("O"), framework_id, agent.id,
                                        fw.stream_id, mono)
            book.add_offer(record)
            book.statuses.setdefault(agent.id, {}).setdefault(framework_id, InverseOfferStatus(
                InverseOfferAnswer.UNKNOWN, ID(framework_id), _time(now)))
            made.setdefault(framework_id, []).append(InverseOffer(
                id=ID(record.id), framework_id=ID(framework_id), agent_id=ID(agent.id),
                unavailability=unavailability, url=state.agent_url(agent)))
    for framework_id, offers in made.items():
        state.to_framework(framework_id, Event(
            type=EventType.INVERSE_OFFERS, inverse_offers=InverseOffers(inverse_offers=offers)))


def _prune(state: MasterState, mono: float) -> None:
    """Inverse offers whose framework went (or is on another stream now) are
    dropped; those whose agent is no longer DRAINING, or older than the offer
    timeout, are rescinded."""
    book = state.maintenance
    timeout = state.config.offer_timeout
    for record in list(book.inverse_offers.values()):
        fw = state.frameworks.get(record.framework_id)
        agent = state.agents.get(record.agent_id)
        if fw is None or not fw.connected or fw.stream_id != record.stream_id:
            book.pop_offer(record.id)
        elif agent is None or agent.state != AgentState.ACTIVE or book.draining(
                agent.hostname, agent.address) is None or (
                timeout is not None and mono - record.created >= timeout):
            _rescind(state, record.id)


def _rescind(state: MasterState, offer_id: str) -> None:
    record = state.maintenance.pop_offer(offer_id)
    if record is not None:
        state.to_framework(record.framework_id, Event(
            type=EventType.RESCIND_INVERSE_OFFER,
            rescind_inverse_offer=RescindInverseOffer(inverse_offer_id=ID(offer_id))))


def _rescind_agent_inverse_offers(state: MasterState, agent_id: str) -> None:
    for record in list(state.maintenance.inverse_offers.values()):
        if record.agent_id == agent_id:
            _rescind(state, record.id)


def answer(state: MasterState, framework_id: str, call: Call, now: float, mono: float
           ) -> Refusal | None:
    """ACCEPT_INVERSE_OFFERS or DECLINE_INVERSE_OFFERS: the answer is recorded for
    each of the framework's outstanding inverse offers named (others are no longer
    valid and ignored, as in Mesos), and no new one comes for that agent for the
    filter's ``refuse_seconds`` (default 5)."""
    accepted = call.accept_inverse_offers is not None
    body = call.accept_inverse_offers or call.decline_inverse_offers
    field = "accept_inverse_offers" if accepted else "decline_inverse_offers"
    assert body is not None  # decode_call requires it
    if not body.inverse_offer_ids:
        return Refusal(400, "No inverse offers specified", f"{field}.inverse_offer_ids")
    seconds = body.filters.refuse_seconds if body.filters else DEFAULT_REFUSE_SECONDS
    status = InverseOfferAnswer.ACCEPT if accepted else InverseOfferAnswer.DECLINE
    book = state.maintenance
    for offer_id in body.inverse_offer_ids:
        record = book.inverse_offers.get(offer_id.value)
        if record is None or record.framework_id != framework_id:
            continue
        book.pop_offer(record.id)
        book.statuses.setdefault(record.agent_id, {})[framework_id] = InverseOfferStatus(
            status, ID(framework_id), _time(now))
        book.refused[(framework_id, record.agent_id)] = mono + refuse_duration(seconds)
    return None


def revive(state: MasterState, framework_id: str) -> None:
    """REVIVE also lifts the framework's inverse offer filters (as in Mesos)."""
    book = state.maintenance
    for key in [k for k in book.refused if k[0] == framework_id]:
        del book.refused[key]


def _time(now: float) -> TimeInfo:
    return TimeInfo(nanoseconds=int(now * 1e9))


# ---------------------------------------------------------------- status


def cluster_status(state: MasterState) -> ClusterStatus:
    """GET_MAINTENANCE_STATUS's ``status`` (``ClusterStatus``): each DRAINING machine
    with the answers for the agents on it, and the DOWN machines."""
    book = state.maintenance
    answers: dict[MachineKey, list[InverseOfferStatus]] = {}
    for agent_id in sorted(book.statuses):
        agent = state.agents.get(agent_id)
        found = agent and book.window_of(agent.hostname, agent.address)
        if found:
            answers.setdefault(machine_key(found[0]), []).extend(
                book.statuses[agent_id][f] for f in sorted(book.statuses[agent_id]))
    return ClusterStatus(
        draining_machines=[DrainingMachine(id=m, statuses=answers.get(machine_key(m), []))
                           for m in book.machines() if machine_key(m) not in book.down],
        down_machines=list(book.down.values()))
