"""Runs, steps and attempts: the records the reconciler reads and the store keeps.

A *run* is one execution of a job (its spec is snapshotted at start, so editing the
job never changes a run in flight).  Each step of the run has ``completions`` tasks
(indices ``0..n-1``); each launch of a task is an *attempt* with its own id, which is
also its Mesos task id: ``<run id>.<step>.<index>.<number>``.  An attempt is written to
the store in state LAUNCHING before the ACCEPT that launches it is sent, so after a
crash the framework knows every attempt that may be running and never reuses an id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from frameworks.batch.model import JobSpec, parse_job


class AttemptState(StrEnum):
    LAUNCHING = "LAUNCHING"  # recorded; the ACCEPT may or may not have reached the master
    STAGING = "STAGING"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    KILLING = "KILLING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"
    ERROR = "ERROR"
    LOST = "LOST"  # never ran, or its agent was lost: does not count as a failure

    @property
    def active(self) -> bool:
        return self in ACTIVE_ATTEMPT


ACTIVE_ATTEMPT = frozenset({AttemptState.LAUNCHING, AttemptState.STAGING, AttemptState.STARTING,
                            AttemptState.RUNNING, AttemptState.KILLING})


class StepState(StrEnum):
    WAITING = "WAITING"  # dependencies not done yet
    RUNNING = "RUNNING"  # may launch tasks (some may still wait for resources)
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self not in (StepState.WAITING, StepState.RUNNING)


class RunState(StrEnum):
    ACTIVE = "ACTIVE"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        return self != RunState.ACTIVE


@dataclass
class Attempt:
    """One launch of one task.  ``counts``: a terminal attempt that uses up a retry."""

    id: str
    run_id: str
    step: str
    index: int
    number: int
    state: AttemptState
    created_at: float
    agent_id: str | None = None
    hostname: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""
    kill_reason: str | None = None
    kill_sent_at: float | None = None
    counts: bool = False
    exit_state: str | None = None  # the Mesos state that ended it

    def to_json(self) -> dict[str, Any]:
        return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Attempt:
        fields = dict(doc)
        fields["state"] = AttemptState(fields["state"])
        return cls(**fields)


def attempt_id(run_id: str, step: str, index: int, number: int) -> str:
    return f"{run_id}.{step}.{index}.{number}"


@dataclass
class StepRecord:
    name: str
    state: StepState = StepState.WAITING
    started_at: float | None = None
    finished_at: float | None = None
    message: str = ""
    reused: bool = False  # taken over from an earlier run by ``rerun --failed-only``

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state.value, "started_at": self.started_at,
                "finished_at": self.finished_at, "message": self.message,
                "reused": self.reused}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> StepRecord:
        return cls(doc["name"], StepState(doc["state"]), doc.get("started_at"),
                   doc.get("finished_at"), doc.get("message", ""), doc.get("reused", False))


@dataclass
class Run:
    """One execution of a job; ``attempts`` by attempt id."""

    id: str
    job_id: str
    spec: JobSpec
    created_at: float
    state: RunState = RunState.ACTIVE
    trigger: str = "manual"
    scheduled_for: float | None = None
    finished_at: float | None = None
    message: str = ""
    cancel_requested: bool = False
    cancel_message: str = ""
    rerun_of: str | None = None
    steps: dict[str, StepRecord] = field(default_factory=dict)
    attempts: dict[str, Attempt] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for step in self.spec.steps:
            self.steps.setdefault(step.name, StepRecord(step.name))

    def to_json(self) -> dict[str, Any]:
        """The run document (attempts are stored separately)."""
        return {"id": self.id, "job_id": self.job_id, "spec": self.spec.to_json(),
                "created_at": self.created_at, "state": self.state.value,
                "trigger": self.trigger, "scheduled_for": self.scheduled_for,
                "finished_at": self.finished_at, "message": self.message,
                "cancel_requested": self.cancel_requested,
                "cancel_message": self.cancel_message, "rerun_of": self.rerun_of,
                "steps": [s.to_json() for s in self.steps.values()]}

    @classmethod
    def from_json(cls, doc: dict[str, Any], attempts: Iterable[Attempt] = ()) -> Run:
        run = cls(doc["id"], doc["job_id"], parse_job(doc["spec"]), doc["created_at"],
                  RunState(doc["state"]), doc.get("trigger", "manual"),
                  doc.get("scheduled_for"), doc.get("finished_at"), doc.get("message", ""),
                  doc.get("cancel_requested", False), doc.get("cancel_message", ""),
                  doc.get("rerun_of"),
                  {s["name"]: StepRecord.from_json(s) for s in doc.get("steps", [])})
        run.attempts = {a.id: a for a in attempts}
        return run

    def active_attempts(self) -> list[Attempt]:
        return [a for a in self.attempts.values() if a.state.active]
