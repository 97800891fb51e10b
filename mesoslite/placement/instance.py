"""A ``Problem`` as numpy arrays: the form every algorithm works on.

Scalars are integers in thousandths (Mesos' precision), so capacity checks are exact
and the same numbers go into CP-SAT.  Only dimensions some task asks for exist.
An assignment is an int array over tasks holding an agent index, or -1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .constraints import AttrIndex, Group, Rule, RuleState, compile_groups
from .model import SCALE, Problem

_FIRST_DIMS = ("cpus", "mem", "disk", "gpus")


def _dimensions(problem: Problem) -> list[str]:
    asked = {k for t in problem.tasks for k, v in t.resources.items() if v > 0}
    dims = [d for d in _FIRST_DIMS if d in asked] + sorted(asked - set(_FIRST_DIMS))
    if any(t.ports for t in problem.tasks):
        dims.append("ports")
    return dims


@dataclass
class Instance:
    problem: Problem
    dims: list[str]
    cap: np.ndarray  # (A, D) int64 available capacity
    dem: np.ndarray  # (T, D) int64 demand
    groups: list[Group]
    rules: list[Rule]
    attrs: dict[str, AttrIndex]
    group_of: np.ndarray  # (T,) group index
    gang_of: np.ndarray  # (T,) gang index or -1
    gangs: list[np.ndarray]
    norm: np.ndarray = field(init=False)  # (D,) largest capacity, for scale-free scores
    agent_order: np.ndarray = field(init=False)  # binpack preference: biggest first
    frag: np.ndarray = field(init=False)  # (A,) 0..100 size of each agent
    _eligible: np.ndarray | None = field(default=None, init=False, repr=False)
    _static: list[np.ndarray] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.norm = np.maximum(self.cap.max(axis=0, initial=0), 1).astype(np.float64)
        size = (self.cap / self.norm).mean(axis=1) if self.dims else np.zeros(self.n_agents)
        self.frag = np.rint(100 * size).astype(np.int64)
        self.agent_order = np.lexsort((np.arange(self.n_agents), -size))

    @property
    def n_tasks(self) -> int:
        return len(self.dem)

    @property
    def n_agents(self) -> int:
        return len(self.cap)

    @property
    def task_size(self) -> np.ndarray:
        """Each task's demand normalised by the largest agent, summed over dimensions."""
        return (self.dem / self.norm).sum(axis=1)

    def static_rows(self) -> list[np.ndarray]:
        """Per group, agents passing its static filters (groups without constraints
        share one all-true row: most tasks of large problems have none)."""
        if self._static is None:
            everyone = np.ones(self.n_agents, dtype=bool)
            self._static = [g.static_ok if g.constraints else everyone for g in self.groups]
        return self._static

    def static_ok(self) -> np.ndarray:
        """(G, A): agents passing each group's static filters."""
        if not self.groups:
            return np.zeros((0, self.n_agents), dtype=bool)
        return np.stack(self.static_rows())

    def eligible(self) -> np.ndarray:
        """(T, A): static filters pass and the task fits the agent when it is empty."""
        if self._eligible is None:
            ok = np.ones((self.n_tasks, self.n_agents), dtype=bool)
            rows = self.static_rows()
            for g in np.unique(self.group_of):
                if self.groups[g].constraints:
                    ok[self.groups[g].tasks] &= rows[g]
            for d in range(len(self.dims)):
                ok &= self.dem[:, d, None] <= self.cap[None, :, d]
            self._eligible = ok
        return self._eligible

    def rule_state(self) -> RuleState:
        return RuleState(self.rules, self.attrs, len(self.groups))

    def units(self) -> list[np.ndarray]:
        """Gangs and the tasks in no gang, each a unit placed all-or-nothing."""
        singles = [np.array([t]) for t in np.flatnonzero(self.gang_of < 0)]
        return list(self.gangs) + singles


def build_instance(problem: Problem) -> Instance:
    """Compile ``problem`` (already validated) into arrays."""
    dims = _dimensions(problem)
    cap = np.zeros((len(problem.agents), len(dims)), dtype=np.int64)
    dem = np.zeros((len(problem.tasks), len(dims)), dtype=np.int64)
    for d, name in enumerate(dims):
        if name == "ports":
            cap[:, d] = [a.port_count for a in problem.agents]
            dem[:, d] = [t.ports for t in problem.tasks]
        else:
            cap[:, d] = [round(a.resources.get(name, 0.0) * SCALE) for a in problem.agents]
            dem[:, d] = [round(t.resources.get(name, 0.0) * SCALE) for t in problem.tasks]
    groups, rules, group_of, attrs = compile_groups(problem)
    index = {t.id: i for i, t in enumerate(problem.tasks)}
    gang_of = np.full(len(problem.tasks), -1, dtype=np.int64)
    gangs = []
    for g, gang in enumerate(problem.gangs):
        members = np.array([index[t] for t in gang], dtype=np.int64)
        gang_of[members] = g
        gangs.append(members)
    return Instance(problem, dims, cap, dem, groups, rules, attrs, group_of, gang_of, gangs)


def agents_used(assign: np.ndarray) -> int:
    return len(np.unique(assign[assign >= 0]))


def loads(inst: Instance, assign: np.ndarray) -> np.ndarray:
    """(A, D) demand placed on each agent."""
    out = np.zeros_like(inst.cap)
    placed = assign >= 0
    np.add.at(out, assign[placed], inst.dem[placed])
    return out


def spread_score(inst: Instance, assign: np.ndarray) -> int:
    """Highest utilisation of any agent in any dimension, in thousandths (rounded up)."""
    load = loads(inst, assign)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(load > 0, np.ceil(1000 * load / np.maximum(inst.cap, 1)), 0)
    return int(util.max(initial=0))


def quality(inst: Instance, assign: np.ndarray) -> tuple[int, ...]:
    """Smaller is better: more tasks placed first, then the objective.

    binpack: fewest agents, then least capacity stranded on used agents (smallest
    agents); spread: lowest peak utilisation, then most agents used.
    """
    placed = int((assign >= 0).sum())
    used = np.unique(assign[assign >= 0])
    if inst.problem.objective == "spread":
        return (-placed, spread_score(inst, assign), -len(used))
    return (-placed, len(used), int(inst.frag[used].sum()))
