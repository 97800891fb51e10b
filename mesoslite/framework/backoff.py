"""Launch backoff per key (an app, a job): Marathon's ``backoffSeconds x
backoffFactor^n`` capped at ``maxLaunchDelaySeconds``.

Pure bookkeeping: time is passed in, nothing sleeps.  Deterministic on purpose (no
jitter): a user reading ``/v2/queue`` should see the delay the documentation promises.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    """``initial`` seconds after the first failure, multiplied by ``factor`` for each
    further consecutive failure, never more than ``maximum``."""

    initial: float = 1.0
    factor: float = 1.15
    maximum: float = 300.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1 or self.maximum < 0:
            raise ValueError("backoff needs initial >= 0, factor >= 1, maximum >= 0")

    def delay(self, failures: int) -> float:
        """The delay after ``failures`` consecutive failures (0 for none)."""
        if failures <= 0:
            return 0.0
        # Cap the exponent: 1.15**5000 overflows a float long after the cap applies.
        exponent = min(failures - 1, 2000)
        try:
            value = self.initial * self.factor**exponent
        except OverflowError:
            value = self.maximum
        return min(value, self.maximum)


@dataclass
class _Entry:
    failures: int = 0
    ready_at: float = 0.0


class LaunchBackoff:
    """Consecutive failures and the earliest next launch, per key.

    Contract: after ``failed(key, now, policy)`` no launch for ``key`` is due before
    ``now + policy.delay(failures)``; ``reset(key)`` forgets the failures (the next
    failure starts at ``policy.initial`` again).
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def failed(self, key: str, now: float, policy: BackoffPolicy) -> float:
        """Record a failure; returns the time the next launch is due."""
        entry = self._entries.setdefault(key, _Entry())
        entry.failures += 1
        entry.ready_at = now + policy.delay(entry.failures)
        return entry.ready_at

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def failures(self, key: str) -> int:
        entry = self._entries.get(key)
        return entry.failures if entry else 0

    def ready_at(self, key: str) -> float:
        """When ``key`` may launch again (0.0: at once)."""
        entry = self._entries.get(key)
        return entry.ready_at if entry else 0.0

    def time_left(self, key: str, now: float) -> float:
        return max(0.0, self.ready_at(key) - now)

    def due(self) -> dict[str, float]:
        """Every key with a pending delay -> the time its next launch is due."""
        return {k: e.ready_at for k, e in self._entries.items()}
