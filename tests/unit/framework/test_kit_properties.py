"""The kit's core against a model world, with Hypothesis choosing what happens.

Offers come and go, the engine answers late or after the subscription is lost, calls
succeed, are refused or lose their answer, agents report (and report again) in any
order, reconciliation answers, the framework crashes at any point and starts from
what its store holds.  After every step:

* every acknowledged update is in the store: at the moment an acknowledgement went
  out, the store held the task in that state or a later one;
* no instance is launched twice: the master never has two live tasks of one instance;
* revive and suppress follow demand: once reconciled, the master was last told
  SUPPRESS exactly when no instance waits.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mesoslite.framework import KitSettings
from mesoslite.framework.events import CallOutcome, Disconnected, Rescind, Subscribed
from mesoslite.framework.instructions import Acknowledge, Instruction
from tests.unit.framework.world import TERMINAL, MasterTask, World, offer, rank

AGENTS = ("a1", "a2", "a3")
STEPS = 60
EXAMPLES = 400


class AuditedWorld(World):
    """A world that notes, at the moment of every acknowledgement, what the store held."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.offers_made = 0
        # short intervals, so reconciliation often meets a launch still on its way
        super().__init__(count=3, settings=KitSettings(
            reconcile_wait_s=5.0, reconcile_interval_s=3.0, launch_grace_s=2.0))

    def execute(self, i: Instruction) -> None:
        if isinstance(i, Acknowledge) and i.task_id in self.master:
            states = [s for u, s in self.master[i.task_id].unacked if u == i.uuid]
            held = self.disk.get(i.task_id)
            for state in states:
                if held is None or rank(held[1]) < rank(state):
                    self.violations.append(f"{i.task_id} acknowledged {state} while the "
                                           f"store held {held}")
        super().execute(i)


class KitMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w = AuditedWorld()

    # ------------------------------------------------------------ the framework

    @initialize()
    def start(self) -> None:
        self.w.feed(Subscribed("fw-1"))
        self.w.step()

    @rule()
    def subscribe(self) -> None:
        if not self.w.core.subscribed:
            self.w.feed(Subscribed("fw-1"))

    @rule(advance=st.sampled_from([0.0, 0.0, 0.5, 3.0, 11.0]), engine=st.booleans())
    def step(self, advance: float, engine: bool) -> None:
        """Time passes; the engine may have answered the round in flight meanwhile."""
        if engine and self.w.pending_places:
            self.w.answer_place()
        self.w.now += advance
        self.w.step()

    @rule(arrived=st.booleans())
    def crash(self, arrived: bool) -> None:
        """The process dies; ACCEPTs on their way did or did not reach the master."""
        if arrived:
            for accept in self.w.pending_accepts:
                for task_id in accept.task_ids:
                    self.w.master.setdefault(task_id, MasterTask(accept.agent_id))
        self.w.crash()

    @rule()
    def disconnect(self) -> None:
        self.w.feed(Disconnected())

    # ------------------------------------------------------------ offers and calls

    @rule(agent=st.sampled_from(AGENTS), cpus=st.sampled_from([0.5, 1.0, 2.0, 3.0]))
    def offer(self, agent: str, cpus: float) -> None:
        if self.w.core.subscribed:
            self.w.offers_made += 1
            self.w.offers(offer(f"o{self.w.offers_made}", agent, cpus))

    @rule(agent=st.sampled_from(AGENTS), outcome=st.sampled_from(list(CallOutcome)))
    def offer_cycle(self, agent: str, outcome: CallOutcome) -> None:
        """An offer, the round it starts, the engine's answer and the ACCEPTs' outcome,
        in one go (the other rules interleave the same steps)."""
        self.offer(agent, 2.0)
        self.w.step()
        while self.w.pending_places:
            self.w.answer_place()
        self.w.step()
        while self.w.pending_accepts:
            self.w.finish_accept(outcome)

    @rule(data=st.data())
    def rescind(self, data: st.DataObject) -> None:
        if self.w.core.held:
            self.w.feed(Rescind(data.draw(st.sampled_from(sorted(self.w.core.held)))))

    @precondition(lambda self: self.w.pending_places)
    @rule()
    def engine_answers(self) -> None:
        self.w.answer_place()

    @precondition(lambda self: self.w.pending_accepts)
    @rule(outcome=st.sampled_from(list(CallOutcome)))
    def accept_answered(self, outcome: CallOutcome) -> None:
        self.w.finish_accept(outcome)

    # ------------------------------------------------------------ the agents

    @rule(data=st.data(), state=st.sampled_from(["TASK_RUNNING", "TASK_FINISHED",
                                                 "TASK_FAILED"]))
    def task_changes(self, data: st.DataObject, state: str) -> None:
        live = sorted(t for t, m in self.w.master.items() if m.state not in TERMINAL)
        if live:
            self.w.agent_update(data.draw(st.sampled_from(live)), state)

    @rule(data=st.data(), state=st.sampled_from(["TASK_RUNNING", "TASK_FAILED"]))
    def task_reports(self, data: st.DataObject, state: str) -> None:
        """A task changes, its agent reports it, the framework takes it in."""
        self.task_changes(data, state)
        self.update_delivered(data)
        self.w.step()

    @rule(data=st.data(), state=st.sampled_from(["TASK_RUNNING", "TASK_FAILED"]))
    def report_during_a_write(self, data: st.DataObject, state: str) -> None:
        """The race of the old services framework: an update arrives and is folded in
        while a write is under way; the write lands; then acknowledgements go out."""
        self.w.begin_write()
        self.task_changes(data, state)
        self.update_delivered(data)
        self.w.end_write()

    @rule(data=st.data())
    def update_delivered(self, data: st.DataObject) -> None:
        waiting = sorted(t for t, m in self.w.master.items() if m.unacked)
        if waiting and self.w.core.subscribed:
            self.w.deliver(data.draw(st.sampled_from(waiting)), data.draw(st.integers(0, 3)))

    # ------------------------------------------------------------ invariants

    @invariant()
    def acknowledged_updates_are_durable(self) -> None:
        assert not self.w.violations, self.w.violations

    @invariant()
    def no_instance_is_launched_twice(self) -> None:
        live: dict[str, list[str]] = {}
        for task_id, task in self.w.master.items():
            if task.state not in TERMINAL:
                live.setdefault(task_id.split("-")[0], []).append(task_id)
        assert all(len(tasks) == 1 for tasks in live.values()), live

    @invariant()
    def revive_and_suppress_follow_demand(self) -> None:
        core = self.w.core
        if core.subscribed and core.reconciled and self.w.suppressed is not None:
            assert self.w.suppressed == (self.w.demand_at_tick == 0), (
                self.w.suppressed, self.w.demand_at_tick)


KitMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestKitMachine = KitMachine.TestCase
