"""The master's resolution of a launch's references under ACLs: a framework principal
without ``use_secret`` gets the task failed with a reason naming the secret, never its
value; an allowed one gets the value for that task only."""

from __future__ import annotations

import os

from mesoslite.auth import Auth, Rule
from mesoslite.master.secrets import MasterSecrets
from mesoslite.messages.mesos import (
    ID,
    CommandInfo,
    Environment,
    EnvironmentVariable,
    FrameworkInfo,
    Secret,
    SecretReference,
    TaskInfo,
)
from mesoslite.secrets.crypto import Keyring
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
