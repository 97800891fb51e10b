"""Maintenance in the master's state machine: schedules, DOWN and UP machines,
inverse offers and their answers (no I/O: stimuli in, commands out)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesoslite.master.core import MasterConfig
from mesoslite.master.maintenance import MaintenanceBook, check_schedule, machine_key
from mesoslite.master.maintenance_ops import cluster_status
from mesoslite.master.model import CloseAgentLink, SendToAgent, SendToFramework
from mesoslite.master.state import MasterState
from mesoslite.master.stimuli import (
    Admitted,
    AgentRegisters,
    AllocationRound,
    FrameworkCalls,
    FrameworkSubscribes,
    OperatorSchedulesMaintenance,
    OperatorStartsMaintenance,
    OperatorStopsMaintenance,
    Recover,
    Refusal,
    Tick,
)
from mesoslite.messages.agent import Register, ShutdownFramework
from mesoslite.messages.maintenance import InverseOfferAnswer, Schedule, Window
from mesoslite.messages.mesos import (
    ID,
    DurationInfo,
    Filters,
    FrameworkInfo,
    MachineID,
    Reason,
    TaskState,
    TimeInfo,
    Unavailability,
    from_resources,
)
from mesoslite.messages.scheduler import (
    AcceptInverseOffers,
    Call,
    CallType,
    DeclineInverseOffers,
    Event,
    EventType,
    Subscribe,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import calls, task_info

NOW = 1_800_000_000.0  # wall seconds
HOUR = 3600 * 10**9


def window(*hosts: str, start: float = NOW + 3600, hours: float | None = 1.0) -> Window:
    duration = DurationInfo(nanoseconds=int(hours * HOUR)) if hours is not None else None
    return Window(machine_ids=[MachineID(hostname=h) for h in hosts],
                  unavailability=Unavailability(start=TimeInfo(nanoseconds=int(start * 1e9)),
                                                duration=duration))


class Master:
    """A MasterState driven by hand, with the events each framework was sent."""

    def __init__(self) -> None:
        self.state = MasterState("m", MasterConfig(offer_timeout=30.0))
        self.now, self.mono = NOW, 0.0
        self.state.handle(Recover({}, 1), self.now, self.mono)
        self.connections = 0
        self.sent: list[object] = []
        self.streams: dict[str, str] = {}

    def handle(self, stimulus: object) -> object:
        answer = self.state.handle(stimulus, self.now, self.mono)
        self.sent.extend(self.state.drain())
        return answer

    def events(self, framework_id: str, kind: EventType) -> list[Event]:
        return [c.event for c in self.sent if isinstance(c, SendToFramework)
                and c.framework_id == framework_id and c.event.type == kind]

    def agent(self, hostname: str, agent_id: str | None = None) -> object:
        self.connections += 1
        return self.handle(AgentRegisters(Register(
            hostname=hostname, address="127.0.0.1", port=5051, agent_id=agent_id,
            resources=from_resources(Resources.parse("cpus:4;mem:1024"))), self.connections))

    def framework(self, name: str) -> str:
        stream = f"stream-{name}"
        answer = self.handle(FrameworkSubscribes(Subscribe(
            framework_info=FrameworkInfo(user="u", name=name)), stream))
        assert isinstance(answer, Admitted)
        self.streams[answer.id] = stream
        return answer.id

    def call(self, framework_id: str, call: Call) -> object:
        call.framework_id = ID(framework_id)
        return self.handle(FrameworkCalls(call, self.streams[framework_id]))

    def allocate(self) -> None:
        self.handle(AllocationRound(full=True))

    def launch(self, framework_id: str, agent_id: str, task_id: str) -> None:
        self.allocate()
        offer = next(o for e in self.events(framework_id, EventType.OFFERS)
                     for o in e.offers.offers if o.agent_id.value == agent_id
                     and o.id.value in self.state.offers)
        task = task_info(task_id, task_id, offer.agent_id, cmd="sleep 100", cpus=1, mem=64)
        self.call(framework_id, calls.accept([offer], [calls.launch_operation([task])]))


def scheduled(m: Master, *windows: Window) -> object:
    return m.handle(OperatorSchedulesMaintenance(Schedule(windows=list(windows))))


def test_inverse_offers_go_to_frameworks_with_tasks_on_draining_machines() -> None:
    m = Master()
    a1, a2 = m.agent("h1"), m.agent("h2")
    fw = m.framework("web")
    idle = m.framework("idle")
    m.launch(fw, a1.id, "t1")
    m.sent.clear()
    assert scheduled(m, window("H1")) is None  # hostnames compare without case
    m.allocate()
    [event] = m.events(fw, EventType.INVERSE_OFFERS)
    [inverse] = event.inverse_offers.inverse_offers
    assert inverse.agent_id == ID(a1.id) and inverse.framework_id == ID(fw)
    assert inverse.unavailability == window("h1").unavailability
    assert inverse.url is not None and inverse.url.address["hostname"] == "h1"
    # An idle framework is offered h1's resources, but holds none of them until it
    # takes an offer: it gets an inverse offer only for what it holds.
    offers = [o for e in m.events(idle, EventType.OFFERS) for o in e.offers.offers]
    assert offers and all((o.unavailability is not None) == (o.agent_id.value == a1.id)
                          for o in offers)
    # Not sent again while outstanding.
    m.sent.clear()
    m.allocate()
    assert m.events(fw, EventType.INVERSE_OFFERS) == []
    status = cluster_status(m.state)
    [draining] = status.draining_machines
    assert [(s.framework_id.value, s.status) for s in draining.statuses
            if s.framework_id.value == fw] == [(fw, InverseOfferAnswer.UNKNOWN)]
    assert a2 is not None


def test_answers_are_recorded_and_filter_the_next_inverse_offer() -> None:
    m = Master()
    a1 = m.agent("h1")
    fw = m.framework("web")
    m.launch(fw, a1.id, "t1")
    scheduled(m, window("h1"))
    m.allocate()
    [inverse] = m.events(fw, EventType.INVERSE_OFFERS)[0].inverse_offers.inverse_offers
    assert m.call(fw, Call(type=CallType.DECLINE_INVERSE_OFFERS,
                           decline_inverse_offers=DeclineInverseOffers(
                               inverse_offer_ids=[inverse.id],
                               filters=Filters(refuse_seconds=10)))) is None
    statuses = cluster_status(m.state).draining_machines[0].statuses
    assert [(s.status, s.timestamp.nanoseconds) for s in statuses] == [
        (InverseOfferAnswer.DECLINE, int(NOW * 1e9))]
    m.sent.clear()
    m.mono += 9
    m.allocate()
    assert m.events(fw, EventType.INVERSE_OFFERS) == []  # filtered for 10 s
    m.mono += 2
    m.allocate()
    [again] = m.events(fw, EventType.INVERSE_OFFERS)[0].inverse_offers.inverse_offers
    m.call(fw, Call(type=CallType.ACCEPT_INVERSE_OFFERS, accept_inverse_offers=AcceptInverseOffers(
        inverse_offer_ids=[again.id, ID("no-such-offer")])))
    statuses = cluster_status(m.state).draining_machines[0].statuses
    assert [s.status for s in statuses] == [InverseOfferAnswer.ACCEPT]
    refusal = m.call(fw, Call(type=CallType.ACCEPT_INVERSE_OFFERS,
                              accept_inverse_offers=AcceptInverseOffers()))
    assert isinstance(refusal, Refusal)
    assert refusal.path == "accept_inverse_offers.inverse_offer_ids"


def test_a_new_schedule_rescinds_what_it_changes() -> None:
    m = Master()
    a1 = m.agent("h1")
    fw = m.framework("web")
    m.launch(fw, a1.id, "t1")
    scheduled(m, window("h1"))
    m.allocate()
    [inverse] = m.events(fw, EventType.INVERSE_OFFERS)[0].inverse_offers.inverse_offers
    m.sent.clear()
    scheduled(m)  # cancelled
    [rescind] = m.events(fw, EventType.RESCIND_INVERSE_OFFER)
    assert rescind.rescind_inverse_offer.inverse_offer_id == inverse.id
    assert cluster_status(m.state).draining_machines == []
    m.sent.clear()
    m.allocate()
    assert m.events(fw, EventType.INVERSE_OFFERS) == []
    assert all(o.unavailability is None for e in m.events(fw, EventType.OFFERS)
               for o in e.offers.offers)


def test_start_removes_the_agents_and_stop_lets_them_back() -> None:
    m = Master()
    a1, a2 = m.agent("h1"), m.agent("h2")
    fw = m.framework("web")
    m.launch(fw, a1.id, "t1")
    scheduled(m, window("h1"), window("h2", start=NOW + 7200))
    m.sent.clear()
    assert m.handle(OperatorStartsMaintenance([MachineID(hostname="h1")])) is None
    [lost] = [e.update.status for e in m.events(fw, EventType.UPDATE)]
    assert (lost.state, lost.reason) == (TaskState.TASK_LOST, Reason.REASON_AGENT_REMOVED)
    assert [e.failure.agent_id for e in m.events(fw, EventType.FAILURE)] == [ID(a1.id)]
    assert any(isinstance(c, SendToAgent) and isinstance(c.message, ShutdownFramework)
               for c in m.sent)
    assert any(isinstance(c, CloseAgentLink) and c.agent_id == a1.id for c in m.sent)
    assert a1.id not in m.state.agents and a2.id in m.state.agents
    writes = m.state.take_writes()
    assert a1.id in writes.deleted_agents and "maintenance" in writes.meta
    status = cluster_status(m.state)
    assert status.down_machines == [MachineID(hostname="h1")]
    assert [d.id.hostname for d in status.draining_machines] == ["h2"]
    # Refused while DOWN, even under its old id.
    assert isinstance(m.agent("h1", a1.id), Refusal)
    m.sent.clear()
    m.allocate()
    assert all(o.agent_id.value != a1.id for e in m.events(fw, EventType.OFFERS)
               for o in e.offers.offers)
    assert m.handle(OperatorStopsMaintenance([MachineID(hostname="h1")])) is None
    assert [w.machine_ids for w in m.state.maintenance.schedule.windows] == [
        [MachineID(hostname="h2")]]
    back = m.agent("h1", a1.id)
    assert isinstance(back, Admitted) and back.id == a1.id
    assert m.state.maintenance.removed_agents == []


@pytest.mark.parametrize("bad, path", [
    (Schedule(windows=[window()]), "schedule.windows[0].machine_ids"),
    (Schedule(windows=[window("h1"), window("h1")]), "schedule.windows[1].machine_ids[0]"),
    (Schedule(windows=[window("h1", start=NOW - 7200)]), "schedule.windows[0].unavailability"),
    (Schedule(windows=[window("h1", hours=-1)]),
     "schedule.windows[0].unavailability.duration"),
    (Schedule(windows=[Window(machine_ids=[MachineID()], unavailability=window(
        "x").unavailability)]), "schedule.windows[0].machine_ids[0]"),
    (Schedule(windows=[Window(machine_ids=[MachineID(ip="10.0.0.300")],
                              unavailability=window("x").unavailability)]),
     "schedule.windows[0].machine_ids[0].ip"),
])
def test_bad_schedules_are_refused_and_change_nothing(bad: Schedule, path: str) -> None:
    m = Master()
    scheduled(m, window("h9"))
    before = msgspec.json.encode(m.state.maintenance.schedule)
    refusal = scheduled(m, *bad.windows)
    assert isinstance(refusal, Refusal) and refusal.status == 400 and refusal.path == path
    assert msgspec.json.encode(m.state.maintenance.schedule) == before


def test_bad_machine_lists_are_refused() -> None:
    m = Master()
    scheduled(m, window("h1"), window("h2"))
    m.handle(OperatorStartsMaintenance([MachineID(hostname="h1")]))
    cases = [
        (OperatorStartsMaintenance([]), "machines"),
        (OperatorStartsMaintenance([MachineID(hostname="h3")]), "machines[0]"),  # unscheduled
        (OperatorStartsMaintenance([MachineID(hostname="h1")]), "machines[0]"),  # DOWN already
        (OperatorStartsMaintenance([MachineID(hostname="h2"), MachineID(hostname="H2")]),
         "machines[1]"),
        (OperatorStopsMaintenance([MachineID(hostname="h2")]), "machines[0]"),  # not DOWN
    ]
    for stimulus, path in cases:
        refusal = m.handle(stimulus)
        assert isinstance(refusal, Refusal) and refusal.path == path, stimulus
    assert set(m.state.maintenance.down) == {("h1", "")}
    # A DOWN machine cannot leave the schedule but by STOP_MAINTENANCE.
    refusal = scheduled(m, window("h2"))
    assert isinstance(refusal, Refusal) and "h1" in refusal.message


def test_the_book_survives_the_store() -> None:
    m = Master()
    a1 = m.agent("h1")
    scheduled(m, window("h1"), window("h2", hours=None))
    m.handle(OperatorStartsMaintenance([MachineID(hostname="h1")]))
    writes = m.state.take_writes()
    other = MasterState("m2", MasterConfig())
    other.handle(Recover({"meta": [{"key": k, "value": v} for k, v in writes.meta.items()]},
                         2), NOW, 0.0)
    assert other.maintenance.schedule == m.state.maintenance.schedule
    assert other.maintenance.down == m.state.maintenance.down
    assert other.maintenance.removed_agents == [a1.id]
    refusal = other.handle(AgentRegisters(Register(
        hostname="h1", address="127.0.0.1", port=1, resources=[]), 1), NOW, 0.0)
    assert isinstance(refusal, Refusal)


def test_inverse_offers_expire_with_the_offer_timeout() -> None:
    m = Master()
    a1 = m.agent("h1")
    fw = m.framework("web")
    m.launch(fw, a1.id, "t1")
    scheduled(m, window("h1"))
    m.allocate()
    [first] = m.events(fw, EventType.INVERSE_OFFERS)[0].inverse_offers.inverse_offers
    m.sent.clear()
    m.mono += 30
    m.handle(Tick())
    m.allocate()
    assert [e.rescind_inverse_offer.inverse_offer_id
            for e in m.events(fw, EventType.RESCIND_INVERSE_OFFER)] == [first.id]
    [second] = m.events(fw, EventType.INVERSE_OFFERS)[0].inverse_offers.inverse_offers
    assert second.id != first.id


hosts = st.sampled_from(["a", "A", "b", "c"])
ips = st.sampled_from([None, "10.0.0.1", "10.0.0.2"])


@given(st.lists(st.lists(st.builds(MachineID, hostname=hosts, ip=ips), max_size=3),
                max_size=4))
def test_an_accepted_schedule_names_each_machine_once(machines: list[list[MachineID]]
                                                       ) -> None:
    schedule = Schedule(windows=[Window(machine_ids=ms, unavailability=window(
        "x").unavailability) for ms in machines])
    refusal = check_schedule(schedule, {}, NOW, "schedule")
    keys = [machine_key(m) for ms in machines for m in ms]
    if refusal is None:
        assert len(keys) == len(set(keys)) and all(machines)
    else:
        assert len(keys) != len(set(keys)) or not all(machines)
    assert MaintenanceBook().mode("a", "10.0.0.1").value == "UP"
