"""``mesoslite quota`` and ``mesoslite weights``: the operator's quota and role weights.

    mesoslite quota get
    mesoslite quota set dev --guarantee cpus=2,mem=1024 --limit cpus=4 [--force]
    mesoslite quota remove dev
    mesoslite weights get
    mesoslite weights set dev=2 prod=3

They use the master's operator API (``GET_QUOTA``, ``UPDATE_QUOTA``, ``GET_WEIGHTS``,
``UPDATE_WEIGHTS``); errors are one line and a non-zero exit.
"""

from __future__ import annotations

import json
from typing import Any

import click

from mesoslite.cli.client import request
from mesoslite.cli.state_cmd import MASTER_OPTION


def operator_call(masters: str, body: dict[str, Any]) -> Any:
    """POST ``body`` to ``/api/v1`` of the first of ``masters`` that takes it (a
    follower answers 307, so the next URL is tried)."""
    urls = [m.strip().rstrip("/") for m in masters.split(",") if m.strip()]
    last: click.ClickException | None = None
    for url in urls:
        try:
            return request("POST", url + "/api/v1", body)
        except click.ClickException as exc:
            last = exc
            if not str(exc.message).startswith(("307", "cannot reach", "503")):
                raise
    raise last or click.ClickException("no master URL given")


def parse_pairs(text: str | None, what: str) -> dict[str, float]:
    """``"cpus=2,mem=1024"`` (or ``["dev=2", "prod=3"]`` joined) as name -> number."""
    out: dict[str, float] = {}
    for item in (text or "").replace(" ", ",").split(","):
        if not item:
            continue
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not name or number is None:
            raise click.BadParameter(f"{item!r}: expected name=number", param_hint=what)
        if name in out:
            raise click.BadParameter(f"{name!r} is given twice", param_hint=what)
        out[name] = number
    return out


def _scalar_map(values: dict[str, float]) -> dict[str, dict[str, float]]:
    return {name: {"value": value} for name, value in values.items()}


def _summary(values: dict[str, Any] | None) -> str:
    if not values:
        return "-"
    return ",".join(f"{k}={v['value']:g}" for k, v in sorted(values.items()))


@click.group("quota")
def quota() -> None:
    """Guarantees and limits of roles' resources."""


@quota.command("get")
@MASTER_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the GET_QUOTA status JSON.")
def quota_get(master: str, as_json: bool) -> None:
    """Show every role's quota."""
    status = operator_call(master, {"type": "GET_QUOTA"})["get_quota"]["status"]
    if as_json:
        click.echo(json.dumps(status, indent=2, sort_keys=True))
        return
    click.echo(f"{'ROLE':<24} {'GUARANTEES':<32} LIMITS")
    for config in status.get("configs", []):
        click.echo(f"{config['role']:<24} {_summary(config.get('guarantees')):<32} "
                   f"{_summary(config.get('limits'))}")


@quota.command("set")
@MASTER_OPTION
@click.argument("role")
@click.option("--guarantee", default=None, metavar="NAME=N,...",
              help="Resources the role gets before the fair share, e.g. cpus=2,mem=1024.")
@click.option("--limit", default=None, metavar="NAME=N,...",
              help="Resources the role is never offered beyond, e.g. cpus=4.")
@click.option("--force", is_flag=True,
              help="Set it even if the cluster cannot hold the guarantees now.")
def quota_set(master: str, role: str, guarantee: str | None, limit: str | None,
              force: bool) -> None:
    """Set ROLE's quota (replacing what it had)."""
    guarantees = parse_pairs(guarantee, "--guarantee")
    limits = parse_pairs(limit, "--limit")
    if not guarantees and not limits:
        raise click.UsageError("give --guarantee and/or --limit (or use 'quota remove')")
    config: dict[str, Any] = {"role": role}
    if guarantees:
        config["guarantees"] = _scalar_map(guarantees)
    if limits:
        config["limits"] = _scalar_map(limits)
    operator_call(master, {"type": "UPDATE_QUOTA",
                           "update_quota": {"force": force, "quota_configs": [config]}})
    click.echo(f"quota of {role}: guarantees {_summary(config.get('guarantees'))}, "
               f"limits {_summary(config.get('limits'))}")


@quota.command("remove")
@MASTER_OPTION
@click.argument("role")
def quota_remove(master: str, role: str) -> None:
    """Remove ROLE's quota (no guarantees, no limits)."""
    operator_call(master, {"type": "UPDATE_QUOTA",
                           "update_quota": {"quota_configs": [{"role": role}]}})
    click.echo(f"quota of {role} removed")


@click.group("weights")
def weights() -> None:
    """Role weights in the fair share (a role with weight 2 gets twice the share)."""


@weights.command("get")
@MASTER_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the weight_infos JSON.")
def weights_get(master: str, as_json: bool) -> None:
    """Show every role's weight (roles not listed weigh 1)."""
    infos = operator_call(master, {"type": "GET_WEIGHTS"})["get_weights"]["weight_infos"]
    if as_json:
        click.echo(json.dumps(infos, indent=2, sort_keys=True))
        return
    click.echo(f"{'ROLE':<24} WEIGHT")
    for info in infos:
        click.echo(f"{info['role']:<24} {info['weight']:g}")


@weights.command("set")
@MASTER_OPTION
@click.argument("pairs", nargs=-1, required=True, metavar="ROLE=WEIGHT...")
def weights_set(master: str, pairs: tuple[str, ...]) -> None:
    """Set roles' weights, e.g. ``dev=2 prod=3``."""
    values = parse_pairs(",".join(pairs), "ROLE=WEIGHT")
    operator_call(master, {"type": "UPDATE_WEIGHTS", "update_weights": {
        "weight_infos": [{"role": r, "weight": w} for r, w in values.items()]}})
    click.echo("weights: " + ", ".join(f"{r}={w:g}" for r, w in values.items()))
