"""Typed input and output of the placement engine.

Every value here is validated on construction, so a ``Problem`` that exists is a
problem the engine can solve.  Validation errors are ``PlacementInputError`` whose
``field`` names the offending field the way the JSON instance spells it
(``tasks[3].constraints[0][2]``), so the CLI can print one precise line.

Units follow Mesos: ``cpus`` in cores, ``mem`` and ``disk`` in MB, every scalar kept
to three decimals.  A task asks for a *count* of ports; an agent offers port
*ranges*; the engine hands out concrete port numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesoslite.messages.attributes import scalar_text
from mesoslite.resources import Resources

Range = tuple[int, int]

OPERATORS = ("UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS")
OBJECTIVES = ("binpack", "spread")
# Scalars are compared in thousandths, Mesos' fixed-point precision.
SCALE = 1000


class PlacementInputError(ValueError):
    """An invalid problem.  ``field`` names the offending field, e.g. ``agents[2].id``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message

    def within(self, prefix: str) -> PlacementInputError:
        """The same error with ``prefix`` prepended to its field."""
        if not self.field:
            return PlacementInputError(prefix, self.message)
        sep = "" if self.field.startswith("[") else "."
        return PlacementInputError(f"{prefix}{sep}{self.field}", self.message)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar(value: Any, where: str) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise PlacementInputError(where, "must be a finite number >= 0")
    return round(float(value) * SCALE) / SCALE


def _count(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PlacementInputError(where, f"must be an integer >= {minimum}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PlacementInputError(where, "must be a non-empty string")
    return value


def _attr_value(value: Any, where: str) -> str:
    # Mesos attributes are text, scalars or ranges; constraints compare text, and a
    # number reads as the text a SCALAR offer attribute reads as (3.0 -> "3").
    if isinstance(value, str):
        return value
    if _is_number(value):
        return str(value) if isinstance(value, int) else scalar_text(value)
    raise PlacementInputError(where, "must be a string or a number")


def _attributes(data: Any, where: str) -> dict[str, str]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise PlacementInputError(where, "must be an object of attribute name to value")
    out = {}
    for key, value in data.items():
        _name(key, f"{where}.{key}")
        out[key] = _attr_value(value, f"{where}.{key}")
    return out


def _ports(ranges: Any, where: str) -> tuple[Range, ...]:
    if not isinstance(ranges, (list, tuple)):
        raise PlacementInputError(where, "must be a list of [begin, end] pairs")
    pairs = []
    for i, pair in enumerate(ranges):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise PlacementInputError(f"{where}[{i}]", "must be a [begin, end] pair")
        begin = _count(pair[0], f"{where}[{i}][0]")
        end = _count(pair[1], f"{where}[{i}][1]")
        if end < begin or end > 65535:
            raise PlacementInputError(f"{where}[{i}]", "needs begin <= end <= 65535")
        pairs.append((begin, end))
    merged: list[list[int]] = []
    for begin, end in sorted(pairs):
        if merged and begin <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return tuple((b, e) for b, e in merged)


@dataclass(frozen=True)
class Constraint:
    """A Marathon constraint ``[field, operator, value?]`` among tasks of one group.

    ``field`` is ``hostname`` or any agent attribute.  Operators: ``UNIQUE``,
    ``CLUSTER [value]``, ``GROUP_BY [min groups]``, ``LIKE regex``, ``UNLIKE regex``,
    ``MAX_PER n``, ``IS value``.  Regexes must match the whole attribute value.
    """

    field: str
    operator: str
    value: str | None = None

    def __post_init__(self) -> None:
        _name(self.field, "[0]")
        op = self.operator.upper() if isinstance(self.operator, str) else self.operator
        if op not in OPERATORS:
            raise PlacementInputError("[1]", f"unknown operator {self.operator!r}")
        object.__setattr__(self, "operator", op)
        value = self.value
        if value is not None and not isinstance(value, str):
            value = _attr_value(value, "[2]")
        if value == "" and op in ("UNIQUE", "CLUSTER", "GROUP_BY"):
            value = None
        object.__setattr__(self, "value", value)
        self._check_value()

    def _check_value(self) -> None:
        op, value = self.operator, self.value
        if op == "UNIQUE" and value is not None:
            raise PlacementInputError("[2]", "UNIQUE takes no value")
        if op in ("LIKE", "UNLIKE", "MAX_PER", "IS") and value is None:
            raise PlacementInputError("[2]", f"{op} needs a value")
        if op in ("MAX_PER", "GROUP_BY") and value is not None and (
            not re.fullmatch(r"[0-9]+", value) or int(value) < 1
        ):
            raise PlacementInputError("[2]", f"{op} needs a positive integer")
        if op in ("LIKE", "UNLIKE"):
            try:
                re.compile(value or "")
            except re.error as exc:
                raise PlacementInputError("[2]", f"invalid regex: {exc}") from None

    @classmethod
    def of(cls, raw: Constraint | Sequence[Any]) -> Constraint:
        """From a Marathon tuple such as ``["rack", "MAX_PER", "2"]``."""
        if isinstance(raw, Constraint):
            return raw
        if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
            raise PlacementInputError("", "must be a list [field, operator, value?]")
        if len(raw) not in (2, 3):
            raise PlacementInputError("", "must have 2 or 3 items: [field, operator, value?]")
        if not isinstance(raw[1], str):
            raise PlacementInputError("[1]", "must be a string")
        return cls(raw[0], raw[1], raw[2] if len(raw) == 3 else None)

    @property
    def number(self) -> int:
        """The integer value of ``MAX_PER`` / ``GROUP_BY`` (``GROUP_BY`` defaults to 1)."""
        return int(self.value) if self.value is not None else 1

    def matches(self, attribute: str) -> bool:
        """For LIKE / UNLIKE: does the whole attribute value match the regex?"""
        return re.fullmatch(self.value or "", attribute) is not None

    def to_list(self) -> list[str]:
        return [self.field, self.operator] + ([self.value] if self.value is not None else [])

    def __str__(self) -> str:
        return " ".join(self.to_list())


@dataclass(frozen=True)
class Agent:
    """An agent's *available* resources and its attributes.

    ``resources`` maps scalar names (``cpus``, ``mem``, ``disk``, ``gpus``, any other)
    to amounts; ``ports`` are inclusive ranges.  ``hostname`` defaults to ``id``.
    """

    id: str
    resources: Mapping[str, float] = field(default_factory=dict)
    ports: tuple[Range, ...] = ()
    attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _name(self.id, "id")
        if not isinstance(self.resources, Mapping):
            raise PlacementInputError("resources", "must be an object")
        scalars = {
            _name(k, f"resources.{k}"): _scalar(v, f"resources.{k}")
            for k, v in self.resources.items()
        }
        object.__setattr__(self, "resources", scalars)
        object.__setattr__(self, "ports", _ports(self.ports, "resources.ports"))
        object.__setattr__(self, "attributes", _attributes(self.attributes, "attributes"))

    @classmethod
    def from_resources(
        cls, id: str, resources: Resources, attributes: Mapping[str, Any] | None = None
    ) -> Agent:
        """Adapter from the cluster's ``Resources`` value (e.g. a Mesos offer).

        Scalars become capacities and ``ports`` ranges become the port pool; other
        range and set resources are not placement dimensions and are ignored.
        """
        return cls(id, dict(resources.scalars), resources.ports(), dict(attributes or {}))

    @property
    def hostname(self) -> str:
        return self.attributes.get("hostname", self.id)

    def attribute(self, name: str) -> str | None:
        """Attribute value used by constraints; ``hostname`` is always present."""
        return self.hostname if name == "hostname" else self.attributes.get(name)

    @property
    def port_count(self) -> int:
        return sum(e - b + 1 for b, e in self.ports)


@dataclass(frozen=True)
class Task:
    """A pending task: scalar demands, a count of ports, its group and constraints.

    Constraints are a property of the group (as in Marathon, where they belong to
    the app): every task of a group must list the same ones.  A task without a
    group is a group of its own.  ``resources`` may also carry ``ports`` as a count.
    """

    id: str
    resources: Mapping[str, float] = field(default_factory=dict)
    ports: int = 0
    group: str | None = None
    constraints: tuple[Constraint, ...] = ()

    def __post_init__(self) -> None:
        _name(self.id, "id")
        if not isinstance(self.resources, Mapping):
            raise PlacementInputError("resources", "must be an object")
        scalars = dict(self.resources)
        ports = self.ports
        if "ports" in scalars:
            ports = _count(scalars.pop("ports"), "resources.ports")
        object.__setattr__(self, "ports", _count(ports, "resources.ports"))
        object.__setattr__(
            self,
            "resources",
            {_name(k, f"resources.{k}"): _scalar(v, f"resources.{k}") for k, v in scalars.items()},
        )
        if self.group is not None:
            _name(self.group, "group")
        if isinstance(self.constraints, (str, bytes)) or not isinstance(
            self.constraints, Iterable
        ):
            raise PlacementInputError("constraints", "must be a list of constraints")
        parsed = []
        for i, raw in enumerate(self.constraints):
            try:
                parsed.append(Constraint.of(raw))
            except PlacementInputError as exc:
                raise exc.within(f"constraints[{i}]") from None
        object.__setattr__(self, "constraints", tuple(parsed))


@dataclass(frozen=True)
class Running:
    """A task of ``group`` already running on agent ``agent``.

    Constraints count it.  Its attribute values are the agent's when the agent is
    in the problem, else ``attributes`` (hostname defaulting to the agent id).
    """

    group: str
    agent: str
    attributes: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        _name(self.group, "group")
        _name(self.agent, "agent")
        if self.attributes is not None:
            object.__setattr__(self, "attributes", _attributes(self.attributes, "attributes"))


@dataclass(frozen=True)
class Problem:
    """One placement question.  See the module docstring for units.

    ``time_limit_s`` bounds the whole answer; ``seed`` fixes the solver's randomness;
    ``workers`` is the number of solver threads (0: one per core).
    """

    agents: tuple[Agent, ...]
    tasks: tuple[Task, ...]
    running: tuple[Running, ...] = ()
    gangs: tuple[tuple[str, ...], ...] = ()
    objective: str = "binpack"
    time_limit_s: float = 1.0
    seed: int = 0
    workers: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "agents", tuple(self.agents))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "running", tuple(self.running))
        object.__setattr__(self, "gangs", tuple(tuple(g) for g in self.gangs))
        if self.objective not in OBJECTIVES:
            raise PlacementInputError("objective", f"must be one of {', '.join(OBJECTIVES)}")
        limit = self.time_limit_s
        if not _is_number(limit) or not math.isfinite(limit) or not 0 < limit <= 3600:
            raise PlacementInputError("time_limit_s", "must be a number in (0, 3600]")
        _count(self.seed, "seed")
        _count(self.workers, "workers")
        self._check_ids()
        self._check_groups()
        self._check_gangs()

    def _check_ids(self) -> None:
        for kind, items in (("agents", self.agents), ("tasks", self.tasks)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.id in seen:
                    raise PlacementInputError(f"{kind}[{i}].id", f"duplicate id {item.id!r}")
                seen.add(item.id)

    def _check_groups(self) -> None:
        first: dict[str, Task] = {}
        for i, task in enumerate(self.tasks):
            if task.group is None:
                continue
            other = first.setdefault(task.group, task)
            if other.constraints != task.constraints:
                raise PlacementInputError(
                    f"tasks[{i}].constraints",
                    f"differ from task {other.id!r} of group {task.group!r}; "
                    "constraints belong to the group",
                )

    def _check_gangs(self) -> None:
        ids = {t.id for t in self.tasks}
        owner: dict[str, int] = {}
        for g, gang in enumerate(self.gangs):
            if not gang:
                raise PlacementInputError(f"gangs[{g}]", "must not be empty")
            for i, task_id in enumerate(gang):
                where = f"gangs[{g}][{i}]"
                if task_id not in ids:
                    raise PlacementInputError(where, f"unknown task {task_id!r}")
                if task_id in owner:
                    raise PlacementInputError(
                        where, f"task {task_id!r} is already in gangs[{owner[task_id]}]"
                    )
                owner[task_id] = g
