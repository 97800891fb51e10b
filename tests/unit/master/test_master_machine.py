"""The master's state machine against a model of its agents and frameworks.

Hypothesis drives ``MasterState.handle`` with every kind of stimulus: agents
registering, re-registering, disconnecting and falling silent; frameworks
subscribing, failing over, losing their stream and tearing down; allocation rounds;
ACCEPTs with valid and invalid launches (too big, duplicate ids, unresolvable
secrets, stale offers); DECLINEs; kills; status updates and acknowledgements; time
passing; and master recoveries from exactly what the store was given.  Commands go
to simulated agents and frameworks (``sim.py``) as the server would route them.
After every step:

* on every agent the allocator knows, free + offered + used by live tasks == total,
  and what each framework holds there is its offers plus its live tasks (resources
  are conserved across offers, launches, task ends and recoveries);
* every task is in exactly one place: the live index (by agent and by framework,
  alike) or the completed ones, and a live task holds resources iff its state is
  not terminal;
* the master and each connected agent agree on which tasks run there;
* each connected framework holds exactly the offers the master has out for it;

and after every ACCEPT, each launched task went to its agent in a RunTasks or was
answered to its framework (TASK_ERROR, or TASK_DROPPED / TASK_LOST).

``MASTER_EXAMPLES`` (default 200) sets the number of examples; each runs up to 50
steps.  The counts run are printed at the end (``pytest -s``).
"""

from __future__ import annotations

import itertools
import os

import hypothesis.strategies as st
import msgspec
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mesoslite.auth import Auth
from mesoslite.master.core import MasterConfig
from mesoslite.master.model import SendToAgent, SendToFramework
from mesoslite.master.secrets import MasterSecrets
from mesoslite.master.state import MasterState
from mesoslite.master.stimuli import (
    Admitted,
    AgentLinkClosed,
    AgentRegisters,
    AgentSent,
    AllocationRound,
    FrameworkCalls,
    FrameworkStreamClosed,
    FrameworkSubscribes,
    OperatorDeactivatesAgent,
    OperatorDrainsAgent,
    OperatorMarksAgentGone,
    OperatorReactivatesAgent,
    Recover,
    Refusal,
    Result,
    Stimulus,
    Tick,
)
from mesoslite.messages.agent import Pong, RunTasks
from mesoslite.messages.mesos import (
    ID,
    CapabilityType,
    CommandInfo,
    Environment,
    EnvironmentVariable,
    FrameworkCapability,
    FrameworkInfo,
    Offer,
    Secret,
    SecretReference,
    TaskInfo,
    TaskState,
)
from mesoslite.messages.scheduler import Call, EventType, Subscribe
from mesoslite.resources import Resources
from mesoslite.scheduler import calls, offer_resources, task_info
from mesoslite.secrets.model import build
from tests.unit.master.sim import Cluster, SimAgent, SimFramework

EXAMPLES = int(os.environ.get("MASTER_EXAMPLES", "200"))
STATS = {"examples": 0, "steps": 0, "stimuli": 0}

TOTAL = Resources.parse("cpus:4;mem:1024;ports:[31000-31003]")
HOSTS = ["h0", "h1", "h2"]
FRAMEWORKS = [("pa", True), ("legacy", False)]  # PARTITION_AWARE or not
CONFIG = MasterConfig(agent_ping_timeout=1.0, max_agent_ping_timeouts=3,
                      agent_reregister_timeout=10.0, offer_timeout=30.0)
LIMIT = CONFIG.agent_ping_timeout * CONFIG.max_agent_ping_timeouts
FAILOVER_TIMEOUT = 20.0
# Disruptions (links and streams dropping, failovers, teardowns) happen in a third of
# the times their rule is drawn, so that work gets done between them.
RARELY = st.sampled_from([True, False, False])
NOT_LAUNCHED = {TaskState.TASK_ERROR, TaskState.TASK_DROPPED, TaskState.TASK_LOST}

# A launch's task: its size, whether it takes a port, and its secret reference
# ("present" resolves, "absent" does not).
task_st = st.tuples(st.sampled_from([0.5, 1.0, 2.0, 5.0]), st.booleans(),
                    st.sampled_from([None, None, "present", "absent"]))


def catalog() -> MasterSecrets:
    """A secrets catalog holding config map ``present`` (no key needed)."""
    async def commit(_writes: object) -> None:
        raise AssertionError("the catalog is not written here")

    secrets = MasterSecrets(None, Auth(), commit)
    secrets.objects[("config", "present")] = build("config", "present", {"k": b"v"}, 0.0,
                                                   None, None)
    return secrets


def with_reference(task: TaskInfo, name: str) -> TaskInfo:
    task.command = CommandInfo(value="true", environment=Environment(variables=[
        EnvironmentVariable(name="V", type="SECRET", secret=Secret(
            type="REFERENCE", reference=SecretReference(name=f"config:{name}", key="k")))]))
    return task


def total_of(pieces: object) -> Resources:
    out = Resources()
    for piece in pieces:  # type: ignore[attr-defined]
        out = out + piece
    return out


class MasterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        STATS["examples"] += 1
        self.now, self.mono = 1000.0, 0.0
        self.epoch = 0
        self.store: dict[str, dict] = {"agents": {}, "frameworks": {}, "tasks": {}}
        self.sim = Cluster({h: SimAgent(h, TOTAL) for h in HOSTS},
                           {n: SimFramework(n, pa) for n, pa in FRAMEWORKS})
        self.connections = itertools.count(1)
        self.stream_ids = itertools.count(1)
        self.task_ids = itertools.count(1)
        self.sent: list[object] = []  # commands of the current rule
        self.master = self._start_master()

    # ---------------------------------------------------------------- the server's part

    def _start_master(self) -> MasterState:
        """A master that takes the lead: it loads what the store holds."""
        self.epoch += 1
        master = MasterState(f"m{self.epoch}", CONFIG, secrets_check=catalog().check)
        snapshot = msgspec.json.decode(msgspec.json.encode(
            {kind: list(docs.values()) for kind, docs in self.store.items()}))
        master.handle(Recover(snapshot, self.epoch), self.now, self.mono)
        return master

    def step(self, stimulus: Stimulus) -> Result:
        """Hand one stimulus in, then flush."""
        result = self.handle(stimulus)
        self.flush()
        return result

    def handle(self, stimulus: Stimulus) -> Result:
        STATS["stimuli"] += 1
        return self.master.handle(stimulus, self.now, self.mono)

    def flush(self) -> None:
        """As the server does: a partial allocation round, the writes to the store,
        the commands to their recipients (and the stimuli those lead to, in turn)."""
        self.master.handle(AllocationRound(full=False), self.now, self.mono)
        commands = self.master.drain()
        self._store(self.master.take_writes())
        self.sent += commands
        for command in commands:
            for follow in self.sim.deliver(command, self.now):
                self.step(follow)

    def _store(self, writes: object) -> None:
        for aid, doc in writes.agents.items():  # type: ignore[attr-defined]
            self.store["agents"][aid] = doc
        for fid, doc in writes.frameworks.items():  # type: ignore[attr-defined]
            self.store["frameworks"][fid] = doc
        for key in writes.deleted_tasks:  # type: ignore[attr-defined]
            self.store["tasks"].pop(key, None)
        for key, doc in writes.tasks.items():  # type: ignore[attr-defined]
            self.store["tasks"][key] = doc

    def call(self, fw: SimFramework, call: Call) -> Result:
        assert fw.id is not None
        return self.step(FrameworkCalls(msgspec.structs.replace(call, framework_id=ID(fw.id)),
                                        fw.stream))

    def rule_done(self) -> None:
        STATS["steps"] += 1
        self.sent = []

    # ---------------------------------------------------------------- agents

    @initialize()
    def cluster_comes_up(self) -> None:
        """Every agent registers and every framework subscribes (the rules then take
        them down and back at will)."""
        self.everyone_connects()

    def everyone_connects(self) -> None:
        for host in HOSTS:
            self.agent_registers(host)
        for name, _ in FRAMEWORKS:
            self.framework_subscribes(name)

    @rule(host=st.sampled_from(HOSTS))
    def agent_registers(self, host: str) -> None:
        """A new agent, or one coming back (after a link drop, a partition, a master
        failover) with the tasks it holds."""
        agent = self.sim.agents[host]
        old = agent.connection
        connection = next(self.connections)
        gone = agent.id is not None and agent.id in self.master.gone_agents
        answer = self.handle(AgentRegisters(agent.register(), connection))
        if gone:
            assert isinstance(answer, Refusal) and "marked gone" in answer.message, answer
            self.rule_done()
            return
        assert isinstance(answer, Admitted)
        assert agent.id in (None, answer.id)
        # The server keeps the new link before the flush sends Registered on it.
        agent.id, agent.connection = answer.id, connection
        self.flush()
        if old is not None:  # the server closes the agent's previous link
            self.step(AgentLinkClosed(answer.id, old))
        self.rule_done()

    @rule(host=st.sampled_from(HOSTS), now=RARELY)
    def agent_link_drops(self, host: str, now: bool) -> None:
        agent = self.sim.agents[host]
        if now and agent.connection is not None and agent.id is not None:
            connection, agent.connection = agent.connection, None
            self.step(AgentLinkClosed(agent.id, connection))
        self.rule_done()

    @rule(dt=st.sampled_from([0.5, 2.0, 12.0, 31.0]),
          silent=st.none() | st.sampled_from(HOSTS))
    def time_passes(self, dt: float, silent: str | None) -> None:
        """Time passes; every connected agent but ``silent`` answers its pings."""
        self.now += dt
        self.mono += dt
        for host, agent in self.sim.agents.items():
            if host != silent and agent.connection is not None and agent.id is not None:
                self.step(AgentSent(agent.id, agent.connection, Pong(seq=1)))
        self.step(Tick())
        self.rule_done()

    @precondition(lambda self: any(t for a in self.sim.agents.values() if a.connection
                                   for t in a.tasks.values() if not t.terminal))
    @rule(data=st.data(), states=st.lists(st.sampled_from([
        TaskState.TASK_STARTING, TaskState.TASK_RUNNING, TaskState.TASK_FINISHED,
        TaskState.TASK_FAILED]), min_size=1, max_size=3))
    def tasks_change(self, data: st.DataObject, states: list[TaskState]) -> None:
        """Tasks on connected agents start, run and end (each update goes out when
        the ones before it were acknowledged)."""
        for state in states:
            live = sorted((host, key) for host, a in self.sim.agents.items() if a.connection
                          for key, t in a.tasks.items() if not t.terminal)
            if not live:
                break
            host, key = data.draw(st.sampled_from(live))
            for follow in self.sim.agents[host].update(key, state, self.now):
                self.step(follow)
        self.rule_done()

    # ---------------------------------------------------------------- frameworks

    @rule(name=st.sampled_from([n for n, _ in FRAMEWORKS]))
    def framework_subscribes(self, name: str) -> None:
        """A new framework, a re-subscription on a new stream, or a failover."""
        fw = self.sim.frameworks[name]
        caps = [FrameworkCapability(type=CapabilityType.PARTITION_AWARE)
                ] if fw.partition_aware else []
        info = FrameworkInfo(user="u", name=name, id=ID(fw.id) if fw.id else None,
                             failover_timeout=FAILOVER_TIMEOUT, capabilities=caps)
        old = fw.stream
        fw.disconnected()  # a new scheduler instance knows no offers
        stream = f"s{next(self.stream_ids)}"
        answer = self.handle(FrameworkSubscribes(Subscribe(framework_info=info), stream))
        if fw.id is not None and fw.id in self.master.removed_framework_ids:
            # Torn down, or past its failover timeout while away: refused, and its
            # scheduler starts over as a new framework.
            assert answer == Refusal(403, "Framework has been removed")
            fw.id, fw.to_ack = None, []
            info.id = None
            answer = self.handle(FrameworkSubscribes(Subscribe(framework_info=info), stream))
        assert isinstance(answer, Admitted), answer
        assert fw.id in (None, answer.id)
        # The server keeps the new stream before the flush sends SUBSCRIBED on it.
        fw.id, fw.stream = answer.id, stream
        self.flush()
        if old is not None and fw.id is not None:  # the old stream's end reaches the master
            self.step(FrameworkStreamClosed(fw.id, old))
        self.rule_done()

    @rule(name=st.sampled_from([n for n, _ in FRAMEWORKS]), now=RARELY)
    def framework_stream_ends(self, name: str, now: bool) -> None:
        fw = self.sim.frameworks[name]
        if now and fw.stream is not None and fw.id is not None:
            stream = fw.stream
            fw.disconnected()
            self.step(FrameworkStreamClosed(fw.id, stream))
        self.rule_done()

    @precondition(lambda self: any(f.stream for f in self.sim.frameworks.values()))
    @rule(data=st.data(), now=RARELY)
    def framework_tears_down(self, data: st.DataObject, now: bool) -> None:
        fw = data.draw(st.sampled_from(self.connected()))
        if not now:
            self.rule_done()
            return
        assert self.call(fw, calls.teardown()) is None
        assert fw.stream is None, "the master closes a removed framework's stream"
        self.rule_done()

    @rule()
    def allocation_round(self) -> None:
        self.step(AllocationRound(full=True))
        self.rule_done()

    @precondition(lambda self: any(f.offers for f in self.connected()))
    @rule(data=st.data(), tasks=st.lists(task_st, min_size=1, max_size=3),
          duplicate=RARELY, stale=RARELY)
    def framework_accepts(self, data: st.DataObject, tasks: list, duplicate: bool,
                          stale: bool) -> None:
        """ACCEPT one offer with a LAUNCH: some tasks fit, some do not, some reuse a
        live task's id, some reference a secret that cannot resolve; a stale offer
        id makes the whole launch invalid."""
        fw = data.draw(st.sampled_from([f for f in self.connected() if f.offers]))
        offer = fw.offers.pop(data.draw(st.sampled_from(sorted(fw.offers))))
        infos = self._tasks_for(fw, offer, tasks, duplicate)
        # A stale offer named beside a valid one: the valid one goes back untouched.
        offer_ids = [offer.id.value, "stale-offer"] if stale else [offer.id.value]
        assert self.call(fw, calls.accept(offer_ids, [calls.launch_operation(infos)])) is None
        launched = {i.task_id.value for m in self._run_tasks(offer.agent_id.value)
                    for launch in m.launches for i in launch.tasks}
        answered = {tid for tid, states in self._told(fw).items()
                    if states and states[-1] in NOT_LAUNCHED}
        for info in infos:
            tid = info.task_id.value
            assert tid in launched or tid in answered, f"{tid} neither launched nor answered"
            if info.command and info.command.environment:
                assert tid not in launched or "absent" not in str(info.command.environment)
        self.rule_done()

    def _tasks_for(self, fw: SimFramework, offer: Offer, tasks: list, duplicate: bool
                   ) -> list[TaskInfo]:
        ports = offer_resources(offer).port_list()
        infos = []
        for cpus, port, reference in tasks:
            taken = [ports.pop()] if port and ports else []
            info = task_info("t", f"t{next(self.task_ids)}", offer.agent_id, cmd="true",
                             cpus=cpus, mem=64, ports=taken)
            infos.append(with_reference(info, reference) if reference else info)
        live = sorted(tid for (fid, tid) in self.master.tasks if fid == fw.id)
        if duplicate and live and infos:
            infos[0] = msgspec.structs.replace(infos[0], task_id=ID(live[0]))
        return infos

    def _run_tasks(self, agent_id: str) -> list[RunTasks]:
        return [c.message for c in self.sent if isinstance(c, SendToAgent)
                and c.agent_id == agent_id and isinstance(c.message, RunTasks)]

    def _told(self, fw: SimFramework) -> dict[str, list[TaskState]]:
        """The task updates ``fw`` got during this rule."""
        out: dict[str, list[TaskState]] = {}
        for c in self.sent:
            if isinstance(c, SendToFramework) and c.framework_id == fw.id and (
                    c.event.type == EventType.UPDATE):
                status = c.event.update.status  # type: ignore[union-attr]
                out.setdefault(status.task_id.value, []).append(status.state)
        return out

    @precondition(lambda self: any(f.offers for f in self.connected()))
    @rule(data=st.data(), refuse=st.sampled_from([None, 0.0, 5.0]))
    def framework_declines(self, data: st.DataObject, refuse: float | None) -> None:
        fw = data.draw(st.sampled_from([f for f in self.connected() if f.offers]))
        chosen = data.draw(st.lists(st.sampled_from(sorted(fw.offers)), min_size=1,
                                    unique=True))
        for offer_id in chosen:
            del fw.offers[offer_id]
        assert self.call(fw, calls.decline(chosen, refuse)) is None
        self.rule_done()

    @precondition(lambda self: any(f.to_ack for f in self.connected()))
    @rule(data=st.data(), every=st.booleans())
    def framework_acknowledges(self, data: st.DataObject, every: bool) -> None:
        """One update, or every update the framework got so far, acknowledged."""
        fw = data.draw(st.sampled_from([f for f in self.connected() if f.to_ack]))
        while fw.to_ack and fw.stream is not None:
            pick = data.draw(st.integers(0, len(fw.to_ack) - 1)) if not every else 0
            agent_id, task_id, uuid = fw.to_ack.pop(pick)
            assert self.call(fw, calls.acknowledge(agent_id, task_id, uuid)) is None
            if not every:
                break
        self.rule_done()

    @precondition(lambda self: self.connected())
    @rule(data=st.data(), implicit=st.booleans())
    def framework_kills_or_reconciles(self, data: st.DataObject, implicit: bool) -> None:
        fw = data.draw(st.sampled_from(self.connected()))
        known = sorted(tid for (fid, tid) in self.master.tasks if fid == fw.id)
        if known and not implicit:
            self.call(fw, calls.kill(data.draw(st.sampled_from(known))))
        else:
            self.call(fw, calls.reconcile())
        self.rule_done()

    def connected(self) -> list[SimFramework]:
        return [f for f in self.sim.frameworks.values() if f.stream is not None]

    # ---------------------------------------------------------------- the master

    @rule(reconnect=st.booleans(), now=RARELY)
    def master_fails_over(self, reconnect: bool, now: bool) -> None:
        """A new master takes over from what the store holds; every link and
        stream of the old one is gone.  With ``reconnect``, everyone comes back at
        once (as they do); otherwise one by one, through the other rules."""
        if not now:
            self.rule_done()
            return
        for agent in self.sim.agents.values():
            agent.connection = None
        for fw in self.sim.frameworks.values():
            fw.disconnected()
        self.master = self._start_master()
        if reconnect:
            self.everyone_connects()
        self.rule_done()

    # ---------------------------------------------------------------- the operator

    @rule(host=st.sampled_from(HOSTS), kind=st.sampled_from(["deactivate", "reactivate",
                                                            "drain", "gone"]),
          grace=st.sampled_from([None, 0.0, 3.0]), gone=RARELY, now=RARELY)
    def operator_acts_on_agent(self, host: str, kind: str, grace: float | None, gone: bool,
                               now: bool) -> None:
        """DEACTIVATE_AGENT, REACTIVATE_AGENT, DRAIN_AGENT (marking it gone when
        drained, rarely) and MARK_AGENT_GONE (rarely)."""
        agent_id = self.sim.agents[host].id
        if agent_id is None or (kind == "gone" and not now):
            self.rule_done()
            return
        was_gone = agent_id in self.master.gone_agents
        before = self.master.agents.get(agent_id)
        draining = before is not None and before.drain is not None and (
            before.drain.state.value == "DRAINING")
        deactivated = before is not None and before.deactivated
        stimulus: Stimulus
        if kind == "gone":
            stimulus = OperatorMarksAgentGone(agent_id)
        elif kind == "drain":
            stimulus = OperatorDrainsAgent(agent_id, grace, gone)
        elif kind == "deactivate":
            stimulus = OperatorDeactivatesAgent(agent_id)
        else:
            stimulus = OperatorReactivatesAgent(agent_id)
        answer = self.step(stimulus)
        if isinstance(stimulus, OperatorMarksAgentGone):
            assert answer is None and agent_id in self.master.gone_agents
        elif was_gone:
            assert isinstance(answer, Refusal) and answer.status == 404, answer
        elif isinstance(stimulus, OperatorReactivatesAgent) and (draining or not deactivated):
            assert isinstance(answer, Refusal) and answer.status == 409, answer
        else:
            assert answer is None, answer
        agent = self.master.agents.get(agent_id)
        if agent is not None and not isinstance(stimulus, OperatorReactivatesAgent):
            assert agent.deactivated and not self.master.offers_by_agent.get(agent_id)
        self.rule_done()

    # ---------------------------------------------------------------- invariants

    @invariant()
    def resources_are_conserved(self) -> None:
        m = self.master
        for agent_id in m.in_allocator:
            agent = m.agents[agent_id]
            offered = total_of(o.resources + o.reserved for o in m.offers.values()
                               if o.agent_id == agent_id)
            used = m.used_resources(agent_id=agent_id)
            assert m.allocator.available(agent_id) + offered + used == agent.total, agent_id
            held = m.allocator.allocations(agent_id)
            for fid in {k[0] for k in held} | {o.framework_id for o in m.offers.values()}:
                mine = total_of(r for (f, _), r in held.items() if f == fid)
                expected = total_of([o.resources for o in m.offers.values()
                                     if o.agent_id == agent_id and o.framework_id == fid]
                                    + [t.resources for t in m.agent_tasks(agent_id)
                                       if t.framework_id == fid and not t.released])
                assert mine == expected, (agent_id, fid)
        for agent in m.agents.values():
            assert agent.total.contains(m.used_resources(agent_id=agent.id)), agent.id

    @invariant()
    def every_task_is_in_one_place(self) -> None:
        m = self.master
        by_agent = [k for keys in m.tasks_by_agent.values() for k in keys]
        by_framework = [k for keys in m.tasks_by_framework.values() for k in keys]
        assert sorted(by_agent) == sorted(m.tasks) == sorted(by_framework)
        live = {id(t) for t in m.tasks.values()}
        assert not any(id(t) in live for t in m.completed_tasks)
        for key, task in m.tasks.items():
            assert task.key == key
            assert key in m.tasks_by_agent[task.agent_id]
            assert task.framework_id in m.frameworks
            assert task.released == task.latest_state.terminal, (key, task.latest_state)

    @invariant()
    def the_master_and_its_agents_agree(self) -> None:
        m = self.master
        for agent in self.sim.agents.values():
            if agent.connection is None or agent.id is None:
                continue
            record = m.agents[agent.id]
            assert (record.state.value, record.connection) == ("active", agent.connection)
            running = {k for k, t in agent.tasks.items() if not t.terminal}
            known = set(m.tasks_by_agent.get(agent.id, ()))
            assert running <= known, (agent.id, running - known)
            assert known <= set(agent.tasks), (agent.id, known - set(agent.tasks))

    @invariant()
    def the_operators_word_holds(self) -> None:
        """No offers for agents the operator turned off; a DRAINED agent has no task;
        a gone agent has no task and is known only as gone."""
        m = self.master
        for offer in m.offers.values():
            assert m.agents[offer.agent_id].offerable, offer.agent_id
        for agent in m.agents.values():
            if agent.drain is not None and agent.drain.state.value == "DRAINED":
                assert not m.tasks_by_agent.get(agent.id), agent.id
        for agent_id in m.gone_agents:
            assert agent_id not in m.agents and agent_id not in m.in_allocator
            assert not m.tasks_by_agent.get(agent_id), agent_id

    @invariant()
    def frameworks_hold_the_offers_they_were_sent(self) -> None:
        for fw in self.connected():
            assert set(fw.offers) == self.master.offers_by_framework.get(fw.id or "", set())
            for offer_id in fw.offers:
                offer = self.master.offers[offer_id]
                assert self.master.agents[offer.agent_id].state.value == "active"


MasterMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


class TestMasterMachine(MasterMachine.TestCase):  # type: ignore[name-defined,misc]
    @classmethod
    def tearDownClass(cls) -> None:
        print(f"\nmaster state machine: {STATS['examples']} examples, {STATS['steps']} "
              f"steps, {STATS['stimuli']} stimuli handled")
        super().tearDownClass()


class Picks:
    """Stands in for hypothesis' ``data`` when a rule is replayed by hand."""

    def __init__(self, *values: object) -> None:
        self.values = list(values)

    def draw(self, strategy: object) -> object:
        return self.values.pop(0)


def test_a_drained_agent_back_with_a_task_it_ran_while_away_drains_again() -> None:
    # Found by the machine: a task launched on h0, h0 goes silent (written off), comes
    # back, is drained at once (no task left: DRAINED), then registers again still
    # holding the task.  The master adopts it; the agent must not stay DRAINED.
    m = MasterMachine()
    m.cluster_comes_up()
    m.agent_registers(host="h0")  # its offers are rescinded and made again
    m.agent_registers(host="h0")
    h0 = m.sim.agents["h0"].id
    fw = m.sim.frameworks["legacy"]  # not PARTITION_AWARE: told LOST, the task kept
    offer_id = next(o for o, offer in fw.offers.items() if offer.agent_id.value == h0)
    m.framework_accepts(Picks(fw, offer_id), tasks=[(0.5, False, None)], duplicate=False,
                        stale=False)
    m.time_passes(dt=12.0, silent="h0")
    m.agent_registers(host="h0")
    m.operator_acts_on_agent(host="h0", kind="drain", grace=None, gone=False, now=True)
    m.agent_registers(host="h0")
    m.the_operators_word_holds()
    m.every_task_is_in_one_place()
    assert m.master.agents[h0].drain.state.value == "DRAINING"
    assert m.master.tasks_by_agent.get(h0)  # the task it came back with, being killed
