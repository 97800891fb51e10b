"""``mesoslite agents`` against a real cluster, as docs/agents.md shows it: the list's
states follow deactivate, reactivate, drain and gone; errors are one plain line and a
non-zero exit."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from click.testing import CliRunner

from mesoslite.cli.main import cli
from mesoslite.messages.mesos import TaskState
from mesoslite.testing.poll import wait_for
from tests.integration.test_agent_ops import agent_ids


async def run(*args: str):
    # The CLI is synchronous; run it off the loop that serves the cluster.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


async def listed(master: str) -> dict[str, list[str]]:
    """``agents list``'s rows by agent id (the header left out)."""
    result = await run("agents", "list", "--master", master)
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split() == ["ID", "HOSTNAME", "STATE", "CPUS", "MEM", "MB", "DISK", "MB"]
    return {row.split()[0]: row.split() for row in rows}


async def state_of(master: str, agent_id: str) -> str:
    return (await listed(master))[agent_id][2]


async def test_agents_list_deactivate_reactivate_drain_gone(cluster_factory, framework_factory):
    cluster = await cluster_factory(agents=2)
    url = cluster.master_url
    first, second = await agent_ids(url)
    fw = await framework_factory(url)
    await fw.run_task("on-first", "sleep 1000", cpus=0.5, mem=64, agent_id=first)
    await fw.wait_state("on-first", TaskState.TASK_RUNNING)

    rows = await listed(url)
    assert sorted(rows) == [first, second]
    assert rows[first][1:] == ["agent1", "active", "0.5/2", "64/1024", "0/1024"]
    assert rows[second][2] == "active"

    result = await run("agents", "deactivate", first, "--master", url)
    assert (result.exit_code, result.output) == (0, f"agent {first} deactivated\n")
    assert await state_of(url, first) == "deactivated"
    result = await run("agents", "reactivate", first, "--master", url)
    assert (result.exit_code, result.output) == (0, f"agent {first} reactivated\n")
    assert await state_of(url, first) == "active"

    result = await run("agents", "drain", first, "--max-grace-period", "2s", "--master", url)
    assert result.exit_code == 0 and result.output.startswith(f"agent {first} draining")
    await fw.wait_state("on-first", TaskState.TASK_KILLED)

    async def drained() -> bool:
        return await state_of(url, first) == "drained"

    await wait_for(drained, 20, message="the list to show the agent drained")
    result = await run("agents", "gone", second, "--master", url)
    assert (result.exit_code, result.output) == (0, f"agent {second} marked gone\n")
    assert sorted(await listed(url)) == [first]


async def test_agents_errors_are_one_line(cluster_factory):
    """Through the installed command, as a user sees it: one line on stderr."""
    cluster = await cluster_factory(agents=1)
    url = cluster.master_url
    (agent_id,) = await agent_ids(url)
    for args, code, words in (
            (("drain", "no-such-agent"), 1, "Error: 404: Agent no-such-agent is not known"),
            (("reactivate", agent_id), 1, f"Error: 409: Agent {agent_id} is not deactivated"),
            (("drain", agent_id, "--max-grace-period", "soon"), 2,
             "Error: Invalid value for --max-grace-period: 'soon' is not a duration"),
            (("gone", "no-such-agent"), 1, "Error: 404: Agent no-such-agent is not known")):
        proc = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "mesoslite.cli.main", "agents", *args,
                             "--master", url], check=False, capture_output=True, text=True,
            timeout=60)
        assert (proc.returncode, proc.stdout) == (code, ""), (args, proc.stderr)
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith(words), (args, line)
    assert await state_of(url, agent_id) == "active"
