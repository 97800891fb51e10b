"""Capped, jittered exponential backoff for re-subscription attempts."""

from __future__ import annotations

import random


class Backoff:
    """Delays ``initial * factor**n`` capped at ``maximum``, each drawn uniformly
    from the upper half of that bound so that many frameworks restarted together
    (e.g. after a master failover) do not re-subscribe in lockstep.

    Contract: ``next()`` returns a value in ``[bound / 2, bound]`` where ``bound``
    grows geometrically from ``initial`` to ``maximum``; ``reset()`` starts over.
    """

    def __init__(
        self,
        initial: float = 0.5,
        maximum: float = 30.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError("backoff needs 0 < initial <= maximum and factor >= 1")
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._rng = rng or random.Random()
        self._attempt = 0

    def bound(self) -> float:
        """The upper bound of the next delay."""
        # min() before ** would still overflow for huge attempts; cap the exponent.
        exponent = min(self._attempt, 64)
        return min(self.maximum, self.initial * self.factor**exponent)

    def next(self) -> float:
        bound = self.bound()
        self._attempt += 1
        return self._rng.uniform(bound / 2, bound)

    def reset(self) -> None:
        self._attempt = 0
