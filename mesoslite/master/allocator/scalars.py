"""Scalar quantities for shares: integer thousandths, so sums stay exact.

Mesos keeps scalars to three decimals; holding them as integer thousandths makes every
sum exact and every equal ratio compare equal, which DRF's tie-breaking relies on.
"""

from __future__ import annotations

from collections.abc import Mapping

_SCALE = 1000.0  # Mesos' fixed-point precision: three decimals.


def to_milli(scalars: Mapping[str, float]) -> dict[str, int]:
    """Scalars as integer thousandths: sums stay exact and equal ratios compare equal."""
    return {name: round(value * _SCALE) for name, value in scalars.items() if value}


def add_milli(into: dict[str, int], milli: Mapping[str, int]) -> None:
    for name, value in milli.items():
        into[name] = into.get(name, 0) + value


def sub_milli(into: dict[str, int], milli: Mapping[str, int]) -> dict[str, int]:
    """``into -= milli`` saturating at zero; returns what was actually removed."""
    removed: dict[str, int] = {}
    for name, value in milli.items():
        have = into.get(name)
        if have is None:
            continue
        if have > value:
            into[name] = have - value
            removed[name] = value
        else:
            del into[name]
            removed[name] = have
    return removed


def dominant_share(alloc: Mapping[str, float], total: Mapping[str, float]) -> float:
    """max over scalar kinds of allocated / total; kinds the cluster lacks are ignored."""
    share = 0.0
    for name, value in alloc.items():
        t = total.get(name)
        if t:
            share = max(share, value / t)
    return share


def from_milli(milli: Mapping[str, int]) -> dict[str, float]:
    return {name: value / _SCALE for name, value in milli.items()}
