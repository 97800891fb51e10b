"""A framework's offer constraints (``scheduler.OfferConstraints``), compiled and
evaluated against agents (pure).

Semantics (Mesos' offer constraints filter): a role with constraints is offered an
agent only if at least one of its groups holds, a group holding when all its
constraints do.  A constraint selects the agent's first attribute of a name, or a
pseudoattribute (HOSTNAME; REGION and ZONE, which mesoslite agents do not have), and
applies its predicate:

* ``exists`` / ``not_exists``;
* ``text_equals`` / ``text_not_equals`` / ``text_matches`` / ``text_not_matches``: on a
  TEXT attribute (or a string pseudoattribute) compare it; on an attribute of another
  type (SCALAR) they hold whatever the value (Mesos leaves those to the framework);
  a missing attribute fails ``text_equals`` / ``text_matches`` and passes the negated
  two.  Regular expressions must match the whole text.

``compile_constraints`` validates as Mesos does and raises ``ConstraintError`` naming
the field (the master answers 400).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from mesoslite.messages.attributes import mesos_attribute
from mesoslite.messages.mesos import ValueType
from mesoslite.messages.scheduler import (
    AttributeConstraint,
    ConstraintPredicate,
    OfferConstraints,
    PseudoattributeType,
)

MAX_REGEX_LENGTH = 4096  # bounds the cost of compiling and matching a framework's regex


class ConstraintError(ValueError):
    """Invalid offer constraints; the text names the field."""


@dataclass(frozen=True)
class AgentFacts:
    """What constraints look at: the agent's hostname and attributes (name -> the
    text the operator wrote; typed as in offers by ``mesos_attribute``)."""

    hostname: str = ""
    attributes: Mapping[str, str] | None = None


# The selected value: None (absent), (True, text) for TEXT / strings, (False, text)
# for other attribute types.
Selected = tuple[bool, str] | None
Predicate = Callable[[Selected], bool]
Selector = Callable[[AgentFacts], Selected]


@dataclass(frozen=True)
class RoleRule:
    """One role's compiled constraints: any group of all-true constraints."""

    groups: tuple[tuple[tuple[Selector, Predicate], ...], ...]

    def allows(self, agent: AgentFacts) -> bool:
        return any(all(predicate(select(agent)) for select, predicate in group)
                   for group in self.groups)


def compile_constraints(constraints: OfferConstraints | None, roles: Collection[str],
                        path: str) -> dict[str, RoleRule]:
    """Role -> its rule; ``path`` is where the constraints are in the call (for
    errors).  Roles must be among the framework's ``roles``."""
    if constraints is None:
        return {}
    rules: dict[str, RoleRule] = {}
    for role, role_constraints in sorted(constraints.role_constraints.items()):
        where = f"{path}.role_constraints[{role}]"
        if role not in roles:
            raise ConstraintError(f"'{where}': the framework is not subscribed to role "
                                  f"'{role}'")
        if not role_constraints.groups:
            raise ConstraintError(f"'{where}.groups' must not be empty")
        groups = []
        for g, group in enumerate(role_constraints.groups):
            if not group.attribute_constraints:
                raise ConstraintError(
                    f"'{where}.groups[{g}].attribute_constraints' must not be empty")
            groups.append(tuple(
                _compile(c, f"{where}.groups[{g}].attribute_constraints[{i}]")
                for i, c in enumerate(group.attribute_constraints)))
        rules[role] = RoleRule(tuple(groups))
    return rules


def _compile(constraint: AttributeConstraint, where: str) -> tuple[Selector, Predicate]:
    return _selector(constraint, where), _predicate(constraint.predicate, where)


def _selector(constraint: AttributeConstraint, where: str) -> Selector:
    selector = constraint.selector
    name, pseudo = selector.attribute_name, selector.pseudoattribute_type
    if (name is None) == (pseudo is None):
        raise ConstraintError(f"'{where}.selector': exactly one of 'attribute_name' and "
                              "'pseudoattribute_type' must be set")
    if name is not None:
        return lambda agent: _attribute(agent, name)
    if pseudo == PseudoattributeType.HOSTNAME:
        return lambda agent: (True, agent.hostname)
    if pseudo in (PseudoattributeType.REGION, PseudoattributeType.ZONE):
        return lambda agent: None  # mesoslite agents have no fault domain
    raise ConstraintError(f"'{where}.selector.pseudoattribute_type': unknown pseudoattribute")


def _attribute(agent: AgentFacts, name: str) -> Selected:
    text = (agent.attributes or {}).get(name)
    if text is None:
        return None
    return mesos_attribute(name, text).type == ValueType.TEXT, text


def _predicate(predicate: ConstraintPredicate, where: str) -> Predicate:
    kinds = [k for k in ("exists", "not_exists", "text_equals", "text_not_equals",
                         "text_matches", "text_not_matches")
             if getattr(predicate, k) is not None]
    if len(kinds) != 1:
        raise ConstraintError(f"'{where}.predicate': exactly one predicate must be set")
    kind = kinds[0]
    if kind == "exists":
        return lambda value: value is not None
    if kind == "not_exists":
        return lambda value: value is None
    if kind in ("text_equals", "text_not_equals"):
        wanted = getattr(predicate, kind).value
        if kind == "text_equals":
            return lambda value: value is not None and (not value[0] or value[1] == wanted)
        return lambda value: value is None or not value[0] or value[1] != wanted
    regex = getattr(predicate, kind).regex
    pattern = _regex(regex, f"{where}.predicate.{kind}.regex")
    if kind == "text_matches":
        return lambda value: value is not None and (
            not value[0] or pattern.fullmatch(value[1]) is not None)
    return lambda value: value is None or not value[0] or pattern.fullmatch(value[1]) is None


def _regex(regex: str, where: str) -> re.Pattern[str]:
    if len(regex) > MAX_REGEX_LENGTH:
        raise ConstraintError(f"'{where}': longer than {MAX_REGEX_LENGTH} characters")
    try:
        return re.compile(regex)
    except re.error as exc:
        raise ConstraintError(f"'{where}': invalid regular expression: {exc}") from None
