"""Quota: guarantees and limits per top-level role, and one round's arithmetic of them.

A role's quota (Mesos' ``QuotaConfig``) names scalar quantities: *guarantees* the
allocator tries to give the role before anyone's fair share, and *limits* it never
offers the role beyond.  Both apply to the role with its sub-roles; as in Mesos, only
top-level roles (and ``*``) may have quota.  A role's *consumption* is what it and its
sub-roles hold: allocated to tasks and outstanding in offers (Mesos also charges
unallocated reservations; here they count once offered or used).

``QuotaRound`` holds one allocation round's view, in integer thousandths
(``scalars.py``), and answers two questions the round asks per agent:

* ``guarantee_offer``: what of an agent to offer a role still below its guarantees
  (stage 1): the guaranteed kinds cut to what is missing, plus the other kinds within
  its limits and the surplus headroom, plus the agent's non-scalar resources;
* ``fair_offer``: what to offer in the fair share (stage 2): everything, with scalars
  cut to the role's limits and, while guarantees are unmet, to the surplus headroom:
  the unallocated resources beyond those the unmet guarantees still need (Mesos'
  "required headroom", held back from everyone).

Cutting never leaves an offer too small to launch on: a role with less than 0.01
cpus or 32 MB of memory left under its limits is *capped* (Mesos' default minimum
allocatable resources) and gets no unreserved offers for the rest of the round, and
the fair stage stops when the surplus headroom falls below that minimum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from mesoslite.master.allocator.records import ClientKey, check_role
from mesoslite.master.allocator.scalars import add_milli, to_milli
from mesoslite.resources import Resources

# Mesos' default --min_allocatable_resources ("cpus:0.01|mem:32"), in thousandths.
MIN_ALLOCATABLE = {"cpus": 10, "mem": 32_000}
_MAX_VALUE = 1e12  # Mesos refuses quota values above a trillion (an exabyte of MB)


@dataclass(frozen=True)
class Quota:
    """A role's guarantees and limits (scalar name -> quantity); empty: none."""

    guarantees: Mapping[str, float] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.guarantees or self.limits)


def check_quota(role: str, guarantees: Mapping[str, float],
                limits: Mapping[str, float]) -> Quota:
    """A valid ``Quota`` for ``role``, or ``ValueError`` naming the role and resource.

    The role is top-level (no ``/``); each quantity a finite number >= 0; every
    guaranteed kind that has a limit is guaranteed no more than that limit."""
    check_role(role)
    if "/" in role:
        raise ValueError(f"quota on the nested role {role!r} is not supported "
                         "(set it on the top-level role)")
    checked: list[dict[str, float]] = []
    for what, values in (("guarantee", guarantees), ("limit", limits)):
        out = {}
        for name, value in values.items():
            number = float(value)
            if not math.isfinite(number) or number < 0 or number > _MAX_VALUE:
                raise ValueError(f"role {role!r}: {what} of {name!r} must be a finite "
                                 f"number between 0 and {_MAX_VALUE:.0e}, got {value}")
            out[name] = round(number, 3)
        checked.append(out)
    wanted, cap = checked
    for name, value in wanted.items():
        if name in cap and value > cap[name]:
            raise ValueError(f"role {role!r}: the guarantee of {name!r} ({value:g}) is "
                             f"more than its limit ({cap[name]:g})")
    return Quota(wanted, cap)


def top_role(role: str) -> str:
    """The top-level role whose quota ``role`` falls under."""
    cut = role.find("/")
    return role if cut < 0 else role[:cut]


class _RoleBook:
    """One quota role in one round: its quota in thousandths and live consumption."""

    __slots__ = (
        "cap_at",
        "consumed",
        "deficit",
        "guarantees",
        "limits",
        "mask",
        "role",
        "roomy_at",
    )

    def __init__(self, role: str, quota: Quota, consumed: dict[str, int], n: int,
                 biggest: Mapping[str, int]) -> None:
        self.role = role
        self.guarantees = to_milli(quota.guarantees)
        self.limits = {k: round(v * 1000) for k, v in quota.limits.items()}
        self.consumed = consumed  # live: the sorter updates it as the role receives
        self.mask = np.zeros(n, bool)  # this role's clients
        self.deficit: dict[str, int] = {}
        self.refresh_deficit()
        # (kind, most it may hold) pairs: above any, the role is capped / offers may be cut
        self.cap_at = [(k, self.limits[k] - least) for k, least in MIN_ALLOCATABLE.items()
                       if k in self.limits]
        self.roomy_at = [(k, cap - biggest.get(k, 0)) for k, cap in self.limits.items()]

    def refresh_deficit(self) -> dict[str, int]:
        """Recompute what the guarantees still miss; returns the change per kind."""
        old, new = self.deficit, {}
        for name, want in self.guarantees.items():
            missing = want - self.consumed.get(name, 0)
            if missing > 0:
                new[name] = missing
        self.deficit = new
        return {k: new.get(k, 0) - old.get(k, 0) for k in old.keys() | new.keys()}

    def room(self) -> dict[str, int]:
        """Per limited kind, what the role may still receive (may be <= 0)."""
        consumed = self.consumed
        return {k: cap - consumed.get(k, 0) for k, cap in self.limits.items()}

    def roomy(self) -> bool:
        """No offer (at most ``biggest`` of each kind) can reach the limits."""
        consumed = self.consumed
        for name, most in self.roomy_at:
            if consumed.get(name, 0) > most:
                return False
        return True

    def capped(self) -> bool:
        """Too little left under the limits for an offer one could launch on."""
        consumed = self.consumed
        for name, most in self.cap_at:
            if consumed.get(name, 0) > most:
                return True
        return False


class QuotaRound:
    """One allocation round's quota books (see the module docstring)."""

    def __init__(self, quotas: Mapping[str, Quota], consumed: Callable[[str], dict[str, int]],
                 keys: list[ClientKey | None], unallocated: Callable[[], dict[str, int]],
                 biggest: Mapping[str, int], ok: np.ndarray) -> None:
        """``consumed(role)``: the role's live consumption in thousandths;
        ``keys``: (framework, role) per client slot; ``unallocated()``: the unreserved
        resources no one holds (asked only while guarantees are unmet); ``biggest``:
        per kind, at least what any one agent may have available; ``ok``: the clients
        that may be offered, which this round clears as roles reach their limits."""
        n = len(keys)
        self.biggest = biggest
        self.ok = ok
        self.books = {role: _RoleBook(role, q, consumed(role), n, biggest)
                      for role, q in quotas.items()}
        self.of_client: list[_RoleBook | None] = [None] * n
        for slot, key in enumerate(keys):
            if key is not None:
                book = self.books.get(top_role(key[1]))
                if book is not None:
                    self.of_client[slot] = book
                    book.mask[slot] = True
        self.closed = False  # set when ``ok`` lost clients (callers re-mask and clear it)
        for book in self.books.values():
            if book.capped():
                self._close(book)
        self.required: dict[str, int] = {}  # what unmet guarantees still need
        self.hungry: np.ndarray | None = None  # clients of roles below their guarantees
        for book in self.books.values():
            add_milli(self.required, book.deficit)
            if book.deficit:
                self.hungry = book.mask.copy() if self.hungry is None else (
                    self.hungry | book.mask)
        if self.hungry is not None and not self.hungry.any():
            self.hungry = None
        self.headroom = unallocated() if self.required else {}
        self.fair_open = True  # stage 2 may give: the surplus headroom is launchable
        self.roomy = True  # no offer can reach into the held-back headroom
        self._check_headroom()

    # -- stage 1 ------------------------------------------------------------------

    def guarantee_offer(self, slot: int, available: Resources) -> Resources | None:
        """What of ``available`` to offer client ``slot`` towards its role's guarantees;
        None: it would get nothing it is missing here."""
        book = self.of_client[slot]
        assert book is not None
        have = to_milli(available.scalars)
        toward = {k: min(v, book.deficit[k]) for k, v in have.items() if k in book.deficit}
        if not toward:
            return None
        rest = {k: v - toward.get(k, 0) for k, v in have.items()}
        return _cut(available, toward, _shrink(rest, self._caps(book, toward)))

    # -- stage 2 ------------------------------------------------------------------

    def fair_offer(self, slot: int, available: Resources) -> Resources | None:
        """What of ``available`` to offer client ``slot`` in the fair share: all of it
        (the same object) unless its role's limits or the held-back headroom cut it;
        None: they cut it to nothing."""
        book = self.of_client[slot]
        if self.roomy and (book is None or book.roomy()):
            return available
        caps = self._caps(book, {})
        have = to_milli(available.scalars)
        if all(have.get(k, 0) <= cap for k, cap in caps.items()):
            return available
        return _cut(available, {}, _shrink(have, caps)) or None

    def _caps(self, book: _RoleBook | None, toward: Mapping[str, int]) -> dict[str, int]:
        """Per kind, the most a role may get beyond ``toward``: its limits' room and
        the surplus headroom."""
        caps: dict[str, int] = {}
        if book is not None:
            for name, room in book.room().items():
                caps[name] = room - toward.get(name, 0)
        for name, need in self.required.items():
            surplus = self.headroom.get(name, 0) - need
            caps[name] = min(caps.get(name, surplus), surplus)
        return caps

    # -- bookkeeping --------------------------------------------------------------

    def given(self, slot: int, milli: Mapping[str, int]) -> None:
        """Client ``slot`` received ``milli`` (thousandths; the sorter counted them)."""
        book = self.of_client[slot]
        if not self.required:
            if book is not None and book.capped():
                self._close(book)
            return
        headroom = self.headroom
        for name in self.required:
            if name in milli:
                headroom[name] = headroom.get(name, 0) - milli[name]
        if book is not None:
            if book.deficit:
                self._refresh(book)
            if book.capped():
                self._close(book)
        self._check_headroom()

    def _close(self, book: _RoleBook) -> None:
        """The role reached its limits: no more unreserved offers this round."""
        self.ok &= ~book.mask
        self.closed = True

    def _refresh(self, book: _RoleBook) -> None:
        """The role received: update its deficit, the required headroom, the hungry."""
        for name, change in book.refresh_deficit().items():
            left = self.required.get(name, 0) + change
            if left > 0:
                self.required[name] = left
            else:
                self.required.pop(name, None)
        if not book.deficit and self.hungry is not None:
            self.hungry &= ~book.mask
            if not self.hungry.any():
                self.hungry = None

    def _check_headroom(self) -> None:
        """Stage 2 closes when the surplus over the required headroom is too small to
        launch on; offers need a closer look once one could reach into it."""
        surplus = {k: self.headroom.get(k, 0) - need for k, need in self.required.items()}
        self.fair_open = all(surplus.get(k, least) >= least
                             for k, least in MIN_ALLOCATABLE.items())
        self.roomy = all(v >= self.biggest.get(k, 0) for k, v in surplus.items())


def _shrink(have: Mapping[str, int], caps: Mapping[str, int]) -> dict[str, int]:
    """``have`` with each capped kind cut to its cap (at least zero)."""
    out = dict(have)
    for name, cap in caps.items():
        if name in out and out[name] > cap:
            out[name] = max(0, cap)
    return out


def _cut(available: Resources, toward: Mapping[str, int], rest: Mapping[str, int]
         ) -> Resources:
    """``available``'s non-scalar resources with the scalars ``toward + rest``."""
    scalars = {k: (toward.get(k, 0) + rest.get(k, 0)) / 1000 for k in available.scalars}
    if scalars == dict(available.scalars):
        return available
    return Resources(scalars=scalars, ranges=available.ranges, sets=available.sets)
