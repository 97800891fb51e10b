"""The chaos soak, three minutes of it (``benchmarks/soak.py`` runs any duration).

A real cluster of separate processes (three masters on a private PostgreSQL, five
agents, three of them in network namespaces, the services and batch frameworks, the
load balancer) under continuous work (apps created, scaled, rolled out and deleted;
pipelines, gangs and a cron job; a secret rotated with --restart-apps; clients
through the load balancer) while faults from a seeded schedule overlap: kill -9 of
every kind of process, PostgreSQL and Docker restarts, full, one-way and flapping
partitions, a full disk.  Passes when no invariant was violated: see
``mesoslite/testing/soak/run.py`` for the invariants.  Prints the run's figures and
its seed; ``MESOSLITE_SOAK_SEED`` replays a seed.  The work dir of a failed run is
kept under test-artifacts/soak/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mesoslite.agent.containerizers import docker_available
from mesoslite.testing.netns import unavailable_reason
from mesoslite.testing.postgres import PrivatePostgres
from mesoslite.testing.soak.run import Options, run
from tests.conftest import require

pytestmark = [pytest.mark.faults, pytest.mark.docker]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "soak"


@pytest.mark.timeout(900)
async def test_three_minutes_of_overlapping_faults_lose_nothing(tmp_path):
    require(unavailable_reason() is None, f"network namespaces ({unavailable_reason()})")
    require(docker_available(), "A Docker engine")
    why = PrivatePostgres.unavailable()
    require(why is None, why or "")
    seed = int(os.environ.get("MESOSLITE_SOAK_SEED", "17"))
    report = await run(Options(duration=180.0, seed=seed, work=tmp_path / "soak"))
    print("\n" + report.summary())
    if report.violations:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        kept = ARTIFACTS / f"seed-{seed}"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(tmp_path / "soak", kept, ignore_dangling_symlinks=True,
                        ignore=shutil.ignore_patterns("*.sock"))
    assert not report.violations, "\n".join(
        f"[{v.invariant}] {v.message}" for v in report.violations[:20])
    assert report.final_convergence is not None
    assert sum(report.faults.values()) > 0 and sum(report.actions.values()) > 0
