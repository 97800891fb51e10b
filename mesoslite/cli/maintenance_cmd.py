"""``mesoslite maintenance``: the maintenance schedule and machines DOWN and UP.

::

    mesoslite maintenance schedule --host h1 --host h2 --start 2026-12-05T10:00Z --duration 1h
    mesoslite maintenance schedule --file schedule.json   # Mesos' Schedule JSON
    mesoslite maintenance schedule --clear
    mesoslite maintenance schedule                        # print the schedule
    mesoslite maintenance start --host h1                 # h1 goes DOWN
    mesoslite maintenance stop --host h1                  # h1 comes back UP
    mesoslite maintenance status [--json]

A machine is ``--host NAME`` or ``--ip ADDRESS`` (each may repeat).  ``schedule``
with machines replaces the whole schedule with one window for them (as Mesos' own
endpoint does); ``--add`` keeps the windows already there.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from mesoslite.cli.client import request
from mesoslite.cli.state_cmd import MASTER_OPTION

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")


def _master(masters: str) -> str:
    first = next((m.strip() for m in masters.split(",") if m.strip()), "")
    if not first:
        raise click.UsageError("--master: no URL given")
    return first.rstrip("/")


def _call(master: str, body: dict[str, Any]) -> Any:
    return request("POST", _master(master) + "/api/v1", body)


def parse_time(text: str) -> int:
    """ISO 8601 (``2026-12-05T10:00Z``; no zone: UTC) -> nanoseconds since the epoch."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is not a time like 2026-12-05T10:00Z",
                                 param_hint="--start") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 10**9 + when.microsecond * 1000


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``1h``, ``2d`` -> nanoseconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise click.BadParameter(f"'{text}' is not a duration like 90s, 30m, 1h or 2d",
                                 param_hint="--duration")
    return int(float(match.group(1)) * _UNITS[match.group(2)] * 10**9)


def machines(hosts: tuple[str, ...], ips: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"hostname": h} for h in hosts] + [{"ip": i} for i in ips]


_HOST = click.option("--host", "hosts", multiple=True, metavar="NAME",
                     help="A machine by hostname (repeatable).")
_IP = click.option("--ip", "ips", multiple=True, metavar="ADDRESS",
                   help="A machine by IP address (repeatable).")


@click.group("maintenance")
def maintenance() -> None:
    """Maintenance windows, machines DOWN and UP, and the frameworks' answers."""


@maintenance.command("schedule")
@MASTER_OPTION
@_HOST
@_IP
@click.option("--start", help="When the window starts (ISO 8601, e.g. 2026-12-05T10:00Z).")
@click.option("--duration", help="How long it lasts (90s, 30m, 1h, 2d; none: no end).")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path),
              help="A whole schedule, Mesos' JSON ({\"windows\": [...]}).")
@click.option("--add", is_flag=True, help="Keep the windows already scheduled.")
@click.option("--clear", is_flag=True, help="Cancel every window (DOWN machines stay).")
def schedule(master: str, hosts: tuple[str, ...], ips: tuple[str, ...], start: str | None,
             duration: str | None, path: Path | None, add: bool, clear: bool) -> None:
    """Print the schedule, or replace it (machines, --file or --clear)."""
    given = machines(hosts, ips)
    if not (given or path or clear):
        current = _call(master, {"type": "GET_MAINTENANCE_SCHEDULE"})
        click.echo(json.dumps(current["get_maintenance_schedule"]["schedule"], indent=2))
        return
    if sum(map(bool, (given, path, clear))) > 1:
        raise click.UsageError("give machines, --file or --clear, not several")
    if path is not None:
        try:
            new = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise click.BadParameter(f"{path}: {exc}", param_hint="--file") from None
    elif clear:
        new = {"windows": []}
    else:
        if not start:
            raise click.UsageError("--start is required with --host/--ip")
        unavailability: dict[str, Any] = {"start": {"nanoseconds": parse_time(start)}}
        if duration:
            unavailability["duration"] = {"nanoseconds": parse_duration(duration)}
        new = {"windows": [{"machine_ids": given, "unavailability": unavailability}]}
        if add:
            old = _call(master, {"type": "GET_MAINTENANCE_SCHEDULE"})
            new["windows"] = old["get_maintenance_schedule"]["schedule"].get(
                "windows", []) + new["windows"]
    _call(master, {"type": "UPDATE_MAINTENANCE_SCHEDULE",
                   "update_maintenance_schedule": {"schedule": new}})
    count = sum(len(w.get("machine_ids", [])) for w in new.get("windows", []))
    click.echo(f"schedule updated: {len(new.get('windows', []))} window(s), {count} machine(s)")


def _machines_command(name: str, kind: str, done: str) -> click.Command:
    @click.command(name)
    @MASTER_OPTION
    @_HOST
    @_IP
    def command(master: str, hosts: tuple[str, ...], ips: tuple[str, ...]) -> None:
        given = machines(hosts, ips)
        if not given:
            raise click.UsageError("give at least one --host or --ip")
        _call(master, {"type": kind, kind.lower(): {"machines": given}})
        for machine in given:
            click.echo(f"{machine.get('hostname') or machine.get('ip')}: {done}")
    command.help = {"start": "Start maintenance: the machines go DOWN (their agents are "
                             "removed, their tasks lost).",
                    "stop": "Stop maintenance: the machines come back UP."}[name]
    return command


maintenance.add_command(_machines_command("start", "START_MAINTENANCE", "DOWN"))
maintenance.add_command(_machines_command("stop", "STOP_MAINTENANCE", "UP"))


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(machine: dict[str, str]) -> str:
    return machine.get("hostname") or machine.get("ip") or "?"


@maintenance.command("status")
@MASTER_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print GET_MAINTENANCE_STATUS's JSON.")
def status(master: str, as_json: bool) -> None:
    """Each machine's mode, its window, and the frameworks' answers."""
    answer = _call(master, {"type": "GET_MAINTENANCE_STATUS"})["get_maintenance_status"]
    cluster = answer["status"]
    if as_json:
        click.echo(json.dumps(cluster, indent=2, sort_keys=True))
        return
    windows = _call(master, {"type": "GET_MAINTENANCE_SCHEDULE"})[
        "get_maintenance_schedule"]["schedule"].get("windows", [])
    when = {json.dumps(m, sort_keys=True): w["unavailability"]
            for w in windows for m in w.get("machine_ids", [])}
    rows = [(m["id"], "DRAINING", m.get("statuses", []))
            for m in cluster.get("draining_machines", [])]
    rows += [(m, "DOWN", []) for m in cluster.get("down_machines", [])]
    click.echo(f"{'MACHINE':<24} {'MODE':<9} {'START':<21} {'END':<21} ANSWERS")
    for machine, mode, statuses in rows:
        window = when.get(json.dumps(machine, sort_keys=True), {})
        start = window.get("start", {}).get("nanoseconds")
        length = window.get("duration", {}).get("nanoseconds")
        end = start + length if start is not None and length is not None else None
        answers = ", ".join(f"{s['framework_id']['value']}={s['status']}" for s in statuses)
        click.echo(f"{_name(machine):<24} {mode:<9} {_when(start):<21} {_when(end):<21} "
                   f"{answers or '-'}")
