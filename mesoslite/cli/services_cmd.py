"""``mesoslite services``: run the services framework (Marathon-compatible apps).

``mesoslite services --master URL --port 8080 --work-dir DIR`` runs the framework in
the foreground.  It is a group (``invoke_without_command``) so subcommands such as
``mesoslite services endpoints APP`` can sit beside the server options.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from mesoslite.cli.runtime import log_options, setup_logging
from mesoslite.cli.security_options import build_security, server_security_options


@click.group("services", invoke_without_command=True)
@click.option("--master", default="http://127.0.0.1:5050", show_default=True,
              help="Master URL; several separated by commas (the leader is found).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the API listens on. Non-loopback addresses expose it.")
@click.option("--port", default=8080, show_default=True, type=int, help="API port.")
@click.option("--work-dir", type=click.Path(path_type=Path),
              default=Path("~/.mesoslite/services"), show_default=True,
              help="Where the SQLite store lives (unless --store).")
@click.option("--store", "store_url", default=None,
              help="SQLAlchemy URL of the store, e.g. postgresql://user:pass@host/db.")
@click.option("--name", default="mesoslite-services", show_default=True,
              help="Framework name registered with the master.")
@click.option("--role", default="*", show_default=True, help="Role to take offers for.")
@click.option("--failover-timeout", default=7 * 24 * 3600.0, show_default=True, type=float,
              help="Seconds the master keeps the framework's tasks while it is away.")
@click.option("--reconcile-interval", default=30.0, show_default=True, type=float,
              help="Seconds between task reconciliations with the master.")
@click.option("--placement-time-limit", default=0.2, show_default=True, type=float,
              help="Seconds the placement engine may spend per offer round.")
@click.option("--dns/--no-dns", default=True, show_default=True,
              help="Answer DNS for the apps' names (docs/discovery.md).")
@click.option("--dns-host", default="127.0.0.1", show_default=True,
              help="Address of the DNS responder (UDP and TCP).")
@click.option("--dns-port", default=8053, show_default=True, type=click.IntRange(0, 65535),
              help="Port of the DNS responder.")
@server_security_options
@log_options
@click.pass_context
def services(ctx: click.Context, master: str, host: str, port: int, work_dir: Path,
             store_url: str | None, name: str, role: str, failover_timeout: float,
             reconcile_interval: float, placement_time_limit: float, dns: bool,
             dns_host: str, dns_port: int,
             credentials: Path | None, acls: Path | None, tls_cert: Path | None,
             tls_key: Path | None, insecure: bool, log_level: str, log_format: str) -> None:
    """Run the services framework: long-running apps with a Marathon /v2 API.

    \b
    A master that requires authentication is reached with the credentials in
    MESOSLITE_TOKEN, or MESOSLITE_PRINCIPAL and MESOSLITE_SECRET (and MESOSLITE_CA_FILE
    for a private CA), as for the other commands.
    Then, in another terminal:
        mesoslite apply -f examples/redis-master.yaml
        mesoslite apps list
        curl http://127.0.0.1:8080/v2/apps
    """
    if ctx.invoked_subcommand is not None:
        return
    from frameworks.services.server import ServicesConfig, run_services
    from frameworks.services.workload import ServicesSettings
    from mesoslite.cli.client import driver_security

    if placement_time_limit <= 0 or reconcile_interval <= 0:
        raise click.UsageError("--placement-time-limit and --reconcile-interval must be > 0")
    ssl_context, auth = build_security(host, credentials, acls, tls_cert, tls_key, insecure)
    setup_logging(log_level, log_format)
    config = ServicesConfig(
        masters=[m.strip() for m in master.split(",") if m.strip()],
        work_dir=work_dir.expanduser(), host=host, port=port, store_url=store_url, name=name,
        role=role, failover_timeout=failover_timeout,
        settings=ServicesSettings(reconcile_interval_s=reconcile_interval,
                                  time_limit_s=placement_time_limit),
        principal=os.environ.get("MESOSLITE_PRINCIPAL"),
        driver_options=driver_security(),
        auth=auth, ssl_context=ssl_context,
        dns_host=dns_host, dns_port=dns_port if dns else None,
    )
    run_services(config)


from mesoslite.cli.endpoints_cmd import endpoints  # after the group: it adds to it

services.add_command(endpoints)
