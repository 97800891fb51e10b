"""Commands for the services framework's apps: ``mesoslite apps
list|show|scale|restart|rollback|delete`` and ``mesoslite deploy status``
(``mesoslite apply``, ``delete -f`` and ``get`` are in manifests_cmd.py).

All talk to the framework's Marathon API at ``--server`` (default
http://127.0.0.1:8080, or ``$MESOSLITE_SERVICES``).  Errors print one plain line and
exit non-zero; never a traceback.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any

import click

from mesoslite.cli.client import request

DEFAULT_SERVER = "http://127.0.0.1:8080"


def server_option(f: Any) -> Any:
    return click.option(
        "--server", default=lambda: os.environ.get("MESOSLITE_SERVICES", DEFAULT_SERVER),
        show_default="$MESOSLITE_SERVICES or " + DEFAULT_SERVER,
        help="URL of the services framework.")(f)


def _url(server: str, path: str, **params: Any) -> str:
    query = {k: ("true" if v is True else "false" if v is False else v)
             for k, v in params.items() if v is not None}
    return server.rstrip("/") + path + (f"?{urllib.parse.urlencode(query)}" if query else "")


def _app_path(app_id: str) -> str:
    return "/v2/apps/" + urllib.parse.quote(app_id.strip("/"))


# ---------------------------------------------------------------- apps


@click.group("apps")
def apps() -> None:
    """List and manage the services framework's apps."""


@apps.command("list")
@server_option
def list_apps(server: str) -> None:
    """One line per app: instances, running, healthy, deployment in progress, and why
    instances wait (the queue's reason) or how the last task failed."""
    from mesoslite.cli import waiting

    data = request("GET", _url(server, "/v2/apps", embed="apps.lastTaskFailure"))
    queue = request("GET", _url(server, "/v2/queue")).get("queue", [])
    cells = waiting.app_cells(data.get("apps", []), queue)
    rows = [("ID", "INSTANCES", "RUNNING", "HEALTHY", "DEPLOYING", "RUNS", waiting.HEADER)]
    for app in data.get("apps", []):
        docker = (app.get("container") or {}).get("docker") or {}
        runs = docker.get("image") or app.get("cmd") or " ".join(app.get("args") or [])
        healthy = str(app.get("tasksHealthy", 0)) if app.get("healthChecks") else "-"
        rows.append((app["id"], str(app.get("instances")), str(app.get("tasksRunning", 0)),
                     healthy, "yes" if app.get("deployments") else "no", runs[:48],
                     cells[app["id"]]))
    _table(rows)


@apps.command("show")
@click.argument("app_id")
@server_option
def show(app_id: str, server: str) -> None:
    """The app's definition, tasks and last failure (JSON)."""
    data = request("GET", _url(server, _app_path(app_id)))
    click.echo(json.dumps(data.get("app", data), indent=2, sort_keys=True))


@apps.command("scale")
@click.argument("app_id")
@click.argument("instances", type=click.IntRange(0))
@click.option("--force", is_flag=True, help="Override a deployment in progress.")
@server_option
def scale(app_id: str, instances: int, force: bool, server: str) -> None:
    """Set the number of instances."""
    result = request("PUT", _url(server, _app_path(app_id), force=force or None),
                     {"instances": instances})
    click.echo(f"app {_norm(app_id)} scaling to {instances} (deployment "
               f"{result.get('deploymentId')})")


@apps.command("restart")
@click.argument("app_id")
@click.option("--force", is_flag=True, help="Override a deployment in progress.")
@server_option
def restart(app_id: str, force: bool, server: str) -> None:
    """Replace every task (rolling, by the app's upgrade strategy)."""
    result = request("POST", _url(server, _app_path(app_id) + "/restart",
                                  force=force or None))
    click.echo(f"app {_norm(app_id)} restarting (deployment {result.get('deploymentId')})")


@apps.command("rollback")
@click.argument("app_id")
@click.option("--to", "version", default=None,
              help="Version to return to (default: the previous one).")
@click.option("--force", is_flag=True, help="Override a deployment in progress.")
@server_option
def rollback(app_id: str, version: str | None, force: bool, server: str) -> None:
    """Undo the deployment in progress, or return to an earlier version."""
    app = request("GET", _url(server, _app_path(app_id))).get("app", {})
    running = [d["id"] for d in app.get("deployments", [])]
    if running and version is None and not force:
        result = request("DELETE", _url(server, f"/v2/deployments/{running[0]}"))
        click.echo(f"deployment {running[0]} rolled back (deployment "
                   f"{result.get('deploymentId')})")
        return
    if version is None:
        versions = request("GET", _url(server, _app_path(app_id) + "/versions"))["versions"]
        if len(versions) < 2:
            raise click.ClickException(f"app {_norm(app_id)} has no earlier version")
        version = versions[1]
    result = request("PUT", _url(server, _app_path(app_id), force=force or None),
                     {"version": version})
    click.echo(f"app {_norm(app_id)} rolling back to {version} (deployment "
               f"{result.get('deploymentId')})")


@apps.command("delete")
@click.argument("app_id")
@click.option("--force", is_flag=True, help="Override a deployment in progress.")
@server_option
def delete(app_id: str, force: bool, server: str) -> None:
    """Remove the app and kill its tasks."""
    result = request("DELETE", _url(server, _app_path(app_id), force=force or None))
    click.echo(f"app {_norm(app_id)} deleted (deployment {result.get('deploymentId')})")


# ---------------------------------------------------------------- deploy


@click.group("deploy")
def deploy() -> None:
    """Deployments of the services framework."""


@deploy.command("status")
@server_option
def status(server: str) -> None:
    """Deployments in progress, and what waits to launch and why."""
    deployments = request("GET", _url(server, "/v2/deployments"))
    rows = [("DEPLOYMENT", "APP", "ACTION", "STEP", "VERSION")]
    for d in deployments:
        action = d["currentActions"][0]["action"] if d.get("currentActions") else "-"
        rows.append((d["id"], ",".join(d.get("affectedApps", [])), action,
                     f"{d.get('currentStep')}/{d.get('totalSteps')}", d.get("version", "")))
    if len(rows) == 1:
        click.echo("no deployments in progress")
    else:
        _table(rows)
    queue = request("GET", _url(server, "/v2/queue")).get("queue", [])
    for item in queue:
        summary = item.get("processedOffersSummary") or {}
        why = (summary.get("waitingReason") or summary.get("unplacedReason")
               or "waiting for offers")
        delay = item.get("delay", {}).get("timeLeftSeconds", 0)
        if delay:
            why += f" (launch delayed {delay:g}s)"
        click.echo(f"waiting: {item['app']['id']}: {item['count']} instance(s): {why}")


def _norm(app_id: str) -> str:
    return "/" + app_id.strip("/")


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
