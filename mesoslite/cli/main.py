"""The ``mesoslite`` command: one click group, each command in its own module.

Commands are imported lazily so ``mesoslite --help`` stays fast and a command's heavy
dependencies (OR-Tools, the Docker SDK) load only when it runs.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "agent": "mesoslite.cli.agent_cmd:agent",
    "agents": "mesoslite.cli.agents_cmd:agents",
    "apply": "mesoslite.cli.manifests_cmd:apply",
    "apps": "mesoslite.cli.apps_cmd:apps",
    "batch": "mesoslite.cli.batch_cmd:batch",
    "configs": "mesoslite.cli.secrets_cmd:configs",
    "delete": "mesoslite.cli.manifests_cmd:delete",
    "deploy": "mesoslite.cli.apps_cmd:deploy",
    "get": "mesoslite.cli.manifests_cmd:get",
    "lb": "mesoslite.cli.lb_cmd:lb",
    "logs": "mesoslite.cli.logs_cmd:logs",
    "maintenance": "mesoslite.cli.maintenance_cmd:maintenance",
    "master": "mesoslite.cli.master_cmd:master",
    "pack": "mesoslite.cli.pack:pack",
    "quota": "mesoslite.cli.quota_cmd:quota",
    "secrets": "mesoslite.cli.secrets_cmd:secrets",
    "services": "mesoslite.cli.services_cmd:services",
    "state": "mesoslite.cli.state_cmd:state",
    "up": "mesoslite.cli.up:up",
    "weights": "mesoslite.cli.quota_cmd:weights",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module_name, attr = COMMANDS[cmd_name].split(":")
            return getattr(importlib.import_module(module_name), attr)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mesoslite")
def cli() -> None:
    """mesoslite: a small cluster manager in the Apache Mesos mould.

    \b
    Start a local cluster with the bundled frameworks:
        mesoslite up
    Or run the parts yourself, one agent per machine:
        mesoslite master --work-dir /var/lib/mesoslite/master
        mesoslite agent --master http://127.0.0.1:5050 --work-dir /var/lib/mesoslite/agent
    Then look at it:
        mesoslite state
    """


def main() -> None:
    """Run the CLI; every error is one plain line on stderr and a non-zero exit.

    Click's own usage errors would print three lines (usage, hint, error), so
    standalone mode is off and errors are rendered here instead.
    """
    try:
        code = cli.main(standalone_mode=False)
    except click.UsageError as exc:
        hint = f" Try '{exc.ctx.command_path} --help'." if exc.ctx is not None else ""
        click.echo(f"Error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
