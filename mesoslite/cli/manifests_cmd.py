"""``mesoslite apply -f``, ``mesoslite delete -f`` and ``mesoslite get``: files of app
definitions and Kubernetes manifests, and what runs.

A file's objects go where they belong (frameworks/services/kube.py translates them):
apps and pods to the services framework (``--server``, default ``$MESOSLITE_SERVICES``
or http://127.0.0.1:8080), jobs to the batch framework (``--batch``, default
``$MESOSLITE_BATCH`` or http://127.0.0.1:8090, as ``mesoslite batch`` finds it),
config maps and secrets to the master (``--master``, default ``$MESOSLITE_MASTER`` or
http://127.0.0.1:5050).  A server is contacted only when the file has objects for it.
Errors print one plain line and exit non-zero; never a traceback.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from mesoslite import yamlsafe
from mesoslite.cli.apps_cmd import server_option
from mesoslite.cli.client import request
from mesoslite.cli.state_cmd import MASTER_OPTION

BATCH_OPTION = click.option(
    "--batch", "batch", default=lambda: os.environ.get("MESOSLITE_BATCH",
                                                       "http://127.0.0.1:8090"),
    show_default="$MESOSLITE_BATCH or http://127.0.0.1:8090",
    help="URL of the batch framework (for Jobs and CronJobs).")
FILES_OPTION = click.option(
    "-f", "--filename", "targets", multiple=True, required=True,
    type=click.Path(path_type=Path),
    help="File or directory of app definitions / Kubernetes manifests (repeatable).")


class Servers:
    """Where each kind of object lives, and their URLs."""

    def __init__(self, services: str, batch: str, master: str) -> None:
        self.services = services.rstrip("/")
        self.batch = batch.rstrip("/")
        self.master = next((m.strip() for m in master.split(",") if m.strip()),
                           "").rstrip("/")

    def url(self, kind: str, object_id: str, suffix: str = "", **params: Any) -> str:
        quoted = urllib.parse.quote(object_id.strip("/"), safe="/")
        base = {"app": f"{self.services}/v2/apps/{quoted}",
                "pod": f"{self.services}/v2/pods/{quoted}",
                "job": f"{self.batch}/mesoslite/v1/jobs/{quoted}",
                "config": f"{self.master}/master/configs/{quoted}",
                "secret": f"{self.master}/master/secrets/{quoted}"}[kind]
        query = {k: ("true" if v is True else v) for k, v in params.items()
                 if v is not None and v is not False}
        return base + suffix + (f"?{urllib.parse.urlencode(query)}" if query else "")


# ---------------------------------------------------------------- files


def _files(target: Path) -> Iterator[Path]:
    if target.is_dir():
        for path in sorted(target.iterdir()):
            if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
                yield path
    elif target.exists():
        yield target
    else:
        raise click.ClickException(f"{target}: no such file or directory")


def load_documents(targets: tuple[Path, ...]) -> list[Any]:
    """Every YAML/JSON document of the files (directories: their *.yaml/yml/json)."""
    docs: list[Any] = []
    for target in targets:
        for path in _files(target):
            try:
                loaded = yamlsafe.load_all(path.read_text())
            except yamlsafe.YamlLimitError as exc:
                raise click.ClickException(f"{path}: refused: {exc}") from None
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                line = getattr(getattr(exc, "problem_mark", None), "line", None)
                where = f"{path}:{line + 1}" if line is not None else str(path)
                raise click.ClickException(f"{where}: not valid YAML") from None
            for doc in loaded:
                docs.extend(doc if isinstance(doc, list) else [doc])
    return docs


def _translate(targets: tuple[Path, ...], keys: Callable[[str, str], list[str] | None] | None
               ) -> Any:
    from frameworks.services.kube import ManifestError, translate

    try:
        return translate(load_documents(targets), keys)
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from None


def _master_keys(servers: Servers) -> Callable[[str, str], list[str] | None]:
    """Keys of a stored object on the master (for envFrom); None if unknown."""
    def lookup(kind: str, name: str) -> list[str] | None:
        try:
            meta = request("GET", servers.url(kind, name))
        except click.ClickException:
            return None
        keys = meta.get("keys") if isinstance(meta, dict) else None
        return [str(k) for k in keys] if isinstance(keys, list) else None

    return lookup


# ---------------------------------------------------------------- apply


@click.command("apply")
@FILES_OPTION
@click.option("--force", is_flag=True, help="Override a deployment in progress.")
@click.option("--dry-run", is_flag=True, help="Print what would be created; change nothing.")
@click.option("-o", "--output", type=click.Choice(["line", "json"]), default="line",
              show_default=True, help="With --dry-run: one line per object, or its JSON.")
@server_option
@BATCH_OPTION
@MASTER_OPTION
def apply(targets: tuple[Path, ...], force: bool, dry_run: bool, output: str, server: str,
          batch: str, master: str) -> None:
    """Create or update what the files describe: app definitions (Marathon's fields) and
    Kubernetes objects (Deployment, ReplicationController, ReplicaSet, Pod, Service, Job,
    CronJob, ConfigMap, Secret, Namespace, List; translated, with warnings naming every
    field that cannot be honoured)."""
    servers = Servers(server, batch, master)
    translation = _translate(targets, _master_keys(servers))
    for warning in translation.warnings:
        click.echo(f"warning: {warning}", err=True)
    if not translation.objects:
        raise click.ClickException("nothing to apply: no app definitions or supported "
                                   "Kubernetes objects found")
    for obj in translation.objects:
        if dry_run:
            click.echo(json.dumps({"kind": obj.kind, "id": obj.id, "body": obj.body},
                                  sort_keys=True) if output == "json"
                       else f"{obj.kind} {obj.id} would be configured (from {obj.source})")
        else:
            click.echo(_apply_one(servers, obj, force))


def _apply_one(servers: Servers, obj: Any, force: bool) -> str:
    """Create or replace one object; the line to print."""
    if obj.kind == "namespace":
        return f"namespace {obj.id}: objects in it go under {obj.id} (nothing to create)"
    if obj.kind in ("app", "pod"):
        params = {"force": force or None}
        if obj.kind == "app":
            params["partialUpdate"] = "false"
        body, headers = request("PUT", servers.url(obj.kind, obj.id, **params), obj.body,
                                raw=True)
        result = json.loads(body or b"{}")
        for warning in _header_warnings(headers.get("Warning", "")):
            click.echo(f"warning: {obj.id}: {warning}", err=True)
        deployment = result.get("deploymentId") or headers.get("Marathon-Deployment-Id")
        version = result.get("version")
        return (f"{obj.kind} {obj.id} configured (deployment {deployment}"
                + (f", version {version})" if version else ")"))
    if obj.kind == "job":
        return _apply_job(servers, obj)
    meta = request("PUT", servers.url(obj.kind, obj.id), obj.body)
    return (f"{obj.kind} {obj.id} configured (version {meta.get('version')}, keys: "
            f"{', '.join(meta.get('keys', []))})")


def _apply_job(servers: Servers, obj: Any) -> str:
    """A Job runs when it is created; applying it again changes the job, not runs."""
    existed = _exists(servers.url("job", obj.id))
    request("PUT", servers.url("job", obj.id), obj.body)
    if existed:
        return f"job {obj.id} configured (it existed: no new run; delete it to run it again)"
    if not obj.run:
        return f"job {obj.id} created"
    run = request("POST", servers.url("job", obj.id, "/runs"))
    return f"job {obj.id} created, run {run.get('id')} started"


def _exists(url: str) -> bool:
    try:
        request("GET", url)
    except click.ClickException as exc:
        if exc.message.startswith("404"):
            return False
        raise
    return True


def _header_warnings(value: str) -> list[str]:
    return [part.split('"')[1] for part in value.split('299 ') if '"' in part]


# ---------------------------------------------------------------- delete


@click.command("delete")
@FILES_OPTION
@click.option("--force", is_flag=True, help="Override a deployment in progress.")
@server_option
@BATCH_OPTION
@MASTER_OPTION
def delete(targets: tuple[Path, ...], force: bool, server: str, batch: str,
           master: str) -> None:
    """Remove what ``apply -f`` created from the same files: apps, pods, jobs (their
    active runs are stopped), config maps and secrets.  Objects already gone are
    reported and skipped."""
    servers = Servers(server, batch, master)
    translation = _translate(targets, lambda kind, name: [])
    if not translation.objects:
        raise click.ClickException("nothing to delete: no app definitions or supported "
                                   "Kubernetes objects found")
    for obj in reversed(translation.objects):  # referencing objects first
        if obj.kind == "namespace":
            continue
        params: dict[str, Any] = {}
        if obj.kind in ("app", "pod"):
            params["force"] = force or None
        elif obj.kind == "job":
            params["stop_current_runs"] = True
        try:
            request("DELETE", servers.url(obj.kind, obj.id, **params))
        except click.ClickException as exc:
            if not exc.message.startswith("404"):
                raise
            click.echo(f"{obj.kind} {obj.id} not found (already deleted)")
            continue
        click.echo(f"{obj.kind} {obj.id} deleted")


# ---------------------------------------------------------------- get

KINDS = {"app": "apps", "apps": "apps", "deployments": "apps", "pod": "pods", "pods": "pods",
         "job": "jobs", "jobs": "jobs", "cronjobs": "jobs", "config": "configs",
         "configs": "configs", "configmaps": "configs", "secret": "secrets",
         "secrets": "secrets"}
ALL = ("apps", "pods", "jobs", "configs", "secrets")


@click.command("get")
@click.argument("kinds", nargs=-1)
@server_option
@BATCH_OPTION
@MASTER_OPTION
def get(kinds: tuple[str, ...], server: str, batch: str, master: str) -> None:
    """List what exists with its state, one line per object.  KINDS: apps, pods, jobs,
    configs, secrets or all (the default).  With ``all``, a server that cannot be
    reached is a warning and the others are still listed."""
    wanted: list[str] = []
    for kind in kinds or ("all",):
        if kind == "all":
            wanted += [k for k in ALL if k not in wanted]
        elif kind in KINDS:
            wanted += [KINDS[kind]] if KINDS[kind] not in wanted else []
        else:
            raise click.UsageError(f"unknown kind {kind!r} (apps, pods, jobs, configs, "
                                   "secrets or all)")
    from mesoslite.cli.manifests_list import LISTERS

    servers = Servers(server, batch, master)
    everything = not kinds or "all" in kinds
    failed = 0
    for kind in wanted:
        try:
            lines = LISTERS[kind](servers)
        except click.ClickException as exc:
            if not everything:
                raise
            click.echo(f"warning: {kind}: {exc.message}", err=True)
            failed += 1
            continue
        for line in lines:
            click.echo(line)
    if failed == len(wanted):
        raise click.ClickException("no server could be reached (see the warnings)")
