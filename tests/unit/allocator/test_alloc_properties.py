"""Property tests: the allocator against the naive model, and its safety invariants.

Any sequence of operations must leave the real allocator and the from-scratch model
(``alloc_model.py``) agreeing on every offer, every agent's allocations and available
resources, and every filter; and no agent may ever have more handed out than its total
or the same port in two hands.
"""

from __future__ import annotations

import math
import os

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from mesoslite.master.allocator import Allocator
from mesoslite.resources import Resources
from tests.unit.allocator.alloc_model import NaiveAllocator

ROLES = ["*", "a", "a/b", "a/b/c", "c"]
FRAMEWORKS = ["f0", "f1", "f2", "f3"]
AGENTS = ["s0", "s1", "s2", "s3", "s4"]
WEIGHTS = {"a": 2.0, "c": 0.5}
REFUSALS = [None, 0.0, 1.0, 5.0, 30.0, -1.0, math.nan, math.inf, 1e12]
EXAMPLES = int(os.environ.get("ALLOC_EXAMPLES", "150"))  # raise it for a longer hunt

QUOTA_ROLES = ["*", "a", "c"]  # quota is for top-level roles
_AMOUNTS = {"cpus": [0, 0.5, 1, 2.5, 6], "mem": [0, 100, 1024, 3000], "gpus": [0, 1]}


@st.composite
def _quantities(draw: st.DrawFn) -> dict[str, float]:
    kinds = draw(st.lists(st.sampled_from(sorted(_AMOUNTS)), unique=True, max_size=3))
    return {k: draw(st.sampled_from(_AMOUNTS[k])) for k in kinds}


@st.composite
def quota_st(draw: st.DrawFn) -> tuple[dict[str, float], dict[str, float]]:
    """(guarantees, limits), each guarantee within its limit; both empty: no quota."""
    limits = draw(_quantities())
    guarantees = {k: min(v, limits.get(k, v)) for k, v in draw(_quantities()).items()}
    return guarantees, limits


quota_st = quota_st()
roles_st = st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True)
agent_st = st.builds(
    lambda cpus, mem, first, width, gpus: Resources(
        scalars={"cpus": cpus, "mem": mem, "gpus": gpus},
        ranges={"ports": [(first, first + width)]},
    ),
    st.sampled_from([0, 1, 2.5, 4, 8]),
    st.sampled_from([0, 256, 1024, 4096.5]),
    st.sampled_from([31000, 31005]),
    st.integers(0, 9),
    st.sampled_from([0, 0, 1]),
) | st.builds(  # ports only: shares do not move, so the allocation count breaks ties
    lambda width: Resources(ranges={"ports": [(32000, 32000 + width)]}), st.integers(0, 3)
)


def half(resources: Resources) -> Resources:
    """About half of ``resources``: half of each scalar, the lower half of the ports."""
    ports = resources.port_list()
    keep = ports[: len(ports) // 2]
    return Resources(
        scalars={k: round(v / 2, 3) for k, v in resources.scalars.items()},
        ranges={"ports": [(p, p) for p in keep]},
    )


def ports_disjoint(pieces: list[Resources]) -> bool:
    seen: set[int] = set()
    for piece in pieces:
        ports = set(piece.port_list())
        if seen & ports:
            return False
        seen |= ports
    return True


class AllocatorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.real = Allocator(WEIGHTS)
        self.model = NaiveAllocator(WEIGHTS)
        self.now = 100.0
        self.overcommitted: set[str] = set()  # agents the *caller* shrank below usage

    def both(self, name: str, *args: object) -> None:
        getattr(self.real, name)(*args)
        getattr(self.model, name)(*args)

    def registered(self) -> list[str]:
        return sorted(self.model.frameworks)

    # -- agents -------------------------------------------------------------------

    @rule(data=st.data(), agent=st.sampled_from(AGENTS), total=agent_st, used=st.booleans())
    def add_agent(self, data: st.DataObject, agent: str, total: Resources, used: bool) -> None:
        if agent in self.model.agents:
            return
        allocated = {}
        if used and self.registered():
            fid = data.draw(st.sampled_from(self.registered()))
            role = data.draw(st.sampled_from(sorted(self.model.frameworks[fid].roles)))
            allocated[(fid, role)] = half(total)
        self.both("add_agent", agent, total, allocated)

    @rule(agent=st.sampled_from(AGENTS))
    def remove_agent(self, agent: str) -> None:
        self.both("remove_agent", agent)
        self.overcommitted.discard(agent)

    @rule(agent=st.sampled_from(AGENTS), active=st.booleans())
    def toggle_agent(self, agent: str, active: bool) -> None:
        if agent in self.model.agents:
            self.both("activate_agent" if active else "deactivate_agent", agent)

    @rule(agent=st.sampled_from(AGENTS), total=agent_st)
    def update_agent_total(self, agent: str, total: Resources) -> None:
        if agent not in self.model.agents:
            return
        self.both("update_agent_total", agent, total)
        used = Resources()
        for r in self.model.agents[agent].alloc.values():
            used = used + r
        if not total.contains(used):
            self.overcommitted.add(agent)

    # -- frameworks ---------------------------------------------------------------

    @rule(fid=st.sampled_from(FRAMEWORKS), roles=roles_st,
          suppressed=st.lists(st.sampled_from(ROLES), max_size=2),
          active=st.sampled_from([True, True, False]), weight=st.sampled_from([1.0, 1.0, 3.0]))
    def add_framework(self, fid: str, roles: list[str], suppressed: list[str], active: bool,
                      weight: float) -> None:
        if fid in self.model.frameworks:
            return
        suppressed = [r for r in suppressed if r in roles and r != roles[0]]
        self.both("add_framework", fid, roles, suppressed, active, weight)

    @precondition(lambda self: self.model.frameworks)
    @rule(data=st.data(), roles=roles_st, change_suppressed=st.booleans())
    def update_framework(self, data: st.DataObject, roles: list[str],
                         change_suppressed: bool) -> None:
        fid = data.draw(st.sampled_from(self.registered()))
        suppressed = roles[1:2] if change_suppressed else None
        self.both("update_framework", fid, roles, suppressed)

    @rule(fid=st.sampled_from(FRAMEWORKS))
    def remove_framework(self, fid: str) -> None:
        self.both("remove_framework", fid)

    @precondition(lambda self: self.model.frameworks)
    @rule(data=st.data(), op=st.sampled_from(
        ["activate_framework", "deactivate_framework", "suppress", "revive"]))
    def framework_state(self, data: st.DataObject, op: str) -> None:
        fid = data.draw(st.sampled_from(self.registered()))
        if op in ("suppress", "revive"):
            roles = data.draw(st.none() | st.lists(st.sampled_from(ROLES), max_size=2))
            self.both(op, fid, roles)
        else:
            self.both(op, fid)

    @rule(role=st.sampled_from(ROLES), weight=st.sampled_from([0.5, 1.0, 2.0, 4.0]))
    def set_role_weight(self, role: str, weight: float) -> None:
        self.both("set_role_weight", role, weight)

    @rule(role=st.sampled_from(QUOTA_ROLES), quota=quota_st)
    def set_quota(self, role: str, quota: tuple[dict[str, float], dict[str, float]]) -> None:
        self.both("set_quota", role, *quota)

    # -- resources ----------------------------------------------------------------

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 5.0, 29.0, 1e6]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @rule(data=st.data(), partial=st.booleans())
    def allocate(self, data: st.DataObject, partial: bool) -> None:
        agent_ids = None
        if partial:
            agent_ids = data.draw(st.lists(st.sampled_from(AGENTS + ["nope"]), max_size=4))
        before = {a: self.real.available(a) for a in self.model.agents}
        held_before = {role: self.held(role) for role in self.model.quotas}
        got = self.real.allocate(self.now, agent_ids)
        want = self.model.allocate(self.now, agent_ids)
        assert [tuple(a) for a in got] == want
        given: dict[str, Resources] = {}
        for alloc in got:
            # everything offered was free, and offered once
            assert alloc.resources
            assert before[alloc.agent_id].contains(alloc.resources)
            before[alloc.agent_id] = before[alloc.agent_id] - alloc.resources
            given[alloc.agent_id] = given.get(alloc.agent_id, Resources()) + alloc.resources
        for role, (_, limits) in self.model.quotas.items():
            # a round never takes a role beyond a limit (it may stay above one it was
            # already over: limits lowered below what it holds)
            held = self.held(role)
            for name, cap in limits.items():
                if held.get(name, 0) > cap:
                    assert held.get(name, 0) == held_before[role].get(name, 0), (role, name)

    def held(self, role: str) -> dict[str, int]:
        """What a top-level role and its sub-roles hold, in thousandths."""
        out: dict[str, int] = {}
        for agent in self.model.agents.values():
            for (_, r), res in agent.alloc.items():
                if r.split("/")[0] == role:
                    for k, v in res.scalars.items():
                        out[k] = out.get(k, 0) + round(v * 1000)
        return out

    @precondition(lambda self: any(a.alloc for a in self.model.agents.values()))
    @rule(data=st.data(), part=st.booleans(), refuse=st.sampled_from(REFUSALS))
    def recover(self, data: st.DataObject, part: bool, refuse: float | None) -> None:
        held = sorted((agent_id, key) for agent_id, agent in self.model.agents.items()
                      for key in agent.alloc)
        agent_id, (fid, role) = data.draw(st.sampled_from(held))
        resources = self.real.allocations(agent_id)[(fid, role)]
        if part:
            resources = half(resources)
        self.both("recover", fid, role, agent_id, resources, self.now, refuse)

    @rule(refuse=st.sampled_from([None, 0.0, 0.0, 1.0]))
    def decline_everything(self, refuse: float | None) -> None:
        # everything back at once: the next round has many agents and clients competing
        for agent_id, agent in list(self.model.agents.items()):
            for (fid, role), resources in sorted(agent.alloc.items()):
                self.both("recover", fid, role, agent_id, resources, self.now, refuse)

    @rule(fid=st.sampled_from(FRAMEWORKS + ["ghost"]), agent=st.sampled_from(AGENTS),
          role=st.sampled_from(ROLES))
    def recover_unknown(self, fid: str, agent: str, role: str) -> None:
        # returns racing with removals: tolerated, and only what is held is freed
        self.both("recover", fid, role, agent, Resources.of(cpus=1), self.now, 5.0)

    @precondition(lambda self: self.model.agents)
    @rule(data=st.data(), fid=st.sampled_from(FRAMEWORKS + ["ghost"]),
          role=st.sampled_from(ROLES))
    def allocate_used(self, data: st.DataObject, fid: str, role: str) -> None:
        agent_id = data.draw(st.sampled_from(sorted(self.model.agents)))
        resources = half(self.real.available(agent_id))
        self.both("allocate_used", fid, role, agent_id, resources)

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def agents_agree_and_fit(self) -> None:
        assert self.real.agent_ids() == list(self.model.agents)
        for agent_id, agent in self.model.agents.items():
            assert self.real.allocations(agent_id) == agent.alloc
            assert self.real.available(agent_id) == agent.available()
            if agent_id in self.overcommitted:
                continue
            used = Resources()
            for piece in agent.alloc.values():
                used = used + piece
            assert agent.total.contains(used)
            assert ports_disjoint(list(agent.alloc.values()))

    @invariant()
    def filters_agree(self) -> None:
        for fid in self.model.frameworks:
            for role in ROLES:
                for agent_id in self.model.agents:
                    if (fid, role) not in self.model.clients():
                        continue
                    want = self.model.is_filtered(fid, role, agent_id, self.now)
                    assert self.real.is_filtered(fid, role, agent_id, self.now) == want
        expiries = [e for e, _ in self.model.filters.values() if e > self.now]
        assert self.real.next_filter_expiry(self.now) == (min(expiries) if expiries else None)

    @invariant()
    def shares_agree(self) -> None:
        shares = self.real.shares()
        assert set(shares["frameworks"]) == {k[0] for k in self.model.clients()}
        for fid, entry in shares["frameworks"].items():
            assert set(entry["roles"]) == {r for f, r in self.model.clients() if f == fid}


AllocatorMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestAllocatorMachine = AllocatorMachine.TestCase


class QuotaAllocatorMachine(AllocatorMachine):
    """The same, with quota on some roles from the start (so most rounds are staged)."""

    @initialize(quotas=st.dictionaries(st.sampled_from(QUOTA_ROLES), quota_st, min_size=1),
                roles=st.lists(roles_st, min_size=2, max_size=3),
                totals=st.lists(agent_st, min_size=2, max_size=4))
    def set_quotas(self, quotas: dict[str, tuple[dict[str, float], dict[str, float]]],
                   roles: list[list[str]], totals: list[Resources]) -> None:
        for role, quota in quotas.items():
            self.both("set_quota", role, *quota)
        for fid, fw_roles in zip(FRAMEWORKS, roles):
            self.both("add_framework", fid, fw_roles, (), True, 1.0)
        for agent, total in zip(AGENTS, totals):
            self.both("add_agent", agent, total, {})


QuotaAllocatorMachine.TestCase.settings = AllocatorMachine.TestCase.settings
TestQuotaAllocatorMachine = QuotaAllocatorMachine.TestCase


@st.composite
def contended_clusters(draw: st.DrawFn) -> dict:
    """Several frameworks in weighted, nested roles, and agents of assorted sizes."""
    frameworks = {}
    for i in range(draw(st.integers(2, 6))):
        frameworks[f"f{i}"] = (draw(roles_st), draw(st.sampled_from([1.0, 1.0, 2.0, 0.5])))
    agents = [draw(agent_st) for _ in range(draw(st.integers(2, 10)))]
    weights = draw(st.dictionaries(st.sampled_from(ROLES), st.sampled_from([0.5, 2.0, 3.0])))
    used = draw(st.lists(st.tuples(st.integers(0, 9), st.sampled_from(sorted(frameworks))),
                         max_size=4))
    return {"frameworks": frameworks, "agents": agents, "weights": weights, "used": used}


@settings(max_examples=EXAMPLES,
          deadline=None)
@given(cluster=contended_clusters(), rounds=st.integers(1, 4),
       refuse=st.sampled_from([None, 0.0, 2.0]))
def test_rounds_follow_drf_like_the_model(cluster: dict, rounds: int, refuse: float | None
                                          ) -> None:
    """Every offer, in order, is the model's: DRF over weighted nested roles, ties by
    allocation count then name, frameworks declining everything between rounds."""
    real, model = Allocator(cluster["weights"]), NaiveAllocator(cluster["weights"])
    for target in (real, model):
        for fid, (roles, weight) in cluster["frameworks"].items():
            target.add_framework(fid, roles, (), True, weight)
        for i, total in enumerate(cluster["agents"]):
            used = {}
            for index, fid in cluster["used"]:
                if index == i:
                    used[(fid, cluster["frameworks"][fid][0][0])] = half(total)
            target.add_agent(f"s{i}", total, used)
    now = 0.0
    for _ in range(rounds):
        got = real.allocate(now)
        assert [tuple(a) for a in got] == model.allocate(now)
        for a in got:
            for target in (real, model):
                target.recover(a.framework_id, a.role, a.agent_id, a.resources, now, refuse)
        now += 1.0
