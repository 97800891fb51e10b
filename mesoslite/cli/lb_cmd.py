"""``mesoslite lb``: the per-host TCP load balancer for the services framework's apps."""

from __future__ import annotations

import os
import ssl

import click

from mesoslite.cli.runtime import log_options, setup_logging


@click.command("lb")
@click.option("--services", "services_url",
              default=lambda: os.environ.get("MESOSLITE_SERVICES", "http://127.0.0.1:8080"),
              show_default="$MESOSLITE_SERVICES or http://127.0.0.1:8080",
              help="URL of the services framework whose endpoints to follow.")
@click.option("--listen", "listen", multiple=True, default=("127.0.0.1",),
              show_default=True,
              help="Address to listen on with every service port (repeatable).")
@click.option("--docker-bridge/--no-docker-bridge", default=True, show_default=True,
              help="Also listen on the Docker bridge gateway, for containers' host entries.")
@click.option("--status", "status", default="127.0.0.1:8075", show_default=True,
              help="HOST:PORT of the /status and /metrics endpoint.")
@click.option("--poll-interval", default=2.0, show_default=True, type=float,
              help="Seconds between reads of the endpoints while the event stream is down.")
@click.option("--connect-timeout", default=2.0, show_default=True, type=float,
              help="Seconds to wait for an endpoint to accept before trying the next.")
@click.option("--insecure", is_flag=True,
              help="Allow --listen or --status on a non-loopback address (exposes every "
              "service port, or the endpoints).")
@log_options
def lb(services_url: str, listen: tuple[str, ...], docker_bridge: bool, status: str,
       poll_interval: float, connect_timeout: float, insecure: bool, log_level: str,
       log_format: str) -> None:
    """Listen on each app's service port and spread connections over its healthy
    endpoints (round-robin, or least-connections with the app label
    MESOSLITE_LB_STRATEGY=least-connections).

    \b
    Run one per agent host.  Processes reach an app at 127.0.0.1:SERVICE_PORT and
    Docker containers at NAME:SERVICE_PORT (host entries the services framework adds
    point at the bridge gateway).  Credentials for the services API come from
    MESOSLITE_TOKEN or MESOSLITE_PRINCIPAL/MESOSLITE_SECRET, as for the other commands.
    """
    from mesoslite.auth import is_loopback
    from mesoslite.cli.client import authorization_header
    from mesoslite.lb.server import LbConfig, run_lb

    exposed = [a for a in listen if not is_loopback(a)]
    if exposed and not insecure:
        raise click.UsageError(f"refusing to listen on {', '.join(exposed)}: every service "
                               "port would be open to that network; give --insecure to accept")
    host, _, port = status.rpartition(":")
    if not host or not port.isdigit():
        raise click.UsageError(f"--status {status!r}: expected HOST:PORT")
    if not is_loopback(host) and not insecure:
        raise click.UsageError(f"refusing to serve /status on {host}: it shows every app's "
                               "endpoints to that network; give --insecure to accept")
    if poll_interval <= 0 or connect_timeout <= 0:
        raise click.UsageError("--poll-interval and --connect-timeout must be > 0")
    setup_logging(log_level, log_format)
    ca = os.environ.get("MESOSLITE_CA_FILE")
    run_lb(LbConfig(services=services_url, listen=list(listen), docker_bridge=docker_bridge,
                    status_host=host, status_port=int(port), poll_interval=poll_interval,
                    connect_timeout=connect_timeout, authorization=authorization_header(),
                    ssl_context=ssl.create_default_context(cafile=ca) if ca else None))
