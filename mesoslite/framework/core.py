"""The offer cycle of a framework as a pure state machine: events in, instructions out.

``FrameworkCore.handle(event, now)`` is the one entry point.  It does no I/O and reads
no clock; what it decides comes back as instructions (``instructions.py``) for the
runner to carry out.  What differs between frameworks (what should run, and the
tasks that run it) comes from a ``Workload``; everything else is here, once:

* **subscription**: the framework id (kept in the journal's meta table), a fresh
  start when the master says the framework was removed, and the backoff between
  attempts;
* **reconciliation**: explicit (every task the workload knows) and implicit on every
  subscription and every ``reconcile_interval_s``; nothing is killed or launched
  until the master has answered for every known task (or ``reconcile_wait_s``
  passed); a launched task with no word for ``launch_grace_s`` is asked about;
* **offers**: held, placed in one round at a time (the engine runs off the loop, so
  status updates never wait behind it), held a while when they could help work that
  waits (``offer_hold_s``), declined with a short filter while work waits and a long
  one when nothing does;
* **revive / suppress** following the workload's demand;
* **kill-unknown**: a live task the workload does not know is killed (at most every
  ``kill_retry_s``);
* **launch backoff** per key, fed by the workload's ``Outcome.failure``;
* **acknowledgements**: every update with a uuid is filed with the journal, which
  releases it once the write holding it is durable.

Time: ``now`` (seconds, from the runner's injected clock) comes with every event.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from mesoslite.framework.backoff import LaunchBackoff
from mesoslite.framework.events import (
    AcceptDone,
    CallOutcome,
    Disconnected,
    Error,
    Event,
    Failure,
    Message,
    Offers,
    Placed,
    Rescind,
    Subscribed,
    Tick,
    Update,
)
from mesoslite.framework.instructions import (
    Accept,
    Decline,
    Instruction,
    Kill,
    Place,
    Reconcile,
    Revive,
    Suppress,
    Teardown,
)
from mesoslite.framework.journal import Journal
from mesoslite.framework.offers import group_offers
from mesoslite.framework.workload import AgentLaunch, Plan, Round, Workload
from mesoslite.messages.mesos import Offer
from mesoslite.placement import Placement
from mesoslite.scheduler.backoff import Backoff

log = logging.getLogger(__name__)

# What the master says when a framework id is no longer valid: subscribe afresh.
_REMOVED_WORDS = ("removed", "torn down", "unknown framework", "not registered")


@dataclass(frozen=True)
class KitSettings:
    """Tunables of the offer cycle, in seconds."""

    reconcile_wait_s: float = 10.0  # wait this long at most for reconciliation answers
    reconcile_interval_s: float = 30.0  # explicit + implicit reconciliation this often
    launch_grace_s: float = 5.0  # ask about a launched task with no word after this
    kill_retry_s: float = 10.0  # kill an unknown live task again after this
    offer_hold_s: float = 0.0  # keep unused offers this long while work waits
    refuse_waiting_s: float = 5.0  # decline filter while work waits
    refuse_idle_s: float = 60.0  # decline filter when nothing waits
    accept_refuse_s: float = 5.0  # filter on what an ACCEPT leaves unused
    resubscribe_initial_s: float = 0.5  # backoff between subscription attempts
    resubscribe_max_s: float = 30.0


@dataclass
class _Held:
    offer: Offer
    since: float


@dataclass
class _Unconfirmed:
    """A launched task the master has not reported on yet."""

    agent_id: str
    asked_at: float


def empty_placement() -> Placement:
    """The answer to a round with nothing to place."""
    return Placement(assignments={}, ports={}, unplaced={}, agents_used=0, lower_bound=0,
                     greedy_agents_used=0, solve_ms=0.0, status="greedy")


class FrameworkCore:
    """See the module docstring.  ``rng`` jitters the re-subscription backoff;
    ``backoff`` holds the launch delays (one the workload also reads, say);
    ``framework_id`` is the id a restarted framework fails over with."""

    def __init__(self, workload: Workload, journal: Journal,
                 settings: KitSettings | None = None, rng: random.Random | None = None,
                 backoff: LaunchBackoff | None = None, framework_id: str | None = None
                 ) -> None:
        self.workload = workload
        self.framework_id = framework_id
        self.journal = journal
        self.settings = s = settings or KitSettings()
        self.backoff = backoff or LaunchBackoff()
        self.subscribed = False
        self.reconciled = False
        self.torn_down = False
        self.held: dict[str, _Held] = {}
        self._awaiting: set[str] = set()
        self._reconcile_deadline = 0.0
        self._next_reconcile = 0.0
        self._suppressed = False
        self._last_demand = 0
        self._round: Round | None = None
        self._last_round_key: tuple[frozenset[str], int] | None = None
        self._round_ids = itertools.count(1)
        self._accept_ids = itertools.count(1)
        self._accepts: dict[int, tuple[Accept, AgentLaunch]] = {}
        self._sending: set[str] = set()  # tasks whose ACCEPT is on its way
        self._unconfirmed: dict[str, _Unconfirmed] = {}
        self._unknown_kills: dict[str, float] = {}
        self._wake_at: float | None = None
        self._last_tick = float("-inf")
        self._resubscribe = Backoff(s.resubscribe_initial_s, s.resubscribe_max_s, rng=rng)
        self._handlers: dict[type, Callable[[Event, float], list[Instruction]]] = {
            Subscribed: self._subscribed, Disconnected: self._disconnected,
            Offers: self._offers, Rescind: self._rescind, Update: self._update,
            Failure: self._failure, Message: self._message, Error: self._error,
            Tick: self._tick, Placed: self._placed, AcceptDone: self._accept_done,
        }

    # ------------------------------------------------------------ the entry point

    def handle(self, event: Event, now: float) -> list[Instruction]:
        """Fold ``event`` in at time ``now``; returns what to do (in order)."""
        return self._handlers[type(event)](event, now)

    def next_wake(self) -> float | None:
        """The earliest time something falls due (a ``Tick`` should come by then)."""
        s = self.settings
        # The workload's wake-up counts only ahead of the last tick: one already due was
        # the workload's to act on then (and must not spin the loop while it cannot).
        times = [self._wake_at if self._wake_at is not None
                 and self._wake_at > self._last_tick else None]
        if self.subscribed:
            times.append(self._next_reconcile if self.reconciled else self._reconcile_deadline)
            times += [u.asked_at + s.launch_grace_s for u in self._unconfirmed.values()]
            if self.held and self._round is None:
                times.append(min(h.since for h in self.held.values()) + s.offer_hold_s)
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def resubscribe_delay(self) -> float:
        """How long to wait before the next subscription attempt (jittered, growing)."""
        return self._resubscribe.next()

    @property
    def round_in_flight(self) -> bool:
        return self._round is not None

    @property
    def suppressed(self) -> bool:
        """Whether the last word to the master on offers was SUPPRESS."""
        return self._suppressed

    # ------------------------------------------------------------ subscription

    def _subscribed(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, Subscribed)
        if event.framework_id != self.framework_id:
            self.framework_id = event.framework_id
            self.journal.put_meta("framework_id", event.framework_id)
        self.subscribed, self.reconciled = True, False
        self._resubscribe.reset()
        known = self._known()
        self._awaiting = {task_id for task_id, _ in known}
        self._reconcile_deadline = now + self.settings.reconcile_wait_s
        self._next_reconcile = now + self.settings.reconcile_interval_s
        # The driver re-subscribes with its suppressed roles; start from "unknown":
        # the first plan revives when anything waits and suppresses otherwise.
        self._suppressed, self._last_demand = False, 0
        self._last_round_key = None
        return self._reconcile_all(known)

    def _disconnected(self, event: Event, now: float) -> list[Instruction]:
        self._lose_subscription()
        return []

    def _error(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, Error)
        self._lose_subscription()
        if any(w in event.message.lower() for w in _REMOVED_WORDS):
            # Our id is gone for good: its tasks were killed by the master; the next
            # subscription registers afresh and reconciliation writes them off.
            log.error("the master removed the framework (%s); registering afresh",
                      event.message)
            self.framework_id = None
            self.journal.put_meta("framework_id", "")
        return []

    def _lose_subscription(self) -> None:
        """Offers die with the subscription; a round in flight is void."""
        self.subscribed = self.reconciled = False
        self.held.clear()
        self._round = None
        self._awaiting.clear()

    def _known(self) -> list[tuple[str, str | None]]:
        # A task whose ACCEPT is still on its way would be answered "unknown".
        return [(t, a) for t, a in self.workload.known_tasks() if t not in self._sending]

    def _reconcile_all(self, known: list[tuple[str, str | None]]) -> list[Instruction]:
        out: list[Instruction] = [Reconcile(tuple(known))] if known else []
        out.append(Reconcile())  # implicit: surfaces tasks we do not know
        return out

    # ------------------------------------------------------------ offers

    def _offers(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, Offers)
        if not self.subscribed:
            return []
        for offer in event.offers:
            self.held[offer.id.value] = _Held(offer, now)
        return []

    def _rescind(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, Rescind)
        self.held.pop(event.offer_id, None)
        return []

    # ------------------------------------------------------------ updates

    def _update(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, Update)
        status = event.status
        task_id = status.task_id.value
        agent_id = status.agent_id.value if status.agent_id else None
        self._awaiting.discard(task_id)
        self._unconfirmed.pop(task_id, None)
        outcome = self.workload.on_update(status, now)
        if outcome.failure is not None:
            key, policy = outcome.failure
            self.backoff.failed(key, now, policy)
        out: list[Instruction] = []
        if not outcome.known and not status.state.terminal:
            last = self._unknown_kills.get(task_id)
            if last is None or now - last >= self.settings.kill_retry_s:
                self._unknown_kills[task_id] = now
                out.append(Kill(task_id, agent_id, "not a task this framework runs"))
        if status.uuid and agent_id is not None:
            self.journal.acknowledge_after_write(agent_id, task_id, status.uuid)
        return out

    def _failure(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, Failure)
        self.workload.on_failure(event.agent_id, event.executor_id, event.status, now)
        return []

    def _message(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, Message)
        self.workload.on_message(event.agent_id, event.executor_id, event.data, now)
        return []

    # ------------------------------------------------------------ the step

    def _tick(self, event: Event, now: float) -> list[Instruction]:
        if (self.subscribed and not self.reconciled
                and (not self._awaiting or now >= self._reconcile_deadline)):
            if self._awaiting:
                log.warning("no reconciliation answer for %d task(s); going ahead",
                            len(self._awaiting))
            self._awaiting.clear()
            self.reconciled = True
        ready = self.subscribed and self.reconciled
        plan = self.workload.plan(now, ready, self.backoff)
        self._wake_at, self._last_tick = plan.wake_at, now
        if not self.subscribed:
            return []
        out: list[Instruction] = []
        if ready:
            if plan.done and not self.torn_down:
                self.torn_down = True
                return [Teardown()]
            out += plan.kills
            out += self._follow_demand(plan)
            out += self._start_round(plan, now)
            out += self._reconcile_due(now)
        out += self._release_offers(plan, ready, now)
        self._forget_old_kills(now)
        return out

    def _follow_demand(self, plan: Plan) -> list[Instruction]:
        """Revive when work waits (again whenever it grows: a revive also clears the
        decline filters), suppress when nothing waits."""
        demand = plan.demand
        out: list[Instruction] = []
        if demand > 0 and (self._suppressed or demand > self._last_demand):
            out.append(Revive())
            self._suppressed = False
        elif demand <= 0 and not plan.pending and not self._suppressed:
            out.append(Suppress())
            self._suppressed = True
        self._last_demand = demand
        return out

    def _start_round(self, plan: Plan, now: float) -> list[Instruction]:
        if self._round is not None or plan.demand <= 0 or not self.held:
            return []
        key = (frozenset(self.held), plan.demand)
        if key == self._last_round_key:
            return []  # the same offers for the same demand: the same answer
        self._last_round_key = key
        groups = group_offers(h.offer for h in self.held.values())
        question = self.workload.question(list(groups.values()), now)
        if question is None:
            return []
        question.id = next(self._round_ids)
        question.offers = {a: tuple(g.offer_ids) for a, g in groups.items()}
        self._round = question
        if question.problem is None:
            return self._placed(Placed(question.id, empty_placement()), now)
        return [Place(question.id, question.problem)]

    def _placed(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, Placed)
        question = self._round
        if question is None or event.round_id != question.id:
            return []  # a round from before a lost subscription: its offers are void
        self._round = None
        if event.answer is None:
            log.error("placement failed (%s); declining the offers", event.error)
            return self._decline(list(self._round_offers(question)),
                                 self.settings.refuse_waiting_s)
        answer = self._without_vanished(question, event.answer)
        launches = self.workload.placed(question, answer, now)
        out: list[Instruction] = [a for launch in launches
                                  if (a := self._accept(question, launch, now)) is not None]
        if self.settings.offer_hold_s <= 0:
            left = [o for o in self._round_offers(question) if o in self.held]
            refuse = (self.settings.refuse_waiting_s if answer.unplaced
                      else self.settings.refuse_idle_s)
            out += self._decline(left, refuse)
        return out

    def _round_offers(self, question: Round) -> list[str]:
        return [o for ids in question.offers.values() for o in ids]

    def _without_vanished(self, question: Round, answer: Placement) -> Placement:
        """Assignments to agents whose offers went while the engine thought become
        unplaced: an ACCEPT of a rescinded offer is refused anyway."""
        gone = {a for a, ids in question.offers.items() if not all(o in self.held for o in ids)}
        if not gone or not any(a in gone for a in answer.assignments.values()):
            return answer
        moved = {t: a for t, a in answer.assignments.items() if a in gone}
        return Placement(
            assignments={t: a for t, a in answer.assignments.items() if a not in gone},
            ports={t: p for t, p in answer.ports.items() if t not in moved},
            unplaced={**answer.unplaced,
                      **{t: f"the offers of agent {a} were rescinded" for t, a in moved.items()}},
            agents_used=answer.agents_used, lower_bound=answer.lower_bound,
            greedy_agents_used=answer.greedy_agents_used, solve_ms=answer.solve_ms,
            status=answer.status, greedy_placed=answer.greedy_placed, why=answer.why)

    def _accept(self, question: Round, launch: AgentLaunch, now: float) -> Accept | None:
        offer_ids = tuple(o for o in question.offers.get(launch.agent_id, ()) if o in self.held)
        if not offer_ids:
            self.workload.launch_refused(launch, "no offer of the agent is held", now)
            return None
        for oid in offer_ids:
            self.held.pop(oid, None)
        accept = Accept(next(self._accept_ids), launch.agent_id, offer_ids,
                        tuple(launch.operations), self.settings.accept_refuse_s,
                        launch.task_ids)
        self._accepts[accept.accept_id] = (accept, launch)
        self._sending.update(accept.task_ids)
        return accept

    def _accept_done(self, event: Event, now: float) -> list[Instruction]:
        assert isinstance(event, AcceptDone)
        found = self._accepts.pop(event.accept_id, None)
        if found is None:
            return []
        accept, launch = found
        self._sending.difference_update(accept.task_ids)
        if event.outcome == CallOutcome.REFUSED:
            self.workload.launch_refused(launch, event.message, now)
            return []
        # Taken (or maybe taken): the master will report on them; if it does not
        # within the grace period, ask (an unknown outcome asks at once).
        asked = now if event.outcome == CallOutcome.OK else now - self.settings.launch_grace_s
        for task_id in accept.task_ids:
            self._unconfirmed[task_id] = _Unconfirmed(accept.agent_id, asked)
        return []

    def _release_offers(self, plan: Plan, ready: bool, now: float) -> list[Instruction]:
        """Decline held offers no round is using: all of them when nothing waits (or
        the framework cannot launch yet), else those held past ``offer_hold_s``."""
        s = self.settings
        in_round = set(self._round_offers(self._round)) if self._round is not None else set()
        waiting = ready and plan.demand > 0
        old = [oid for oid, h in self.held.items() if oid not in in_round
               and (not waiting or now - h.since >= s.offer_hold_s)]
        refuse = s.refuse_waiting_s if waiting or plan.pending or not ready else s.refuse_idle_s
        return self._decline(old, refuse)

    def _decline(self, offer_ids: list[str], refuse: float) -> list[Instruction]:
        if not offer_ids:
            return []
        for oid in offer_ids:
            self.held.pop(oid, None)
        return [Decline(tuple(offer_ids), refuse)]

    # ------------------------------------------------------------ reconciliation

    def _reconcile_due(self, now: float) -> list[Instruction]:
        out: list[Instruction] = []
        if now >= self._next_reconcile:
            self._next_reconcile = now + self.settings.reconcile_interval_s
            out += self._reconcile_all(self._known())
        grace = self.settings.launch_grace_s
        stale = [(t, u.agent_id) for t, u in self._unconfirmed.items()
                 if now - u.asked_at >= grace]
        for task_id, _ in stale:
            self._unconfirmed[task_id].asked_at = now
        if stale:
            out.append(Reconcile(tuple(stale)))
        return out

    def _forget_old_kills(self, now: float) -> None:
        retry = self.settings.kill_retry_s
        for task_id in [t for t, at in self._unknown_kills.items() if now - at >= 2 * retry]:
            del self._unknown_kills[task_id]

