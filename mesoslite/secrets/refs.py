"""How a TaskInfo references secrets and config maps (Mesos' shape), read in one place.

* an environment variable ``{name, type: SECRET, secret: {type: REFERENCE,
  reference: {name, key}}}`` gets that key's value (a reference without ``key`` needs
  an object with exactly one key);
* a volume ``{container_path, source: {type: SECRET, secret: {type: REFERENCE,
  reference: {name, key}}}}`` is a read-only file holding the key's value; without
  ``key`` it is a directory with one file per key.

``reference.name`` is a secret's name, or ``config:NAME`` for a config map.  The master
never puts values into a TaskInfo; it resolves the references for the one agent that
runs the task (see ``mesoslite.master.secrets``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mesoslite.messages.mesos import TaskInfo, Volume

CONFIG_PREFIX = "config:"
SECRET_TYPE = "SECRET"
REFERENCE = "REFERENCE"


@dataclass(frozen=True)
class Use:
    """One reference of a task: ``env`` names the variable, or ``volume`` is the index
    in ``container.volumes``."""

    kind: str  # "secret" or "config"
    name: str
    key: str | None
    env: str | None = None
    volume: int | None = None
    path: str = ""

    @property
    def what(self) -> str:
        """For messages: ``secret 'db' key 'password'``."""
        key = f" key '{self.key}'" if self.key else ""
        return f"{self.kind} '{self.name}'{key}"


def split_name(ref: str) -> tuple[str, str]:
    """``config:NAME`` -> ("config", NAME); anything else -> ("secret", ref)."""
    if ref.startswith(CONFIG_PREFIX):
        return "config", ref[len(CONFIG_PREFIX):]
    return "secret", ref


def is_secret_volume(volume: Volume) -> bool:
    return volume.source is not None and (
        volume.source.type == SECRET_TYPE or volume.source.secret is not None)


def task_uses(task: TaskInfo) -> list[Use]:
    """Every secret/config reference of ``task`` (assumes ``validate_refs`` passed)."""
    out: list[Use] = []
    command = task.command
    if command is not None and command.environment is not None:
        for var in command.environment.variables:
            if var.type == SECRET_TYPE and var.secret and var.secret.reference:
                ref = var.secret.reference
                kind, name = split_name(ref.name)
                out.append(Use(kind, name, ref.key, env=var.name))
    container = task.container
    for i, vol in enumerate(container.volumes if container is not None else []):
        if is_secret_volume(vol) and vol.source and vol.source.secret:
            ref = vol.source.secret.reference
            if ref is not None:
                kind, name = split_name(ref.name)
                out.append(Use(kind, name, ref.key, volume=i, path=vol.container_path))
    return out


def validate_refs(task: TaskInfo) -> str | None:
    """None, or the TASK_ERROR message for a malformed reference (master validation)."""
    command = task.command
    for var in (command.environment.variables
                if command is not None and command.environment is not None else []):
        if var.type == SECRET_TYPE or var.secret is not None:
            if var.type != SECRET_TYPE:
                return f"Environment variable '{var.name}' has a secret but type is not SECRET"
            error = _check_secret(var.secret, f"Environment variable '{var.name}'")
            if error:
                return error
            if var.value is not None:
                return f"Environment variable '{var.name}' is a SECRET: it takes no 'value'"
    container = task.container
    for vol in container.volumes if container is not None else []:
        if is_secret_volume(vol):
            assert vol.source is not None
            where = f"Volume '{vol.container_path}'"
            if vol.source.type != SECRET_TYPE:
                return f"{where} has a secret but source type is not SECRET"
            error = _check_secret(vol.source.secret, where)
            if error:
                return error
            if not vol.container_path or ".." in vol.container_path.split("/"):
                return f"{where}: the container path must be set and must not contain '..'"
    return None


def _check_secret(secret: object, where: str) -> str | None:
    from mesoslite.messages.mesos import Secret

    if not isinstance(secret, Secret):
        return f"{where} is of type SECRET but has no 'secret'"
    if secret.type != REFERENCE or secret.reference is None or not secret.reference.name:
        return (f"{where}: only secrets of type REFERENCE (by name) are supported; values "
                "may not be embedded in a TaskInfo ('mesoslite secrets create' stores them)")
    return None
