"""What an executor holds until the agent acknowledges it (pure bookkeeping).

Mesos' executor contract (docs/executor-http-api.md, "SUBSCRIBE"): an executor keeps
every status update it sent until an ACKNOWLEDGED event names it, and every task it
was given until one of that task's updates is acknowledged; when it re-subscribes
(after an agent restart) it sends both lists, so the restarted agent loses neither.

``Outstanding`` is that bookkeeping and nothing else: no I/O, no clock.  It also
knows which held updates have not reached the agent yet (sent while disconnected,
or while a SUBSCRIBE was on its way), so the driver can deliver exactly those once
subscribed.
"""

from __future__ import annotations

from mesoslite.messages.executor import Subscribe, Update
from mesoslite.messages.mesos import TaskInfo


class Outstanding:
    """Updates not yet acknowledged (in the order they were sent) and tasks with no
    acknowledged update (in the order they were given).

    Contract: ``subscribe()`` lists exactly the updates recorded with ``sending`` that
    were neither ``acknowledged`` nor ``refused``, and exactly the tasks recorded with
    ``launched`` none of whose updates was acknowledged.
    """

    def __init__(self) -> None:
        self._updates: dict[bytes, Update] = {}
        self._tasks: dict[str, TaskInfo] = {}
        self._undelivered: dict[bytes, None] = {}  # an ordered set of uuids

    @property
    def updates(self) -> list[Update]:
        return list(self._updates.values())

    @property
    def tasks(self) -> list[TaskInfo]:
        return list(self._tasks.values())

    def holds_task(self, task_id: str) -> bool:
        return task_id in self._tasks

    def launched(self, task: TaskInfo) -> bool:
        """The agent gave us ``task``; False when it was already held (a repeat)."""
        task_id = task.task_id.value
        if task_id in self._tasks:
            return False
        self._tasks[task_id] = task
        return True

    def sending(self, update: Update) -> bytes:
        """Hold ``update`` (it must carry a uuid) until acknowledged; returns the uuid."""
        uuid = update.status.uuid
        if uuid is None:
            raise ValueError("an executor's update needs a uuid")
        self._updates[uuid] = update
        self._undelivered[uuid] = None
        return uuid

    def delivered(self, uuid: bytes) -> None:
        """The agent answered 202 to the UPDATE carrying ``uuid``."""
        self._undelivered.pop(uuid, None)

    def refused(self, uuid: bytes) -> Update | None:
        """The agent refused the update (400): resending it cannot help; forget it."""
        self._undelivered.pop(uuid, None)
        return self._updates.pop(uuid, None)

    def acknowledged(self, task_id: str, uuid: bytes) -> Update | None:
        """ACKNOWLEDGED(task_id, uuid): the update is the agent's; its task counts as
        acknowledged.  Returns the update, or None when it was not held."""
        self._undelivered.pop(uuid, None)
        update = self._updates.pop(uuid, None)
        self._tasks.pop(task_id, None)
        return update

    def subscribe(self) -> Subscribe:
        """The SUBSCRIBE payload.  What it carries counts as delivered with it."""
        self._undelivered.clear()
        return Subscribe(unacknowledged_tasks=self.tasks, unacknowledged_updates=self.updates)

    def pending(self, uuid: bytes) -> Update | None:
        """The held update ``uuid`` if it has not reached the agent yet."""
        return self._updates.get(uuid) if uuid in self._undelivered else None

    def undelivered(self) -> list[Update]:
        """Held updates that have not reached the agent, in the order they were sent."""
        return [self._updates[uuid] for uuid in self._undelivered]
