"""Framework lifecycle: subscribe, failover, disconnect, failover timeout, teardown,
and the calls that only touch the allocator (DECLINE, REVIVE, SUPPRESS)."""

from __future__ import annotations

import ipaddress
import re

from mesoslite.master.allocator.offer_constraints import ConstraintError, compile_constraints
from mesoslite.master.model import FrameworkRecord, FrameworkState
from mesoslite.master.offers import OfferOps
from mesoslite.master.stimuli import (
    Admitted,
    FrameworkStreamClosed,
    FrameworkSubscribes,
    Refusal,
)
from mesoslite.messages.agent import ShutdownFramework
from mesoslite.messages.mesos import ID, FrameworkInfo, MasterInfo, Reason, TaskState
from mesoslite.messages.scheduler import (
    Decline,
    Event,
    EventType,
    Subscribed,
    UpdateFramework,
)

_ROLE_RE = re.compile(r"^[^\s/\\]+$")
DEFAULT_REFUSE_SECONDS = 5.0


def roles_refusal(info: FrameworkInfo) -> Refusal | None:
    """Why the framework's roles are invalid (400), or None."""
    roles = info.effective_roles()
    if info.roles and info.role not in (None, "*"):
        return Refusal(400, "'framework_info.role' and 'framework_info.roles' both set")
    if len(set(roles)) != len(roles):
        return Refusal(400, "'framework_info.roles' contains duplicates")
    for role in roles:
        if role in (".", "..") or not _ROLE_RE.match(role) or role.startswith("-"):
            return Refusal(400, f"Role '{role}' is invalid: no whitespace, '/' or '\\'")
    return None


class FrameworkOps(OfferOps):
    def master_info(self) -> MasterInfo:
        try:
            ip = int(ipaddress.IPv4Address(self.config.hostname))
        except ValueError:
            ip = 0
        from mesoslite import __version__

        return MasterInfo(
            id=self.master_id,
            ip=ip,
            port=self.config.port,
            hostname=self.config.hostname,
            version=__version__,
            pid=f"master@{self.config.hostname}:{self.config.port}",
        )

    def subscribe(self, stimulus: FrameworkSubscribes, now: float, mono: float
                  ) -> Admitted | Refusal:
        """Admit a framework (new, re-subscribing or failing over) on its stream.

        Answers its framework id; SUBSCRIBED is queued for the new stream.  Refused
        when the framework was removed (403) or its info is invalid (400).
        """
        sub, stream_id = stimulus.subscribe, stimulus.stream_id
        info = sub.framework_info
        refusal = roles_refusal(info)
        if refusal is not None:
            return refusal
        try:
            rules = compile_constraints(sub.offer_constraints, info.effective_roles(),
                                        "subscribe.offer_constraints")
        except ConstraintError as exc:
            return Refusal(400, str(exc))
        framework_id = info.id.value if info.id is not None else None
        if framework_id is not None and framework_id in self.removed_framework_ids:
            return Refusal(403, "Framework has been removed")
        fw = self.frameworks.get(framework_id) if framework_id else None
        if fw is not None:
            self._failover(fw, info, sub.suppressed_roles, stream_id, now, mono)
        else:
            framework_id = framework_id or self.next_id("")
            info.id = ID(framework_id)
            fw = FrameworkRecord(
                id=framework_id,
                info=info,
                stream_id=stream_id,
                suppressed_roles=set(sub.suppressed_roles),
                registered_time=now,
            )
            self.frameworks[framework_id] = fw
            self.allocator.add_framework(framework_id, fw.roles, fw.suppressed_roles, True)
        self.allocator.set_offer_constraints(fw.id, rules)
        self.dirty_frameworks.add(fw.id)
        self.to_framework(
            fw.id,
            Event(
                type=EventType.SUBSCRIBED,
                subscribed=Subscribed(
                    framework_id=ID(fw.id),
                    heartbeat_interval_seconds=self.config.heartbeat_interval,
                    master_info=self.master_info(),
                ),
            ),
        )
        self.mark_changed(self.agents)
        return Admitted(fw.id)

    def _failover(
        self,
        fw: FrameworkRecord,
        info: FrameworkInfo,
        suppressed: list[str],
        stream_id: str,
        now: float,
        mono: float,
    ) -> None:
        if fw.connected and fw.stream_id is not None and fw.stream_id != stream_id:
            self.close_stream(fw.id, fw.stream_id, "Framework failed over")
        # The new scheduler instance does not know the old offers: take them back.
        for offer_id in sorted(self.offers_by_framework.get(fw.id, set())):
            self.release_offer(offer_id, mono)
        fw.info = info
        fw.state = FrameworkState.SUBSCRIBED
        fw.stream_id = stream_id
        fw.suppressed_roles = set(suppressed)
        fw.reregistered_time = now
        fw.disconnected_at = None
        self.allocator.update_framework(fw.id, fw.roles, fw.suppressed_roles)
        self.allocator.activate_framework(fw.id)

    def stream_closed(self, stimulus: FrameworkStreamClosed, now: float, mono: float) -> None:
        """The framework's stream ended; its failover timer starts."""
        framework_id = stimulus.framework_id
        fw = self.frameworks.get(framework_id)
        if fw is None or fw.stream_id != stimulus.stream_id or not fw.connected:
            return
        fw.state = FrameworkState.DISCONNECTED
        fw.disconnected_at = mono
        self.dirty_frameworks.add(framework_id)  # not stored, but the event stream reports it
        self.allocator.deactivate_framework(framework_id)
        for offer_id in sorted(self.offers_by_framework.get(framework_id, set())):
            self.release_offer(offer_id, mono)

    def check_failovers(self, now: float, mono: float) -> None:
        for fw in list(self.frameworks.values()):
            if fw.connected or fw.disconnected_at is None:
                continue
            if mono - fw.disconnected_at >= fw.info.failover_timeout:
                self.remove_framework(fw.id, now, mono, "failover timeout expired")

    def remove_framework(self, framework_id: str, now: float, mono: float, why: str) -> None:
        """Tear a framework down: offers back, tasks killed on agents, record completed."""
        fw = self.frameworks.get(framework_id)
        if fw is None:
            return
        for offer_id in sorted(self.offers_by_framework.get(framework_id, set())):
            self.release_offer(offer_id, mono)
        agents_with_tasks = set()
        for task in self.framework_tasks(framework_id):
            agents_with_tasks.add(task.agent_id)
            self.transition(task, self.master_update(
                framework_id, task.id, task.agent_id, TaskState.TASK_KILLED,
                Reason.REASON_FRAMEWORK_REMOVED, f"Framework removed: {why}", now,
            ), mono)
            self.retire_task(task, mono)
        for key in [k for k in self.executors if k[1] == framework_id]:
            agents_with_tasks.add(key[0])
            record = self.executors.pop(key)
            if not record.released and key[0] in self.in_allocator:
                self.allocator.recover(framework_id, record.role, key[0], record.resources,
                                       mono)
        for agent_id in sorted(agents_with_tasks):
            self.to_agent(agent_id, ShutdownFramework(framework_id=framework_id))
        if fw.connected and fw.stream_id is not None:
            self.close_stream(framework_id, fw.stream_id)
        self.allocator.remove_framework(framework_id)
        del self.frameworks[framework_id]
        self.tasks_by_framework.pop(framework_id, None)
        self.offers_by_framework.pop(framework_id, None)
        fw.unregistered_time = now
        self.completed_frameworks.append(fw)
        self.removed_framework_ids.add(framework_id)
        self.dirty_frameworks.add(framework_id)

    def teardown(self, framework_id: str, now: float, mono: float) -> None:
        self.remove_framework(framework_id, now, mono, "teardown requested")

    def decline(self, framework_id: str, decline: Decline, mono: float) -> None:
        refuse = decline.filters.refuse_seconds if decline.filters else DEFAULT_REFUSE_SECONDS
        for offer_id in decline.offer_ids:
            offer = self.offers.get(offer_id.value)
            if offer is not None and offer.framework_id == framework_id:
                self.counters["offers_declined"] += 1
                self.release_offer(offer.id, mono, refuse_seconds=refuse)

    def revive(self, framework_id: str, roles: list[str]) -> None:
        fw = self.frameworks[framework_id]
        self.allocator.revive(framework_id, roles or None)
        fw.suppressed_roles -= set(roles or fw.roles)
        self.dirty_frameworks.add(framework_id)
        self.mark_changed(self.agents)

    def suppress(self, framework_id: str, roles: list[str]) -> None:
        fw = self.frameworks[framework_id]
        self.allocator.suppress(framework_id, roles or None)
        fw.suppressed_roles |= set(roles or fw.roles)
        self.dirty_frameworks.add(framework_id)

    def update_framework(self, framework_id: str, update: UpdateFramework, mono: float
                         ) -> Refusal | None:
        fw = self.frameworks[framework_id]
        info = update.framework_info
        if info.id is None or info.id.value != framework_id:
            return Refusal(400, "'framework_info.id' must be the framework's id")
        refusal = roles_refusal(info)
        if refusal is not None:
            return refusal
        try:
            rules = compile_constraints(update.offer_constraints, info.effective_roles(),
                                        "update_framework.offer_constraints")
        except ConstraintError as exc:
            return Refusal(400, str(exc))
        fw.info = info
        fw.suppressed_roles = set(update.suppressed_roles)
        self.allocator.update_framework(framework_id, fw.roles, fw.suppressed_roles)
        self.allocator.set_offer_constraints(framework_id, rules)
        self.dirty_frameworks.add(framework_id)
        self.mark_changed(self.agents)
        return None
