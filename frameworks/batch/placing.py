"""From waiting units and held offers to a placement question, and back.

Pure helpers of the scheduler's launch pass:

1. ``waiting`` turns ready units into ``fairshare.Waiting`` entries (demand summed
   over a gang) and ``fair_order`` sorts them;
2. ``admit`` keeps the fair-ordered prefix that the offered resources could hold in
   aggregate (a unit bigger than what is left is passed over, so smaller ones behind
   it still start: backfilling), bounded so the engine's question stays small;
3. ``problem`` builds the placement engine's ``Problem``: one task per attempt,
   one group per (run, step) with the step's constraints, one gang per gang unit;
4. ``task_info_for`` builds the Mesos ``TaskInfo`` of an attempt.

Docker steps may only go to agents that can run Docker: mesoslite's offers name the
agent's containerizers in a ``containerizers`` attribute; with a master that does
not, agents that refused a Docker task (TASK_ERROR) are remembered.  Either way they
are excluded through a constraint on a synthetic attribute.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from frameworks.batch.fairshare import Waiting
from frameworks.batch.model import StepSpec
from frameworks.batch.reconcile import Unit
from frameworks.batch.records import Run, attempt_id
from frameworks.common.secret_refs import volume as secret_volume
from frameworks.common.taskinfo import DockerSpec, TaskSpec, build_task
from mesoslite.messages.mesos import TaskInfo
from mesoslite.placement import Agent, Problem, Running, Task

DOCKER_ATTRIBUTE = "mesoslite_batch_docker"
DOCKER_CONSTRAINT = (DOCKER_ATTRIBUTE, "UNLIKE", "no")
RESOURCE_NAMES = ("cpus", "mem", "disk", "gpus")
MAX_ADMITTED_TASKS = 2000  # a bound on the engine's question per pass


def demand(step: StepSpec) -> dict[str, float]:
    """One task's resources, as scalars."""
    return {"cpus": step.cpus, "mem": step.mem, "disk": step.disk, "gpus": step.gpus}


def unit_demand(step: StepSpec, unit: Unit) -> dict[str, float]:
    n = len(unit.indices)
    return {k: v * n for k, v in demand(step).items() if v > 0}


def waiting(units: Iterable[tuple[Run, Unit]]) -> list[Waiting]:
    """Fair-share entries for ready units; ``payload`` is ``(run, unit)``."""
    out = []
    for run, unit in units:
        step = run.spec.step(unit.step)
        order = [s.name for s in run.spec.steps].index(unit.step)
        out.append(Waiting(unit.key, run.spec.user, run.spec.priority,
                           unit_demand(step, unit),
                           (run.created_at, run.id, order, unit.indices[0]), (run, unit)))
    return out


def admit(ordered: Sequence[Waiting], offered: Mapping[str, float]
          ) -> tuple[list[Waiting], dict[str, str]]:
    """(units the offers could hold in aggregate, in order; why each other unit was
    passed over, by key)."""
    left = dict(offered)
    chosen: list[Waiting] = []
    passed: dict[str, str] = {}
    tasks = 0
    for unit in ordered:
        size = len(unit.payload[1].indices)
        short = [k for k, v in unit.demand.items() if offered.get(k, 0.0) + 1e-9 < v]
        if short:
            what = f"a gang of {size} " if unit.payload[1].gang else ""
            passed[unit.key] = (f"{what}needs {_amounts(unit.demand, short)} in all; the "
                                f"offers held have {_amounts(offered, short)}")
            continue
        if tasks + size > MAX_ADMITTED_TASKS or any(
                left.get(k, 0.0) + 1e-9 < v for k, v in unit.demand.items()):
            passed[unit.key] = ("the offered resources go to units ahead of it in the "
                                "fair order")
            continue
        chosen.append(unit)
        tasks += size
        for k, v in unit.demand.items():
            left[k] = left.get(k, 0.0) - v
    return chosen, passed


def _amounts(values: Mapping[str, float], names: Iterable[str]) -> str:
    return ", ".join(f"{values.get(n, 0.0):g} {n}" for n in names)


@dataclass(frozen=True)
class Question:
    problem: Problem
    task_ids: dict[str, list[str]]  # unit key -> attempt ids (engine task ids)


def problem(units: Sequence[Waiting], agents: Sequence[Agent], no_docker: set[str],
            running: Sequence[tuple[str, str]] = (), time_limit_s: float = 0.2) -> Question:
    """The engine's question for ``units`` (fair order) on the offered ``agents``.

    ``running``: (group, agent id) of active attempts, for steps with constraints.
    Agents without Docker get the synthetic attribute that Docker steps exclude: those
    whose offers' ``containerizers`` attribute lacks docker (mesoslite masters say so)
    and those in ``no_docker`` (learned from refusals, for masters that don't).
    """
    marked = [Agent(a.id, a.resources, a.ports, {**a.attributes, DOCKER_ATTRIBUTE: "no"})
              if a.id in no_docker or _lacks_docker(a) else a for a in agents]
    tasks: list[Task] = []
    gangs: list[tuple[str, ...]] = []
    ids: dict[str, list[str]] = {}
    groups: set[str] = set()
    for entry in units:
        run, unit = entry.payload
        step = run.spec.step(unit.step)
        group = f"{run.id}/{unit.step}"
        groups.add(group)
        constraints = list(step.constraints)
        if step.image:
            constraints.append(DOCKER_CONSTRAINT)
        names = [attempt_id(run.id, unit.step, i, unit.number) for i in unit.indices]
        ids[unit.key] = names
        need = {k: v for k, v in demand(step).items() if v > 0}
        tasks.extend(Task(n, need, group=group, constraints=tuple(constraints)) for n in names)
        if unit.gang:
            gangs.append(tuple(names))
    runs = tuple(Running(g, a) for g, a in running if g in groups)
    return Question(Problem(tuple(marked), tuple(tasks), runs, tuple(gangs),
                            time_limit_s=time_limit_s), ids)


def _lacks_docker(agent: Agent) -> bool:
    kinds = agent.attributes.get("containerizers")
    return kinds is not None and "docker" not in kinds.split(",")


def task_info_for(run: Run, step: StepSpec, index: int, number: int, agent_id: str
                  ) -> TaskInfo:
    """The ``TaskInfo`` of one attempt; its id is the attempt id.

    The task sees ``BATCH_JOB``, ``BATCH_RUN``, ``BATCH_STEP``, ``BATCH_TASK_INDEX``
    (0-based), ``BATCH_COMPLETIONS``, ``BATCH_ATTEMPT`` (1-based) and
    ``BATCH_ATTEMPT_ID`` besides the step's own ``env``.
    """
    aid = attempt_id(run.id, step.name, index, number)
    env = {**step.env, "BATCH_JOB": run.job_id, "BATCH_RUN": run.id, "BATCH_STEP": step.name,
           "BATCH_TASK_INDEX": str(index), "BATCH_COMPLETIONS": str(step.completions),
           "BATCH_ATTEMPT": str(number), "BATCH_ATTEMPT_ID": aid}
    labels = {**run.spec.labels, "batch_job": run.job_id, "batch_run": run.id,
              "batch_step": step.name, "batch_task": str(index), "batch_user": run.spec.user}
    spec = TaskSpec(
        name=f"{run.job_id}.{step.name}[{index}]", cmd=step.command,
        argv=list(step.args) if step.args else None, cpus=step.cpus, mem=step.mem,
        disk=step.disk, gpus=step.gpus, env=env, labels=labels,
        docker=DockerSpec(step.image, network=step.network) if step.image else None,
        kill_grace_s=step.kill_grace,
        secret_env=step.secret_env, uris=[a.to_mesos() for a in step.artifacts],
        volumes=[*(v.to_mesos() for v in step.volumes),
                 *(secret_volume(path, ref) for path, ref in step.secret_files)])
    return build_task(spec, aid, agent_id)


def explain(reason: str) -> str:
    """The engine's reason in the user's terms (the Docker constraint is ours)."""
    return _DOCKER_REASON.sub(lambda m: f"no docker containerizer on {m.group(1)} agent"
                              + ("" if m.group(1) == "1" else "s"), reason)


_DOCKER_REASON = re.compile(rf"UNLIKE {DOCKER_ATTRIBUTE} no excludes (\d+)")


def offered_total(agents: Iterable[Agent]) -> dict[str, float]:
    total: dict[str, float] = {}
    for agent in agents:
        for k, v in agent.resources.items():
            total[k] = total.get(k, 0.0) + v
    return total
