"""Service discovery's source of truth: per app and service port, the endpoints that
may receive traffic.  Pure (no I/O, no clock).

An endpoint is a task's (agent address, host port) for one of the app's service
ports.  A task is *routable* when it runs, no kill was requested for it (a task being
replaced by a deployment drains: it gets no new connections), it is healthy when the
app has health checks (Marathon's rule), and -- while a deployment holds the app and
the app has a readiness check -- a task of the new configuration has passed it.

``EndpointsTracker`` keeps the last routable view per app and, after every commit of
the framework's state, says which apps changed.  Each change bumps a generation
number (per tracker, i.e. per server run, named by ``epoch``): consumers drop an event
whose generation is not newer than the one they hold for that app.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from frameworks.services.model import App
from frameworks.services.tasks import TaskRecord

STRATEGY_LABEL = "MESOSLITE_LB_STRATEGY"
STRATEGIES = ("round-robin", "least-connections")
DEFAULT_STRATEGY = "round-robin"
EVENT_TYPE = "endpoints_changed_event"


@dataclass(frozen=True)
class Endpoint:
    """One task's address for one service port."""

    task_id: str
    host: str  # the agent's address (its hostname when it has none)
    hostname: str
    port: int  # the host port
    healthy: bool | None
    state: str
    routable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"taskId": self.task_id, "host": self.host, "hostname": self.hostname,
                "port": self.port, "healthy": self.healthy, "state": self.state,
                "routable": self.routable}


@dataclass(frozen=True)
class ServicePort:
    """One of an app's service ports with its endpoints."""

    index: int
    service_port: int
    protocol: str
    name: str | None
    endpoints: tuple[Endpoint, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "servicePort": self.service_port,
                "protocol": self.protocol, "name": self.name,
                "endpoints": [e.to_json() for e in self.endpoints]}


@dataclass(frozen=True)
class AppEndpoints:
    app_id: str
    strategy: str
    ports: tuple[ServicePort, ...]
    hosts: tuple[str, ...] = ()  # addresses of the routable tasks, ports or not

    def to_json(self, generation: int = 0) -> dict[str, Any]:
        return {"id": self.app_id, "generation": generation, "strategy": self.strategy,
                "hosts": list(self.hosts), "servicePorts": [p.to_json() for p in self.ports]}


def strategy_of(app: App) -> str:
    """The balancing strategy the app asks for (label ``MESOSLITE_LB_STRATEGY``);
    anything unrecognised means the default, round-robin."""
    value = app.labels.get(STRATEGY_LABEL, "").strip().lower().replace("_", "-")
    return value if value in STRATEGIES else DEFAULT_STRATEGY


def port_layout(app: App) -> list[tuple[int, str, str | None, int | None]]:
    """Per service port: (service port, protocol, name, index into a task's host
    ports or None when that port has no host port -- a bridge mapping without
    ``hostPort`` is reachable only inside the container)."""
    out: list[tuple[int, str, str | None, int | None]] = []
    if app.network == "host":
        for i, pd in enumerate(app.port_definitions or []):
            out.append((pd.port, pd.protocol or "tcp", pd.name, i))
        return out
    mapped = 0
    for pm in app.port_mappings:
        index = None
        if pm.host_port is not None:
            index, mapped = mapped, mapped + 1
        out.append((pm.service_port, pm.protocol or "tcp", pm.name, index))
    return out


def is_routable(app: App, task: TaskRecord, deploying: bool) -> bool:
    """See the module docstring."""
    if not task.running or task.kill_requested_at is not None:
        return False
    if app.has_health_checks and task.healthy is not True:
        return False
    # A deployment's new tasks take traffic once ready (Marathon-lb's zero-downtime rule).
    held_back = (deploying and bool(app.readiness_checks)
                 and task.config_version == app.config_version and not task.ready)
    return not held_back


def app_endpoints(app: App, tasks: Iterable[TaskRecord], deploying: bool = False,
                  include_all: bool = False) -> AppEndpoints:
    """The app's service ports and their endpoints (routable ones only unless
    ``include_all``), ordered by task id so equal states compare equal."""
    ordered = sorted(tasks, key=lambda t: t.id)
    hosts = sorted({t.address or t.hostname for t in ordered if is_routable(app, t, deploying)})
    ports = []
    for i, (service_port, protocol, name, index) in enumerate(port_layout(app)):
        endpoints = []
        for task in ordered:
            if index is None or index >= len(task.ports):
                continue
            routable = is_routable(app, task, deploying)
            if routable or include_all:
                endpoints.append(Endpoint(
                    task_id=task.id, host=task.address or task.hostname,
                    hostname=task.hostname, port=task.ports[index], healthy=task.healthy,
                    state=task.state, routable=routable))
        ports.append(ServicePort(i, service_port, protocol, name, tuple(endpoints)))
    return AppEndpoints(app.id, strategy_of(app), tuple(ports), tuple(hosts))


def all_endpoints(apps: Mapping[str, App], tasks: Iterable[TaskRecord],
                  deploying: Iterable[str] = (), include_all: bool = False
                  ) -> dict[str, AppEndpoints]:
    """``app_endpoints`` for every app (apps being removed are not listed)."""
    by_app: dict[str, list[TaskRecord]] = defaultdict(list)
    for task in tasks:
        by_app[task.app_id].append(task)
    held = set(deploying)
    return {app_id: app_endpoints(app, by_app.get(app_id, ()), app_id in held, include_all)
            for app_id, app in sorted(apps.items())}


@dataclass(frozen=True)
class Change:
    """One app's routable endpoints changed (``now`` None: the app is gone)."""

    app_id: str
    generation: int
    now: AppEndpoints | None
    added: tuple[str, ...] = ()  # task ids that became routable (any service port)
    removed: tuple[str, ...] = ()  # task ids that stopped being routable


def task_ids(app: AppEndpoints | None) -> set[str]:
    """Every task with an endpoint in ``app`` (any service port)."""
    if app is None:
        return set()
    return {e.task_id for p in app.ports for e in p.endpoints}


def diff(old: Mapping[str, AppEndpoints], new: Mapping[str, AppEndpoints]
         ) -> list[tuple[str, AppEndpoints | None]]:
    """Apps whose endpoints differ between ``old`` and ``new`` (None: removed), by id."""
    changed = []
    for app_id in sorted(set(old) | set(new)):
        before, after = old.get(app_id), new.get(app_id)
        if before != after:
            changed.append((app_id, after))
    return changed


class EndpointsTracker:
    """The last routable view per app, with a generation per change."""

    def __init__(self, epoch: str = "") -> None:
        self.epoch = epoch
        self.generation = 0
        self.apps: dict[str, AppEndpoints] = {}
        self.generations: dict[str, int] = {}

    def update(self, current: Mapping[str, AppEndpoints]) -> list[Change]:
        """Take ``current`` as the new view; the changes since the last one."""
        changes = []
        for app_id, after in diff(self.apps, current):
            before = self.apps.get(app_id)
            self.generation += 1
            if after is None:
                del self.apps[app_id]
                self.generations.pop(app_id, None)
            else:
                self.apps[app_id] = after
                self.generations[app_id] = self.generation
            old_ids, new_ids = task_ids(before), task_ids(after)
            changes.append(Change(app_id, self.generation, after,
                                  tuple(sorted(new_ids - old_ids)),
                                  tuple(sorted(old_ids - new_ids))))
        return changes

    def app_json(self, app_id: str) -> dict[str, Any] | None:
        app = self.apps.get(app_id)
        return app.to_json(self.generations.get(app_id, 0)) if app is not None else None

    def event(self, change: Change) -> dict[str, Any]:
        """The ``endpoints_changed_event`` payload (without eventType/timestamp)."""
        return {"appId": change.app_id, "epoch": self.epoch, "generation": change.generation,
                "app": (change.now.to_json(change.generation)
                        if change.now is not None else None),
                "added": list(change.added), "removed": list(change.removed)}
