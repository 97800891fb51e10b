"""``/v2/queue``: what waits to launch and why (the question Marathon users ask most).

Per app, the offers considered for its waiting instances and, for the last round that
could not place them all, how many agents rejected them for which reason -- in
Marathon's ``processedOffersSummary`` shape (reasons such as ``InsufficientMemory``,
``UnfulfilledConstraint``), plus the placement engine's own sentence
(``insufficient mem on 2 agents; UNIQUE hostname excludes 1``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from frameworks.services.model import timestamp
from mesoslite.placement import Rejection

_INSUFFICIENT = {"cpus": "InsufficientCpus", "mem": "InsufficientMemory",
                 "disk": "InsufficientDisk", "gpus": "InsufficientGpus",
                 "ports": "InsufficientPorts"}
MARATHON_REASONS = (
    "UnfulfilledRole", "UnfulfilledConstraint", "NoCorrespondingReservationFound",
    "AgentMaintenance", "InsufficientCpus", "InsufficientMemory", "InsufficientDisk",
    "InsufficientGpus", "InsufficientPorts", "DeclinedScarceResources",
)


def marathon_reason(rejection: Rejection) -> str:
    """The Marathon reason name for one placement rejection."""
    if rejection.reason == "INSUFFICIENT":
        name = rejection.detail.removeprefix("insufficient ").split(" on ")[0]
        return "InsufficientPorts" if name.startswith("port") else _INSUFFICIENT.get(
            name, "InsufficientResources")
    if rejection.reason in ("NOT_CHOSEN", "GANG", "NO_AGENTS"):
        return "NotChosen"
    return "UnfulfilledConstraint"


@dataclass
class AppOfferStats:
    processed: int = 0
    unused: int = 0
    last_used_at: float | None = None
    last_unused_at: float | None = None
    last_reasons: Counter[str] = field(default_factory=Counter)
    last_processed: int = 0
    message: str | None = None


class QueueStats:
    """Offer statistics per app, kept in memory (reset when the app stops waiting)."""

    def __init__(self) -> None:
        self.apps: dict[str, AppOfferStats] = {}
        self.waiting_since: dict[str, float] = {}

    def waiting(self, app_ids: set[str], now: float) -> None:
        """Note which apps wait now (for ``since``); forget the others' statistics."""
        for app_id in app_ids:
            self.waiting_since.setdefault(app_id, now)
        for app_id in set(self.waiting_since) - app_ids:
            del self.waiting_since[app_id]
            self.apps.pop(app_id, None)

    def record(self, app_id: str, offered_agents: int, used_agents: int, now: float,
               rejections: list[tuple[Rejection, ...]], message: str | None) -> None:
        stats = self.apps.setdefault(app_id, AppOfferStats())
        stats.processed += offered_agents
        stats.unused += offered_agents - used_agents
        if used_agents:
            stats.last_used_at = now
        if offered_agents > used_agents:
            stats.last_unused_at = now
        if rejections:
            reasons: Counter[str] = Counter()
            for why in rejections[:1]:  # every waiting instance of an app is alike
                for r in why:
                    reasons[marathon_reason(r)] += r.agents
            stats.last_reasons = reasons
            stats.last_processed = offered_agents
            stats.message = message
        elif used_agents:
            stats.last_reasons, stats.message = Counter(), None

    def summary(self, app_id: str) -> dict[str, Any]:
        s = self.apps.get(app_id, AppOfferStats())
        reasons = [{"reason": r, "declined": s.last_reasons.get(r, 0),
                    "processed": s.last_processed} for r in MARATHON_REASONS]
        extra = sorted(set(s.last_reasons) - set(MARATHON_REASONS))
        reasons += [{"reason": r, "declined": s.last_reasons[r], "processed": s.last_processed}
                    for r in extra]
        return {
            "processedOffersCount": s.processed,
            "unusedOffersCount": s.unused,
            "lastUnusedOfferAt": timestamp(s.last_unused_at) if s.last_unused_at else None,
            "lastUsedOfferAt": timestamp(s.last_used_at) if s.last_used_at else None,
            "rejectSummaryLastOffers": reasons,
            "rejectSummaryLaunchAttempt": reasons,
            "unplacedReason": s.message,
        }
