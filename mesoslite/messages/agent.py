"""The agent protocol: mesoslite's own typed messages between master and agents.

The agent opens one WebSocket to the master (``GET /agent/v1/link``) and both sides
send JSON text frames, one message each, tagged by ``type``.  ``decode_from_agent``
and ``decode_from_master`` are the only decoders; they reject unknown types and
malformed fields with an error naming the field.

Every master->agent message carries the master's ``epoch``: an agent refuses a
command from an epoch older than the newest it has seen (a deposed leader).
"""

from __future__ import annotations

import msgspec

from mesoslite.messages.mesos import (
    ExecutorInfo,
    FrameworkInfo,
    Resource,
    TaskInfo,
    TaskState,
    TaskStatus,
)


class AgentMessage(msgspec.Struct, tag_field="type", omit_defaults=True):
    """Base of messages sent by agents."""


class MasterMessage(msgspec.Struct, tag_field="type", omit_defaults=True, kw_only=True):
    """Base of messages sent by the master; ``epoch`` orders leaders."""

    epoch: int = 0


# ---------------------------------------------------------------- agent -> master


class AgentTask(msgspec.Struct, omit_defaults=True):
    """A task the agent holds, with the latest state it knows (for re-registration)."""

    framework_id: str
    task: TaskInfo
    status: TaskStatus


class AgentExecutor(msgspec.Struct, omit_defaults=True):
    """An executor the agent runs (for re-registration: the master accounts its
    resources apart from its tasks')."""

    framework_id: str
    executor: ExecutorInfo


class Register(AgentMessage, tag="register"):
    """First message on every connection.  ``agent_id`` is None on first start."""

    hostname: str
    address: str
    port: int
    resources: list[Resource]
    agent_id: str | None = None
    attributes: dict[str, str] = {}
    containerizers: list[str] = msgspec.field(default_factory=lambda: ["process"])
    tasks: list[AgentTask] = []
    frameworks: list[FrameworkInfo] = []
    version: str = ""
    secret: str | None = None
    executors: list[AgentExecutor] = []


class StatusUpdate(msgspec.Struct, omit_defaults=True):
    """One update of a task's stream.  The agent sends a task's updates in order,
    the next only after the previous is acknowledged; ``latest_state`` tells the
    master the task's current state meanwhile (it may be ahead of ``status``)."""

    framework_id: str
    status: TaskStatus
    latest_state: TaskState | None = None


class StatusUpdates(AgentMessage, tag="status_updates"):
    """A batch of status updates; each carries a ``uuid`` to be acknowledged."""

    updates: list[StatusUpdate]


class Pong(AgentMessage, tag="pong"):
    seq: int


class TaskUsage(msgspec.Struct, omit_defaults=True):
    """One task's sample: ``cpus_used`` is the CPU rate (cores) since the previous
    sample (absent on a task's first sample), ``cpu_seconds`` the cumulative time."""

    framework_id: str
    task_id: str
    cpus_used: float | None = None
    cpus_limit: float = 0.0
    mem_used_mb: float = 0.0
    mem_limit_mb: float = 0.0
    timestamp: float = 0.0
    cpu_seconds: float = 0.0
    cpus_user_time_secs: float | None = None  # when the containerizer splits them
    cpus_system_time_secs: float | None = None

    def statistics(self) -> dict[str, float]:
        """This sample in Mesos' ``ResourceStatistics`` names (``timestamp``,
        ``cpus_limit``, ``cpus_user_time_secs``, ``cpus_system_time_secs``,
        ``mem_rss_bytes``, ``mem_limit_bytes``) plus ``cpus_used`` (cores over the
        last interval, once known) and ``cpus_total_time_secs``."""
        stats: dict[str, float] = {
            "timestamp": self.timestamp, "cpus_limit": self.cpus_limit,
            "cpus_total_time_secs": self.cpu_seconds,
            "mem_rss_bytes": int(self.mem_used_mb * 2**20),
            "mem_limit_bytes": int(self.mem_limit_mb * 2**20)}
        if self.cpus_used is not None:
            stats["cpus_used"] = self.cpus_used
        if self.cpus_user_time_secs is not None:
            stats["cpus_user_time_secs"] = self.cpus_user_time_secs
            stats["cpus_system_time_secs"] = self.cpus_system_time_secs or 0.0
        return stats


class VolumeUsage(msgspec.Struct, omit_defaults=True):
    """A local persistent volume on the agent and the disk it holds (``du``-like)."""

    volume_id: str
    disk_used_mb: float = 0.0
    size_mb: float = 0.0  # what the task asked for (0: unspecified); not enforced
    role: str = "*"
    task_id: str | None = None  # the task using it now, if any
    timestamp: float = 0.0


class Usage(AgentMessage, tag="usage"):
    """Sent every ``--usage-interval``: every running task's sample and every volume."""

    tasks: list[TaskUsage] = []
    volumes: list[VolumeUsage] = []
    interval: float = 0.0


class ExecutorExited(AgentMessage, tag="executor_exited"):
    """A custom executor ended (or never subscribed): the master releases its
    resources and tells the scheduler (FAILURE, with ``status`` the exit status or
    None when it died of a signal or was never started)."""

    framework_id: str
    executor_id: str
    status: int | None = None
    message: str = ""


class ExecutorToFramework(AgentMessage, tag="executor_message"):
    """An executor's MESSAGE call, for its scheduler (best effort, as in Mesos)."""

    framework_id: str
    executor_id: str
    data: bytes


FromAgent = Register | StatusUpdates | Pong | Usage | ExecutorExited | ExecutorToFramework


# ---------------------------------------------------------------- master -> agent


class Registered(MasterMessage, tag="registered"):
    agent_id: str
    master_id: str
    ping_interval_seconds: float = 15.0
    # Silence from the master this long means the link is dead: the agent drops it
    # and reconnects (a half-open TCP connection would otherwise hold it forever).
    link_timeout_seconds: float = 75.0
    # Tasks the agent reported that the master will not keep (their framework is
    # gone): the agent kills them.
    kill_task_ids: list[str] = []


class LaunchTasks(msgspec.Struct, omit_defaults=True):
    """One LAUNCH or LAUNCH_GROUP.  ``executor`` is the group's (the built-in DEFAULT
    executor's) for a LAUNCH_GROUP; a LAUNCH's tasks carry their own in
    ``TaskInfo.executor`` when a custom executor runs them."""

    framework: FrameworkInfo
    tasks: list[TaskInfo]
    group: bool = False
    executor: ExecutorInfo | None = None


class SecretFile(msgspec.Struct, omit_defaults=True):
    """One file of a secret volume: ``name`` "" is the volume's path itself (a key
    was named), else the file's name in the volume's directory (one per key)."""

    name: str
    data: bytes

    def __repr__(self) -> str:
        return f"SecretFile(name={self.name!r}, data=<redacted>)"


class SecretVolumeValues(msgspec.Struct, omit_defaults=True):
    index: int  # in the task's container.volumes
    files: list[SecretFile] = []


class TaskSecrets(msgspec.Struct, omit_defaults=True):
    """The resolved secret/config references of one task (see docs/secrets.md), or
    ``error`` saying why they cannot be given (the agent then fails the task).  Sent
    only inside ``RunTasks``, never stored by either side; ``repr`` shows no value."""

    framework_id: str
    task_id: str
    env: dict[str, str] = {}
    volumes: list[SecretVolumeValues] = []
    error: str | None = None

    def __repr__(self) -> str:
        return (f"TaskSecrets(task_id={self.task_id!r}, env={sorted(self.env)}, "
                f"volumes={len(self.volumes)}, error={self.error!r})")


class RunTasks(MasterMessage, tag="run_tasks"):
    """All launches for one agent collected in one master tick; ``secrets`` holds the
    values of the tasks' secret references, added just before sending."""

    launches: list[LaunchTasks]
    secrets: list[TaskSecrets] = []


class KillTask(MasterMessage, tag="kill_task"):
    framework_id: str
    task_id: str
    grace_period_seconds: float | None = None


class Ack(msgspec.Struct, omit_defaults=True):
    framework_id: str
    task_id: str
    uuid: bytes


class AckUpdates(MasterMessage, tag="ack_updates"):
    acks: list[Ack]


class ShutdownFramework(MasterMessage, tag="shutdown_framework"):
    framework_id: str


class FrameworkMessage(MasterMessage, tag="framework_message"):
    """Scheduler MESSAGE call for an executor: a subscribed custom executor gets it
    as a MESSAGE event; for a command task's built-in executor the agent appends it
    to the task sandbox's ``framework_messages`` file."""

    framework_id: str
    executor_id: str
    data: bytes


class Ping(MasterMessage, tag="ping"):
    seq: int


class DestroyVolumes(MasterMessage, tag="destroy_volumes"):
    """A framework's DESTROY operation: remove these local persistent volumes (with
    their data).  The agent refuses, and logs, one a live task still uses."""

    framework_id: str
    role: str = "*"
    volume_ids: list[str] = []


class ShutdownExecutor(MasterMessage, tag="shutdown_executor"):
    """The scheduler's SHUTDOWN call: stop the executor (SHUTDOWN event, then its
    grace period, then killed); its tasks end with it."""

    framework_id: str
    executor_id: str


class Refused(MasterMessage, tag="refused"):
    """Registration refused (bad secret, unknown agent id after removal, ...)."""

    message: str


FromMaster = (
    Registered
    | RunTasks
    | KillTask
    | AckUpdates
    | ShutdownFramework
    | FrameworkMessage
    | Ping
    | Refused
    | DestroyVolumes
    | ShutdownExecutor
)


class ProtocolError(ValueError):
    """A frame that is not a valid message; the text names the field."""


_enc = msgspec.json.Encoder()
_dec_agent = msgspec.json.Decoder(FromAgent)
_dec_master = msgspec.json.Decoder(FromMaster)


def encode(message: AgentMessage | MasterMessage) -> bytes:
    return _enc.encode(message)


def decode_from_agent(data: bytes | str) -> FromAgent:
    try:
        return _dec_agent.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(str(exc)) from None


def decode_from_master(data: bytes | str) -> FromMaster:
    try:
        return _dec_master.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(str(exc)) from None
