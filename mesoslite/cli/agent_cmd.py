"""``mesoslite agent``: run an agent on this machine."""

from __future__ import annotations

from pathlib import Path

import click

from mesoslite.cli.runtime import log_options, run_until_signalled, setup_logging
from mesoslite.cli.security_options import (
    build_security,
    read_secret_file,
    server_security_options,
)
from mesoslite.resources import ResourceError
from mesoslite.tls import TLSConfigError, client_context


def split_masters(text: str) -> list[str]:
    masters = [m.strip().rstrip("/") for m in text.split(",") if m.strip()]
    for m in masters:
        if not m.startswith(("http://", "https://")):
            raise click.BadParameter(f"{m!r}: expected http://host:port", param_hint="--master")
    if not masters:
        raise click.BadParameter("at least one master URL is needed", param_hint="--master")
    return masters


@click.command("agent")
@click.option("--master", "master_urls", default="http://127.0.0.1:5050", show_default=True,
              envvar="MESOSLITE_MASTER",
              help="Master URL, or several separated by commas (the agent follows the leader).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5051, show_default=True, type=int)
@click.option("--work-dir", type=click.Path(path_type=Path), default=Path("~/.mesoslite/agent"),
              show_default=True,
              help="Checkpoints and task sandboxes. Restart with the same dir to re-attach.")
@click.option("--resources", default=None,
              help="Mesos text form, e.g. 'cpus:4;mem:8192;ports:[31000-32000]'. "
                   "Kinds not given are detected.")
@click.option("--attributes", default=None, help="e.g. 'rack:r1;zone:a'.")
@click.option("--hostname", default=None, help="Name in offers (default: this machine's name).")
@click.option("--advertise-ip", default=None,
              help="Address tasks are reached at (default: --host).")
@click.option("--containerizers", default=None,
              help="Comma list of 'docker', 'process' (default: docker when an engine "
                   "answers, plus process).")
@click.option("--docker-wait", default=30.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds to wait at start for a Docker engine when --containerizers "
                   "names docker (one restarting, or starting at boot with the agent).")
@click.option("--agent-secret-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="File with the secret the master requires of agents.")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="CA bundle to verify an https master with.")
@server_security_options
@click.option("--status-update-retry", default=10.0, show_default=True, type=float,
              help="First resend interval of unacknowledged status updates (doubles).")
@click.option("--usage-interval", default=5.0, show_default=True, type=float,
              help="Seconds between task and volume usage reports to the master (0: none).")
@click.option("--allowed-host-paths", default="",
              help="Comma list of path prefixes host-path volumes may use (default: none).")
@click.option("--fetcher-cache-size", default=2048.0, show_default=True,
              type=click.FloatRange(min=0),
              help="MB of downloads the fetcher keeps for URIs marked cache (0: no cache).")
@click.option("--fetcher-timeout", default=300.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds one URI's download may take before the task fails.")
@click.option("--fetcher-max-size", default=4096.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="MB one fetched URI may have at most.")
@click.option("--allow-privileged-principal", "privileged_principals", multiple=True,
              metavar="NAME", help="Principal (pattern) whose Docker tasks may be privileged.")
@click.option("--allow-host-network-principal", "host_network_principals", multiple=True,
              metavar="NAME", help="Principal (pattern) whose Docker tasks may use HOST "
                                   "networking.")
@click.option("--allow-capability", "capability_grants", multiple=True,
              metavar="NAME=CAP[,CAP]", help="Capabilities a principal's Docker tasks may "
                                            "add with cap-add (ALL: any).")
@click.option("--container-capabilities", default=None,
              help="Comma list of the capabilities Docker tasks keep (default: a minimal "
                   "set, see docs/security.md; '' for none).")
@click.option("--read-only-rootfs", is_flag=True,
              help="Run Docker tasks with a read-only root filesystem.")
@click.option("--executor-registration-timeout", default=60.0, show_default=True, type=float,
              help="Seconds a custom executor has to subscribe before it is killed and "
                   "its tasks fail.")
@click.option("--executor-reregistration-timeout", default=30.0, show_default=True,
              type=float, help="Seconds a running executor has to re-subscribe after an "
                               "agent restart before it is killed.")
@click.option("--switch-user/--no-switch-user", default=True, show_default=True,
              help="Run tasks as their CommandInfo.user, else FrameworkInfo.user (the "
                   "agent must be root, the user must exist here, or the task fails); "
                   "with --no-switch-user every task runs as the agent's own user.")
@log_options
def agent(master_urls: str, host: str, port: int, work_dir: Path, resources: str | None,
          attributes: str | None, hostname: str | None, advertise_ip: str | None,
          containerizers: str | None, docker_wait: float, agent_secret_file: Path | None,
          ca_file: Path | None,
          credentials: Path | None, acls: Path | None, tls_cert: Path | None,
          tls_key: Path | None, insecure: bool, status_update_retry: float,
          usage_interval: float, allowed_host_paths: str, fetcher_cache_size: float,
          fetcher_timeout: float, fetcher_max_size: float,
          privileged_principals: tuple[str, ...], host_network_principals: tuple[str, ...],
          capability_grants: tuple[str, ...], container_capabilities: str | None,
          read_only_rootfs: bool, executor_registration_timeout: float,
          executor_reregistration_timeout: float, switch_user: bool, log_level: str,
          log_format: str) -> None:
    """Run an agent: offer this machine's resources and run tasks.

    Tasks keep running when the agent stops or crashes; start it again with the same
    --work-dir and it re-attaches to them.
    """
    from mesoslite.agent.container_policy import build_policy
    from mesoslite.agent.containerizers import (
        NO_ENGINE,
        available_containerizers,
        make_containerizers,
        wait_for_docker,
    )
    from mesoslite.agent.host import agent_resources, parse_attributes
    from mesoslite.agent.server import Agent, AgentConfig
    from mesoslite.agent.volumes import normalize_prefixes

    setup_logging(log_level, log_format)
    work_dir = work_dir.expanduser()
    ssl_context, auth = build_security(host, credentials, acls, tls_cert, tls_key, insecure)
    try:
        master_ssl = client_context(ca_file)
    except TLSConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        res = agent_resources(resources, work_dir)
        attrs = parse_attributes(attributes)
    except ResourceError as exc:
        raise click.BadParameter(str(exc)) from None
    names = ([c.strip() for c in containerizers.split(",") if c.strip()] if containerizers
             else available_containerizers())
    host_paths = [p.strip() for p in allowed_host_paths.split(",") if p.strip()]
    try:
        normalize_prefixes(host_paths)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allowed-host-paths") from None
    try:
        policy = build_policy(container_capabilities, read_only_rootfs, privileged_principals,
                              host_network_principals, capability_grants)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    config = AgentConfig(
        masters=split_masters(master_urls), work_dir=work_dir, resources=res, host=host,
        port=port, hostname=hostname, advertise_address=advertise_ip, attributes=attrs,
        containerizers=names, status_update_retry=status_update_retry,
        agent_secret=read_secret_file(agent_secret_file), usage_interval=usage_interval,
        allowed_host_paths=host_paths,
        executor_registration_timeout=executor_registration_timeout,
        executor_reregistration_timeout=executor_reregistration_timeout,
        fetcher_cache_size_mb=fetcher_cache_size, fetcher_timeout=fetcher_timeout,
        fetcher_max_size_mb=fetcher_max_size, switch_user=switch_user,
    )
    # Before the signal handlers: SIGTERM or ^C while waiting ends the agent at once.
    if "docker" in names and not wait_for_docker(docker_wait):
        raise click.ClickException(f"{NO_ENGINE} (waited {docker_wait:g} s)")
    holder: dict[str, Agent] = {}

    async def start() -> None:
        try:
            cz = make_containerizers(names, work_dir, policy)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        holder["agent"] = Agent(config, cz, auth=auth, ssl_context=ssl_context,
                                master_ssl=master_ssl)
        bound = await holder["agent"].start()
        click.echo(f"mesoslite agent listening on http://{host}:{bound}", err=True)

    async def stop() -> None:
        await holder["agent"].stop(kill_tasks=False)

    run_until_signalled(start, stop)
