"""One offer round of the services framework: offers + what waits -> placement ->
stored task records -> LAUNCH.

``question`` (the kit calls it when offers are held and instances wait):

1. volumes waiting to be destroyed on an offered agent use that agent's offers
   (``volume_ops.destroy_launches``);
2. instances with a free reservation whose agent offers it back relaunch there
   (reserved resources and persistent volumes), taken out of the offers;
3. all other offers become placement agents; every waiting instance a placement task
   in its app's group with the app's constraints; the app's running tasks count.

``placed`` (the engine answered, off the event loop): the plan is read again (an API
call may have changed it meanwhile) and the answer trimmed to it; a record per task
is put in the journal (durable before the ACCEPT goes out: a crash in between leaves
a record reconciliation resolves, never an unknown task); one launch per agent
carries all its tasks.  Why the rest did not fit is kept for ``/v2/queue``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from frameworks.common.taskinfo import build_task
from frameworks.services import pod_launch, volume_ops
from frameworks.services.linking import linked_spec
from frameworks.services.model import App
from frameworks.services.pod_model import Pod
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
from mesoslite.framework import AgentLaunch, AgentOffers, Round, assign_ports, placement_agents
from mesoslite.framework.offers import fixed_port_resource
from mesoslite.messages.mesos import Operation, TaskInfo
from mesoslite.placement import Placement, PlacementInputError, Problem, Running, Task
from mesoslite.resources import Resources
from mesoslite.scheduler import calls

if TYPE_CHECKING:
    from frameworks.services.workload import ServicesWorkload

log = logging.getLogger(__name__)


@dataclass
class Context:
    """What ``question`` hands ``placed``."""

    groups: dict[str, AgentOffers]
    apps: dict[str, App]
    slots: dict[str, str] = field(default_factory=dict)  # placement task -> app
    relaunched: dict[str, list[TaskInfo]] = field(default_factory=dict)  # agent -> tasks
    destroys: list[AgentLaunch] = field(default_factory=list)
    pods: dict[str, Pod] = field(default_factory=dict)  # pods with instances waiting


def question(w: ServicesWorkload, offers: Sequence[AgentOffers], now: float) -> Round:
    groups = {g.agent_id: g for g in offers}
    destroys = volume_ops.destroy_launches(w.state, groups,
                                           lambda: w.reservation_role() or "*")
    launches = dict(w.last_plan.launches)
    apps = {a: w.state.apps[a] for a in launches if a in w.state.apps}
    ctx = Context(groups, apps, destroys=destroys,
                  pods={p: w.state.pods[p] for p in launches if p in w.state.pods})
    ctx.relaunched = _relaunch(w, groups, apps, launches, now)
    if ctx.relaunched:
        launches = dict(w.reconcile(now).launches)
    try:
        problem = _problem(w, ctx, launches)
    except PlacementInputError as exc:
        log.error("placement rejected the problem (%s); declining the offers", exc)
        ctx.slots.clear()
        problem = None
    return Round(problem if ctx.slots else None, ctx)


def placed(w: ServicesWorkload, round: Round, answer: Placement, now: float
           ) -> list[AgentLaunch]:
    ctx: Context = round.context
    allowed = dict(w.reconcile(now).launches)  # the state may have moved on
    prep: dict[str, list[Operation]] = defaultdict(list)
    by_agent = _records(w, ctx, answer, allowed, prep, now)
    for agent_id, infos in ctx.relaunched.items():
        by_agent.setdefault(agent_id, []).extend(infos)
    groups = _pod_launches(w, ctx, answer, allowed, now)
    out = [*ctx.destroys]
    for agent_id in {**by_agent, **groups}:
        infos = by_agent.get(agent_id, [])
        launch = (calls.launch_operation(infos),) if infos else ()
        out.append(AgentLaunch(agent_id, (*prep.get(agent_id, []), *launch,
                                          *groups.get(agent_id, []))))
        w.launched += len(infos) + len(groups.get(agent_id, []))
    _record_stats(w, ctx, answer, now)
    return out


def _problem(w: ServicesWorkload, ctx: Context, launches: dict[str, int]) -> Problem:
    state = w.state
    fixed = {p for app in ctx.apps.values() for p in app.host_ports_requested if p}
    fixed |= {p for pod in ctx.pods.values() for p in pod.host_ports_requested() if p}
    agents = placement_agents(ctx.groups.values(), fixed)
    live = set(state.tasks)
    tasks, running = [], []
    for app_id, app in ctx.apps.items():
        # a new resident instance reserves its disk and its volumes' from the offer
        disk = reservation_amounts(app).get("disk", 0.0) if is_resident(app) else app.disk
        demand = {k: v for k, v in (("cpus", app.cpus), ("mem", app.mem),
                                     ("disk", disk), ("gpus", float(app.gpus))) if v}
        requested = app.host_ports_requested
        demand.update({fixed_port_resource(p): 1.0 for p in requested if p})
        count = new_slots(app, launches.get(app_id, 0), state.reservations, live)
        if count and is_resident(app) and w.reservation_role() is None:
            count = 0
        for i in range(count):
            slot = f"{app_id}#{i}"
            ctx.slots[slot] = app_id
            tasks.append(Task(slot, demand, ports=requested.count(0), group=app_id,
                              constraints=tuple(tuple(c) for c in app.constraints)))
        running += [Running(app_id, t.agent_id, t.attributes or {"hostname": t.hostname})
                    for t in state.app_tasks(app_id) if t.kill_requested_at is None]
    for pod_id, pod in ctx.pods.items():
        for i in range(launches.get(pod_id, 0)):
            slot = f"{pod_id}#{i}"
            ctx.slots[slot] = pod_id
            tasks.append(pod_launch.placement_task(pod, slot))
        running += pod_launch.running_instances(pod, state.app_tasks(pod_id))
    s = w.settings
    return Problem(agents, tasks, running, objective=s.objective, time_limit_s=s.time_limit_s,
                   workers=s.workers)


def _relaunch(w: ServicesWorkload, groups: dict[str, AgentOffers], apps: dict[str, App],
              launches: dict[str, int], now: float) -> dict[str, list[TaskInfo]]:
    """Instances with a free reservation whose agent offers it back (reserved
    resources and volumes): a task on it, taken out of the group's resources."""
    out: dict[str, list[TaskInfo]] = defaultdict(list)
    if not any(is_resident(app) and launches.get(app_id, 0) > 0
               for app_id, app in apps.items()):
        return out
    role = w.reservation_role()  # logs once why resident apps wait in role '*'
    if role is None:
        return out
    live = set(w.state.tasks)
    for app_id, app in apps.items():
        if not is_resident(app) or launches.get(app_id, 0) <= 0:
            continue
        for r in free_reservations(w.state.reservations, live, app_id)[:launches[app_id]]:
            group = groups.get(r.agent_id)
            if group is None or not r.resources:
                continue
            made = _relaunch_one(w, app, r, group, role, now)
            if made is not None:
                out[r.agent_id].append(made)
    return out


def _relaunch_one(w: ServicesWorkload, app: App, r: Reservation, group: AgentOffers,
                  role: str, now: float) -> TaskInfo | None:
    state = w.state
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
    spec = linked_spec(task_spec(app, ports, r), app, state, w.settings.lb_address)
    info = build_task(spec, task_id, r.agent_id, ports)
    resources, extra = resident_resources(app, r, role, w.principal, info.resources)
    taken = Resources(scalars=dict(r.resources))
    if not group.reserved.contains(taken) or not group.resources.contains(extra):
        return None
    port_res = Resources(ranges={"ports": [(p, p) for p in ports]}) if ports else Resources()
    group.resources = group.resources - extra - port_res
    group.reserved = group.reserved - taken
    for v in wanted:
        group.volumes.pop(v, None)
    record = _record(app, task_id, r.agent_id, group, ports, now)
    state.put_task(record)
    record.local_volumes = volume_ops.bind(state, app, r, task_id)
    info.resources = resources
    return info


def _records(w: ServicesWorkload, ctx: Context, answer: Placement, allowed: dict[str, int],
             prep: dict[str, list[Operation]], now: float) -> dict[str, list[TaskInfo]]:
    """Task records (added to the state) and their TaskInfos, per agent."""
    state = w.state
    by_agent: dict[str, list[TaskInfo]] = defaultdict(list)
    for slot, agent_id in sorted(answer.assignments.items()):
        app_id = ctx.slots[slot]
        if app_id in ctx.pods:
            continue  # _pod_launches
        app = state.apps.get(app_id)
        if (app is None or allowed.get(app_id, 0) <= 0
                or app.version != ctx.apps[app_id].version):
            continue
        allowed[app_id] -= 1
        group = ctx.groups[agent_id]
        ports = assign_ports(app.host_ports_requested, answer.ports.get(slot, []))
        task_id = new_task_id(app_id)
        record = _record(app, task_id, agent_id, group, ports, now)
        state.put_task(record)
        reservation = None
        if is_resident(app):
            reservation = new_reservation(app_id, agent_id, group.hostname, now,
                                          group.attributes)
            role = w.reservation_role() or "*"
            reservation.role, reservation.resources = role, reservation_amounts(app)
            record.local_volumes = volume_ops.bind(state, app, reservation, task_id)
            prep[agent_id].extend(reserve_operations(app, reservation, role, w.principal))
        spec = linked_spec(task_spec(app, ports, reservation), app, state, w.settings.lb_address)
        info = build_task(spec, task_id, agent_id, ports)
        if reservation is not None:
            info.resources, _ = resident_resources(app, reservation, reservation.role or "*",
                                                   w.principal, info.resources)
        by_agent[agent_id].append(info)
    return by_agent


def _pod_launches(w: ServicesWorkload, ctx: Context, answer: Placement,
                  allowed: dict[str, int], now: float) -> dict[str, list[Operation]]:
    """Each placed pod instance: its record (stored first) and its LAUNCH_GROUP."""
    out: dict[str, list[Operation]] = defaultdict(list)
    for slot, agent_id in sorted(answer.assignments.items()):
        pod_id = ctx.slots[slot]
        pod = w.state.pods.get(pod_id)
        if (pod_id not in ctx.pods or pod is None or allowed.get(pod_id, 0) <= 0
                or pod.version != ctx.pods[pod_id].version):
            continue
        allowed[pod_id] -= 1
        ports = assign_ports(pod.host_ports_requested(), answer.ports.get(slot, []))
        instance_id = pod_launch.new_instance_id(pod_id)
        w.state.put_task(pod_launch.instance_record(pod, instance_id, ctx.groups[agent_id],
                                                    ports, now))
        out[agent_id].append(pod_launch.launch_group(pod, instance_id, agent_id, ports))
    return out


def _record(app: App, task_id: str, agent_id: str, group: AgentOffers, ports: list[int],
            now: float) -> TaskRecord:
    assert app.version is not None
    return TaskRecord(
        id=task_id, app_id=app.id, version=app.version, config_version=app.config_version,
        agent_id=agent_id, hostname=group.hostname, staged_at=now, address=group.address,
        attributes=dict(group.attributes), ports=ports, service_ports=service_ports(app))


def _record_stats(w: ServicesWorkload, ctx: Context, answer: Placement, now: float) -> None:
    used_by_app: dict[str, set[str]] = defaultdict(set)
    for slot, agent_id in answer.assignments.items():
        used_by_app[ctx.slots[slot]].add(agent_id)
    for app_id in [*ctx.apps, *ctx.pods]:
        unplaced = [s for s in answer.unplaced if ctx.slots.get(s) == app_id]
        why = [answer.why.get(s, ()) for s in unplaced]
        message = answer.unplaced[unplaced[0]] if unplaced else None
        w.queue.record(app_id, len(ctx.groups), len(used_by_app[app_id]), now, why, message)
