"""The security flags every server command shares, and turning them into objects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mesoslite.auth import Auth, AuthConfigError, check_exposure, load_auth
from mesoslite.tls import TLSConfigError, server_context

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def server_security_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("--credentials", type=_FILE, default=None,
                     help="JSON file of principals and secrets/tokens; enables authentication."),
        click.option("--acls", type=_FILE, default=None,
                     help="JSON file of authorization rules (first match wins; default deny)."),
        click.option("--tls-cert", type=_FILE, default=None, help="Serve HTTPS with this cert."),
        click.option("--tls-key", type=_FILE, default=None, help="Key of --tls-cert."),
        click.option("--insecure", is_flag=True,
                     help="Allow a non-loopback --host without authentication."),
    ]):
        f = option(f)
    return f


def build_security(host: str, credentials: Path | None, acls: Path | None,
                   tls_cert: Path | None, tls_key: Path | None, insecure: bool) -> tuple[Any, Auth]:
    """(server SSL context or None, Auth); a usage error names the bad flag or file."""
    try:
        auth = load_auth(credentials, acls)
        check_exposure(host, auth, insecure)
        return server_context(tls_cert, tls_key), auth
    except (AuthConfigError, TLSConfigError) as exc:
        raise click.UsageError(str(exc)) from None


def read_secret_file(path: Path | None) -> str | None:
    if path is None:
        return None
    secret = path.read_text().strip()
    if not secret:
        raise click.UsageError(f"{path} is empty")
    return secret
