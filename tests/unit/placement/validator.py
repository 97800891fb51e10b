"""An independent checker of placement answers.

It shares nothing with the engine but the input/output dataclasses: plain Python
loops over dicts, written from the contract in docs/placement.md and the
``constraints`` module docstring.  ``validate`` returns a list of problems (empty
when the answer is valid), so a test can show them all.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from mesoslite.placement import Placement, Problem

STATUSES = {"optimal", "feasible", "greedy"}


def _milli(x: float) -> int:
    return round(x * 1000)


_AGENTS: dict[int, tuple[Problem, dict]] = {}


def _agent(problem: Problem, agent_id: str):
    cached = _AGENTS.get(id(problem))
    if cached is None or cached[0] is not problem:
        cached = (problem, {a.id: a for a in problem.agents})
        _AGENTS.clear()
        _AGENTS[id(problem)] = cached
    return cached[1].get(agent_id)


def _value(problem: Problem, agent_id: str, attrs: dict | None, name: str) -> str | None:
    agent = _agent(problem, agent_id)
    if agent is not None:
        if name == "hostname":
            return agent.attributes.get("hostname", agent.id)
        return agent.attributes.get(name)
    attrs = attrs or {}
    if name == "hostname":
        return attrs.get("hostname", agent_id)
    return attrs.get(name)


def _check_shape(problem: Problem, answer: Placement, errors: list[str]) -> None:
    task_ids = {t.id for t in problem.tasks}
    agent_ids = {a.id for a in problem.agents}
    for t, a in answer.assignments.items():
        if t not in task_ids:
            errors.append(f"unknown task {t} assigned")
        if a not in agent_ids:
            errors.append(f"task {t} assigned to unknown agent {a}")
    for t in task_ids:
        if (t in answer.assignments) == (t in answer.unplaced):
            errors.append(f"task {t} must be either assigned or unplaced")
    for t, why in answer.unplaced.items():
        if not isinstance(why, str) or not why:
            errors.append(f"unplaced task {t} has no reason")
    if answer.status not in STATUSES:
        errors.append(f"bad status {answer.status}")


def _check_capacity(problem: Problem, assignments: dict[str, str], errors: list[str]) -> None:
    used: dict[str, Counter] = defaultdict(Counter)
    tasks = {t.id: t for t in problem.tasks}
    for t, a in assignments.items():
        for name, amount in tasks[t].resources.items():
            used[a][name] += _milli(amount)
        used[a]["#ports"] += tasks[t].ports
    for agent in problem.agents:
        for name, amount in used[agent.id].items():
            if name == "#ports":
                have = sum(e - b + 1 for b, e in agent.ports)
                if amount > have:
                    errors.append(f"agent {agent.id}: {amount} ports asked, {have} offered")
            elif amount > _milli(agent.resources.get(name, 0.0)):
                errors.append(f"agent {agent.id}: {name} over capacity")


def _check_ports(problem: Problem, answer: Placement, errors: list[str]) -> None:
    tasks = {t.id: t for t in problem.tasks}
    agents = {a.id: a for a in problem.agents}
    taken: dict[str, set[int]] = defaultdict(set)
    for t, a in answer.assignments.items():
        ports = answer.ports.get(t, [])
        if len(ports) != tasks[t].ports:
            errors.append(f"task {t}: {len(ports)} ports given, {tasks[t].ports} asked")
        for p in ports:
            if not any(b <= p <= e for b, e in agents[a].ports):
                errors.append(f"task {t}: port {p} not offered by agent {a}")
            if p in taken[a]:
                errors.append(f"agent {a}: port {p} given twice")
            taken[a].add(p)
    for t in answer.ports:
        if t not in answer.assignments and answer.ports[t]:
            errors.append(f"unplaced task {t} has ports")


def _check_gangs(problem: Problem, assignments: dict[str, str], errors: list[str]) -> None:
    for gang in problem.gangs:
        placed = [t in assignments for t in gang]
        if any(placed) and not all(placed):
            errors.append(f"gang {list(gang)} placed partly")


def _passes_predicates(problem: Problem, group, agent_id: str, running_vals) -> bool:
    """The group's attribute predicates (IS, LIKE, UNLIKE, CLUSTER value, presence)."""
    for field, op, value in group:
        v = _value(problem, agent_id, None, field)
        if op != "UNLIKE" and v is None:
            return False
        if op == "IS" and v != value:
            return False
        if op == "LIKE" and not re.fullmatch(value, v):
            return False
        if op == "UNLIKE" and v is not None and re.fullmatch(value, v):
            return False
        if op == "CLUSTER":
            wanted = {value} if value is not None else set(running_vals[field])
            if len(wanted) > 1 or (wanted and v not in wanted):
                return False
    return True


def _check_group(problem: Problem, assignments: dict[str, str], name, members, errors) -> None:
    constraints = [(c.field, c.operator, c.value) for c in members[0].constraints]
    placed = [assignments[t.id] for t in members if t.id in assignments]
    running = [r for r in problem.running if name is not None and r.group == name]
    running_vals = {
        f: [v for r in running if (v := _value(problem, r.agent, r.attributes, f)) is not None]
        for f, _, _ in constraints
    }
    for a in placed:
        if not _passes_predicates(problem, constraints, a, running_vals):
            errors.append(f"group {name}: agent {a} fails an attribute constraint")
    for field, op, value in constraints:
        new = Counter(_value(problem, a, None, field) for a in placed)
        total = Counter(running_vals[field]) + new
        if op in ("UNIQUE", "MAX_PER"):
            limit = 1 if op == "UNIQUE" else int(value)
            for v in new:
                if total[v] > limit:
                    errors.append(f"group {name}: {op} {field} broken at {v} ({total[v]})")
        elif op == "CLUSTER" and len(new) > 1:
            errors.append(f"group {name}: CLUSTER {field} spans {sorted(map(str, new))}")
        elif op == "GROUP_BY":
            domain = {
                _value(problem, a.id, None, field) for a in problem.agents
                if _passes_predicates(problem, constraints, a.id, running_vals)
            } | set(running_vals[field])
            floor = 0 if len(domain) < int(value or 1) else min(total[v] for v in domain)
            for v in new:
                if total[v] > floor + 1:
                    errors.append(f"group {name}: GROUP_BY {field} skewed at {v}")


def _check_constraints(problem: Problem, assignments: dict[str, str], errors: list[str]) -> None:
    groups: dict = defaultdict(list)
    for t in problem.tasks:
        groups[t.group if t.group is not None else ("single", t.id)].append(t)
    for key, members in groups.items():
        if members[0].constraints:
            name = key if isinstance(key, str) else None
            _check_group(problem, assignments, name, members, errors)


def _check_stats(problem: Problem, answer: Placement, errors: list[str]) -> None:
    used = len(set(answer.assignments.values()))
    if answer.agents_used != used:
        errors.append(f"agents_used {answer.agents_used} but {used} agents hold tasks")
    if answer.lower_bound > used:
        errors.append(f"lower_bound {answer.lower_bound} above agents used {used}")
    placed = len(answer.assignments)
    if placed < answer.greedy_placed:
        errors.append(f"placed {placed} < greedy {answer.greedy_placed}")
    if (problem.objective == "binpack" and placed == answer.greedy_placed
            and used > answer.greedy_agents_used):
        errors.append(f"agents {used} > greedy {answer.greedy_agents_used}")
    if (answer.all_placeable is True) != (placed == len(problem.tasks)):
        errors.append(f"all_placeable {answer.all_placeable} with {placed} of "
                      f"{len(problem.tasks)} tasks placed")


def violations(problem: Problem, assignments: dict[str, str]) -> list[str]:
    """What ``assignments`` (task id -> agent id) break: capacities (with the port
    count), constraints, gangs.  Used alone by the brute-force search."""
    errors: list[str] = []
    _check_capacity(problem, assignments, errors)
    _check_gangs(problem, assignments, errors)
    _check_constraints(problem, assignments, errors)
    return errors


def validate(problem: Problem, answer: Placement) -> list[str]:
    """Everything wrong with ``answer`` as an answer to ``problem``."""
    errors: list[str] = []
    _check_shape(problem, answer, errors)
    if errors:
        return errors
    errors += violations(problem, answer.assignments)
    _check_ports(problem, answer, errors)
    _check_stats(problem, answer, errors)
    return errors
