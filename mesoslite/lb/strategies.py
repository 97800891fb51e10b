"""Balancing strategies: which backend a new connection tries first.  Pure.

A strategy orders the candidates (backend keys) for one connection: the proxy tries
the first and, when it cannot connect, the next ones.  Both strategies rotate a
per-route counter so ties are broken in turn, never always towards the same backend:

* ``round-robin``: the candidates in turn, each once per round;
* ``least-connections``: the fewest active connections first, ties in turn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

ROUND_ROBIN = "round-robin"
LEAST_CONNECTIONS = "least-connections"
NAMES = (ROUND_ROBIN, LEAST_CONNECTIONS)


class Strategy(Protocol):
    name: str

    def order(self, candidates: Sequence[str], active: Mapping[str, int]) -> list[str]:
        """``candidates`` in the order to try them; ``active``: open connections per key."""
        ...


class RoundRobin:
    name = ROUND_ROBIN

    def __init__(self) -> None:
        self._next = 0

    def order(self, candidates: Sequence[str], active: Mapping[str, int]) -> list[str]:
        if not candidates:
            return []
        start = self._next % len(candidates)
        self._next += 1
        return [*candidates[start:], *candidates[:start]]


class LeastConnections:
    name = LEAST_CONNECTIONS

    def __init__(self) -> None:
        self._turn = RoundRobin()

    def order(self, candidates: Sequence[str], active: Mapping[str, int]) -> list[str]:
        rotated = self._turn.order(candidates, active)
        # sorted() is stable: among equally loaded backends the rotation decides.
        return sorted(rotated, key=lambda key: active.get(key, 0))


def make_strategy(name: str) -> Strategy:
    """The strategy called ``name``; anything else is round-robin (the default)."""
    return LeastConnections() if name == LEAST_CONNECTIONS else RoundRobin()
