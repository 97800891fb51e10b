"""The WAITING / LAST FAILURE cell of ``mesoslite apps list`` and ``mesoslite batch list``.

Why an app or a run is not (fully) running, in one short line, from documents the
frameworks already serve: the services framework's ``/v2/queue`` and an app's
``lastTaskFailure``; the batch framework's ``/mesoslite/v1/queue`` and a run's attempts.  A queue
that only says "backoff" hides the cause, so a failure that made the framework back
off is shown instead ("retrying: The agent has no docker containerizer ...").  Pure
functions from API documents to text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

HEADER = "WAITING / LAST FAILURE"
WIDTH = 80  # a cell longer than this is cut (the full text: `apps show`, `batch status`)
NOTHING = "-"
# The services framework's waiting reason while it backs off after failed launches.
_BACKOFF = "launch backoff"
_ACTIVE_QUEUE = ("ready", "backoff")  # batch queue entries that say why a task waits
_ENDED_BADLY = ("FAILED", "CANCELLED")


def clip(text: str, width: int = WIDTH) -> str:
    """``text`` on one line, at most ``width`` characters (cut ones end in "...")."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 3].rstrip() + "..."


def app_cell(queued: Mapping[str, Any] | None, last_failure: Mapping[str, Any] | None) -> str:
    """An app's cell: why its queued instances wait (``queued``: its ``/v2/queue``
    item, None when nothing waits), else its last task failure, else "-"."""
    failure = _failure_text(last_failure)
    if queued is None:
        return clip(f"last failure: {failure}") if failure else NOTHING
    summary = queued.get("processedOffersSummary") or {}
    reason = summary.get("waitingReason") or summary.get("unplacedReason")
    if failure and (reason is None or reason.startswith(_BACKOFF)):
        return clip(f"retrying: {failure}")
    return clip(reason or "waiting for offers")


def app_cells(apps: Iterable[Mapping[str, Any]], queue: Sequence[Mapping[str, Any]]
              ) -> dict[str, str]:
    """App id -> cell, for ``/v2/apps?embed=apps.lastTaskFailure`` and ``/v2/queue``."""
    queued = {item["app"]["id"]: item for item in queue if item.get("app")}
    return {app["id"]: app_cell(queued.get(app["id"]), app.get("lastTaskFailure"))
            for app in apps}


def _failure_text(failure: Mapping[str, Any] | None) -> str | None:
    if not failure:
        return None
    return str(failure.get("message") or failure.get("state") or "failed")


def run_cell(run: Mapping[str, Any], queue: Sequence[Mapping[str, Any]],
             attempts: Sequence[Mapping[str, Any]] = ()) -> str:
    """A batch run's cell.  ``run``: its listing summary; ``queue``: the ``/mesoslite/v1/queue``
    entries; ``attempts``: the run's attempts (only needed for an active run)."""
    state = run.get("state")
    if state in _ENDED_BADLY:
        return clip(run.get("message") or str(state))
    if state != "ACTIVE":
        return NOTHING
    failed = [a for a in attempts if a.get("counts_as_failure")
              or a.get("state") in ("LOST", "ERROR")]
    failure = (f"{failed[-1]['step']}[{failed[-1]['index']}]: {failed[-1].get('message')}"
               if failed else None)
    waits = [e for e in queue if e.get("run") == run.get("id")
             and e.get("status") in _ACTIVE_QUEUE]
    if waits and waits[0].get("status") == "backoff" and failure:
        return clip(f"retrying: {failure}")
    if waits:
        return clip(f"{waits[0]['step']}: {waits[0]['why']}")
    return clip(f"last failure: {failure}") if failure else NOTHING
