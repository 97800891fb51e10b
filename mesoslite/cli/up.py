"""``mesoslite up``: a whole local cluster in the foreground, on the embedded defaults."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from mesoslite.cli.runtime import log_options, run_until_signalled, setup_logging

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The example frameworks ``up`` runs, each as its own process with ``--master URL``:
# shell tasks to completion, and a parameter sweep with its own executor per agent.
EXAMPLE_RUNS = (("hello.py", ("--tasks", "5")), ("sweep", ("--points", "100")))


@click.command("up")
@click.option("--port", default=5050, show_default=True, type=int, help="Master port.")
@click.option("--agents", default=3, show_default=True, type=click.IntRange(1, 64),
              help="Agents to start (each gets an equal share of this machine).")
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("~/.mesoslite/up"),
              show_default=True, help="Master store, agent checkpoints and sandboxes.")
@click.option("--examples/--no-examples", default=True, show_default=True,
              help="Run the example framework(s) once the cluster is up.")
@click.option("--services/--no-services", default=True, show_default=True,
              help="Host the services framework (Marathon API: mesoslite apply/apps ...).")
@click.option("--services-port", default=8080, show_default=True, type=int,
              help="Port of the services framework's API.")
@click.option("--dns-port", default=8053, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the services framework's DNS responder (UDP and TCP).")
@click.option("--lb/--no-lb", default=True, show_default=True,
              help="Run a load balancer on the apps' service ports (docs/discovery.md).")
@click.option("--lb-status-port", default=8075, show_default=True, type=int,
              help="Port of the load balancer's /status and /metrics.")
@click.option("--batch/--no-batch", default=True, show_default=True,
              help="Host the batch framework (jobs, pipelines: mesoslite batch ...).")
@click.option("--batch-port", default=8090, show_default=True, type=int,
              help="Port of the batch framework's API.")
@log_options
def up(port: int, agents: int, work_dir: Path, examples: bool, services: bool,
       services_port: int, dns_port: int, lb: bool, lb_status_port: int, batch: bool,
       batch_port: int, log_level: str, log_format: str) -> None:
    """Run a master and N agents on this machine until Ctrl-C.

    \b
    Everything listens on 127.0.0.1 (the load balancer on the Docker bridge
    gateway too, for containers).  Ctrl-C (or SIGTERM) stops the cluster and
    kills its tasks.  Meanwhile, in another terminal:
        mesoslite state
        mesoslite logs TASK_ID
    """
    from mesoslite.testing.cluster import ClusterSpec, LocalCluster

    setup_logging(log_level, log_format)
    from mesoslite.agent.containerizers import available_containerizers

    # Docker when an engine answers, so image-based jobs (examples/batch) run too.
    from mesoslite.secrets.crypto import ensure_key_file

    # A key in the work dir (not in its database) so `mesoslite secrets` works at once.
    spec = ClusterSpec(work_dir=work_dir.expanduser(), agents=agents, master_port=port,
                       containerizers=available_containerizers(),
                       secrets_key=ensure_key_file(work_dir.expanduser() / "secrets.key"))
    cluster = LocalCluster(spec)
    background: list[asyncio.Task[None]] = []
    from frameworks.common.hosting import FrameworkHost

    host = FrameworkHost()

    async def start() -> None:
        await cluster.start()
        # The containerizers too: without docker, Docker apps wait (apps list says why).
        click.echo(f"mesoslite is up: master {cluster.master_url}, {agents} agents "
                   f"({','.join(spec.containerizers or [])}), work dir {spec.work_dir}",
                   err=True)
        if services:
            from frameworks.services.server import hosted as hosted_services

            url = await host.start(hosted_services(cluster.master_url, spec.work_dir,
                                                   services_port, dns_port=dns_port))
            click.echo(f"services framework: {url or 'failed to start (see the log)'}",
                       err=True)
            if lb and url:
                from mesoslite.lb import LbConfig, LoadBalancer

                balancer = LoadBalancer(LbConfig(
                    services=url, status_port=lb_status_port,
                    docker_bridge="docker" in (spec.containerizers or [])))
                status = await host.start(balancer)
                click.echo(f"load balancer: {status or 'failed to start (see the log)'}",
                           err=True)
        if batch:
            from frameworks.batch.server import hosted

            url = await host.start(hosted(cluster.master_url, spec.work_dir, batch_port))
            click.echo(f"batch framework: {url or 'failed to start (see the log)'}", err=True)
        for name, args in EXAMPLE_RUNS:
            path = EXAMPLES / "frameworks" / name
            if examples and path.exists():
                background.append(asyncio.create_task(
                    _run_example(path, cluster.master_url, args)))

    async def stop() -> None:
        click.echo("stopping: killing tasks, then agents and master", err=True)
        for task in background:
            task.cancel()
        # Tasks first, while the frameworks still acknowledge their last updates.
        await cluster.kill_tasks()
        await host.stop()
        await cluster.stop(kill_tasks=True)

    run_until_signalled(start, stop)


async def _run_example(path: Path, master: str, args: tuple[str, ...]) -> None:
    """Run an example framework as its own process (as a user would)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(path), "--master", master, *args)
    try:
        code = await proc.wait()
    except asyncio.CancelledError:
        proc.terminate()
        raise
    click.echo(f"example {path.name} exited with {code}", err=True)
