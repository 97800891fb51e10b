"""Deployments over several apps (one per group change), as Marathon's deployment
plans: ordered steps of actions, announced step by step.  Pure state changes.

A group change starts one per-app deployment for every app it creates, changes or
removes (the reconciler carries those out as for ``/v2/apps``) and ties them together
in a ``GroupPlan`` (``groups.py``): the plan is what ``/v2/deployments`` lists and what
the events name.  Its steps: the stops first, then the other apps in dependency
layers (what an app depends on comes in an earlier step).  The order is enforced
by the reconciler (an app launches only once its dependencies are ready); the plan
reports it: when every app of the current step has finished, ``deployment_step_success``
and the next step's ``deployment_info``; after the last one, ``deployment_success``.
If one app's deployment fails (cancelled, forced over, timed out), the plan fails
(``deployment_step_failure``, ``deployment_failed``) and the others carry on alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from frameworks.services.deployments import Deployment
from frameworks.services.groups import GroupPlan, PlanAction, dependency_levels
from frameworks.services.state import NotFound, ServicesState

ACTIONS = {"start": "ScaleApplication", "scale": "ScaleApplication",
           "upgrade": "RestartApplication", "restart": "RestartApplication",
           "rollback": "RestartApplication", "stop": "StopApplication"}


def plan_steps(deployments: Sequence[Deployment], edges: Mapping[str, set[str]]
               ) -> list[list[PlanAction]]:
    """Stops first, then the rest in dependency layers (``groups.dependency_levels``)."""
    action = {d.app_id: ACTIONS[d.kind] for d in deployments}
    stops = sorted(a for a, name in action.items() if name == "StopApplication")
    others = [a for a in action if a not in stops]
    steps = [[PlanAction("StopApplication", a) for a in stops]] if stops else []
    for layer in dependency_levels(others, edges):
        steps.append([PlanAction(action[a], a) for a in layer])
    return steps


def start_plan(state: ServicesState, plan_id: str, group_id: str, version: str,
               deployments: Sequence[Deployment], edges: Mapping[str, set[str]],
               now: float) -> GroupPlan:
    """Tie ``deployments`` (started with ``plan_id``) into one plan.  A change that
    moves no app is a plan without steps: it succeeds at once, as in Marathon."""
    plan = GroupPlan(id=plan_id, group_id=group_id, version=version, started_at=now,
                     steps=plan_steps(deployments, edges),
                     members={d.id: d.app_id for d in deployments})
    if not plan.steps:
        state.emit("deployment_success", {"id": plan.id, "plan": plan_event_json(plan)}, now)
        return plan
    state.put_plan(plan)
    state.emit("deployment_info", {"plan": plan_event_json(plan),
                                   "currentStep": step_json(plan, 0)}, now)
    return plan


def member_ended(state: ServicesState, d: Deployment, now: float, ok: bool,
                 reason: str = "") -> None:
    """One app's deployment of a plan finished (``ok``) or failed."""
    plan = state.plans.get(d.plan_id or "")
    if plan is None:
        return
    plan.members.pop(d.id, None)
    if not ok:
        _fail(state, plan, now, reason)
        return
    remaining = set(plan.members.values())
    while plan.step < len(plan.steps) and not {a.app for a in plan.steps[plan.step]} & remaining:
        state.emit("deployment_step_success", {"plan": plan_event_json(plan),
                                               "currentStep": step_json(plan, plan.step)}, now)
        plan.step += 1
        if plan.step < len(plan.steps):
            state.emit("deployment_info", {"plan": plan_event_json(plan),
                                           "currentStep": step_json(plan, plan.step)}, now)
    if plan.members:
        state.put_plan(plan)
        return
    state.drop_plan(plan.id)
    state.emit("deployment_success", {"id": plan.id, "plan": plan_event_json(plan)}, now)


def _fail(state: ServicesState, plan: GroupPlan, now: float, reason: str) -> None:
    """The plan ends failed; its other apps' deployments go on as their own."""
    state.drop_plan(plan.id)
    step = min(plan.step, len(plan.steps) - 1)
    state.emit("deployment_step_failure", {"plan": plan_event_json(plan),
                                           "currentStep": step_json(plan, step)}, now)
    state.emit("deployment_failed", {"id": plan.id, "plan": plan_event_json(plan),
                                     "reason": reason}, now)
    for member_id in plan.members:
        member = state.deployments.get(member_id)
        if member is not None:
            member.plan_id = None
            state.put_deployment(member)


def cancel_plan(state: ServicesState, plan_id: str, now: float, reason: str
                ) -> list[Deployment]:
    """DELETE /v2/deployments/{plan}: the plan ends failed; returns the deployments
    of its apps still running (the caller cancels them, or rolls them back)."""
    plan = state.plans.get(plan_id)
    if plan is None:
        raise NotFound(f"DeploymentPlan {plan_id} does not exist")
    members = [state.deployments[m] for m in plan.members if m in state.deployments]
    plan.members = {}  # ended here: the members' own ends must not touch it
    _fail(state, plan, now, reason)
    return members


def holding(state: ServicesState, d: Deployment) -> str:
    """The id a client knows ``d`` by: its plan's, or its own."""
    return d.plan_id if d.plan_id in state.plans else d.id  # type: ignore[return-value]


# ---------------------------------------------------------------- JSON


def step_json(plan: GroupPlan, index: int) -> dict[str, Any]:
    return {"actions": [{"action": a.action, "app": a.app} for a in plan.steps[index]]}


def plan_event_json(plan: GroupPlan) -> dict[str, Any]:
    """The ``plan`` of deployment events (as ``operations.plan_json``)."""
    stub = {"id": plan.group_id, "apps": [], "groups": [], "dependencies": [],
            "version": plan.version}
    return {"id": plan.id, "version": plan.version,
            "steps": [step_json(plan, i) for i in range(len(plan.steps))],
            "original": dict(stub), "target": dict(stub)}


def plan_deployment_json(plan: GroupPlan, ready: Mapping[str, list[dict[str, Any]]]
                         ) -> dict[str, Any]:
    """Marathon's ``GET /v2/deployments`` item for a plan (``ready``: app id -> its
    tasks' readiness check results)."""
    current = min(plan.step, len(plan.steps) - 1)
    return {
        "id": plan.id,
        "version": plan.version,
        "affectedApps": sorted({a.app for step in plan.steps for a in step}),
        "affectedPods": [],
        "steps": [step_json(plan, i) for i in range(len(plan.steps))],
        "currentActions": [{"action": a.action, "app": a.app,
                            "readinessCheckResults": ready.get(a.app, [])}
                           for a in plan.steps[current]],
        "currentStep": current + 1,
        "totalSteps": len(plan.steps),
    }
