"""``mesoslite batch``: submit, watch and manage jobs on the batch framework.

Every command talks to the batch server's HTTP API (``--server``, default
``http://127.0.0.1:8090`` or ``$MESOSLITE_BATCH``).  Output is for people on a
terminal (a live bar per step) and plain when stdout is not a terminal (one line per
change, for CI logs); ``--json`` prints the API's documents.  Exit codes: 0 the run
succeeded (or the command did what it was asked), 1 the run failed or was cancelled,
2 the command could not do its job (bad file, unknown run, server unreachable): one
plain error line, never a traceback.
"""

from __future__ import annotations

import getpass
import json
import secrets
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import click

from mesoslite.cli.client import master_get, request
from mesoslite.cli.logs_cmd import find_task
from mesoslite.cli.runtime import log_options, run_until_signalled, setup_logging
from mesoslite.cli.security_options import build_security, server_security_options

DEFAULT_SERVER = "http://127.0.0.1:8090"
ENDED = ("SUCCEEDED", "FAILED", "CANCELLED")
ACTIVE_ATTEMPT = ("LAUNCHING", "STAGING", "STARTING", "RUNNING", "KILLING")
POLL_S = 0.5


class BatchError(click.ClickException):
    exit_code = 2


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _api(server: str, method: str, path: str, body: Any = None) -> Any:
    try:
        return request(method, server.rstrip("/") + path, body)
    except click.ClickException as exc:
        raise BatchError(exc.message) from None


SERVER_OPTION = click.option("--server", envvar="MESOSLITE_BATCH", default=DEFAULT_SERVER,
                             show_default=True, help="Batch server URL ($MESOSLITE_BATCH).")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, sort_keys=True))


def _tty() -> bool:
    return sys.stdout.isatty()


@click.group("batch")
def batch() -> None:
    """Batch jobs, CI pipelines and schedules.

    \b
        mesoslite batch submit examples/batch/ci-pipeline.yaml --wait
        mesoslite batch run --image mesoslite/busybox:latest -- echo hello
        mesoslite batch list
        mesoslite batch logs RUN --step test --task 2
    """


# ---------------------------------------------------------------- server


@batch.command("server")
@click.option("--master", default="http://127.0.0.1:5050", show_default=True,
              envvar="MESOSLITE_MASTER", help="Master URL(s), comma-separated.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535))
@click.option("--work-dir", type=click.Path(path_type=Path),
              default=Path("~/.mesoslite/batch"), show_default=True,
              help="Where the default SQLite store lives.")
@click.option("--store", "store_url", default=None,
              help="SQLAlchemy URL of the store (default: SQLite in the work dir).")
@click.option("--name", default="batch", show_default=True, help="Framework name.")
@click.option("--reconcile-interval", default=30.0, show_default=True, type=float,
              help="Seconds between explicit reconciliations.")
@server_security_options
@log_options
def server(master: str, host: str, port: int, work_dir: Path, store_url: str | None,
           name: str, reconcile_interval: float, credentials: Path | None, acls: Path | None,
           tls_cert: Path | None, tls_key: Path | None, insecure: bool, log_level: str,
           log_format: str) -> None:
    """Run the batch framework: subscribe to the master and serve the API.

    A master that requires authentication is reached with MESOSLITE_TOKEN, or
    MESOSLITE_PRINCIPAL and MESOSLITE_SECRET (and MESOSLITE_CA_FILE for a private CA).
    """
    from frameworks.batch.server import BatchConfig, BatchServer
    from frameworks.batch.workload import BatchSettings
    from mesoslite.cli.client import driver_security

    ssl_context, auth = build_security(host, credentials, acls, tls_cert, tls_key, insecure)
    setup_logging(log_level, log_format)
    config = BatchConfig(masters=[m.strip() for m in master.split(",") if m.strip()],
                         work_dir=work_dir.expanduser(), host=host, port=port,
                         store_url=store_url, name=name,
                         settings=BatchSettings(reconcile_interval=reconcile_interval),
                         driver_options=driver_security(), auth=auth, ssl_context=ssl_context)
    try:
        srv = BatchServer(config)
    except Exception as exc:  # noqa: BLE001 - any store failure: one line, no traceback
        raise BatchError(f"cannot open the store: {exc}") from None

    async def start() -> None:
        url = await srv.start()
        click.echo(f"batch framework serving {url} (master {config.masters[0]})", err=True)

    run_until_signalled(start, srv.stop)


# ---------------------------------------------------------------- submit / run


def _load_file(path: Path) -> Any:
    import yaml

    from mesoslite import yamlsafe

    try:
        text = path.read_text()
    except OSError as exc:
        raise BatchError(f"{path}: {exc.strerror or exc}") from None
    try:
        return yamlsafe.load(text) if path.suffix != ".json" else json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise BatchError(f"{path}:{where} not valid YAML/JSON: "
                         f"{getattr(exc, 'problem', None) or exc}") from None


def _parse_local(doc: Any, source: str, user: str) -> Any:
    from frameworks.batch.model import SpecError, parse_job

    try:
        return parse_job(doc, default_user=user)
    except SpecError as exc:
        raise BatchError(f"{source}: {exc}") from None


def _put_and_start(server: str, spec: Any, start: bool) -> dict[str, Any] | None:
    doc = spec.to_json()
    _api(server, "PUT", f"/mesoslite/v1/jobs/{_q(spec.id)}", doc)
    if not start:
        return None
    return _api(server, "POST", f"/mesoslite/v1/jobs/{_q(spec.id)}/runs")


@batch.command("submit")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--wait", is_flag=True, help="Show progress until the run ends.")
@click.option("--run/--no-run", "run_now", default=None,
              help="Start a run now (default: unless the job has a schedule).")
@click.option("--user", default=None, help="Owner for fair sharing (default: the job's "
              "'user', else your login name).")
@SERVER_OPTION
@JSON_OPTION
def submit(file: Path, wait: bool, run_now: bool | None, user: str | None, server: str,
           as_json: bool) -> None:
    """Create or update the job in FILE (YAML or JSON) and start a run."""
    doc = _load_file(file)
    if user and isinstance(doc, dict):
        doc = {**doc, "user": user}
    spec = _parse_local(doc, str(file), getpass.getuser())
    start = run_now if run_now is not None else not spec.schedules
    run = _put_and_start(server, spec, start)
    if run is None:
        job = _api(server, "GET", f"/mesoslite/v1/jobs/{_q(spec.id)}")
        if as_json:
            _emit_json(job)
        else:
            nxt = [s.get("next_run_at") for s in job.get("schedules", [])]
            from frameworks.batch.render import when

            click.echo(f"job {spec.id} saved; next scheduled run "
                       f"{when(min(n for n in nxt if n)) if any(nxt) else '-'}")
        return
    _follow_run(server, run, wait, as_json)


@batch.command("run", context_settings={"ignore_unknown_options": True})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--image", default=None, help="Docker image to run the command in.")
@click.option("--cpus", default=0.1, show_default=True, type=float)
@click.option("--mem", default=64.0, show_default=True, type=float, help="MB.")
@click.option("--retries", default=0, show_default=True, type=click.IntRange(0, 1000))
@click.option("--timeout", default=None, help="Active deadline, e.g. 90s, 10m.")
@click.option("--name", default=None, help="Job id (default: run-<random>).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait for the end and print the output.")
@SERVER_OPTION
@JSON_OPTION
def run_cmd(command: tuple[str, ...], image: str | None, cpus: float, mem: float,
            retries: int, timeout: str | None, name: str | None, wait: bool, server: str,
            as_json: bool) -> None:
    """Run a one-off command: one argument is a shell line, several are exec'd.

    \b
        mesoslite batch run -- 'echo $HOSTNAME && uname -a'
        mesoslite batch run --image mesoslite/busybox:latest -- ls /
    """
    doc: dict[str, Any] = {"id": name or f"run-{secrets.token_hex(3)}", "cpus": cpus,
                           "mem": mem, "retries": retries, "labels": {"one_off": "true"}}
    if len(command) == 1:
        doc["command"] = command[0]
    else:
        doc["args"] = list(command)
    if image:
        doc["image"] = image
    if timeout:
        doc["timeout"] = timeout
    spec = _parse_local(doc, "run", getpass.getuser())
    run = _put_and_start(server, spec, True)
    assert run is not None
    _follow_run(server, run, wait, as_json, show_output=True)


def _follow_run(server: str, run: dict[str, Any], wait: bool, as_json: bool,
                show_output: bool = False) -> None:
    if not wait:
        if as_json:
            _emit_json(run)
        else:
            click.echo(f"started run {run['id']}")
        return
    if not as_json:
        click.echo(f"started run {run['id']} (job {run['job_id']})")
    try:
        final = _watch(server, run["id"], quiet=as_json)
    except KeyboardInterrupt:
        click.echo(f"\nstopped watching; the run goes on: mesoslite batch status {run['id']}",
                   err=True)
        sys.exit(130)
    if as_json:
        _emit_json(final)
    elif show_output:
        info = _api(server, "GET", "/mesoslite/v1/info")
        for attempt in _latest_attempts(final):
            _print_sandbox(server, info["master"], info["framework_id"], attempt, "stdout",
                           follow=False, header=False)
    sys.exit(0 if final["state"] == "SUCCEEDED" else 1)


def _watch(server: str, run_id: str, quiet: bool = False) -> dict[str, Any]:
    """Poll the run until it ends, drawing progress; returns the final document."""
    from frameworks.batch.render import outcome_line, progress_lines, step_line

    tty = _tty() and not quiet
    drawn = 0
    last: dict[str, str] = {}
    path = f"/mesoslite/v1/runs/{_q(run_id)}"
    while True:
        run = _api(server, "GET", path)
        if quiet:
            pass
        elif tty:
            lines = progress_lines(run, color=True)
            if drawn:
                click.echo(f"\x1b[{drawn}F", nl=False)
            for line in lines:
                click.echo("\x1b[2K" + line)
            drawn = len(lines)
        else:
            for step in run["steps"]:
                text = step_line(step)
                if last.get(step["name"]) != text:
                    last[step["name"]] = text
                    click.echo(text)
        if run["state"] in ENDED:
            if not quiet:
                click.echo(outcome_line(run, color=tty))
            return run
        time.sleep(POLL_S)


# ---------------------------------------------------------------- inspect


@batch.command("list")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 500),
              help="Recent runs shown.")
@SERVER_OPTION
@JSON_OPTION
def list_cmd(limit: int, server: str, as_json: bool) -> None:
    """Jobs and recent runs."""
    from frameworks.batch.render import jobs_table, runs_table

    jobs = _api(server, "GET", "/mesoslite/v1/jobs")
    runs = _api(server, "GET", f"/mesoslite/v1/runs?limit={limit}")
    if as_json:
        _emit_json({"jobs": jobs, "runs": runs})
        return
    jobs = [j for j in jobs if j.get("labels", {}).get("one_off") != "true"]  # batch run's
    click.echo(jobs_table(jobs) if jobs else "no jobs")
    click.echo("")
    click.echo(runs_table(runs, _waiting_cells(server, runs)) if runs else "no runs")


def _waiting_cells(server: str, runs: list[dict[str, Any]]) -> dict[str, str]:
    """Run id -> why it waits or how it failed (active runs' attempts are read)."""
    from mesoslite.cli.waiting import run_cell

    active = [r for r in runs if r["state"] == "ACTIVE"]
    queue = _api(server, "GET", "/mesoslite/v1/queue")["queue"] if active else []
    attempts = {r["id"]: _api(server, "GET", f"/mesoslite/v1/runs/{_q(r['id'])}").get("attempts", [])
                for r in active}
    return {r["id"]: run_cell(r, queue, attempts.get(r["id"], ())) for r in runs}


@batch.command("status")
@click.argument("run_id")
@SERVER_OPTION
@JSON_OPTION
def status(run_id: str, server: str, as_json: bool) -> None:
    """A run's steps, task counts and failures.  Exit 0 unless it failed/was cancelled."""
    from frameworks.batch.render import status_text

    run = _api(server, "GET", f"/mesoslite/v1/runs/{_q(run_id)}")
    if as_json:
        _emit_json(run)
    else:
        click.echo(status_text(run, color=_tty()))
    if run["state"] in ("FAILED", "CANCELLED"):
        sys.exit(1)


@batch.command("cancel")
@click.argument("run_id")
@SERVER_OPTION
@JSON_OPTION
def cancel(run_id: str, server: str, as_json: bool) -> None:
    """Cancel a run: its tasks are killed."""
    doc = _api(server, "POST", f"/mesoslite/v1/runs/{_q(run_id)}/actions/stop")
    if as_json:
        _emit_json(doc)
    else:
        click.echo(f"cancelling run {run_id}")


@batch.command("rerun")
@click.argument("run_id")
@click.option("--failed-only", is_flag=True,
              help="Keep the steps that succeeded; run the others again.")
@click.option("--wait", is_flag=True, help="Show progress until the new run ends.")
@SERVER_OPTION
@JSON_OPTION
def rerun(run_id: str, failed_only: bool, wait: bool, server: str, as_json: bool) -> None:
    """Run a run's job again, with the same spec."""
    run = _api(server, "POST", f"/mesoslite/v1/runs/{_q(run_id)}/actions/rerun",
               {"failed_only": failed_only})
    _follow_run(server, run, wait, as_json)


@batch.command("graph")
@click.argument("target")
@SERVER_OPTION
def graph(target: str, server: str) -> None:
    """Print the DAG of a job file, or of a run with each step's state."""
    from frameworks.batch.dag import render

    path = Path(target)
    if path.exists():
        spec = _parse_local(_load_file(path), target, getpass.getuser())
        click.echo(render(spec.steps, sizes={s.name: s.completions for s in spec.steps}))
        return
    run = _api(server, "GET", f"/mesoslite/v1/runs/{_q(target)}")
    from frameworks.batch.model import parse_job

    steps = parse_job({"id": run["job_id"], "steps": [
        {"name": s["name"], "depends_on": s["depends_on"],
         "allow_failure": s["allow_failure"], "command": "-"} for s in run["steps"]]}).steps
    labels = {s["name"]: f"{s['state']} {s['counts']['done']}/{s['completions']}"
              for s in run["steps"]}
    click.echo(render(steps, labels, {s["name"]: s["completions"] for s in run["steps"]}))


# ---------------------------------------------------------------- logs


@batch.command("logs")
@click.argument("run_id")
@click.option("--step", default=None, help="Only this step.")
@click.option("--task", "task_index", default=None, type=int, help="Only this task index.")
@click.option("--attempt", default=None, type=int, help="This attempt (default: latest).")
@click.option("--stderr", "stream", flag_value="stderr", help="Show stderr instead.")
@click.option("--stdout", "stream", flag_value="stdout", default=True, hidden=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the tasks end.")
@click.option("--master", default=None, help="Master URL (default: the batch server's).")
@SERVER_OPTION
def logs(run_id: str, step: str | None, task_index: int | None, attempt: int | None,
         stream: str, follow: bool, master: str | None, server: str) -> None:
    """Print the output of a run's tasks, from the agents' sandboxes."""
    run = _api(server, "GET", f"/mesoslite/v1/runs/{_q(run_id)}")
    chosen = [a for a in run["attempts"] if (step is None or a["step"] == step)
              and (task_index is None or a["index"] == task_index)]
    if attempt is not None:
        chosen = [a for a in chosen if a["number"] == attempt]
    else:
        chosen = _latest_attempts({"attempts": chosen})
    if not chosen:
        raise BatchError(f"run {run_id} has no task matching that (yet)")
    info = _api(server, "GET", "/mesoslite/v1/info")
    several = len(chosen) > 1
    for a in chosen:
        _print_sandbox(server, master or info["master"], info["framework_id"], a, stream,
                       follow, header=several)


def _latest_attempts(run: dict[str, Any]) -> list[dict[str, Any]]:
    latest: dict[tuple[str, int], dict[str, Any]] = {}
    for a in run["attempts"]:
        key = (a["step"], a["index"])
        if key not in latest or a["number"] > latest[key]["number"]:
            latest[key] = a
    return [latest[k] for k in sorted(latest, key=lambda k: (
        [a["step"] for a in run["attempts"]].index(k[0]), k[1]))]


def _sandbox(master_url: str, framework_id: str | None, attempt: dict[str, Any],
             stream: str) -> str:
    """URL of an attempt's output file: its agent found through the master's state
    (``mesoslite logs``' lookup), or, once the master has dropped the task from its
    history, through the agent the batch framework recorded."""
    try:
        task, agent = find_task(master_url, attempt["id"])
        framework_id = task["framework_id"]
    except click.ClickException:
        try:
            agents = master_get(master_url, "/master/state")["slaves"]
        except click.ClickException as exc:
            raise BatchError(exc.message) from None
        agent = next((a for a in agents if a["id"] == attempt["agent_id"]), None)
        if agent is None or not framework_id:
            raise BatchError(f"attempt {attempt['id']} ran on agent {attempt['agent_id']}, "
                             "which is gone") from None
    return (f"http://{agent['address']}:{agent['port']}/sandbox/{_q(framework_id)}/"
            f"{_q(attempt['id'])}/{stream}")


def _print_sandbox(server: str, master_url: str, framework_id: str | None,
                   attempt: dict[str, Any], stream: str, follow: bool, header: bool) -> None:
    """Print (or follow, until the attempt ends) one attempt's output."""
    if header:
        click.echo(f"==> {attempt['step']}[{attempt['index']}] attempt {attempt['number']} "
                   f"({attempt['state']}) <==")
    if attempt["state"] == "LAUNCHING" or not attempt.get("agent_id"):
        return  # nothing ran (yet)
    base = _sandbox(master_url, framework_id, attempt, stream)
    offset = 0
    while True:
        try:
            data, _ = request("GET", f"{base}?offset={offset}", raw=True)
        except click.ClickException as exc:
            raise BatchError(exc.message) from None
        if data:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            offset += len(data)
        if not follow:
            return
        if not data:
            if attempt["state"] not in ACTIVE_ATTEMPT:
                return
            time.sleep(POLL_S)
            run = _api(server, "GET", f"/mesoslite/v1/runs/{_q(attempt['id'].rsplit('.', 3)[0])}")
            attempt = next(a for a in run["attempts"] if a["id"] == attempt["id"])
