"""``mesoslite master``: run a master."""

from __future__ import annotations

from pathlib import Path

import click

from mesoslite.cli.runtime import log_options, run_until_signalled, setup_logging
from mesoslite.cli.security_options import (
    build_security,
    read_secret_file,
    server_security_options,
)
from mesoslite.master.core import MasterConfig
from mesoslite.secrets.crypto import Keyring
from mesoslite.store.db import sqlite_url


def parse_weights(text: str | None) -> dict[str, float]:
    """``web=2,batch=1`` -> {"web": 2.0, "batch": 1.0}."""
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        role, _, weight = item.partition("=")
        try:
            value = float(weight)
        except ValueError:
            raise click.BadParameter(f"{item!r}: expected role=weight") from None
        if not role or value <= 0:
            raise click.BadParameter(f"{item!r}: expected role=positive weight")
        out[role] = value
    return out


@click.command("master")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Non-loopback addresses expose the API to the network.")
@click.option("--port", default=5050, show_default=True, type=int)
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("~/.mesoslite/master"),
              show_default=True, help="Where the master keeps its SQLite store.")
@click.option("--store", "store_url", default=None,
              help="SQLAlchemy URL of the store (default: SQLite in --work-dir). "
                   "Example: postgresql://user:pass@host/db")
@click.option("--hostname", default=None, help="Name advertised to frameworks (default: --host).")
@click.option("--advertise-url", default=None,
              help="URL other masters redirect to while this one leads "
                   "(default: http://HOSTNAME:PORT).")
@click.option("--agent-ping-timeout", default=15.0, show_default=True, type=float,
              help="Seconds between pings to each agent.")
@click.option("--max-agent-ping-timeouts", default=5, show_default=True, type=int,
              help="Missed pings before an agent is marked unreachable.")
@click.option("--agent-reregister-timeout", default=600.0, show_default=True, type=float,
              help="After a master restart, seconds agents have to re-register.")
@click.option("--offer-timeout", default=60.0, show_default=True, type=float,
              help="Seconds before an unanswered offer is rescinded (0 = never).")
@click.option("--allocation-interval", default=1.0, show_default=True, type=float)
@click.option("--heartbeat-interval", default=15.0, show_default=True, type=float,
              help="Seconds between HEARTBEAT events on framework streams.")
@click.option("--weights", default=None, help="Role weights for DRF, e.g. 'web=2,batch=1'.")
@click.option("--agent-secret-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="File with the secret agents must present to register.")
@click.option("--secrets-key-file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Key sealing secrets at rest (default: $MESOSLITE_SECRETS_KEY; "
                                 "'mesoslite secrets keygen' makes one). Never stored in the "
                                 "database.")
@server_security_options
@log_options
def master(host: str, port: int, work_dir: Path, store_url: str | None, hostname: str | None,
           advertise_url: str | None,
           agent_ping_timeout: float, max_agent_ping_timeouts: int,
           agent_reregister_timeout: float, offer_timeout: float, allocation_interval: float,
           heartbeat_interval: float, weights: str | None, agent_secret_file: Path | None,
           secrets_key_file: Path | None,
           credentials: Path | None, acls: Path | None, tls_cert: Path | None,
           tls_key: Path | None, insecure: bool, log_level: str, log_format: str) -> None:
    """Run a master: agents register with it, frameworks subscribe to it.

    \b
    High availability: start several masters with the same PostgreSQL --store.
    One leads; the others answer 307 to it and take over when it goes.  A master
    that loses the lead exits with status 1 (restart it: it comes back a follower).

    \b
    Frameworks speak the Mesos v1 scheduler HTTP API at POST /api/v1/scheduler.
    Operators read GET /master/state, /master/tasks, /metrics, /health, /version.
    """
    from mesoslite.master.server import MasterServer

    setup_logging(log_level, log_format)
    work_dir = work_dir.expanduser()
    ssl_context, auth = build_security(host, credentials, acls, tls_cert, tls_key, insecure)
    agent_secret = read_secret_file(agent_secret_file)
    if auth.enabled and agent_secret is None:
        raise click.UsageError("with --credentials, give --agent-secret-file too: otherwise "
                               "anyone could register an agent and receive tasks")
    config = MasterConfig(
        hostname=hostname or host, port=port, agent_ping_timeout=agent_ping_timeout,
        max_agent_ping_timeouts=max_agent_ping_timeouts,
        agent_reregister_timeout=agent_reregister_timeout,
        offer_timeout=offer_timeout or None, allocation_interval=allocation_interval,
        heartbeat_interval=heartbeat_interval, role_weights=parse_weights(weights),
        advertise_url=advertise_url, agent_secret=agent_secret,
    )
    secrets_key = _secrets_key(secrets_key_file)
    holder: dict[str, MasterServer] = {}

    async def start() -> None:
        server = MasterServer(config, store_url or sqlite_url(work_dir / "master.db"),
                              ssl_context=ssl_context, auth=auth, secrets_key=secrets_key)
        holder["server"] = server
        bound = await server.start(host)
        scheme = "https" if ssl_context else "http"
        click.echo(f"mesoslite master listening on {scheme}://{host}:{bound}", err=True)

    async def stop() -> None:
        await holder["server"].stop()

    async def ended() -> None:
        await holder["server"].stopped_event.wait()

    run_until_signalled(start, stop, ended)


def _secrets_key(path: Path | None) -> Keyring | None:
    """The master's secrets key (file, else environment), or a one-line usage error."""
    from mesoslite.secrets.crypto import SecretsKeyError, load_keyring

    try:
        return load_keyring(path.expanduser() if path else None)
    except SecretsKeyError as exc:
        raise click.UsageError(f"secrets key: {exc}") from None
