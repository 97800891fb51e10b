"""``mesoslite services endpoints [APP]``: where an app's service is served.

Reads ``GET /v2/endpoints[/APP]`` from the services framework (``--server``).  Plain
output, one block per app::

    /redis-master  (round-robin)
      6379/tcp  127.0.0.1:31012  redis-master.3f2a...  healthy

``--all`` adds the endpoints that take no traffic (unhealthy, staging, being
killed), with their state; ``--json`` prints the API's JSON unchanged.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import click

from mesoslite.cli.apps_cmd import server_option
from mesoslite.cli.client import request


def _health(endpoint: dict[str, Any]) -> str:
    if not endpoint.get("routable", True):
        state = str(endpoint.get("state", "")).removeprefix("TASK_").lower()
        return "unhealthy" if endpoint.get("healthy") is False else f"not routable ({state})"
    healthy = endpoint.get("healthy")
    return "healthy" if healthy else "running (no health check)" if healthy is None else "?"


def render(apps: list[dict[str, Any]]) -> list[str]:
    """The plain-text lines for ``apps`` (``/v2/endpoints`` app objects)."""
    lines = []
    for app in apps:
        lines.append(f"{app['id']}  ({app.get('strategy', 'round-robin')})")
        ports = app.get("servicePorts") or []
        if not ports:
            lines.append("  no service ports")
        for port in ports:
            label = f"{port['servicePort']}/{port.get('protocol', 'tcp')}"
            if port.get("name"):
                label += f" ({port['name']})"
            endpoints = port.get("endpoints") or []
            if not endpoints:
                lines.append(f"  {label}  no endpoints")
            for e in endpoints:
                lines.append(f"  {label}  {e['host']}:{e['port']}  {e['taskId']}  {_health(e)}")
    return lines


@click.command("endpoints")
@click.argument("app_id", required=False)
@click.option("--all", "show_all", is_flag=True,
              help="Also endpoints that take no traffic (unhealthy, starting, being killed).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@server_option
def endpoints(app_id: str | None, show_all: bool, as_json: bool, server: str) -> None:
    """The healthy endpoints of APP (every app when omitted), per service port."""
    path = "/v2/endpoints"
    if app_id:
        path += "/" + urllib.parse.quote(app_id.strip("/"))
    url = server.rstrip("/") + path + ("?all=true" if show_all else "")
    data = request("GET", url)
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    apps = [data["app"]] if app_id else data.get("apps", [])
    apps = [a for a in apps if a is not None]
    if not apps:
        click.echo("no apps" if not app_id else f"{app_id}: no endpoints yet")
        return
    for line in render(apps):
        click.echo(line)
