"""Marathon's ``unreachableStrategy``: what happens to an instance whose agent the
master lost (``TASK_UNREACHABLE``, the framework being PARTITION_AWARE).

* ``{inactiveAfterSeconds: I, expungeAfterSeconds: E}`` (I <= E; Marathon's default
  0/0): the task keeps counting as the instance for I seconds (its agent may come
  back); then it is *inactive*: it no longer counts, so the reconciler launches a
  replacement.  E seconds after it became unreachable it is *expunged*: still
  unreachable, its record is dropped (if its agent comes back the task is unknown
  and killed); back and running meanwhile (the app shows one task more than its
  instances), it is killed then.  With E = 0 (the default) the record goes as the
  update arrives (``ServicesState.apply_status``).
* ``"disabled"`` (the default of apps with persistent volumes): never replaced; the
  task counts as the instance until it comes back or the master reports it gone.

Times are measured from the first ``TASK_UNREACHABLE`` update the framework got
(``TaskRecord.unreachable_since``, its clock), and acted on at each plan (the
framework's tick), so a deadline is met within one tick.  Pure: ``due`` decides,
``apply_due`` records the decisions in the state.
"""

from __future__ import annotations

import logging
from typing import Literal

from frameworks.services.model import UnreachableEnabled
from frameworks.services.state import ServicesState
from frameworks.services.tasks import TaskRecord
from mesoslite.messages.mesos import TaskState

log = logging.getLogger(__name__)

UNREACHABLE = TaskState.TASK_UNREACHABLE.value
Due = Literal["inactive", "expunge", "kill"]
# An app that is gone: its unreachable tasks are forgotten at once.
GONE = UnreachableEnabled()


def due(task: TaskRecord, strategy: UnreachableEnabled | None, now: float) -> Due | None:
    """What is due for ``task`` under ``strategy`` (None: disabled) at ``now``:
    ``inactive`` (replace it), ``expunge`` (forget it, still unreachable), ``kill``
    (it came back after it was replaced, and its time is up), or nothing."""
    since = task.unreachable_since
    if since is None or strategy is None or task.kill_requested_at is not None:
        return None
    if now - since >= strategy.expunge_after_seconds:
        return "expunge" if task.state == UNREACHABLE else "kill" if task.inactive else None
    if not task.inactive and task.state == UNREACHABLE and (
            now - since >= strategy.inactive_after_seconds):
        return "inactive"
    return None


def apply_due(state: ServicesState, now: float) -> None:
    """Carry out what ``due`` says for every task (records changed, for the commit)."""
    targets = state.targets()
    for task in list(state.tasks.values()):
        app = targets.get(task.app_id)
        strategy = app.unreachable if app is not None else GONE
        action = due(task, strategy, now)
        if action == "inactive":
            log.info("task %s unreachable for %.0fs: replacing it", task.id,
                     now - (task.unreachable_since or now))
            task.inactive = True
            state.put_task(task)
        elif action == "expunge":
            log.info("task %s unreachable for %.0fs: expunged", task.id,
                     now - (task.unreachable_since or now))
            state.drop_task(task.id)
        elif action == "kill":
            state.mark_kill(task.id, "back after it was replaced as unreachable; expunged", now)
