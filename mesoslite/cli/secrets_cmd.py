"""``mesoslite secrets`` and ``mesoslite configs``: secrets and config maps on the master.

::

    mesoslite secrets keygen > /etc/mesoslite/secrets.key       # for the master
    mesoslite secrets create db --from-literal password=s3cret --from-file tls.key=./key.pem
    mesoslite secrets update db --from-literal password=n3w      # rotate: version 2
    mesoslite secrets update db --from-file password=./pw --restart-apps  # and roll apps
    mesoslite secrets list
    mesoslite secrets delete db
    mesoslite configs create app --from-literal level=debug --from-file ./app.ini
    mesoslite configs list | show app | delete app

``--from-file [KEY=]PATH`` uses the file's name as the key unless one is given;
``--from-literal KEY=VALUE`` takes the value from the command line (visible to other
users of the machine in the process list: prefer files for real secrets).  Values are
never printed: ``list`` shows names, keys, versions and times.
"""

from __future__ import annotations

import base64
import os
import time
import urllib.parse
from pathlib import Path
from typing import Any

import click

from mesoslite.cli.client import request
from mesoslite.cli.state_cmd import MASTER_OPTION
from mesoslite.secrets.model import KEY


def _master(masters: str) -> str:
    """The first configured master (followers redirect to the leader)."""
    first = next((m.strip() for m in masters.split(",") if m.strip()), "")
    if not first:
        raise click.UsageError("--master: no URL given")
    return first.rstrip("/")


def _url(master: str, plural: str, name: str | None = None) -> str:
    base = f"{_master(master)}/master/{plural}"
    return base + "/" + urllib.parse.quote(name, safe="") if name else base


def read_values(from_files: tuple[str, ...], literals: tuple[str, ...]) -> dict[str, bytes]:
    """Keys and values from ``--from-file [KEY=]PATH`` and ``--from-literal K=V``."""
    values: dict[str, bytes] = {}
    for spec in from_files:
        key, sep, path = spec.partition("=")
        if not sep or not KEY.match(key):
            key, path = Path(spec).name, spec
        try:
            values[_new_key(values, key)] = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise click.BadParameter(f"{path}: {exc.strerror}", param_hint="--from-file"
                                     ) from None
    for spec in literals:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{key}...': expected KEY=VALUE",
                                     param_hint="--from-literal")
        values[_new_key(values, key)] = value.encode()
    if not values:
        raise click.UsageError("give at least one --from-file or --from-literal")
    return values


def _new_key(values: dict[str, bytes], key: str) -> str:
    if key in values:
        raise click.UsageError(f"key '{key}' is given twice")
    return key


def _put(master: str, kind: str, name: str, values: dict[str, bytes], create: bool) -> Any:
    plural = kind + "s"
    if kind == "secret":
        body: dict[str, Any] = {"data": {k: base64.b64encode(v).decode()
                                         for k, v in values.items()}}
    else:
        try:
            body = {"data": {k: v.decode() for k, v in values.items()}}
        except UnicodeDecodeError:
            raise click.ClickException("config values must be UTF-8 text; use a secret for "
                                       "binary data") from None
    if create:
        return request("POST", _url(master, plural), {"name": name, **body})
    return request("PUT", _url(master, plural, name), body)


def _table(items: list[dict[str, Any]]) -> None:
    click.echo(f"{'NAME':<32} {'VERSION':>7}  {'UPDATED':<20} KEYS")
    for item in items:
        updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(item["updated_at"]))
        note = "" if item.get("usable", True) else "  (not usable: another key)"
        click.echo(f"{item['name']:<32} {item['version']:>7}  {updated:<20} "
                   f"{','.join(item['keys'])}{note}")


SERVICES_OPTION = click.option(
    "--services", default=lambda: os.environ.get("MESOSLITE_SERVICES", "http://127.0.0.1:8080"),
    show_default="$MESOSLITE_SERVICES or http://127.0.0.1:8080",
    help="URL of the services framework (for --restart-apps).")


def _restart_apps(services: str, kind: str, name: str) -> None:
    """Restart each app referencing the object; one line per app.  The object is
    already updated: a failure here says so, and which apps were restarted."""
    base = services.rstrip("/")
    query = urllib.parse.urlencode({kind: name})
    try:
        apps = [a["id"] for a in request("GET", f"{base}/v2/apps?{query}")["apps"]]
    except click.ClickException as exc:
        raise click.ClickException(f"{kind} {name} was updated, but its apps were not "
                                   f"restarted: {exc.message}") from None
    if not apps:
        click.echo(f"no app references {kind} {name}")
    for done, app_id in enumerate(apps):
        try:
            result = request("POST", f"{base}/v2/apps{app_id}/restart")
        except click.ClickException as exc:
            left = ", ".join(apps[done:])
            raise click.ClickException(f"restarting {app_id} failed ({exc.message}); not "
                                       f"restarted: {left}") from None
        click.echo(f"restarting {app_id} (deployment {result['deploymentId']})")


def _done(verb: str, kind: str, meta: dict[str, Any]) -> None:
    click.echo(f"{kind} {meta['name']} {verb} (version {meta['version']}, keys: "
               f"{', '.join(meta['keys'])})")


FROM_FILE = click.option("--from-file", "from_files", multiple=True, metavar="[KEY=]PATH",
                         help="A key from a file (key: the file's name unless given).")
FROM_LITERAL = click.option("--from-literal", "literals", multiple=True, metavar="KEY=VALUE",
                            help="A key from the command line.")


def _group(kind: str) -> click.Group:
    plural = kind + "s"

    @click.group(plural)
    def group() -> None:
        pass

    @group.command("create")
    @click.argument("name")
    @FROM_FILE
    @FROM_LITERAL
    @MASTER_OPTION
    def create(name: str, from_files: tuple[str, ...], literals: tuple[str, ...],
               master: str) -> None:
        """Create NAME (fails if it exists: use update to rotate it)."""
        _done("created", kind, _put(master, kind, name, read_values(from_files, literals),
                                    create=True))

    @group.command("update")
    @click.argument("name")
    @FROM_FILE
    @FROM_LITERAL
    @MASTER_OPTION
    @click.option("--restart-apps", is_flag=True,
                  help="Then restart (a rolling deployment) every app of the services "
                       "framework that references NAME, so its tasks get the new version.")
    @SERVICES_OPTION
    def update(name: str, from_files: tuple[str, ...], literals: tuple[str, ...],
               master: str, restart_apps: bool, services: str) -> None:
        """Replace NAME's keys and values (a new version), creating it if needed."""
        _done("updated", kind, _put(master, kind, name, read_values(from_files, literals),
                                    create=False))
        if restart_apps:
            _restart_apps(services, kind, name)

    @group.command("list")
    @MASTER_OPTION
    def list_(master: str) -> None:
        """Names, versions, keys (never values)."""
        _table(request("GET", _url(master, plural))[plural])

    @group.command("delete")
    @click.argument("name")
    @MASTER_OPTION
    def delete(name: str, master: str) -> None:
        """Delete NAME (running tasks keep what they were given)."""
        meta = request("DELETE", _url(master, plural, name))
        click.echo(f"{kind} {meta['name']} deleted (was version {meta['version']})")

    group.help = (f"Manage {plural} on the master (see docs/secrets.md)."
                  if kind == "config" else
                  "Manage secrets on the master: encrypted at rest, never shown "
                  "(see docs/secrets.md).")
    return group


secrets = _group("secret")
configs = _group("config")


@secrets.command("keygen")
def keygen() -> None:
    """Print a new key for the master's --secrets-key-file (keep it off the database)."""
    from mesoslite.secrets.crypto import generate_key

    click.echo(generate_key())


@configs.command("show")
@click.argument("name")
@click.option("--key", default=None, help="Print only this key's value, as is.")
@MASTER_OPTION
def show(name: str, key: str | None, master: str) -> None:
    """Print a config map's keys and values."""
    body = request("GET", _url(master, "configs", name))
    if key is not None:
        if key not in body["data"]:
            raise click.ClickException(f"config {name} has no key '{key}'")
        click.echo(body["data"][key], nl=False)
        return
    click.echo(f"# config {body['name']} version {body['version']}")
    for k in body["keys"]:
        click.echo(f"{k}: {body['data'][k]}")
