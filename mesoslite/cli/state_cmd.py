"""``mesoslite state``: what the cluster looks like right now."""

from __future__ import annotations

import json

import click

from mesoslite.cli.client import master_get

MASTER_OPTION = click.option(
    "--master", default="http://127.0.0.1:5050", show_default=True, envvar="MESOSLITE_MASTER",
    help="Master URL (several, comma-separated: the leader is found).")


@click.command("state")
@MASTER_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the master's /master/state JSON.")
def state(master: str, as_json: bool) -> None:
    """Show agents, frameworks and tasks."""
    data = master_get(master, "/master/state")
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(f"master {data['id']}  version {data['version']}  "
               f"agents: {data['activated_slaves']} active, {data['deactivated_slaves']} "
               f"inactive, {data['unreachable_slaves']} unreachable")
    click.echo("\nAGENTS")
    click.echo(f"  {'ID':<44} {'HOSTNAME':<16} {'STATE':<12} {'CPUS':>11} {'MEM MB':>15}")
    for a in data["slaves"]:
        cpus = f"{a['used_resources']['cpus']:g}/{a['resources']['cpus']:g}"
        mem = f"{a['used_resources']['mem']:g}/{a['resources']['mem']:g}"
        click.echo(f"  {a['id']:<44} {a['hostname']:<16} {a['state']:<12} {cpus:>11} {mem:>15}")
    click.echo("\nFRAMEWORKS")
    for f in data["frameworks"]:
        click.echo(f"  {f['id']:<44} {f['name']:<20} {f['state']:<12} "
                   f"tasks {len(f['tasks'])}")
    click.echo("\nTASKS")
    for f in data["frameworks"]:
        for t in f["tasks"] + f["unreachable_tasks"]:
            click.echo(f"  {t['id']:<40} {t['state']:<16} {f['name']:<16} on {t['slave_id']}")
