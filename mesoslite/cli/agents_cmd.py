"""``mesoslite agents``: list agents and take them out of service.

::

    mesoslite agents list                        # id, hostname, state, resources
    mesoslite agents deactivate AGENT_ID         # no new offers; tasks keep running
    mesoslite agents reactivate AGENT_ID         # offers again (ends a finished drain)
    mesoslite agents drain AGENT_ID --max-grace-period 30s [--mark-gone]
    mesoslite agents gone AGENT_ID               # for good: tasks GONE_BY_OPERATOR

They are Mesos' operator calls (``POST /api/v1``: ``DEACTIVATE_AGENT``,
``REACTIVATE_AGENT``, ``DRAIN_AGENT``, ``MARK_AGENT_GONE``); docs/agents.md tells what
each does.  An agent's state is ``active``, ``deactivated``, ``draining``,
``drained``, or, while it is away, ``disconnected``, ``recovered`` (known from the
store after a master restart, not back yet) or ``unreachable``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

from mesoslite.cli.client import master_get, master_post
from mesoslite.cli.state_cmd import MASTER_OPTION

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|secs|m|mins|h|hrs)?$")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "secs": 1.0, "m": 60.0, "mins": 60.0,
                 "h": 3600.0, "hrs": 3600.0}


def agent_state(slave: dict[str, Any]) -> str:
    """What ``list`` shows for one of ``/master/slaves``' agents."""
    drain = slave.get("drain_info")
    if drain:
        return str(drain["state"]).lower()
    if slave.get("deactivated"):
        return "deactivated"
    return str(slave.get("state", "active"))


def parse_grace(text: str) -> float:
    """Seconds from ``30``, ``30s``, ``500ms``, ``2m``, ``1h`` (or ``secs``/``mins``/``hrs``)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise click.BadParameter(f"'{text}' is not a duration (e.g. 30s, 2m, 1h)",
                                 param_hint="--max-grace-period")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _call(master: str, kind: str, body: dict[str, Any]) -> None:
    master_post(master, "/api/v1", {"type": kind, kind.lower(): body})


def _agent(agent_id: str) -> dict[str, Any]:
    return {"agent_id": {"value": agent_id}}


@click.group("agents")
def agents() -> None:
    """List agents; deactivate, drain, reactivate or mark them gone."""


@agents.command("list")
@MASTER_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the master's /master/slaves JSON.")
def list_agents(master: str, as_json: bool) -> None:
    """Show each agent: id, hostname, state and resources (used/total)."""
    data = master_get(master, "/master/slaves")
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(f"{'ID':<44} {'HOSTNAME':<16} {'STATE':<13} {'CPUS':>11} {'MEM MB':>15} "
               f"{'DISK MB':>15}")
    for slave in sorted(data["slaves"], key=lambda s: s["id"]):
        used, total = slave["used_resources"], slave["resources"]
        cells = [f"{used[name]:g}/{total[name]:g}" for name in ("cpus", "mem", "disk")]
        click.echo(f"{slave['id']:<44} {slave['hostname']:<16} {agent_state(slave):<13} "
                   f"{cells[0]:>11} {cells[1]:>15} {cells[2]:>15}")


@agents.command("deactivate")
@click.argument("agent_id")
@MASTER_OPTION
def deactivate(agent_id: str, master: str) -> None:
    """Stop offering AGENT_ID's resources; its tasks keep running."""
    _call(master, "DEACTIVATE_AGENT", _agent(agent_id))
    click.echo(f"agent {agent_id} deactivated")


@agents.command("reactivate")
@click.argument("agent_id")
@MASTER_OPTION
def reactivate(agent_id: str, master: str) -> None:
    """Offer AGENT_ID's resources again (a drain must have finished: DRAINED)."""
    _call(master, "REACTIVATE_AGENT", _agent(agent_id))
    click.echo(f"agent {agent_id} reactivated")


@agents.command("drain")
@click.argument("agent_id")
@click.option("--max-grace-period", "grace", default=None, metavar="DURATION",
              help="Cap each task's kill grace period (e.g. 30s); default: each task's own.")
@click.option("--mark-gone", is_flag=True,
              help="Once drained, remove the agent for good (irreversible).")
@MASTER_OPTION
def drain(agent_id: str, grace: str | None, mark_gone: bool, master: str) -> None:
    """Deactivate AGENT_ID and kill its tasks; it is DRAINED once all have ended."""
    body = _agent(agent_id)
    if grace is not None:
        seconds = parse_grace(grace)
        whole = int(seconds)
        body["max_grace_period"] = {"seconds": whole,
                                    "nanos": round((seconds - whole) * 1e9)}
    if mark_gone:
        body["mark_gone"] = True
    _call(master, "DRAIN_AGENT", body)
    then = " (then marked gone)" if mark_gone else ""
    click.echo(f"agent {agent_id} draining{then}; `mesoslite agents list` shows when it "
               "is drained")


@agents.command("gone")
@click.argument("agent_id")
@MASTER_OPTION
def gone(agent_id: str, master: str) -> None:
    """Remove AGENT_ID for good: its tasks become TASK_GONE_BY_OPERATOR and it may not
    register again (irreversible)."""
    _call(master, "MARK_AGENT_GONE", _agent(agent_id))
    click.echo(f"agent {agent_id} marked gone")
