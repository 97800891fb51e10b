"""Why is a task unplaced?  Per-agent rejection reasons, counted by cause.

Each agent is checked against the *final* state of the answer (capacity left after
every assignment, constraint counts including every placed task) and records the
first stage that rejects the task (stage order in ``reasons``).  Agents passing all
stages would take the task: it is then unplaced because of its gang, or the search
stopped first.  The result reads ``insufficient mem on 14 agents; UNIQUE hostname
excludes 3``.
"""

from __future__ import annotations

import numpy as np

from .constraints import RuleState
from .instance import Instance, loads
from .reasons import Reason, agents_phrase
from .result import Rejection

_OK = -1


def final_rule_state(inst: Instance, assign: np.ndarray) -> RuleState:
    """Constraint counts of running tasks plus every task placed in ``assign``."""
    state = inst.rule_state()
    for t in np.flatnonzero(assign >= 0):
        state.add(inst.groups[inst.group_of[t]].rules, int(assign[t]))
    return state


def _stages(inst: Instance, t: int, remaining: np.ndarray, rules: RuleState):
    """(A,) index of each agent's first failing stage (-1: none) and stage labels."""
    group = inst.groups[inst.group_of[t]]
    fail = group.static_fail.copy()
    labels: list[tuple[Reason, str]] = list(group.checks)
    for r in group.rules:
        fresh = (fail == _OK) & ~rules.rule_ok(r)
        fail[fresh] = len(labels)
        labels.append((rules.rules[r].reason, rules.rules[r].detail))
    for d, name in enumerate(inst.dims):
        fresh = (fail == _OK) & (remaining[:, d] < inst.dem[t, d])
        fail[fresh] = len(labels)
        labels.append((Reason.INSUFFICIENT, f"insufficient {name}"))
    return fail, labels


def _phrase(reason: Reason, detail: str, n: int) -> str:
    if reason in (Reason.INSUFFICIENT, Reason.MISSING_ATTRIBUTE):
        return f"{detail} on {agents_phrase(n)}"
    return f"{detail} excludes {n}"


def _rejections(fail: np.ndarray, labels: list[tuple[Reason, str]]) -> list[Rejection]:
    counts = np.bincount(fail[fail >= 0], minlength=len(labels))
    # A constraint can reject at two stages (running tasks alone, then with the new
    # ones): one cause, one count.
    merged: dict[tuple[Reason, str], int] = {}
    first: dict[tuple[Reason, str], int] = {}
    for i in np.flatnonzero(counts):
        merged[labels[i]] = merged.get(labels[i], 0) + int(counts[i])
        first.setdefault(labels[i], int(i))
    order = sorted(merged, key=lambda k: (-merged[k], first[k]))
    return [Rejection(k[0], _phrase(*k, merged[k]), merged[k]) for k in order]


def explain(inst: Instance, assign: np.ndarray, proven: bool) -> dict[int, tuple[Rejection, ...]]:
    """Rejections for every unplaced task index.  ``proven``: the answer is optimal."""
    unplaced = np.flatnonzero(assign < 0)
    if len(unplaced) == 0:
        return {}
    if inst.n_agents == 0:
        none = (Rejection(Reason.NO_AGENTS, "no agents offered", 0),)
        return {int(t): none for t in unplaced}
    remaining = inst.cap - loads(inst, assign)
    rules = final_rule_state(inst, assign)
    out: dict[int, tuple[Rejection, ...]] = {}
    fits: dict[int, int] = {}
    seen: dict[tuple, tuple[tuple[Rejection, ...], int]] = {}
    for t in unplaced.tolist():
        # Tasks of one group with equal demands get equal verdicts: compute once.
        key = (int(inst.group_of[t]), inst.dem[t].tobytes())
        if key not in seen:
            fail, labels = _stages(inst, t, remaining, rules)
            seen[key] = (tuple(_rejections(fail, labels)), int((fail == _OK).sum()))
        out[t], fits[t] = seen[key]
    for t, n in fits.items():
        if n:
            out[t] = (_left_out(inst, t, n, fits, proven),) + out[t]
    return out


def _left_out(inst: Instance, t: int, n: int, fits: dict[int, int], proven: bool) -> Rejection:
    """The task fits ``n`` agents as things stand; say what kept it out."""
    gang = int(inst.gang_of[t])
    ids = [task.id for task in inst.problem.tasks]
    if gang >= 0:
        blockers = [ids[m] for m in inst.gangs[gang] if fits.get(int(m), 1) == 0]
        if blockers:
            why = f"gang member {', '.join(blockers[:3])} fits on no agent"
        else:
            why = f"its gang of {len(inst.gangs[gang])} does not fit whole"
        return Rejection(Reason.GANG, f"fits on {agents_phrase(n)}, but {why}", n)
    how = "no better answer exists" if proven else "the search ended before placing it"
    return Rejection(Reason.NOT_CHOSEN, f"fits on {agents_phrase(n)}, but {how}", n)


def render(rejections: tuple[Rejection, ...]) -> str:
    return "; ".join(r.detail for r in rejections) or "no agent can take it"
