"""An existing Mesos v1 HTTP client library works against mesoslite unchanged."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.asyncio
SCRIPT = Path(__file__).parent / "compat" / "mesoshttp_framework.py"


async def test_mesoshttp_framework_launches_a_task(cluster_factory):
    # mesoshttp reads the RecordIO stream line by line, so it sees each event when
    # the next one arrives: a short heartbeat keeps events flowing (as with Mesos).
    cluster = await cluster_factory(agents=1, heartbeat_interval=0.2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), cluster.master_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    lines = out.decode().splitlines()
    assert proc.returncode == 0, lines
    updates = [line for line in lines if line.startswith("update")]
    assert updates == ["update compat-1 TASK_STARTING", "update compat-1 TASK_RUNNING",
                       "update compat-1 TASK_FINISHED"]
