"""``mesoslite up``: a whole local cluster in the foreground, on the embedded defaults."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from mesoslite.cli.runtime import log_options, run_until_signalled, setup_logging

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@click.command("up")
@click.option("--port", default=5050, show_default=True, type=int, help="Master port.")
@click.option("--agents", default=3, show_default=True, type=click.IntRange(1, 64),
              help="Agents to start (each gets an equal share of this machine).")
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("~/.mesoslite/up"),
              show_default=True, help="Master store, agent checkpoints and sandboxes.")
@click.option("--examples/--no-examples", default=True, show_default=True,
              help="Run the example framework(s) once the cluster is up.")
@log_options
def up(port: int, agents: int, work_dir: Path, examples: bool, log_level: str,
       log_format: str) -> None:
    """Run a master and N agents on this machine until Ctrl-C.

    \b
    Everything listens on 127.0.0.1.  Ctrl-C (or SIGTERM) stops the cluster and
    kills its tasks.  Meanwhile, in another terminal:
        mesoslite state
        mesoslite logs TASK_ID
    """
    from mesoslite.testing.cluster import ClusterSpec, LocalCluster

    setup_logging(log_level, log_format)
    spec = ClusterSpec(work_dir=work_dir.expanduser(), agents=agents, master_port=port)
    cluster = LocalCluster(spec)
    background: list[asyncio.Task[None]] = []

    async def start() -> None:
        await cluster.start()
        click.echo(f"mesoslite is up: master {cluster.master_url}, {agents} agents, "
                   f"work dir {spec.work_dir}", err=True)
        hello = EXAMPLES / "frameworks" / "hello.py"
        if examples and hello.exists():
            background.append(asyncio.create_task(_run_example(hello, cluster.master_url)))

    async def stop() -> None:
        click.echo("stopping: killing tasks, then agents and master", err=True)
        for task in background:
            task.cancel()
        await cluster.stop(kill_tasks=True)

    run_until_signalled(start, stop)


async def _run_example(path: Path, master: str) -> None:
    """Run an example framework as its own process (as a user would)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(path), "--master", master, "--tasks", "5")
    try:
        code = await proc.wait()
    except asyncio.CancelledError:
        proc.terminate()
        raise
    click.echo(f"example {path.name} exited with {code}", err=True)
