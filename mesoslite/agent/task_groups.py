"""Task groups on the agent, with Mesos' default-executor semantics (pure decisions).

A LAUNCH_GROUP's tasks arrive together with their executor (type DEFAULT: the
agent's built-in one) and live as one group (docs/containers.md, "Task groups"):

* **All or none.** No task of a group reports TASK_RUNNING before every task's
  container runs: the lifecycle holds each started task in READY (``AwaitGroup``)
  and ``started`` releases them all at once.  A task that cannot start fails the
  group: the others are killed (or never started) and none was ever reported
  RUNNING.  Mesos' default executor reports each task RUNNING as it starts and then
  kills the others; holding them is stricter, so a framework never sees a group
  half up.
* **Fate.** A task that ends in any way but TASK_FINISHED (non-zero exit, OOM, launch
  failure, killed by its health check or by the framework) takes the group down: the
  others are killed, each with its own kill grace period, and report TASK_KILLED with
  a message naming that task.  A task that FINISHES leaves the others running.  A
  KILL of one task kills the whole group at once (Mesos kills the others only once
  the first has gone; here they all get their grace period together).
* **Network.** The group's first Docker task owns the group's network namespace
  (``network_owner``; BRIDGE or NONE networking); its other Docker tasks join it
  (Docker's ``container:<id>`` network mode) and reach each other on localhost, so
  the owner starts first (``launch_waves``).  Only the owner may map ports.  Process
  tasks share the host's network, as ever.
* **Recovery.** Each task's checkpoint carries its ``GroupMembership``; after an agent
  restart ``restore`` rebuilds the groups and decides what their fate already is.

``GroupBook`` holds an agent's groups.  It reads no clock and does no I/O:
``TaskManager`` (``tasks.py``) tells it what happened and carries out what it returns.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from mesoslite.agent.checkpoint import GroupMembership, TaskCheckpoint
from mesoslite.messages.mesos import (
    ContainerType,
    DockerNetwork,
    ExecutorInfo,
    TaskInfo,
    TaskState,
)

TaskKey = tuple[str, str]  # (framework id, task id)
GroupKey = tuple[str, str]  # (framework id, the group's first task id)

# How a member's end reads in the message of the tasks killed with it.
_ENDED_WORDS = {
    TaskState.TASK_FAILED: "failed",
    TaskState.TASK_KILLED: "was killed",
    TaskState.TASK_LOST: "was lost",
    TaskState.TASK_ERROR: "was refused",
    TaskState.TASK_DROPPED: "was dropped",
}


@dataclass(frozen=True)
class KillMembers:
    """Kill these tasks of a group (each with its own kill grace period), reporting
    TASK_KILLED with ``message``."""

    keys: tuple[TaskKey, ...]
    message: str


def joins_network(info: TaskInfo) -> bool:
    """Whether a Docker task of a group shares the group's network namespace (BRIDGE
    or NONE networking; HOST tasks are on the host's already)."""
    container = info.container
    return (container is not None and container.type == ContainerType.DOCKER
            and container.docker is not None
            and container.docker.network in (DockerNetwork.BRIDGE, DockerNetwork.NONE))


def network_owner(tasks: Sequence[TaskInfo]) -> str | None:
    """The task whose network namespace the group's Docker tasks share: the first
    one that joins; None when fewer than two would share it (nothing to join)."""
    sharing = [t.task_id.value for t in tasks if joins_network(t)]
    return sharing[0] if len(sharing) > 1 else None


def membership_for(executor: ExecutorInfo | None, tasks: Sequence[TaskInfo],
                   owner_container_id: str) -> GroupMembership:
    """The membership of a new group; ``owner_container_id``: the container id the
    network owner (if any) will run as, known to the others before it starts.  An
    executor without an id (from an older master) is named after the first task."""
    members = [t.task_id.value for t in tasks]
    eid = executor.executor_id.value if executor and executor.executor_id else ""
    owner = network_owner(tasks)
    return GroupMembership(executor_id=eid or f"group-{members[0]}", members=members,
                           network_owner=owner, executor=executor,
                           network_container=owner_container_id if owner else None)


def container_id_for(membership: GroupMembership | None, task_id: str) -> str | None:
    """The container id chosen in advance for ``task_id`` (the network owner's)."""
    if membership is not None and membership.network_owner == task_id:
        return membership.network_container
    return None


def joined_container(membership: GroupMembership | None, info: TaskInfo) -> str | None:
    """The container whose network namespace ``info`` joins: its group's network
    owner's, for the group's other BRIDGE / NONE Docker tasks; else None."""
    if membership is None or membership.network_owner in (None, info.task_id.value):
        return None
    return membership.network_container if joins_network(info) else None


@dataclass
class TaskGroup:
    """One group on this agent.  ``membership`` is the object every member's
    checkpoint holds, so a failure recorded here is saved with any of them."""

    framework_id: str
    membership: GroupMembership
    launched: set[str] = field(default_factory=set)  # fed to the lifecycle (or recovered)
    live: set[str] = field(default_factory=set)  # launched and not yet forgotten
    started: set[str] = field(default_factory=set)  # their container ran
    ended: set[str] = field(default_factory=set)  # their terminal update went out
    released: bool = False  # every member started: RUNNING was reported
    sandbox_claimed: bool = False  # a member is preparing or has prepared its sandbox

    @property
    def key(self) -> GroupKey:
        return (self.framework_id, self.membership.members[0])

    @property
    def executor_id(self) -> str:
        return self.membership.executor_id

    @property
    def members(self) -> list[str]:
        return self.membership.members

    @property
    def failure(self) -> str | None:
        return self.membership.failure

    def launch_waves(self) -> list[list[str]]:
        """The members in the order they start: the network owner alone first (the
        others join its namespace), then the rest together."""
        owner = self.membership.network_owner
        if owner is None:
            return [list(self.members)]
        return [[owner], [m for m in self.members if m != owner]]

    def kill_message(self) -> str:
        return f"Killed with its task group (executor '{self.executor_id}'): {self.failure}"


class GroupBook:
    """The task groups of one agent and the decisions they call for."""

    def __init__(self) -> None:
        self.groups: dict[GroupKey, TaskGroup] = {}
        self._member_of: dict[TaskKey, GroupKey] = {}

    def add(self, framework_id: str, membership: GroupMembership) -> TaskGroup:
        group = TaskGroup(framework_id, membership)
        self.groups[group.key] = group
        for member in membership.members:
            self._member_of[(framework_id, member)] = group.key
        return group

    def group_of(self, key: TaskKey) -> TaskGroup | None:
        group_key = self._member_of.get(key)
        return self.groups.get(group_key) if group_key is not None else None

    def claim_sandbox(self, key: TaskKey) -> bool:
        """Whether ``key``, preparing its sandbox, is its group's first task to do so
        while no other live group shares the executor (the shared sandbox, perhaps
        left by an earlier group of the same executor id, is then made afresh)."""
        group = self.group_of(key)
        if group is None or group.sandbox_claimed:
            return False
        group.sandbox_claimed = True
        return not any(g.live for g in self.groups.values() if g is not group
                       and g.framework_id == group.framework_id
                       and g.executor_id == group.executor_id)

    def sandbox_clash(self, key: TaskKey, live_tasks: Collection[TaskKey]) -> str | None:
        """Why ``key`` cannot have its sandbox, or None.  Task ids and executor ids
        share the sandbox directory: a task may not be named after a live group's
        executor, nor a group's executor after a live task (``live_tasks``)."""
        fid, tid = key
        if any(g.framework_id == fid and g.executor_id == tid and g.launched
               for g in self.groups.values()):
            return f"its id '{tid}' is the executor id of a live task group"
        group = self.group_of(key)
        if group is not None and (group.executor_id in group.members
                                  or (fid, group.executor_id) in live_tasks):
            return f"its group's executor id '{group.executor_id}' is the id of a live task"
        return None

    def launching(self, key: TaskKey) -> str | None:
        """``key`` is launched now; the kill message if its group already failed
        (it must never run)."""
        group = self.group_of(key)
        if group is None:
            return None
        group.launched.add(key[1])
        group.live.add(key[1])
        return group.kill_message() if group.failure is not None else None

    def started(self, key: TaskKey) -> list[TaskKey]:
        """``key``'s container runs; returns the members to release to RUNNING now
        (every member once the last one started, unless the group failed)."""
        group = self.group_of(key)
        if group is None:
            return [key]  # its group is gone: nothing left to wait for
        group.started.add(key[1])
        if group.released or group.failure is not None:
            return []
        if not set(group.members) <= group.started:
            return []
        group.released = True
        return [(group.framework_id, m) for m in group.members if m not in group.ended]

    def ended(self, key: TaskKey, state: TaskState, message: str | None) -> KillMembers | None:
        """``key`` sent its terminal update; the tasks to kill with it, if any."""
        group = self.group_of(key)
        if group is None:
            return None
        group.ended.add(key[1])
        if state == TaskState.TASK_FINISHED:
            return None
        words = _ENDED_WORDS.get(state, f"ended {state.value}")
        return self._fail(group, f"task '{key[1]}' {words}" + (f": {message}" if message else ""))

    def killed(self, key: TaskKey) -> KillMembers | None:
        """The framework killed ``key``: its group goes with it."""
        group = self.group_of(key)
        if group is None or key[1] in group.ended:
            return None
        return self._fail(group, f"task '{key[1]}' was killed", spare=key[1])

    def network_gone(self, key: TaskKey) -> KillMembers | None:
        """``key``, the network owner, no longer runs as its group's other tasks are
        about to join its network namespace: they cannot, and the group fails."""
        group = self.group_of(key)
        if group is None:
            return None
        return self._fail(group, f"task '{key[1]}', which holds the group's network, ended "
                                 "before the group's other tasks could join it")

    def forget(self, key: TaskKey) -> None:
        """``key`` is gone for good; a group is dropped with its last member."""
        group = self.group_of(key)
        if group is None:
            return
        group.live.discard(key[1])
        if not group.live and group.launched == set(group.members):
            del self.groups[group.key]
            for member in group.members:
                self._member_of.pop((group.framework_id, member), None)

    def held(self, key: TaskKey) -> bool:
        """Whether ``key`` must wait for its group before reporting RUNNING."""
        group = self.group_of(key)
        return group is not None and not group.released

    def restore(self, recovered: Iterable[tuple[TaskCheckpoint, TaskState | None]]) -> None:
        """Rebuild the groups from the checkpoints of an agent restart (each with the
        state of its latest update); ``failing`` then tells what their fate calls for.

        A group that reported RUNNING (some member's latest state says so) had all
        its members started: a member without a checkpoint ended and was forgotten.
        Otherwise a missing member never started (the agent died launching the group),
        and the group fails.  A member that ended other than FINISHED, or a failure
        recorded before the restart, fails it too."""
        touched: list[TaskGroup] = []
        for cp, latest in recovered:
            if cp.group is None:
                continue
            key = (cp.framework_id, cp.task.task_id.value)
            group = self.group_of(key)
            if group is None:
                group = self.add(cp.framework_id, cp.group)
                group.sandbox_claimed = True  # it exists: never made afresh now
                touched.append(group)
            cp.group = group.membership  # one object for all members again
            group.launched.add(key[1])
            group.live.add(key[1])
            group.released |= latest == TaskState.TASK_RUNNING
            if latest is not None and latest.terminal:
                group.ended.add(key[1])
                if latest != TaskState.TASK_FINISHED and group.failure is None:
                    words = _ENDED_WORDS.get(latest, f"ended {latest.value}")
                    group.membership.failure = f"task '{key[1]}' {words}"
        for group in touched:
            missing = [m for m in group.members if m not in group.launched]
            group.launched.update(missing)  # nothing more will be launched
            if missing and not group.released and group.failure is None:
                group.membership.failure = (f"task '{missing[0]}' was lost: the agent "
                                            "restarted before it started")

    def failing(self) -> list[KillMembers]:
        """The kills every failed group still needs (after ``restore`` and the
        re-attachments: a member killed before its own re-attachment was not there
        to be killed)."""
        return [self._kill_list(g) for g in self.groups.values() if g.failure is not None]

    def _fail(self, group: TaskGroup, why: str, spare: str | None = None) -> KillMembers | None:
        if group.failure is not None:
            return None  # already going down
        group.membership.failure = why
        return self._kill_list(group, spare)

    def _kill_list(self, group: TaskGroup, spare: str | None = None) -> KillMembers:
        keys = tuple((group.framework_id, m) for m in group.members
                     if m in group.live and m not in group.ended and m != spare)
        return KillMembers(keys, group.kill_message())
