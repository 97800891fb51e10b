"""Suite-wide fixtures: external services the tests need.

A service missing on a developer's machine skips the tests that need it; with
CI=true a missing service fails them instead, so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import uuid

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text

# A test past its timeout fails naming what each asyncio task awaited (not just an
# event loop idling in select); "pytester" runs inner sessions to test that plugin.
pytest_plugins = ("mesoslite.testing.pytest_hangs", "pytester")

# No per-example deadlines (two shared cores make timings noisy); in CI the examples
# are derandomised so a run is reproducible and cannot flake on a new random seed.
settings.register_profile("dev", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") == "true" else "dev")


def require(condition: bool, what: str) -> None:
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI (scripts/provision sets it up)")
    pytest.skip(f"{what} is not available (run scripts/provision)")


@pytest.fixture
def pg_url() -> str:
    """A fresh, empty PostgreSQL schema for this test, as an SQLAlchemy URL."""
    base = os.environ.get("MESOSLITE_TEST_PG_URL")
    require(bool(base), "PostgreSQL (MESOSLITE_TEST_PG_URL)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        require(False, f"PostgreSQL at {base.split('@')[-1]} ({exc.__class__.__name__})")
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
