"""The closed set of reasons an agent rejects a task.

Like the feasibility stages of Nomad or the filter plugins of the Kubernetes
scheduler framework, each agent that cannot take an unplaced task records the
*first* stage that rejected it; the reasons are then counted across agents:
``"insufficient mem on 14 agents; UNIQUE hostname excludes 3"``.

Stage order (the order checks run in ``explain``):

1. ``MISSING_ATTRIBUTE``, ``IS``, ``LIKE``, ``UNLIKE``, ``CLUSTER``, ``UNIQUE``,
   ``MAX_PER`` that tasks already running decide alone (static filters);
2. ``UNIQUE``, ``MAX_PER``, ``CLUSTER``, ``GROUP_BY`` counting the group's tasks
   running and placed in this answer;
3. ``INSUFFICIENT``: a scalar or the port count is short on what remains;
4. the agent would take the task, yet it is unplaced: ``GANG`` (a gang member
   cannot be placed) or ``NOT_CHOSEN`` (the search ended before finding room).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NO_AGENTS = "NO_AGENTS"
    MISSING_ATTRIBUTE = "MISSING_ATTRIBUTE"
    IS = "IS"
    LIKE = "LIKE"
    UNLIKE = "UNLIKE"
    CLUSTER = "CLUSTER"
    UNIQUE = "UNIQUE"
    MAX_PER = "MAX_PER"
    GROUP_BY = "GROUP_BY"
    INSUFFICIENT = "INSUFFICIENT"
    GANG = "GANG"
    NOT_CHOSEN = "NOT_CHOSEN"


def agents_phrase(n: int) -> str:
    return f"{n} agent" if n == 1 else f"{n} agents"
