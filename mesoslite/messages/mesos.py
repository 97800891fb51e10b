"""Mesos v1 types (``mesos/v1/mesos.proto``) as typed, validated structs.

Only the fields mesoslite uses or passes through are modelled.  Field names, enum
names and nesting follow Mesos' JSON encoding exactly, so a payload written by any
Mesos v1 client decodes here and what we encode reads as Mesos' own.  Unknown fields
are ignored on decode (as protobuf's JSON parser does), known fields are type-checked
and a failure names the field path (``$.accept.operations[0].launch...``).
"""

from __future__ import annotations

import enum

import msgspec

from mesoslite.resources import Resources


class Base(msgspec.Struct, omit_defaults=True):
    """Common options: ``None``/default fields are left out of the JSON."""


# ---------------------------------------------------------------- identifiers


class ID(Base):
    value: str


FrameworkID = AgentID = TaskID = OfferID = ExecutorID = ID


# ---------------------------------------------------------------- values


class Scalar(Base):
    value: float


class Range(Base):
    begin: int
    end: int


class Ranges(Base):
    range: list[Range] = []


class Set(Base):
    item: list[str] = []


class Text(Base):
    value: str


class ValueType(str, enum.Enum):
    SCALAR = "SCALAR"
    RANGES = "RANGES"
    SET = "SET"
    TEXT = "TEXT"


class AllocationInfo(Base):
    role: str | None = None


class ReservationInfo(Base):
    """One reservation of a resource (Mesos' ``Resource.ReservationInfo``): the last
    entry of ``Resource.reservations`` is the role the resource is reserved for
    (docs/storage.md).  ``principal`` is the reserver's."""

    type: str = "DYNAMIC"
    role: str | None = None
    principal: str | None = None
    labels: Labels | None = None


class Persistence(Base):
    id: str
    principal: str | None = None


class DiskVolume(Base):
    """``Resource.DiskInfo.volume``: where a persistent volume appears in the task."""

    container_path: str
    mode: str = "RW"


class DiskInfo(Base):
    persistence: Persistence | None = None
    volume: DiskVolume | None = None


class Resource(Base):
    name: str
    type: ValueType
    scalar: Scalar | None = None
    ranges: Ranges | None = None
    set: Set | None = None
    role: str | None = None
    allocation_info: AllocationInfo | None = None
    # dynamic reservations (post-RESERVATION_REFINEMENT form) and persistent volumes
    reservations: list[ReservationInfo] = []
    reservation: ReservationInfo | None = None  # pre-refinement form (with ``role``)
    disk: DiskInfo | None = None


class Attribute(Base):
    name: str
    type: ValueType
    scalar: Scalar | None = None
    ranges: Ranges | None = None
    set: Set | None = None
    text: Text | None = None


class Label(Base):
    key: str
    value: str | None = None


class Labels(Base):
    labels: list[Label] = []


class Parameter(Base):
    key: str
    value: str


class DurationInfo(Base):
    nanoseconds: int


class TimeInfo(Base):
    nanoseconds: int


class Unavailability(Base):
    """A planned interval a machine may be unavailable in (maintenance); no
    ``duration``: from ``start`` on, for good."""

    start: TimeInfo
    duration: DurationInfo | None = None


class MachineID(Base):
    """A machine, which may hold several agents: its hostname (compared without
    case) and/or its IP."""

    hostname: str | None = None
    ip: str | None = None


# ---------------------------------------------------------------- framework


class CapabilityType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    REVOCABLE_RESOURCES = "REVOCABLE_RESOURCES"
    TASK_KILLING_STATE = "TASK_KILLING_STATE"
    GPU_RESOURCES = "GPU_RESOURCES"
    SHARED_RESOURCES = "SHARED_RESOURCES"
    PARTITION_AWARE = "PARTITION_AWARE"
    MULTI_ROLE = "MULTI_ROLE"
    RESERVATION_REFINEMENT = "RESERVATION_REFINEMENT"
    REGION_AWARE = "REGION_AWARE"


class FrameworkCapability(Base):
    type: CapabilityType = CapabilityType.UNKNOWN


class FrameworkInfo(Base):
    user: str
    name: str
    id: ID | None = None
    failover_timeout: float = 0.0
    checkpoint: bool = False
    role: str | None = None
    roles: list[str] = []
    hostname: str | None = None
    principal: str | None = None
    webui_url: str | None = None
    capabilities: list[FrameworkCapability] = []
    labels: Labels | None = None

    def effective_roles(self) -> list[str]:
        """Roles the framework subscribes with: ``roles`` (MULTI_ROLE) or ``role``."""
        if self.roles:
            return list(self.roles)
        return [self.role or "*"]

    def has_capability(self, capability: CapabilityType) -> bool:
        return any(c.type == capability for c in self.capabilities)


class MasterInfo(Base):
    id: str
    ip: int
    port: int
    hostname: str | None = None
    version: str | None = None
    pid: str | None = None


# ---------------------------------------------------------------- tasks


class SecretReference(Base):
    """A secret (or, with the name ``config:NAME``, a config map) kept by the master,
    and one ``key`` of it (see docs/secrets.md)."""

    name: str
    key: str | None = None


class Secret(Base):
    """Mesos' ``Secret`` of type ``REFERENCE``, resolved by the master for the one agent
    that runs the task.  Type ``VALUE`` is refused and its ``value`` deliberately not
    modelled (dropped on decode): a value in a TaskInfo would be stored and shown
    everywhere the task is."""

    type: str = "UNKNOWN"
    reference: SecretReference | None = None


class EnvironmentVariable(Base):
    name: str
    value: str | None = None
    type: str | None = None  # VALUE (default) or SECRET
    secret: Secret | None = None


class Environment(Base):
    variables: list[EnvironmentVariable] = []


class CommandURI(Base):
    """``CommandInfo.URI``: an artifact the agent's fetcher puts into the sandbox
    before the task (or executor) starts (docs/fetcher.md).  ``extract`` defaults to
    true as in Mesos; ``output_file`` renames the download inside the sandbox."""

    value: str
    executable: bool | None = None
    extract: bool | None = None
    cache: bool | None = None
    output_file: str | None = None


class CommandInfo(Base):
    value: str | None = None
    shell: bool = True
    arguments: list[str] = []
    environment: Environment | None = None
    uris: list[CommandURI] = []
    user: str | None = None


class PortMapping(Base):
    host_port: int
    container_port: int
    protocol: str | None = None


class DockerNetwork(str, enum.Enum):
    HOST = "HOST"
    BRIDGE = "BRIDGE"
    NONE = "NONE"
    USER = "USER"


class DockerInfo(Base):
    image: str
    network: DockerNetwork = DockerNetwork.HOST
    port_mappings: list[PortMapping] = []
    privileged: bool = False
    parameters: list[Parameter] = []
    force_pull_image: bool = False


class VolumeMode(str, enum.Enum):
    RW = "RW"
    RO = "RO"


class DockerVolumeSource(Base):
    name: str
    driver: str | None = None


class HostPathSource(Base):
    path: str


class PersistentVolumeSource(Base):
    """mesoslite: a local persistent volume of the agent, created on first use and kept
    until a DESTROY operation (Mesos writes these as disk resources with
    ``persistence``; see docs/storage.md)."""

    id: str
    size_mb: float = 0.0


class SandboxPathType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    SELF = "SELF"
    PARENT = "PARENT"


class SandboxPathSource(Base):
    """A directory of a sandbox: ``SELF`` the task's own, ``PARENT`` its task group's
    shared one (its executor's), where the group's tasks share it (Mesos' field)."""

    type: SandboxPathType = SandboxPathType.UNKNOWN
    path: str = ""


class VolumeSource(Base):
    type: str = "UNKNOWN"
    docker_volume: DockerVolumeSource | None = None
    host_path: HostPathSource | None = None
    persistent: PersistentVolumeSource | None = None
    secret: Secret | None = None  # type SECRET: files on a tmpfs (docs/secrets.md)
    sandbox_path: SandboxPathSource | None = None  # type SANDBOX_PATH (docs/storage.md)


class Volume(Base):
    container_path: str
    mode: VolumeMode = VolumeMode.RW
    host_path: str | None = None
    source: VolumeSource | None = None


class ContainerType(str, enum.Enum):
    DOCKER = "DOCKER"
    MESOS = "MESOS"


class ImageType(str, enum.Enum):
    APPC = "APPC"
    DOCKER = "DOCKER"


class AppcImage(Base):
    """``Image.Appc``: modelled only to be refused (see ``messages/refused.py``)."""

    name: str
    id: str | None = None
    labels: Labels | None = None


class Credential(Base):
    """A registry credential (``Image.Docker.credential``, deprecated in Mesos):
    modelled only to be refused."""

    principal: str
    secret: str | None = None


class DockerImage(Base):
    """``Image.Docker``: the image a MESOS container runs through the Docker engine.
    ``credential`` and ``config`` (registry credentials) are modelled to be refused."""

    name: str
    credential: Credential | None = None
    config: Secret | None = None


class Image(Base):
    """The root filesystem of a MESOS container (``ContainerInfo.mesos.image``);
    ``cached: false`` pulls it again before every launch."""

    type: ImageType
    appc: AppcImage | None = None
    docker: DockerImage | None = None
    cached: bool = True


class MesosInfo(Base):
    image: Image | None = None


class ContainerInfo(Base):
    type: ContainerType
    docker: DockerInfo | None = None
    mesos: MesosInfo | None = None
    volumes: list[Volume] = []
    hostname: str | None = None


class HealthCheckType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    COMMAND = "COMMAND"
    HTTP = "HTTP"
    TCP = "TCP"


class HTTPCheckInfo(Base):
    port: int
    scheme: str | None = None
    path: str | None = None
    statuses: list[int] = []
    protocol: str | None = None  # IPv4 only (IPv6 is refused: refused.py)


class TCPCheckInfo(Base):
    port: int
    protocol: str | None = None  # IPv4 only (IPv6 is refused: refused.py)


class HealthCheck(Base):
    type: HealthCheckType = HealthCheckType.UNKNOWN
    delay_seconds: float = 15.0
    interval_seconds: float = 10.0
    timeout_seconds: float = 20.0
    consecutive_failures: int = 3
    grace_period_seconds: float = 10.0
    command: CommandInfo | None = None
    http: HTTPCheckInfo | None = None
    tcp: TCPCheckInfo | None = None


class CheckType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    COMMAND = "COMMAND"
    HTTP = "HTTP"
    TCP = "TCP"


class CheckCommand(Base):
    command: CommandInfo


class CheckHttp(Base):
    port: int
    path: str | None = None


class CheckTcp(Base):
    port: int


class CheckInfo(Base):
    """Mesos' generic check (``TaskInfo.check``): run by the agent, its result reported
    in ``TaskStatus.check_status`` (see agent/checks.py)."""

    type: CheckType = CheckType.UNKNOWN
    command: CheckCommand | None = None
    http: CheckHttp | None = None
    tcp: CheckTcp | None = None
    delay_seconds: float = 15.0
    interval_seconds: float = 10.0
    timeout_seconds: float = 20.0


class CheckStatusCommand(Base):
    exit_code: int | None = None


class CheckStatusHttp(Base):
    status_code: int | None = None


class CheckStatusTcp(Base):
    succeeded: bool | None = None


class CheckStatusInfo(Base):
    """A check's latest result; the result's field is empty while the check has not
    completed (not yet run, timed out, or could not run)."""

    type: CheckType | None = None
    command: CheckStatusCommand | None = None
    http: CheckStatusHttp | None = None
    tcp: CheckStatusTcp | None = None


class KillPolicy(Base):
    grace_period: DurationInfo | None = None


class DiscoveryPort(Base):
    number: int
    name: str | None = None
    protocol: str | None = None
    visibility: str | None = None
    labels: Labels | None = None


class DiscoveryPorts(Base):
    ports: list[DiscoveryPort] = []


class DiscoveryInfo(Base):
    """For service discovery tools that read the state (kept and shown, as in Mesos,
    which does not act on it either)."""

    visibility: str = "FRAMEWORK"
    name: str | None = None
    environment: str | None = None
    location: str | None = None
    version: str | None = None
    ports: DiscoveryPorts | None = None
    labels: Labels | None = None


class ExecutorType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    DEFAULT = "DEFAULT"  # the agent's built-in executor (task groups)
    CUSTOM = "CUSTOM"  # the framework's own program (``command`` / ``container``)


class ExecutorInfo(Base):
    """A framework's executor (docs/executors.md).  ``type`` is absent in older
    clients' JSON: it then means CUSTOM."""

    executor_id: ID | None = None
    type: ExecutorType | None = None
    framework_id: ID | None = None
    resources: list[Resource] = []
    command: CommandInfo | None = None
    container: ContainerInfo | None = None
    name: str | None = None
    source: str | None = None
    data: bytes | None = None
    shutdown_grace_period: DurationInfo | None = None
    labels: Labels | None = None
    discovery: DiscoveryInfo | None = None


def same_executor(running: ExecutorInfo, asked: ExecutorInfo) -> bool:
    """Whether a task's ExecutorInfo names the executor already running (Mesos
    compares them whole; the framework id may be filled in on one side only)."""
    return msgspec.structs.replace(running, framework_id=None) == msgspec.structs.replace(
        asked, framework_id=None)


class ContainerID(Base):
    value: str
    parent: ContainerID | None = None


class AgentInfo(Base):
    """What an executor learns of its agent (``SUBSCRIBED.agent_info``)."""

    hostname: str
    id: ID | None = None
    port: int | None = None
    resources: list[Resource] = []
    attributes: list[Attribute] = []


class TaskInfo(Base):
    name: str
    task_id: ID
    agent_id: ID
    resources: list[Resource] = []
    executor: ExecutorInfo | None = None
    command: CommandInfo | None = None
    container: ContainerInfo | None = None
    health_check: HealthCheck | None = None
    kill_policy: KillPolicy | None = None
    data: bytes | None = None
    labels: Labels | None = None
    discovery: DiscoveryInfo | None = None
    check: CheckInfo | None = None
    max_completion_time: DurationInfo | None = None
    # cpus / mem above the request (``resources``); the value may be the string
    # "Infinity" (the protobuf JSON form of an unlimited double): see ``task_limits``
    limits: dict[str, LimitScalar] = {}


class LimitScalar(Base):
    """``Value.Scalar`` in ``TaskInfo.limits``: a number, or "Infinity"."""

    value: float | str


class TaskGroupInfo(Base):
    tasks: list[TaskInfo] = []


class TaskState(str, enum.Enum):
    TASK_STAGING = "TASK_STAGING"
    TASK_STARTING = "TASK_STARTING"
    TASK_RUNNING = "TASK_RUNNING"
    TASK_KILLING = "TASK_KILLING"
    TASK_FINISHED = "TASK_FINISHED"
    TASK_FAILED = "TASK_FAILED"
    TASK_KILLED = "TASK_KILLED"
    TASK_ERROR = "TASK_ERROR"
    TASK_LOST = "TASK_LOST"
    TASK_DROPPED = "TASK_DROPPED"
    TASK_UNREACHABLE = "TASK_UNREACHABLE"
    TASK_GONE = "TASK_GONE"
    TASK_GONE_BY_OPERATOR = "TASK_GONE_BY_OPERATOR"
    TASK_UNKNOWN = "TASK_UNKNOWN"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        TaskState.TASK_FINISHED,
        TaskState.TASK_FAILED,
        TaskState.TASK_KILLED,
        TaskState.TASK_ERROR,
        TaskState.TASK_LOST,
        TaskState.TASK_DROPPED,
        TaskState.TASK_GONE,
        TaskState.TASK_GONE_BY_OPERATOR,
    }
)


class Source(str, enum.Enum):
    SOURCE_MASTER = "SOURCE_MASTER"
    SOURCE_AGENT = "SOURCE_AGENT"
    SOURCE_EXECUTOR = "SOURCE_EXECUTOR"


class Reason(str, enum.Enum):
    REASON_COMMAND_EXECUTOR_FAILED = "REASON_COMMAND_EXECUTOR_FAILED"
    REASON_CONTAINER_LAUNCH_FAILED = "REASON_CONTAINER_LAUNCH_FAILED"
    REASON_CONTAINER_LIMITATION = "REASON_CONTAINER_LIMITATION"
    REASON_CONTAINER_LIMITATION_DISK = "REASON_CONTAINER_LIMITATION_DISK"
    REASON_CONTAINER_LIMITATION_MEMORY = "REASON_CONTAINER_LIMITATION_MEMORY"
    REASON_CONTAINER_PREEMPTED = "REASON_CONTAINER_PREEMPTED"
    REASON_CONTAINER_UPDATE_FAILED = "REASON_CONTAINER_UPDATE_FAILED"
    REASON_MAX_COMPLETION_TIME_REACHED = "REASON_MAX_COMPLETION_TIME_REACHED"
    REASON_EXECUTOR_REGISTRATION_TIMEOUT = "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
    REASON_EXECUTOR_REREGISTRATION_TIMEOUT = "REASON_EXECUTOR_REREGISTRATION_TIMEOUT"
    REASON_EXECUTOR_TERMINATED = "REASON_EXECUTOR_TERMINATED"
    REASON_EXECUTOR_UNREGISTERED = "REASON_EXECUTOR_UNREGISTERED"
    REASON_FRAMEWORK_REMOVED = "REASON_FRAMEWORK_REMOVED"
    REASON_GC_ERROR = "REASON_GC_ERROR"
    REASON_INVALID_FRAMEWORKID = "REASON_INVALID_FRAMEWORKID"
    REASON_INVALID_OFFERS = "REASON_INVALID_OFFERS"
    REASON_IO_SWITCHBOARD_EXITED = "REASON_IO_SWITCHBOARD_EXITED"
    REASON_MASTER_DISCONNECTED = "REASON_MASTER_DISCONNECTED"
    REASON_RECONCILIATION = "REASON_RECONCILIATION"
    REASON_RESOURCES_UNKNOWN = "REASON_RESOURCES_UNKNOWN"
    REASON_AGENT_DISCONNECTED = "REASON_AGENT_DISCONNECTED"
    REASON_AGENT_DRAINING = "REASON_AGENT_DRAINING"
    REASON_AGENT_REMOVED = "REASON_AGENT_REMOVED"
    REASON_AGENT_REMOVED_BY_OPERATOR = "REASON_AGENT_REMOVED_BY_OPERATOR"
    REASON_AGENT_REREGISTERED = "REASON_AGENT_REREGISTERED"
    REASON_AGENT_RESTARTED = "REASON_AGENT_RESTARTED"
    REASON_AGENT_UNKNOWN = "REASON_AGENT_UNKNOWN"
    REASON_TASK_KILLED_DURING_LAUNCH = "REASON_TASK_KILLED_DURING_LAUNCH"
    REASON_TASK_CHECK_STATUS_UPDATED = "REASON_TASK_CHECK_STATUS_UPDATED"
    REASON_TASK_HEALTH_CHECK_STATUS_UPDATED = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
    REASON_TASK_GROUP_INVALID = "REASON_TASK_GROUP_INVALID"
    REASON_TASK_GROUP_UNAUTHORIZED = "REASON_TASK_GROUP_UNAUTHORIZED"
    REASON_TASK_INVALID = "REASON_TASK_INVALID"
    REASON_TASK_UNAUTHORIZED = "REASON_TASK_UNAUTHORIZED"
    REASON_TASK_UNKNOWN = "REASON_TASK_UNKNOWN"


class ContainerStatus(Base):
    container_id: ID | None = None
    executor_pid: int | None = None


class TaskStatus(Base):
    task_id: ID
    state: TaskState
    message: str | None = None
    source: Source | None = None
    reason: Reason | None = None
    data: bytes | None = None
    agent_id: ID | None = None
    executor_id: ID | None = None
    timestamp: float | None = None
    uuid: bytes | None = None
    healthy: bool | None = None
    labels: Labels | None = None
    container_status: ContainerStatus | None = None
    unreachable_time: TimeInfo | None = None
    check_status: CheckStatusInfo | None = None


# ---------------------------------------------------------------- offers


class URL(Base):
    scheme: str
    address: dict[str, object] | None = None
    path: str | None = None


class Offer(Base):
    id: ID
    framework_id: ID
    agent_id: ID
    hostname: str
    resources: list[Resource] = []
    attributes: list[Attribute] = []
    executor_ids: list[ID] = []
    url: URL | None = None
    allocation_info: AllocationInfo | None = None
    # set while the agent's machine is in a maintenance window (DRAINING)
    unavailability: Unavailability | None = None


class InverseOffer(Base):
    """The master asks a framework for its resources on an agent back, before the
    agent's machine goes down for maintenance (``resources`` empty: all of them)."""

    id: ID
    framework_id: ID
    unavailability: Unavailability
    url: URL | None = None
    agent_id: ID | None = None
    resources: list[Resource] = []


class Filters(Base):
    refuse_seconds: float = 5.0


class OperationType(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    LAUNCH = "LAUNCH"
    LAUNCH_GROUP = "LAUNCH_GROUP"
    RESERVE = "RESERVE"
    UNRESERVE = "UNRESERVE"
    CREATE = "CREATE"
    DESTROY = "DESTROY"
    GROW_VOLUME = "GROW_VOLUME"
    SHRINK_VOLUME = "SHRINK_VOLUME"
    CREATE_DISK = "CREATE_DISK"
    DESTROY_DISK = "DESTROY_DISK"


class Launch(Base):
    task_infos: list[TaskInfo] = []


class LaunchGroup(Base):
    executor: ExecutorInfo
    task_group: TaskGroupInfo


class Reserve(Base):
    resources: list[Resource] = []


class Unreserve(Base):
    resources: list[Resource] = []


class Create(Base):
    volumes: list[Resource] = []


class Destroy(Base):
    volumes: list[Resource] = []


class Operation(Base):
    type: OperationType = OperationType.UNKNOWN
    id: ID | None = None
    launch: Launch | None = None
    launch_group: LaunchGroup | None = None
    reserve: Reserve | None = None
    unreserve: Unreserve | None = None
    create: Create | None = None
    destroy: Destroy | None = None


class OperationState(str, enum.Enum):
    OPERATION_UNSUPPORTED = "OPERATION_UNSUPPORTED"
    OPERATION_PENDING = "OPERATION_PENDING"
    OPERATION_FINISHED = "OPERATION_FINISHED"
    OPERATION_FAILED = "OPERATION_FAILED"
    OPERATION_ERROR = "OPERATION_ERROR"
    OPERATION_DROPPED = "OPERATION_DROPPED"
    OPERATION_GONE_BY_OPERATOR = "OPERATION_GONE_BY_OPERATOR"
    OPERATION_RECOVERING = "OPERATION_RECOVERING"
    OPERATION_UNKNOWN = "OPERATION_UNKNOWN"


class UUIDValue(Base):
    """Mesos' ``UUID`` message: 16 bytes (base64 in JSON)."""

    value: bytes


class OperationStatus(Base):
    """What became of an offer operation (Mesos' ``OperationStatus``).  ``uuid`` is
    set on an update the framework must acknowledge (ACKNOWLEDGE_OPERATION_STATUS);
    reconciliation answers carry none."""

    state: OperationState
    operation_id: ID | None = None
    message: str | None = None
    agent_id: ID | None = None
    uuid: UUIDValue | None = None


# ---------------------------------------------------------------- conversion


def to_resources(items: list[Resource], path: str = "resources") -> Resources:
    """Typed Mesos resources -> ``Resources``; raises ``ResourceError`` naming the path."""
    return Resources.from_json(msgspec.to_builtins(items), path)


def from_resources(resources: Resources, role: str | None = None) -> list[Resource]:
    """``Resources`` -> typed Mesos resources (with ``allocation_info`` when ``role``)."""
    return msgspec.convert(resources.to_json(role), list[Resource])


def labels_to_dict(labels: Labels | None) -> dict[str, str]:
    if labels is None:
        return {}
    return {label.key: label.value or "" for label in labels.labels}


def dict_to_labels(values: dict[str, str]) -> Labels:
    return Labels(labels=[Label(key=k, value=v) for k, v in sorted(values.items())])
