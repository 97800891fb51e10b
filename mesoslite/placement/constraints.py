"""Marathon constraints compiled to arrays: static filters and counting rules.

Semantics (the validator in the tests implements the same contract independently):

* ``IS v`` / ``LIKE re`` / ``UNLIKE re``: the agent's attribute equals ``v`` /
  fully matches / does not fully match.  Every operator but ``UNLIKE`` rejects
  agents without the attribute.
* ``UNIQUE``: at most one task of the group (running or new) per attribute value.
* ``MAX_PER n``: at most ``n`` per value.
* ``CLUSTER [v]``: all the group's tasks share one value: ``v`` if given, else the
  value of its running tasks, else whichever value the new tasks pick.
* ``GROUP_BY [n]`` (Marathon's even spread, with the Kubernetes maxSkew=1 reading):
  the *domain* is the set of values of agents passing the group's attribute
  predicates plus values where the group runs; every value that receives a new task
  ends with at most ``min + 1`` of the group's tasks, where ``min`` is the smallest
  count over the domain, or 0 while the domain has fewer than ``n`` values.

Counts only ever rise during a placement, so a greedy that places a task on a value
only while that value's count is ``<= min`` satisfies the final-state rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .model import Agent, Constraint, Problem, Running
from .reasons import Reason

# Kinds of counting rules, as small ints for vectorised checks.
LIMIT, CLUSTER_FREE, GROUP_BY = 0, 1, 2


@dataclass
class Group:
    """Tasks sharing a group (and so constraints), with their static filter.

    ``static_fail[a]`` is -1 when agent ``a`` passes every static check, else the
    index into ``checks`` of the first check it fails.
    """

    name: str | None
    tasks: np.ndarray
    constraints: tuple[Constraint, ...]
    static_fail: np.ndarray
    checks: list[tuple[Reason, str]] = field(default_factory=list)
    rules: list[int] = field(default_factory=list)

    @property
    def static_ok(self) -> np.ndarray:
        return self.static_fail < 0


@dataclass
class AttrIndex:
    """Interned values of one attribute; ``agent_vid[a]`` is -1 where missing."""

    values: list[str]
    index: dict[str, int]
    agent_vid: np.ndarray
    regex_cache: dict[str, np.ndarray] = field(default_factory=dict)

    def vid(self, value: str | None) -> int:
        return -1 if value is None else self.index.get(value, -1)


def running_attribute(run: Running, agents: dict[str, Agent], name: str) -> str | None:
    """The attribute value of the agent a running task is on (see ``Running``)."""
    agent = agents.get(run.agent)
    if agent is not None:
        return agent.attribute(name)
    attrs = run.attributes or {}
    if name == "hostname":
        return attrs.get("hostname", run.agent)
    return attrs.get(name)


def _attr_index(problem: Problem, name: str, agents: dict[str, Agent]) -> AttrIndex:
    values: list[str] = []
    index: dict[str, int] = {}
    vids = np.full(len(problem.agents), -1, dtype=np.int64)

    def intern(value: str) -> int:
        if value not in index:
            index[value] = len(values)
            values.append(value)
        return index[value]

    for a, agent in enumerate(problem.agents):
        value = agent.attribute(name)
        if value is not None:
            vids[a] = intern(value)
    for run in problem.running:
        value = running_attribute(run, agents, name)
        if value is not None:
            intern(value)
    return AttrIndex(values, index, vids)


@dataclass
class Rule:
    """A counting constraint of one group over the values of one attribute."""

    kind: int
    reason: Reason
    detail: str
    group: int
    attr: str
    running: np.ndarray  # tasks of the group already running, per value
    limit: int = 0  # LIMIT: most tasks per value
    domain: np.ndarray | None = None  # GROUP_BY: values the minimum is taken over
    min_domains: int = 1


def _regex_mask(idx: AttrIndex, c: Constraint) -> np.ndarray:
    """Agents whose attribute fully matches ``c``'s regex (missing: False).

    Evaluated once per distinct value and remembered on the index, since many
    groups share a pattern and hostnames make values as many as agents.
    """
    key = c.value or ""
    if key not in idx.regex_cache:
        per_value = np.array([c.matches(v) for v in idx.values] + [False], dtype=bool)
        idx.regex_cache[key] = per_value[idx.agent_vid]  # vid -1 picks the trailing False
    return idx.regex_cache[key]


def _other_value(idx: AttrIndex, value: str) -> np.ndarray:
    """Agents whose attribute is not ``value`` (missing included)."""
    return idx.agent_vid != idx.vid(value) if value in idx.index else np.ones_like(idx.agent_vid, bool)


def compile_groups(problem: Problem) -> tuple[list[Group], list[Rule], np.ndarray, dict]:
    """Groups (with static filters), counting rules, each task's group, attr indexes."""
    agents = {a.id: a for a in problem.agents}
    names = sorted({c.field for t in problem.tasks for c in t.constraints})
    attrs = {name: _attr_index(problem, name, agents) for name in names}
    by_name: dict[str | None, list[int]] = {}
    order: list[str | None] = []
    group_of = np.zeros(len(problem.tasks), dtype=np.int64)
    singles: list[tuple[int, list[int]]] = []
    for t, task in enumerate(problem.tasks):
        if task.group is None:
            singles.append((t, [t]))
            continue
        if task.group not in by_name:
            by_name[task.group] = []
            order.append(task.group)
        by_name[task.group].append(t)
    members = [(name, by_name[name]) for name in order]
    members += [(None, ts) for _, ts in singles]
    groups: list[Group] = []
    rules: list[Rule] = []
    for g, (name, tasks) in enumerate(members):
        group_of[tasks] = g
        constraints = problem.tasks[tasks[0]].constraints
        counts = _running_counts(problem, name, constraints, attrs, agents)
        groups.append(
            _compile_group(g, name, tasks, constraints, attrs, counts, rules, len(problem.agents))
        )
    return groups, rules, group_of, attrs


def _running_counts(
    problem: Problem,
    name: str | None,
    constraints: Sequence[Constraint],
    attrs: dict[str, AttrIndex],
    agents: dict[str, Agent],
) -> dict[str, np.ndarray]:
    # One count per value, plus a last slot that agents without the value index
    # (and that never counts anything): no special case for missing attributes.
    out = {c.field: np.zeros(len(attrs[c.field].values) + 1, dtype=np.int64)
           for c in constraints}
    if name is None:
        return out
    for run in problem.running:
        if run.group != name:
            continue
        for attr, counts in out.items():
            vid = attrs[attr].vid(running_attribute(run, agents, attr))
            if vid >= 0:  # a running task whose value is unknown cannot be counted
                counts[vid] += 1
    return out


def _compile_group(
    g: int,
    name: str | None,
    tasks: list[int],
    constraints: tuple[Constraint, ...],
    attrs: dict[str, AttrIndex],
    running: dict[str, np.ndarray],
    rules: list[Rule],
    n_agents: int,
) -> Group:
    if not constraints:  # most tasks of big problems: share one read-only "passes" row
        return Group(name, np.array(tasks, dtype=np.int64), constraints, _passes(n_agents))
    group = Group(name, np.array(tasks, dtype=np.int64), constraints,
                  np.full(n_agents, -1, dtype=np.int64))
    # Attribute predicates first: they also define GROUP_BY domains.
    for c in constraints:
        _attribute_checks(group, c, attrs[c.field], running[c.field])
    attr_ok = group.static_fail < 0
    for c in constraints:
        idx, counts = attrs[c.field], running[c.field]
        if c.operator in ("UNIQUE", "MAX_PER"):
            limit = 1 if c.operator == "UNIQUE" else c.number
            full = (counts[idx.agent_vid] >= limit) & (idx.agent_vid >= 0)
            _add_check(group, full, Reason(c.operator), describe(c))
            group.rules.append(len(rules))
            rules.append(Rule(LIMIT, Reason(c.operator), describe(c), g, c.field, counts, limit))
        elif c.operator == "GROUP_BY":
            domain = counts > 0
            vids = idx.agent_vid[attr_ok & (idx.agent_vid >= 0)]
            domain[vids] = True
            group.rules.append(len(rules))
            rules.append(Rule(GROUP_BY, Reason.GROUP_BY, describe(c), g, c.field, counts,
                              domain=domain, min_domains=c.number))
        elif c.operator == "CLUSTER" and c.value is None and not counts.any():
            group.rules.append(len(rules))
            rules.append(Rule(CLUSTER_FREE, Reason.CLUSTER, describe(c), g, c.field, counts))
    return group


_PASSES: dict[int, np.ndarray] = {}


def _passes(n_agents: int) -> np.ndarray:
    row = _PASSES.get(n_agents)
    if row is None:
        row = np.full(n_agents, -1, dtype=np.int64)
        row.flags.writeable = False
        _PASSES.clear()
        _PASSES[n_agents] = row
    return row


def _add_check(group: Group, reject: np.ndarray, reason: Reason, detail: str) -> None:
    fresh = reject & (group.static_fail < 0)
    if fresh.any():
        group.static_fail[fresh] = len(group.checks)
    group.checks.append((reason, detail))


def _attribute_checks(group: Group, c: Constraint, idx: AttrIndex, running: np.ndarray) -> None:
    """Checks that look at the agent's attribute alone (and running tasks, for CLUSTER)."""
    missing = idx.agent_vid < 0
    if c.operator != "UNLIKE":
        _add_check(group, missing, Reason.MISSING_ATTRIBUTE, f"no {c.field} attribute")
    if c.operator == "IS":
        _add_check(group, _other_value(idx, c.value or ""), Reason.IS, describe(c))
    elif c.operator == "LIKE":
        _add_check(group, ~_regex_mask(idx, c), Reason.LIKE, describe(c))
    elif c.operator == "UNLIKE":
        _add_check(group, _regex_mask(idx, c), Reason.UNLIKE, describe(c))
    elif c.operator == "CLUSTER":
        if c.value is not None:
            wanted = {c.value}
        else:
            wanted = {idx.values[v] for v in np.flatnonzero(running)}
        if not wanted:
            return  # a free CLUSTER is a counting rule
        if len(wanted) > 1:
            reject = np.ones(len(idx.agent_vid), dtype=bool)
            _add_check(group, reject, Reason.CLUSTER, f"{describe(c)} (running tasks span values)")
        else:
            (value,) = wanted
            _add_check(group, _other_value(idx, value),
                       Reason.CLUSTER, describe(c, value))


def describe(c: Constraint, value: str | None = None) -> str:
    """``UNIQUE hostname``, ``MAX_PER rack 2``: the operator first, as users say it."""
    shown = value if value is not None else c.value
    return f"{c.operator} {c.field}" + (f" {shown}" if shown is not None else "")


class RuleState:
    """Counts of each rule's group per value (running + placed), with fast checks.

    All rules' counts live in one flat array (``offset[r] + vid``) so the checks of
    every rule at one agent are a few vectorised operations.
    """

    def __init__(self, rules: list[Rule], attrs: dict[str, AttrIndex], n_groups: int) -> None:
        self.rules = rules
        self.n_groups = n_groups
        names = sorted(attrs)
        self.vid = (np.stack([attrs[n].agent_vid for n in names])
                    if names else np.zeros((0, 0), dtype=np.int64))
        attr_row = {n: i for i, n in enumerate(names)}
        sizes = [len(r.running) for r in rules]
        self.offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) \
            if rules else np.zeros(0, dtype=np.int64)
        self.counts = np.concatenate([r.running for r in rules]).astype(np.int64) \
            if rules else np.zeros(0, dtype=np.int64)
        self.kind = np.array([r.kind for r in rules], dtype=np.int64)
        self.limit = np.array([r.limit for r in rules], dtype=np.int64)
        self.group = np.array([r.group for r in rules], dtype=np.int64)
        self.row = np.array([attr_row[r.attr] for r in rules], dtype=np.int64)
        self.size = np.array(sizes, dtype=np.int64)  # values + the missing slot
        self.new_total = np.zeros(len(rules), dtype=np.int64)
        self.minimum = np.zeros(len(rules), dtype=np.int64)
        for r in range(len(rules)):
            self._refresh_min(r)

    def copy(self) -> RuleState:
        other = object.__new__(RuleState)
        other.__dict__.update(self.__dict__)
        for name in ("counts", "new_total", "minimum"):
            setattr(other, name, getattr(self, name).copy())
        return other

    def _refresh_min(self, r: int) -> None:
        rule = self.rules[r]
        if rule.kind != GROUP_BY:
            return
        domain = np.flatnonzero(rule.domain)
        if len(domain) < rule.min_domains:
            self.minimum[r] = 0  # too few values yet: each value may take one
        else:
            self.minimum[r] = self.counts[self.offset[r] + domain].min()

    def _slot(self, r: int, vid: np.ndarray) -> np.ndarray:
        """Count slot of each value id; missing (-1) maps to the rule's last slot."""
        return np.where(vid >= 0, vid, self.size[r] - 1)

    def rule_ok(self, r: int, agents: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Whether rule ``r`` lets one more task of its group go to each agent."""
        vid = self.vid[self.row[r], agents]
        count = self.counts[self.offset[r] + self._slot(r, vid)]
        kind = self.kind[r]
        if kind == LIMIT:
            ok = count < self.limit[r]
        elif kind == CLUSTER_FREE:
            ok = (count > 0) | (self.new_total[r] == 0)
        else:
            ok = count <= self.minimum[r]
        return ok & (vid >= 0)

    def group_ok(self, rule_ids: list[int], n_agents: int) -> np.ndarray:
        """Agents where every rule of a group allows one more task."""
        ok = np.ones(n_agents, dtype=bool)
        for r in rule_ids:
            ok &= self.rule_ok(r)
        return ok

    def groups_ok_at(self, agent: int) -> np.ndarray:
        """For one agent, which groups' rules all allow one more task there."""
        if not self.rules:
            return np.ones(self.n_groups, dtype=bool)
        vid = self.vid[self.row, agent]
        count = self.counts[self.offset + np.where(vid >= 0, vid, self.size - 1)]
        ok = np.where(
            self.kind == LIMIT,
            count < self.limit,
            np.where(self.kind == CLUSTER_FREE, (count > 0) | (self.new_total == 0),
                     count <= self.minimum),
        ) & (vid >= 0)
        bad = np.bincount(self.group[~ok], minlength=self.n_groups)
        return bad == 0

    def add(self, rule_ids: list[int], agent: int, delta: int = 1) -> None:
        """Record ``delta`` tasks of the rules' group placed on (or removed from) ``agent``."""
        for r in rule_ids:
            vid = self.vid[self.row[r], agent]
            if vid < 0:
                continue  # no value, nothing to count (static filters keep this out)
            self.counts[self.offset[r] + vid] += delta
            self.new_total[r] += delta
            self._refresh_min(r)
