"""``mesoslite maintenance`` against a real cluster, as docs/maintenance.md shows it."""

from __future__ import annotations

import asyncio
import json
import sys

from click.testing import CliRunner

from mesoslite.cli.main import cli
from mesoslite.testing.poll import wait_for


async def run(*args: str):
    # The CLI is synchronous; run it off the loop that serves the cluster.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_schedule_status_start_stop(cluster, tmp_path):
    url = cluster.master_url
    result = await run("maintenance", "schedule", "--master", url, "--host", "agent1",
                       "--start", "2099-12-05T10:00Z", "--duration", "1h")
    assert (result.exit_code, result.output) == (
        0, "schedule updated: 1 window(s), 1 machine(s)\n")
    result = await run("maintenance", "schedule", "--master", url, "--add", "--ip",
                       "10.0.0.9", "--start", "2099-12-06T10:00")
    assert result.exit_code == 0, result.output
    result = await run("maintenance", "schedule", "--master", url)
    assert json.loads(result.output) == {"windows": [
        {"machine_ids": [{"hostname": "agent1"}], "unavailability": {
            "start": {"nanoseconds": 4100148000 * 10**9},
            "duration": {"nanoseconds": 3600 * 10**9}}},
        {"machine_ids": [{"ip": "10.0.0.9"}], "unavailability": {
            "start": {"nanoseconds": 4100234400 * 10**9}}}]}
    result = await run("maintenance", "status", "--master", url)
    assert result.output.splitlines() == [
        "MACHINE                  MODE      START                 END                   ANSWERS",
        "agent1                   DRAINING  2099-12-05T10:00:00Z  2099-12-05T11:00:00Z  -",
        "10.0.0.9                 DRAINING  2099-12-06T10:00:00Z  -                     -"]

    result = await run("maintenance", "start", "--master", url, "--host", "agent1")
    assert (result.exit_code, result.output) == (0, "agent1: DOWN\n")
    result = await run("maintenance", "status", "--master", url)
    assert [line.split() for line in result.output.splitlines()[1:]] == [
        ["10.0.0.9", "DRAINING", "2099-12-06T10:00:00Z", "-", "-"],
        ["agent1", "DOWN", "2099-12-05T10:00:00Z", "2099-12-05T11:00:00Z", "-"]]
    status = json.loads((await run("maintenance", "status", "--master", url, "--json")).output)
    assert status["down_machines"] == [{"hostname": "agent1"}]
    result = await run("maintenance", "stop", "--master", url, "--host", "agent1")
    assert (result.exit_code, result.output) == (0, "agent1: UP\n")
    await wait_for(lambda: cluster.agents[0].registered.is_set(), 30,
                   message="agent1 back after the stop")

    path = tmp_path / "schedule.json"
    path.write_text(json.dumps({"windows": []}))
    result = await run("maintenance", "schedule", "--master", url, "--file", str(path))
    assert (result.exit_code, result.output) == (
        0, "schedule updated: 0 window(s), 0 machine(s)\n")


async def test_errors_are_one_line(cluster):
    url = cluster.master_url
    cases = [
        (("stop", "--host", "agent2"),
         ("Error: 400: Machine '{\"hostname\":\"agent2\"}' is not part of a maintenance "
         "schedule (stop_maintenance.machines[0]: Machine '{\"hostname\":\"agent2\"}' is not "
         "part of a maintenance schedule)")),
        (("schedule", "--host", "h", "--start", "2001-01-01T00:00Z", "--duration", "1h"),
         ("Error: 400: The maintenance window has already ended (its start plus its duration "
         "is in the past) (update_maintenance_schedule.schedule.windows[0].unavailability: "
         "The maintenance window has already ended (its start plus its duration is in the "
         "past))")),
        (("schedule", "--host", "h", "--start", "soon"),
         "Error: Invalid value for --start: 'soon' is not a time like 2026-12-05T10:00Z"),
        (("schedule", "--host", "h", "--start", "2099-01-01T00:00Z", "--duration", "1y"),
         "Error: Invalid value for --duration: '1y' is not a duration like 90s, 30m, 1h or 2d"),
        (("start",), "Error: give at least one --host or --ip"),
    ]
    for args, line in cases:
        # As a user runs it: the one-line rendering of errors is the entry point's.
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mesoslite.cli.main", "maintenance", *args, "--master", url,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode != 0 and out == b"", args
        [shown] = err.decode().strip().splitlines()  # one line (usage errors add a hint)
        assert shown == line or shown.startswith(line + " Try '"), (args, shown)
