"""The master's resolution of a launch's references under ACLs: a framework principal
without ``use_secret`` gets the task failed with a reason naming the secret, never its
value; an allowed one gets the value for that task only."""

from __future__ import annotations

import os

import pytest

from mesoslite.auth import Auth, Rule
from mesoslite.master.secrets import MasterSecrets
from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    ContainerInfo,
    ContainerType,
    Environment,
    EnvironmentVariable,
    FrameworkInfo,
    Secret,
    SecretReference,
    TaskInfo,
    Volume,
    VolumeMode,
    VolumeSource,
)
from mesoslite.secrets.crypto import Keyring, SecretsKeyError
from mesoslite.secrets.model import build

CANARY = "canary-7f3a9c"


def catalog(rules: list[Rule]) -> MasterSecrets:
    async def commit(_writes) -> None:  # the catalog is loaded, not written, here
        raise AssertionError("no writes expected")

    keyring = Keyring(os.urandom(32))
    secrets = MasterSecrets(keyring, Auth(secrets={"ops": "x"}, rules=rules), commit)
    obj = build("secret", "db", {"password": CANARY.encode()}, 0.0, None, keyring)
    secrets.objects[("secret", "db")] = obj
    return secrets


def task(task_id: str) -> TaskInfo:
    env = Environment(variables=[EnvironmentVariable(
        name="DB_PASSWORD", type="SECRET",
        secret=Secret(type="REFERENCE", reference=SecretReference(name="db", key="password")))])
    return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("a1"),
                    command=CommandInfo(value="true", environment=env))


def framework(principal: str) -> FrameworkInfo:
    return FrameworkInfo(user="u", name=principal, id=ID(f"fw-{principal}"),
                         principal=principal)


def test_use_secret_is_authorized_per_framework_principal() -> None:
    secrets = catalog([Rule(("web",), ("use_secret",), ("db",)),
                       Rule(("*",), ("use_secret",), ("*",), allow=False)])
    allowed = secrets.resolve(framework("web"), task("t1"))
    assert allowed is not None and allowed.error is None
    assert allowed.env == {"DB_PASSWORD": CANARY}
    denied = secrets.resolve(framework("batch"), task("t2"))
    assert denied is not None and denied.env == {}
    assert denied.error == ("framework principal 'batch' is not authorized to use "
                            "secret 'db'")
    assert CANARY not in repr(denied)


def volume_task(task_id: str, name: str, key: str | None) -> TaskInfo:
    """A task with the reference as a file (a volume) instead of a variable."""
    return TaskInfo(name=task_id, task_id=ID(task_id), agent_id=ID("a1"),
                    command=CommandInfo(value="true"), container=ContainerInfo(
                        type=ContainerType.MESOS, volumes=[Volume(
                            container_path="f", mode=VolumeMode.RO, source=VolumeSource(
                                type="SECRET", secret=Secret(
                                    type="REFERENCE",
                                    reference=SecretReference(name=name, key=key))))]))


def test_the_accept_check_names_what_cannot_resolve_and_opens_nothing() -> None:
    """``check`` (the state machine's question at ACCEPT) agrees with resolution on
    every reason a reference fails, from metadata only, and never shows a value."""
    secrets = catalog([Rule(("web",), ("use_secret",), ("db",)),
                       Rule(("*",), ("use_secret",), ("*",), allow=False)])
    two_keys = build("secret", "pair", {"a": b"1", "b": b"2"}, 0.0, None, secrets.keyring)
    secrets.objects[("secret", "pair")] = two_keys
    web, batch = framework("web"), framework("batch")
    assert secrets.check(web, task("t1")) is None
    assert secrets.check(web, volume_task("t2", "db", None)) is None
    cases = [
        (web, volume_task("t3", "gone", None), "secret 'gone' does not exist"),
        (web, volume_task("t4", "db", "user"), "secret 'db' has no key 'user'"),
        (batch, task("t5"), "framework principal 'batch' is not authorized to use secret 'db'"),
    ]
    for fw, item, why in cases:
        assert secrets.check(fw, item) == why
        resolved = secrets.resolve(fw, item)
        assert resolved is not None and resolved.error == why
    allowed = MasterSecrets(secrets.keyring, Auth(), secrets._commit)
    allowed.objects = dict(secrets.objects)
    env_of_pair = task("t6")
    assert env_of_pair.command is not None and env_of_pair.command.environment is not None
    env_of_pair.command.environment.variables[0].secret.reference = SecretReference(name="pair")
    assert allowed.check(web, env_of_pair) == (
        "environment variable 'DB_PASSWORD': secret 'pair' has 2 keys; name one")
    keyless = MasterSecrets(None, Auth(), secrets._commit)
    keyless.objects = dict(secrets.objects)
    assert keyless.check(web, task("t7")) == (
        "secret 'db' cannot be opened: this master has no secrets key")
    other = MasterSecrets(Keyring(os.urandom(32)), Auth(), secrets._commit)
    other.objects = dict(secrets.objects)
    with pytest.raises(SecretsKeyError) as opening:  # what opening it would say
        secrets.objects[("secret", "db")].values(other.keyring)
    assert other.check(web, task("t8")) == f"secret 'db' cannot be opened: {opening.value}"
