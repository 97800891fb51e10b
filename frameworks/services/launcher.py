"""The offer path: offers + what waits -> placement -> stored task records -> LAUNCH.

Per offer round, under the controller's lock:

1. the plan says how many tasks of which apps to launch; nothing waits (or the
   framework has not reconciled yet) -> decline everything (and the controller
   suppresses offers);
2. all offers become placement agents; every waiting instance a placement task in its
   app's group with the app's constraints; the app's running tasks count for them;
3. ``place`` (OR-Tools, a small time limit) runs off the event loop;
4. the plan is re-read (an API call may have changed it meanwhile) and the answer
   trimmed to it; a record per task is committed *before* the LAUNCH is sent (a crash
   in between leaves a record reconciliation resolves, never an unknown task);
5. one ACCEPT per agent carries all its tasks; offers left over are declined with a
   filter: short while instances still wait (the next round may fit them), long
   otherwise.  Why the rest did not fit is kept for ``/v2/queue``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass

from mesoslite.framework.offers import (
    AgentOffers,
    assign_ports,
    fixed_port_resource,
    group_offers,
    placement_agents,
)
from frameworks.common.taskinfo import build_task
from frameworks.services import volume_ops
from frameworks.services.controller import Controller
from frameworks.services.linking import HOST_GATEWAY, linked_spec
from frameworks.services.model import App
from frameworks.services.state import service_ports
from frameworks.services.tasks import TaskRecord
from frameworks.services.taskspec import new_task_id, task_spec
from frameworks.services.volumes import (
    Reservation,
    free_reservations,
    is_resident,
    local_volumes_json,
    new_reservation,
    new_slots,
    reservation_amounts,
    reserve_operations,
    resident_resources,
)
from mesoslite.messages.mesos import (
    Filters,
    Launch,
    Offer,
    Operation,
    OperationType,
    TaskInfo,
)
from mesoslite.placement import (
    Placement,
    PlacementInputError,
    Problem,
    Running,
    Task,
    place,
)
from mesoslite.resources import Resources
from mesoslite.scheduler import CallError, Driver, DriverError

log = logging.getLogger(__name__)


@dataclass
class LauncherSettings:
    time_limit_s: float = 0.2
    objective: str = "spread"
    refuse_waiting_s: float = 5.0  # decline filter while instances still wait
    refuse_idle_s: float = 60.0  # decline filter when nothing waits
    workers: int = 1
    # Where Docker tasks reach the agent host's load balancer (host entries naming
    # the apps; docs/discovery.md); None: no host entries.
    lb_address: str | None = HOST_GATEWAY


class Launcher:
    def __init__(self, controller: Controller, settings: LauncherSettings | None = None) -> None:
        self.controller = controller
        self.settings = settings or LauncherSettings()
        self.launched = 0
        # this round's RESERVE + CREATE operations per agent (new reservations)
        self._prep: dict[str, list[Operation]] = {}
        self._warned_role = False

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        async with self.controller.lock:
            await self._round(driver, offers)

    async def _round(self, driver: Driver, offers: list[Offer]) -> None:
        groups = await volume_ops.destroy_volumes(self.controller.state, driver,
                                                  group_offers(offers))
        plan = self.controller.plan()
        launches = plan.launches if self.controller.reconciled else {}
        if not launches:
            await self._decline(driver, list(groups.values()), waiting=bool(plan.waiting))
            return
        state = self.controller.state
        apps = {a: state.apps[a] for a in launches if a in state.apps}
        self._prep = {}
        relaunched = self._relaunch(driver, groups, apps, launches)
        if relaunched:
            launches = dict(self.controller.plan().launches)
        problem, slots = self._problem(groups, apps, launches)
        try:
            answer = await asyncio.to_thread(place, problem)
        except PlacementInputError as exc:
            log.error("placement rejected the problem (%s); declining the offers", exc)
            await self._decline(driver, list(groups.values()), waiting=True)
            return
        except Exception:
            # Never sit on offers: an unanswered offer is lost to every framework.
            log.exception("placement failed; declining the offers")
            await self._decline(driver, list(groups.values()), waiting=True)
            return
        allowed = dict(self.controller.plan().launches)  # the state may have moved on
        by_agent = self._records(driver, groups, apps, slots, answer, allowed)
        for agent_id, infos in relaunched.items():
            by_agent.setdefault(agent_id, []).extend(infos)
        await self.controller.committer.commit()
        used = await self._accept(driver, groups, by_agent)
        self._record_stats(groups, apps, slots, answer, by_agent)
        unused = [g for a, g in groups.items() if a not in used]
        await self._decline(driver, unused, waiting=len(answer.unplaced) > 0)
        if by_agent:
            self.controller.kick()

    def _problem(self, groups: dict[str, AgentOffers], apps: dict[str, App],
                 launches: dict[str, int]) -> tuple[Problem, dict[str, str]]:
        state = self.controller.state
        fixed = {p for app in apps.values() for p in app.host_ports_requested if p}
        agents = placement_agents(groups.values(), fixed)
        live = set(state.tasks)
        tasks, slots, running = [], {}, []
        for app_id, app in apps.items():
            # a new resident instance reserves its disk and its volumes' from the offer
            disk = reservation_amounts(app).get("disk", 0.0) if is_resident(app) else app.disk
            demand = {k: v for k, v in (("cpus", app.cpus), ("mem", app.mem),
                                         ("disk", disk), ("gpus", float(app.gpus))) if v}
            requested = app.host_ports_requested
            demand.update({fixed_port_resource(p): 1.0 for p in requested if p})
            count = new_slots(app, launches.get(app_id, 0), state.reservations, live)
            if count and is_resident(app) and self._role() is None:
                count = 0
            for i in range(count):
                slot = f"{app_id}#{i}"
                slots[slot] = app_id
                tasks.append(Task(slot, demand, ports=requested.count(0), group=app_id,
                                  constraints=tuple(tuple(c) for c in app.constraints)))
            running += [Running(app_id, t.agent_id, t.attributes or {"hostname": t.hostname})
                        for t in state.app_tasks(app_id) if t.kill_requested_at is None]
        problem = Problem(agents, tasks, running, objective=self.settings.objective,
                          time_limit_s=self.settings.time_limit_s, workers=self.settings.workers)
        return problem, slots

    def _role(self) -> str | None:
        """The role reservations are made for; None when the framework's role is '*'
        (Mesos reserves for a named role only), which leaves resident apps waiting."""
        driver = self.controller.driver
        role = driver.framework_info.role if driver is not None else None
        if role in (None, "*"):
            if not self._warned_role:
                log.error("apps with persistent volumes need the services framework to run"
                          " in a role other than '*' (--role): they wait")
                self._warned_role = True
            return None
        return role

    def _relaunch(self, driver: Driver, groups: dict[str, AgentOffers], apps: dict[str, App],
                  launches: dict[str, int]) -> dict[str, list[TaskInfo]]:
        """Instances with a free reservation whose agent offers it back (reserved
        resources and volumes): a task on it, taken out of the group's resources."""
        state, now = self.controller.state, self.controller.now()
        out: dict[str, list[TaskInfo]] = defaultdict(list)
        if not any(is_resident(app) and launches.get(app_id, 0) > 0
                   for app_id, app in apps.items()):
            return out
        role = self._role()  # logs once why resident apps wait in role '*'
        if role is None:
            return out
        principal = driver.framework_info.principal
        live = set(state.tasks)
        for app_id, app in apps.items():
            if not is_resident(app) or launches.get(app_id, 0) <= 0:
                continue
            for r in free_reservations(state.reservations, live, app_id)[:launches[app_id]]:
                group = groups.get(r.agent_id)
                if group is None or not r.resources:
                    continue
                made = self._relaunch_one(app, r, group, role, principal, now)
                if made is not None:
                    out[r.agent_id].append(made)
        return out

    def _relaunch_one(self, app: App, r: Reservation, group: AgentOffers, role: str,
                      principal: str | None, now: float) -> TaskInfo | None:
        state = self.controller.state
        wanted = [f["persistenceId"] for f in local_volumes_json(app, r)]
        if not all(v in group.volumes for v in wanted):
            return None
        requested = app.host_ports_requested
        free_ports = group.resources.port_list()
        dynamic = [p for p in free_ports if p not in requested][:requested.count(0)]
        if any(p and p not in free_ports for p in requested) or (
                len(dynamic) < requested.count(0)):
            return None
        ports = assign_ports(requested, dynamic)
        task_id = new_task_id(app.id)
        spec = linked_spec(task_spec(app, ports, r), app, state, self.settings.lb_address)
        info = build_task(spec, task_id, r.agent_id, ports)
        resources, extra = resident_resources(app, r, role, principal, info.resources)
        taken = Resources(scalars={k: v for k, v in r.resources.items()})
        if not group.reserved.contains(taken) or not group.resources.contains(extra):
            return None
        port_res = Resources(ranges={"ports": [(p, p) for p in ports]}) if ports else Resources()
        group.resources = group.resources - extra - port_res
        group.reserved = group.reserved - taken
        for v in wanted:
            group.volumes.pop(v, None)
        assert app.version is not None
        record = TaskRecord(
            id=task_id, app_id=app.id, version=app.version,
            config_version=app.config_version, agent_id=r.agent_id,
            hostname=group.hostname, staged_at=now, address=group.address,
            attributes=dict(group.attributes), ports=ports, service_ports=service_ports(app))
        state.put_task(record)
        record.local_volumes = volume_ops.bind(state, app, r, task_id)
        info.resources = resources
        return info

    def _records(self, driver: Driver, groups: dict[str, AgentOffers], apps: dict[str, App],
                 slots: dict[str, str], answer: Placement, allowed: dict[str, int]
                 ) -> dict[str, list[TaskInfo]]:
        """Task records (added to the state) and their TaskInfos, per agent."""
        state, now = self.controller.state, self.controller.now()
        by_agent: dict[str, list[TaskInfo]] = defaultdict(list)
        for slot, agent_id in sorted(answer.assignments.items()):
            app_id = slots[slot]
            app = state.apps.get(app_id)
            if app is None or allowed.get(app_id, 0) <= 0 or app.version != apps[app_id].version:
                continue
            allowed[app_id] -= 1
            group = groups[agent_id]
            ports = assign_ports(app.host_ports_requested, answer.ports.get(slot, []))
            task_id = new_task_id(app_id)
            assert app.version is not None
            record = TaskRecord(
                id=task_id, app_id=app_id, version=app.version,
                config_version=app.config_version, agent_id=agent_id,
                hostname=group.hostname, staged_at=now, address=group.address,
                attributes=dict(group.attributes), ports=ports,
                service_ports=service_ports(app))
            state.put_task(record)
            reservation = (new_reservation(app_id, agent_id, group.hostname, now,
                                           group.attributes) if is_resident(app) else None)
            if reservation is not None:
                role = self._role() or "*"
                reservation.role, reservation.resources = role, reservation_amounts(app)
                record.local_volumes = volume_ops.bind(state, app, reservation, task_id)
                self._prep.setdefault(agent_id, []).extend(reserve_operations(
                    app, reservation, role, driver.framework_info.principal))
            spec = linked_spec(task_spec(app, ports, reservation), app, state,
                               self.settings.lb_address)
            info = build_task(spec, task_id, agent_id, ports)
            if reservation is not None:
                info.resources, _ = resident_resources(
                    app, reservation, reservation.role or "*",
                    driver.framework_info.principal, info.resources)
            by_agent[agent_id].append(info)
        return by_agent

    async def _accept(self, driver: Driver, groups: dict[str, AgentOffers],
                      by_agent: dict[str, list[TaskInfo]]) -> set[str]:
        used = set()
        for agent_id, infos in by_agent.items():
            group = groups[agent_id]
            ops = [*self._prep.get(agent_id, []),
                   Operation(type=OperationType.LAUNCH, launch=Launch(task_infos=infos))]
            try:
                await driver.accept(group.offer_ids, ops,
                                    Filters(refuse_seconds=self.settings.refuse_waiting_s))
                used.add(agent_id)
                self.launched += len(infos)
            except CallError as exc:
                # Refused outright (e.g. a rescinded offer): these tasks never started.
                log.warning("launch on %s refused (%s); will retry", agent_id, exc)
                for info in infos:
                    self.controller.state.drop_task(info.task_id.value)
                used.add(agent_id)
            except DriverError as exc:
                # Unknown whether it arrived: reconciliation settles it.
                log.warning("launch on %s not confirmed (%s)", agent_id, exc)
                used.add(agent_id)
        if by_agent:
            await self.controller.committer.commit()
        return used

    async def _decline(self, driver: Driver, groups: list[AgentOffers], waiting: bool) -> None:
        ids = [oid for g in groups for oid in g.offer_ids]
        if not ids:
            return
        refuse = self.settings.refuse_waiting_s if waiting else self.settings.refuse_idle_s
        try:
            await driver.decline(ids, refuse_seconds=refuse)
        except DriverError as exc:
            log.debug("decline not sent: %s", exc)

    def _record_stats(self, groups: dict[str, AgentOffers], apps: dict[str, App],
                      slots: dict[str, str], answer: Placement,
                      by_agent: dict[str, list[TaskInfo]]) -> None:
        now = self.controller.now()
        used_by_app: dict[str, set[str]] = defaultdict(set)
        for slot, agent_id in answer.assignments.items():
            used_by_app[slots[slot]].add(agent_id)
        for app_id in apps:
            unplaced = [s for s in answer.unplaced if slots[s] == app_id]
            why = [answer.why.get(s, ()) for s in unplaced]
            message = answer.unplaced[unplaced[0]] if unplaced else None
            self.controller.queue.record(app_id, len(groups), len(used_by_app[app_id]), now,
                                         why, message)

