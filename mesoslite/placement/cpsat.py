"""The CP-SAT model of a (sub)problem, built directly as a proto for speed.

Variables: ``x[p]`` for each candidate pair ``p = (task, agent)`` (the caller
restricts pairs to agents that could take the task), ``u[a]`` agent used
(binpack) or ``U`` peak utilisation in thousandths (spread), ``y[g]`` gang placed,
and per-value helpers for CLUSTER (``z``) and GROUP_BY (``used``, ``m``).

Objective, lexicographic through weights ``W >> K >> 1``: most tasks placed; then
binpack: ``K * agents + size of the used agents`` (0..100 each, only when agents
differ: least stranded capacity), plus, in decomposition windows, the load left on
the agent being drained; spread: ``U``.

Warm start: the start (the greedy answer) is given as a complete hint, and with
``improve`` the model only admits answers with a strictly better objective.  The
cut makes the search prune at once and turns "infeasible" into a proof that the
start is optimal; CP-SAT repairs the hint into a better answer when one is near.
Exchangeable agents are opened in order (``chains``), a symmetry break.

Building goes through the proto (``variables.extend``, ``vars.extend``) because the
object API costs microseconds per variable, too slow for 10^5 pairs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model
from ortools.sat.python import cp_model_helper as cmh

from .constraints import CLUSTER_FREE, GROUP_BY, LIMIT, RuleState
from .instance import Instance

_BIG = 1 << 60


@dataclass
class SubModel:
    """What to optimise: ``tasks`` over candidate ``pairs``, the rest held fixed.

    ``cap`` is what agents have left for the model's tasks, ``rules`` holds the
    constraint counts of running tasks and of tasks outside the model.  ``hint`` is a
    full assignment (outside tasks ignored) that is feasible for the model.
    ``must_place`` marks model tasks that every answer must place.  ``complete`` says
    the model is the whole problem, so its proven bound is a global one.
    """

    tasks: np.ndarray
    pairs_t: np.ndarray
    pairs_a: np.ndarray
    cap: np.ndarray
    rules: RuleState
    hint: np.ndarray
    must_place: np.ndarray
    complete: bool
    chains: list[np.ndarray] = field(default_factory=list)
    improve: bool = True
    drain: int = -1  # binpack: an agent to empty, as the last objective term
    objective: bool = True  # False: any answer will do (first found is returned)


@dataclass
class SolveResult:
    assign: np.ndarray  # the hint with the model's tasks replaced by the solver's answer
    status: str  # OPTIMAL / FEASIBLE / INFEASIBLE / UNKNOWN / MODEL_INVALID
    wall_ms: float
    agent_bound: int | None  # proven: no answer placing as many tasks uses fewer agents
    n_pairs: int = 0  # model size, for the budget's cost model
    n_constraints: int = 0


class _Proto:
    """Thin, fast writer of a CpModelProto."""

    def __init__(self) -> None:
        self.model = cp_model.CpModel()
        self.proto = self.model.proto
        self.count = 0
        self.hint_vars: list[int] = []
        self.hint_values: list[int] = []

    def bools(self, n: int) -> np.ndarray:
        var = cmh.IntegerVariableProto()
        var.domain.extend([0, 1])
        self.proto.variables.extend([var] * n)
        self.count += n
        return np.arange(self.count - n, self.count, dtype=np.int64)

    def integer(self, lb: int, ub: int) -> int:
        self.proto.variables.add().domain.extend([int(lb), int(ub)])
        self.count += 1
        return self.count - 1

    def linear(self, vars, coeffs, lb: int, ub: int, enforce: int | None = None) -> None:
        """``lb <= sum(coeffs * vars) <= ub`` (lists or int arrays), if ``enforce``."""
        ct = self.proto.constraints.add()
        if enforce is not None:
            ct.enforcement_literal.append(int(enforce))
        ct.linear.vars.extend(vars if isinstance(vars, list) else vars.tolist())
        ct.linear.coeffs.extend(coeffs if isinstance(coeffs, list) else coeffs.tolist())
        ct.linear.domain.extend([max(int(lb), -_BIG), min(int(ub), _BIG)])

    def hint(self, vars, values) -> None:
        self.hint_vars.extend(np.asarray(vars, dtype=np.int64).tolist())
        self.hint_values.extend(np.asarray(values, dtype=np.int64).tolist())


def _split(keys: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(key, positions) for each distinct key, in key order."""
    if len(keys) == 0:
        return
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))
    ends = np.append(starts[1:], len(keys))
    for s, e in zip(starts, ends, strict=True):
        yield int(sorted_keys[s]), order[s:e]


class _Builder:
    def __init__(self, inst: Instance, sub: SubModel) -> None:
        self.inst, self.sub, self.w = inst, sub, _Proto()
        self.x = self.w.bools(len(sub.pairs_t))
        self.x_hint = (sub.hint[sub.pairs_t] == sub.pairs_a).astype(np.int64)
        self.w.hint(self.x, self.x_hint)
        self.obj_vars: list[int] = []
        self.obj_coeffs: list[int] = []
        self.agents = np.unique(sub.pairs_a)
        self.binpack = inst.problem.objective == "binpack"
        frag = inst.frag[self.agents]
        self.F = 100 if self.binpack and len(np.unique(frag)) > 1 else 0
        n = len(self.agents)
        # Draining: each task left on the drained agent costs its size (1..100).
        on_drain = sub.pairs_a == sub.drain
        self.drain_cost = np.zeros(len(sub.pairs_t), dtype=np.int64)
        if self.binpack and sub.drain >= 0:
            size = inst.task_size[sub.pairs_t[on_drain]] / max(len(inst.dims), 1)
            self.drain_cost[on_drain] = np.clip(np.rint(100 * size), 1, 100)
        drain_max = int(self.drain_cost.sum())
        self.K = self.F * n + drain_max + 1
        self.W = (self.K + self.F) * n + drain_max + 1 if self.binpack else 1001
        self.u_of: dict[int, int] = {}
        self.hint_objective = 0

    def build(self) -> cp_model.CpModel:
        self._tasks()
        if self.binpack:
            self._binpack_capacity()
            self._symmetry()
        else:
            self._spread_capacity()
        for r in range(len(self.sub.rules.rules)):
            if self.sub.rules.rules[r].group in self.groups:
                self._rule(r)
        proto = self.w.proto
        drained = np.flatnonzero(self.drain_cost)
        self.obj_vars.extend(self.x[drained].tolist())
        self.obj_coeffs.extend(self.drain_cost[drained].tolist())
        if self.sub.objective:
            proto.objective.vars.extend(self.obj_vars)
            proto.objective.coeffs.extend(self.obj_coeffs)
        hinted = dict(zip(self.w.hint_vars, self.w.hint_values, strict=True))
        self.hint_objective = sum(c * hinted[v] for v, c in zip(self.obj_vars, self.obj_coeffs,
                                                               strict=True))
        if self.sub.improve:
            # Only answers strictly better than the start: the search prunes with it
            # at once, and "infeasible" proves the start optimal.
            self.w.linear(self.obj_vars, self.obj_coeffs, -_BIG, self.hint_objective - 1)
        # The start as a hint: the search dives near it first (when ``improve`` cuts
        # it off, CP-SAT repairs it into a better answer where it can).
        proto.solution_hint.vars.extend(self.w.hint_vars)
        proto.solution_hint.values.extend(self.w.hint_values)
        return self.w.model

    def _tasks(self) -> None:
        sub, inst = self.sub, self.inst
        must = dict(zip(sub.tasks.tolist(), sub.must_place.tolist(), strict=True))
        self.groups = set(inst.group_of[sub.tasks].tolist())
        gang_var: dict[int, int] = {}
        for t, pos in _split(sub.pairs_t):
            gang = int(inst.gang_of[t])
            if must[t]:
                self.w.linear(self.x[pos].tolist(), [1] * len(pos), 1, 1)
            elif gang >= 0:
                if gang not in gang_var:
                    gang_var[gang] = self.w.bools(1)[0]
                    self.w.hint([gang_var[gang]], [int(sub.hint[t] >= 0)])
                    self.obj_vars.append(int(gang_var[gang]))
                    self.obj_coeffs.append(-self.W * len(inst.gangs[gang]))
                xs = self.x[pos].tolist()
                self.w.linear(xs + [int(gang_var[gang])], [1] * len(xs) + [-1], 0, 0)
            else:
                self.w.linear(self.x[pos].tolist(), [1] * len(pos), 0, 1)
                self.obj_vars.extend(self.x[pos].tolist())
                self.obj_coeffs.extend([-self.W] * len(pos))
        # A model task without any candidate pair stays unplaced: its gang cannot go.
        for t in sub.tasks[~np.isin(sub.tasks, sub.pairs_t)]:
            if must[int(t)]:
                raise ValueError("a task that must be placed has no candidate agent")
            if inst.gang_of[t] >= 0 and int(inst.gang_of[t]) in gang_var:
                self.w.linear([int(gang_var[int(inst.gang_of[t])])], [1], 0, 0)

    def _binpack_capacity(self) -> None:
        sub, dem = self.sub, self.inst.dem
        for a, pos in _split(sub.pairs_a):
            u = self.w.bools(1)[0]
            self.w.hint([u], [int(self.x_hint[pos].any())])
            self.u_of[a] = int(u)
            self.obj_vars.append(int(u))
            self.obj_coeffs.append(self.K + int(self.inst.frag[a]) * (self.F > 0))
            xs = self.x[pos].tolist() + [int(u)]
            self.w.linear(xs, [1] * len(pos) + [-len(pos)], -_BIG, 0)
            d_pos = dem[sub.pairs_t[pos]]
            for d in range(dem.shape[1]):
                if d_pos[:, d].sum() > sub.cap[a, d]:  # skip what can never bind
                    coeffs = d_pos[:, d].tolist() + [-int(sub.cap[a, d])]
                    self.w.linear(xs, coeffs, -_BIG, 0)

    def _symmetry(self) -> None:
        """Exchangeable agents are opened in order: u[a_k] >= u[a_k+1]."""
        for chain in self.sub.chains:
            us = [self.u_of[int(a)] for a in chain if int(a) in self.u_of]
            for first, second in itertools.pairwise(us):
                self.w.linear([first, second], [1, -1], 0, 1)

    def _spread_capacity(self) -> None:
        sub, dem = self.sub, self.inst.dem
        peak = self.w.integer(0, 1000)
        self.obj_vars.append(peak)
        self.obj_coeffs.append(1)
        loads = np.zeros_like(sub.cap)
        np.add.at(loads, sub.pairs_a[self.x_hint == 1], dem[sub.pairs_t[self.x_hint == 1]])
        used = self.inst.cap - sub.cap  # held by tasks outside the model
        total = loads + used
        with np.errstate(divide="ignore", invalid="ignore"):
            util = np.where(total > 0, np.ceil(1000 * total / np.maximum(self.inst.cap, 1)), 0)
        self.w.hint([peak], [int(util.max(initial=0))])
        for a, pos in _split(sub.pairs_a):
            d_pos = dem[sub.pairs_t[pos]]
            xs = self.x[pos].tolist()
            for d in range(dem.shape[1]):
                cap = int(self.inst.cap[a, d])
                coeffs = (1000 * d_pos[:, d]).tolist() + [-cap]
                self.w.linear(xs + [peak], coeffs, -_BIG, -1000 * int(used[a, d]))
                if d_pos[:, d].sum() > sub.cap[a, d]:
                    self.w.linear(xs, d_pos[:, d].tolist(), 0, int(sub.cap[a, d]))

    def _rule(self, r: int) -> None:
        rules, sub = self.sub.rules, self.sub
        rule = rules.rules[r]
        sel = np.flatnonzero(self.inst.group_of[sub.pairs_t] == rule.group)
        vids = rules.vid[rules.row[r], sub.pairs_a[sel]]
        base = rules.counts[rules.offset[r]: rules.offset[r] + len(rule.running)]
        hint_count = np.zeros(len(base), dtype=np.int64)
        np.add.at(hint_count, vids, self.x_hint[sel])
        if rule.kind == LIMIT:
            for v, pos in _split(vids):
                room = max(0, rule.limit - int(base[v]))
                if len(pos) > room:
                    self.w.linear(self.x[sel[pos]].tolist(), [1] * len(pos), 0, room)
        elif rule.kind == CLUSTER_FREE:
            self._cluster(r, sel, vids, base, hint_count)
        elif rule.kind == GROUP_BY:
            self._group_by(rule, sel, vids, base, hint_count)

    def _cluster(self, r, sel, vids, base, hint_count) -> None:
        if self.sub.rules.new_total[r] > 0:  # tasks outside the model chose the value
            for v, pos in _split(vids):
                if base[v] == 0:
                    self.w.linear(self.x[sel[pos]].tolist(), [1] * len(pos), 0, 0)
            return
        zs = []
        for v, pos in _split(vids):
            z = self.w.bools(1)[0]
            zs.append(z)
            self.w.hint([z], [int(hint_count[v] > 0)])
            xs = self.x[sel[pos]].tolist()
            self.w.linear(xs + [int(z)], [1] * len(xs) + [-len(xs)], -_BIG, 0)
        self.w.linear([int(z) for z in zs], [1] * len(zs), 0, 1)

    def _group_by(self, rule, sel, vids, base, hint_count) -> None:
        domain = np.flatnonzero(rule.domain)
        by_value = dict(_split(vids))
        if len(domain) < rule.min_domains:
            for v, pos in by_value.items():  # minimum is 0: each value ends with <= 1
                xs = self.x[sel[pos]].tolist()
                self.w.linear(xs, [1] * len(xs), 0, max(0, 1 - int(base[v])))
            return
        fixed = [int(base[v]) for v in domain if v not in by_value]
        hint_total = base + hint_count
        m = self.w.integer(0, min(fixed) if fixed else int(hint_total[domain].max()) + len(sel))
        self.w.hint([m], [int(hint_total[domain].min())])
        for v, pos in by_value.items():
            xs = self.x[sel[pos]].tolist()
            used = int(self.w.bools(1)[0])
            self.w.hint([used], [int(hint_count[v] > 0)])
            n, b = len(xs), int(base[v])
            self.w.linear(xs + [used], [1] * n + [-n], -_BIG, 0)
            self.w.linear(xs + [m], [1] * n + [-1], -_BIG, 1 - b, enforce=used)
            self.w.linear(xs + [m], [-1] * n + [1], -_BIG, b)

    def agent_bound(self, bound: float, optional_placed: int) -> int | None:
        """Agents any answer placing as many tasks needs, from a bound on all objectives."""
        if not self.binpack or not self.sub.complete or not self.sub.objective:
            return None
        n = len(self.agents)
        # An answer placing one more task scores at most this; if that is below the
        # bound, none exists, and answers placing as many need this many agents.
        if -self.W * (optional_placed + 1) + (self.K + self.F) * n >= bound:
            return None
        return max(0, math.ceil((bound + self.W * optional_placed) / (self.K + self.F) - 1e-9))


# Solver settings for short budgets: CP-SAT's symmetry detection and probing cost
# more than a sub-second search gains (exchangeable agents are ordered by the model).
PARAMETERS: dict = {"symmetry_level": 0, "cp_model_probing_level": 0}
# An invalid model is an engine bug.  Production falls back to the start (the answer
# stays valid); tests set STRICT to see it.
STRICT = False


def solve(inst: Instance, sub: SubModel, time_s: float, workers: int, seed: int,
          dtime: float | None = None) -> SolveResult:
    """Optimise ``sub`` with CP-SAT for at most ``time_s`` seconds (and ``dtime``
    units of CP-SAT's deterministic time, which makes one-worker solves reproducible)."""
    builder = _Builder(inst, sub)
    model = builder.build()
    solver = cp_model.CpSolver()
    params = solver.parameters
    params.max_time_in_seconds = max(time_s, 0.001)
    params.num_workers = workers
    params.random_seed = seed
    if dtime is not None:
        params.max_deterministic_time = dtime
    for key, value in PARAMETERS.items():
        setattr(params, key, value)
    status = solver.solve(model)
    if STRICT and status == cp_model.MODEL_INVALID:
        raise AssertionError(f"invalid CP-SAT model: {model.validate()}")
    result = SolveResult(sub.hint.copy(), solver.status_name(status), solver.wall_time * 1000,
                         None, len(sub.pairs_t), len(model.proto.constraints))
    if status == cp_model.INFEASIBLE and sub.improve:
        # Nothing beats the start.  Its objective bounds every answer; for binpack,
        # answers placing as many use as many agents (size weights are below K).
        if builder.binpack and sub.complete:
            result.agent_bound = len(np.unique(sub.hint[sub.hint >= 0]))
        return result
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return result
    values = np.fromiter(solver.response_proto.solution, dtype=np.int64, count=builder.w.count)
    chosen = values[builder.x] == 1
    result.assign[sub.tasks] = -1
    result.assign[sub.pairs_t[chosen]] = sub.pairs_a[chosen]
    optional = ~np.isin(sub.pairs_t, sub.tasks[sub.must_place])
    placed_optional = int((chosen & optional).sum())
    bound = min(solver.best_objective_bound, builder.hint_objective)
    result.agent_bound = builder.agent_bound(bound, placed_optional)
    return result
