"""Placement tests run the solver strictly: an invalid CP-SAT model is a bug to see,
not something to fall back from quietly as production does."""

from __future__ import annotations

import pytest

from mesoslite.placement import cpsat


@pytest.fixture(autouse=True)
def strict_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpsat, "STRICT", True)
