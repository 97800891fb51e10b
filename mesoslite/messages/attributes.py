"""Agent attributes in one form: the text the operator wrote.

An agent started with ``--attributes 'rack:01;gen:3'`` holds ``{"rack": "01", "gen":
"3"}``, and that text is what the master stores, shows in ``/master/state`` and what
placement constraints (``rack:IS:01``, ``rack:LIKE:0.*``) compare.  Mesos types
attribute values (SCALAR, RANGES, SET, TEXT) in offers and on the operator API, so
the text is typed at that edge by ``mesos_attributes`` and turned back into text by
``attribute_text``, and the round trip must give back what was written:

* a value is sent as SCALAR only when it is a finite number whose canonical text
  (``scalar_text``) is exactly the written text: ``3`` and ``2.5`` are SCALAR;
  ``01``, ``1.50``, ``+1``, ``1e3``, ``1_000``, ``-0``, ``nan`` stay TEXT (reading
  them as numbers would turn ``01`` into ``1`` and ``rack:IS:01`` would never match);
* every other value is TEXT (RANGES and SET are never produced here; those from a
  Mesos master are printed as ``[1-4,6-9]`` and ``{a,b}``, as Marathon prints them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from mesoslite.messages.mesos import Attribute, Scalar, Text, ValueType


def scalar_text(value: float) -> str:
    """The canonical text of a SCALAR value: ``3.0`` -> ``3``, ``2.5`` -> ``2.5``."""
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


def _scalar(text: str) -> float | None:
    """The number ``text`` spells canonically, else None (see the module docstring)."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or scalar_text(value) != text:
        return None
    return value


def mesos_attribute(name: str, text: str) -> Attribute:
    """One attribute as Mesos types it; ``attribute_text`` of it is ``text`` again."""
    value = _scalar(text)
    if value is not None:
        return Attribute(name=name, type=ValueType.SCALAR, scalar=Scalar(value=value))
    return Attribute(name=name, type=ValueType.TEXT, text=Text(value=text))


def mesos_attributes(attributes: Mapping[str, str]) -> list[Attribute]:
    """An agent's attributes (name -> text) as Mesos attributes, sorted by name."""
    return [mesos_attribute(name, text) for name, text in sorted(attributes.items())]


def attribute_text(attribute: Attribute) -> str:
    """The text form constraints compare (the inverse of ``mesos_attribute``)."""
    if attribute.type == ValueType.SCALAR and attribute.scalar is not None:
        return scalar_text(attribute.scalar.value)
    if attribute.type == ValueType.RANGES and attribute.ranges is not None:
        return "[" + ",".join(f"{r.begin}-{r.end}" for r in attribute.ranges.range) + "]"
    if attribute.type == ValueType.SET and attribute.set is not None:
        return "{" + ",".join(sorted(attribute.set.item)) + "}"
    return attribute.text.value if attribute.text is not None else ""


def attributes_text(attributes: Iterable[Attribute]) -> dict[str, str]:
    """Mesos attributes as name -> text (``attribute_text``)."""
    return {a.name: attribute_text(a) for a in attributes}
