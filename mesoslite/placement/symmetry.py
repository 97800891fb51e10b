"""Exchangeable agents: fewer variables and no symmetric search.

Two agents are *exchangeable* when swapping them maps every answer to an answer of
the same quality: same capacities, same static filters for every group, and for
every counting rule either the same attribute value or, for attributes whose
values are unique per agent (``hostname``), the same running count and GROUP_BY
domain membership.  A homogeneous cluster is one class.

Two uses, both exact (they keep every better answer up to symmetry, so the
solver's proofs stay global):

* a binpack answer better than one using ``G`` agents uses fewer than ``G``
  agents of any class, so each class can be cut to its first ``G`` agents;
* within a class, agents are opened in order (``u[a_k] >= u[a_k+1]``); the start
  is remapped onto each class's first agents so the hint obeys it.
"""

from __future__ import annotations

import numpy as np

from .constraints import GROUP_BY
from .instance import Instance


def agent_classes(inst: Instance) -> np.ndarray:
    """(A,) class id of each agent; equal ids are exchangeable (see module)."""
    if inst.n_agents == 0:
        return np.zeros(0, dtype=np.int64)
    columns: dict[bytes, np.ndarray] = {}  # distinct columns only: most repeat

    def add(column: np.ndarray) -> None:
        column = column.astype(np.int64)
        columns.setdefault(column.tobytes(), column)

    for d in range(len(inst.dims)):
        add(inst.cap[:, d])
    for group in inst.groups:
        if group.constraints:
            add(group.static_ok)
    per_agent = {name: len(np.unique(idx.agent_vid[idx.agent_vid >= 0]))
                 == int((idx.agent_vid >= 0).sum()) for name, idx in inst.attrs.items()}
    for rule in inst.rules:
        vid = inst.attrs[rule.attr].agent_vid
        if per_agent[rule.attr]:  # values are agent names: only their counts matter
            add(rule.running[vid])  # vid -1 reads the empty last slot
            if rule.kind == GROUP_BY and rule.domain is not None:
                add(rule.domain[vid])
        else:
            add(vid)
    if not columns:
        return np.zeros(inst.n_agents, dtype=np.int64)
    key = np.stack(list(columns.values()), axis=1)
    _, classes = np.unique(key, axis=0, return_inverse=True)
    return classes.reshape(-1).astype(np.int64)


def restrict(inst: Instance, start: np.ndarray, per_class: int
             ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """Agents kept (mask), symmetry chains, and ``start`` remapped onto kept agents.

    Each class keeps its first ``per_class`` agents in preference order, and never
    fewer than the start uses there, so the remapped start stays expressible.
    """
    classes = agent_classes(inst)
    position = np.empty(inst.n_agents, dtype=np.int64)
    position[inst.agent_order] = np.arange(inst.n_agents)
    used = np.zeros(inst.n_agents, dtype=bool)
    used[start[start >= 0]] = True
    kept = np.zeros(inst.n_agents, dtype=bool)
    mapping = np.arange(inst.n_agents)
    chains = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        members = members[np.argsort(position[members], kind="stable")]
        in_use = members[used[members]]
        keep = members[: max(per_class, len(in_use))]
        kept[keep] = True
        mapping[in_use] = keep[: len(in_use)]  # used agents become the class prefix
        if len(keep) > 1:
            chains.append(keep)
    remapped = np.where(start >= 0, mapping[np.maximum(start, 0)], -1)
    return kept, chains, remapped
