"""The operator CLI against a real cluster: output, exit codes, one-line errors."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from click.testing import CliRunner

from mesoslite.cli.main import cli
from mesoslite.messages.mesos import TaskState
from mesoslite.testing.processes import free_port


async def run(*args: str):
    # The CLI is synchronous; run it off the loop that serves the cluster.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def test_state_lists_agents_frameworks_and_tasks(cluster, framework):
    await framework.run_task("shown", "sleep 30")
    await framework.wait_state("shown", TaskState.TASK_RUNNING)
    result = await run("state", "--master", cluster.master_url)
    assert result.exit_code == 0
    assert result.output.count("agent") >= 3 and "shown" in result.output
    assert "TASK_RUNNING" in result.output
    result = await run("state", "--master", cluster.master_url, "--json")
    assert json.loads(result.output)["activated_slaves"] == 3


async def test_logs_prints_stdout_and_stderr(cluster, framework):
    await framework.run_task("talker", "echo to-out; echo to-err >&2")
    await framework.wait_state("talker", TaskState.TASK_FINISHED)
    result = await run("logs", "talker", "--master", cluster.master_url)
    assert (result.exit_code, result.output) == (0, "to-out\n")
    result = await run("logs", "talker", "--stderr", "--master", cluster.master_url)
    assert (result.exit_code, result.output) == (0, "to-err\n")


async def test_logs_follow_returns_when_the_task_ends(cluster, framework):
    await framework.run_task("slow", "for i in 1 2 3; do echo line$i; sleep 0.2; done")
    await framework.wait_state("slow", TaskState.TASK_RUNNING)
    result = await run("logs", "slow", "--follow", "--master", cluster.master_url)
    assert result.exit_code == 0
    assert result.output == "line1\nline2\nline3\n"


async def test_errors_are_one_plain_line(cluster):
    result = await run("logs", "no-such-task", "--master", cluster.master_url)
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no task 'no-such-task' is known to the master"
    result = await run("state", "--master", f"http://127.0.0.1:{free_port()}")
    assert result.exit_code == 1 and result.output.startswith("Error: cannot reach")
    assert len(result.output.strip().splitlines()) == 1


def test_bad_flags_are_usage_errors():
    result = CliRunner().invoke(cli, ["agent", "--resources", "cpus:abc"])
    assert result.exit_code == 2 and "cpus" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["master", "--weights", "web=-1"])
    assert result.exit_code == 2 and "web=-1" in result.output


def test_the_installed_command_prints_usage_errors_on_one_line():
    for args, needle in ((["master", "--port", "abc"], "'abc' is not a valid integer"),
                         (["nosuch"], "No such command 'nosuch'"),
                         (["lb", "--bogus"], "No such option '--bogus'")):
        proc = subprocess.run([sys.executable, "-m", "mesoslite.cli.main", *args],
                              check=False, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith("Error: ") and needle in line
