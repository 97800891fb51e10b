"""The master's secrets and config maps: the catalog, its writes, and resolution.

* The catalog (``objects``) is loaded when the master starts leading and changed only
  after the store committed the change (``put``/``delete`` go through
  ``MasterStore.apply``, fenced by the leader epoch like every other write).  Secret
  values stay sealed in memory too; they are opened only to resolve a launch.
* ``check(framework, task)`` is the state machine's question at ACCEPT (injected as
  ``MasterState.secrets_check``): whether every reference resolves now, from the
  catalog's metadata alone (no value is opened).  A task whose reference cannot
  resolve gets TASK_ERROR from the master and never reaches an agent.
* ``with_values(run_tasks)`` is called right before a ``RunTasks`` goes to the one
  agent that runs its tasks: it returns a copy carrying, per task with references,
  the resolved values (``TaskSecrets``) or the reason they cannot be given (an object
  deleted since the ACCEPT, a value that is not text for a variable...), which the
  agent reports as the task's failure.  The state machine's
  records, the store, ``/master/state`` and the event stream only ever hold the
  references.  Nothing here logs a value or puts one into an exception.

Authorization (ACL actions, object = the name): the framework's principal needs
``use_secret`` for a secret and ``read_config`` for a config map its tasks use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from mesoslite.auth import Auth
from mesoslite.messages.agent import RunTasks, SecretFile, SecretVolumeValues, TaskSecrets
from mesoslite.messages.mesos import FrameworkInfo, TaskInfo
from mesoslite.secrets.crypto import Keyring, SecretsKeyError
from mesoslite.secrets.model import StoredObject, build
from mesoslite.secrets.refs import Use, task_uses
from mesoslite.store.master_store import Writes

log = logging.getLogger(__name__)

Commit = Callable[[Writes], Coroutine[Any, Any, None]]
USE_ACTIONS = {"secret": "use_secret", "config": "read_config"}


class Unresolvable(Exception):
    """A reference that cannot be given to the task; the text names it (no value)."""


class MasterSecrets:
    """See the module docstring.  ``commit`` makes a ``Writes`` durable (the server's
    retried, epoch-fenced commit)."""

    def __init__(self, keyring: Keyring | None, auth: Auth, commit: Commit) -> None:
        self.keyring = keyring
        self.auth = auth
        self._commit = commit
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self._lock = asyncio.Lock()

    # ---------------------------------------------------------------- catalog

    def recover(self, docs: list[dict[str, Any]]) -> None:
        """Load the stored objects (on becoming leader) and say if any secret cannot
        be opened with this master's key."""
        self.objects = {}
        for doc in docs:
            obj = StoredObject.from_store(doc)
            self.objects[(obj.kind, obj.name)] = obj
        sealed = [o for o in self.objects.values() if o.kind == "secret"]
        if sealed and self.keyring is None:
            log.error("%d secrets are stored but this master has no secrets key "
                      "(--secrets-key-file or MESOSLITE_SECRETS_KEY): tasks using them "
                      "will fail to launch", len(sealed))
        elif self.keyring is not None:
            foreign = sorted({o.key_id for o in sealed if o.key_id != self.keyring.key_id})
            if foreign:
                log.error("secrets encrypted with key(s) %s cannot be opened with this "
                          "master's key %s: tasks using them will fail to launch",
                          ", ".join(foreign), self.keyring.key_id)

    def usable(self, obj: StoredObject) -> bool:
        if obj.kind == "config":
            return True
        return self.keyring is not None and obj.key_id == self.keyring.key_id

    def get(self, kind: str, name: str) -> StoredObject | None:
        return self.objects.get((kind, name))

    def list(self, kind: str) -> list[StoredObject]:
        return sorted((o for (k, _), o in self.objects.items() if k == kind),
                      key=lambda o: o.name)

    async def put(self, kind: str, name: str, values: dict[str, bytes], now: float,
                  create_only: bool = False) -> tuple[StoredObject, bool]:
        """Create or replace (next version); returns (object, created).  Raises
        ``ObjectError`` (invalid), ``FileExistsError`` (``create_only`` and it exists)."""
        async with self._lock:
            previous = self.objects.get((kind, name))
            if previous is not None and create_only:
                raise FileExistsError(f"{kind} '{name}' exists (version {previous.version})")
            obj = build(kind, name, values, now, previous, self.keyring)
            await self._commit(Writes(secrets={(kind, name): obj.to_store()}))
            self.objects[(kind, name)] = obj
        log.info("%s %s %s version %d (keys: %s)", kind, name,
                 "created" if previous is None else "replaced", obj.version, ", ".join(obj.keys))
        return obj, previous is None

    async def delete(self, kind: str, name: str) -> StoredObject | None:
        """Remove it; None when there was none.  Running tasks keep what they got."""
        async with self._lock:
            obj = self.objects.get((kind, name))
            if obj is None:
                return None
            await self._commit(Writes(deleted_secrets={(kind, name)}))
            del self.objects[(kind, name)]
        log.info("%s %s deleted (was version %d)", kind, name, obj.version)
        return obj

    # ---------------------------------------------------------------- resolution

    def check(self, framework: FrameworkInfo, task: TaskInfo) -> str | None:
        """Why one of ``task``'s references cannot resolve now (naming it, never a
        value), or None.  Reads the catalog's metadata only: pure and cheap."""
        for use in task_uses(task):
            problem = self._problem(framework, use)
            if problem is not None:
                return problem
        return None

    def with_values(self, message: RunTasks) -> RunTasks:
        """``message`` as is when no task references anything, else a copy carrying
        each referencing task's ``TaskSecrets``."""
        resolved: list[TaskSecrets] = []
        for launch in message.launches:
            for task in launch.tasks:
                item = self.resolve(launch.framework, task)
                if item is not None:
                    resolved.append(item)
        if not resolved:
            return message
        return msgspec.structs.replace(message, secrets=[*message.secrets, *resolved])

    def resolve(self, framework: FrameworkInfo, task: TaskInfo) -> TaskSecrets | None:
        uses = task_uses(task)
        if not uses:
            return None
        fid = framework.id.value if framework.id is not None else ""
        out = TaskSecrets(framework_id=fid, task_id=task.task_id.value)
        opened: dict[tuple[str, str], dict[str, bytes]] = {}
        try:
            for use in uses:
                problem = self._problem(framework, use)
                if problem is not None:
                    raise Unresolvable(problem)
                values = opened.get((use.kind, use.name))
                if values is None:
                    values = opened[(use.kind, use.name)] = self._open(use)
                self._apply(out, use, values)
        except Unresolvable as exc:
            return TaskSecrets(framework_id=fid, task_id=task.task_id.value, error=str(exc))
        return out

    def _problem(self, framework: FrameworkInfo, use: Use) -> str | None:
        """What keeps one reference from resolving, judged on the metadata."""
        obj = self.objects.get((use.kind, use.name))
        if obj is None:
            return f"{use.kind} '{use.name}' does not exist"
        principal = framework.principal
        if not self.auth.allowed(principal, USE_ACTIONS[use.kind], use.name):
            return (f"framework principal '{principal or 'anonymous'}' is not "
                    f"authorized to use {use.kind} '{use.name}'")
        if not self.usable(obj):
            why = ("this master has no secrets key" if self.keyring is None else
                   f"it was encrypted with key {obj.key_id}, and this master's key is "
                   f"{self.keyring.key_id}")
            return f"{use.kind} '{use.name}' cannot be opened: {why}"
        if use.key is not None and use.key not in obj.keys:
            return f"{use.kind} '{use.name}' has no key '{use.key}'"
        if use.env is not None and use.key is None and len(obj.keys) != 1:
            return (f"environment variable '{use.env}': {use.kind} '{use.name}' has "
                    f"{len(obj.keys)} keys; name one")
        return None

    def _open(self, use: Use) -> dict[str, bytes]:
        obj = self.objects[(use.kind, use.name)]
        try:
            return obj.values(self.keyring)
        except SecretsKeyError as exc:
            raise Unresolvable(f"{use.kind} '{use.name}' cannot be opened: {exc}") from None

    @staticmethod
    def _apply(out: TaskSecrets, use: Use, values: dict[str, bytes]) -> None:
        """Add one reference's values (``_problem`` found none)."""
        if use.key is not None and use.key not in values:  # the metadata lied
            raise Unresolvable(f"{use.kind} '{use.name}' has no key '{use.key}'")
        if use.env is not None:
            data = values[use.key] if use.key is not None else next(iter(values.values()))
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = "\0"
            if "\0" in text:
                raise Unresolvable(f"environment variable '{use.env}': {use.what} is not "
                                   "text (use a file)")
            out.env[use.env] = text
            return
        assert use.volume is not None
        if use.key is not None:
            files = [SecretFile(name="", data=values[use.key])]
        else:
            files = [SecretFile(name=k, data=v) for k, v in sorted(values.items())]
        out.volumes.append(SecretVolumeValues(index=use.volume, files=files))
