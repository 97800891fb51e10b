"""The agent's side of secrets: the task manager's hooks (see docs/secrets.md).

The master sends a task's resolved references (``TaskSecrets``) inside the
``RunTasks`` that launches it.  ``prepare`` puts the environment values into the
launch spec (they reach the task at exec time and exist only in memory) and the file
values on the task's tmpfs (``secret_files``); ``release`` unmounts that tmpfs when
the task ends; ``sweep`` does so after a restart for tasks that ended meanwhile.

Nothing is checkpointed: ``task.json`` holds the TaskInfo with its references only,
and a running task keeps its environment and its tmpfs across agent restarts, so
nothing needs to be asked again.  No value is logged or put into a status message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pwd
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from mesoslite.agent import secret_files
from mesoslite.agent.checkpoint import Checkpoints
from mesoslite.agent.containerizers.base import LaunchError, LaunchSpec
from mesoslite.messages.agent import TaskSecrets
from mesoslite.secrets.refs import is_secret_volume, task_uses

if TYPE_CHECKING:
    from mesoslite.agent.lifecycle import AgentTaskState


class AgentSecrets:
    """``cp``: the agent's checkpoints (for sandbox paths); ``io``: its I/O thread."""

    def __init__(self, cp: Checkpoints, io: Executor) -> None:
        self.cp = cp
        self.io = io

    async def prepare(self, task: AgentTaskState, spec: LaunchSpec,
                      values: TaskSecrets | None) -> LaunchSpec:
        """The spec with the task's secrets in place; ``LaunchError`` when they cannot
        be given (the master's reason, or the tmpfs failing)."""
        uses = task_uses(spec.task)
        if not uses:
            return spec
        if values is None:
            raise LaunchError("The task references secrets but the master sent no values "
                              "for them")
        if values.error is not None:
            raise LaunchError(f"Secrets: {values.error}")
        missing = sorted({u.env for u in uses if u.env and u.env not in values.env})
        if missing:
            raise LaunchError(f"Secrets: no value came for {', '.join(missing)}")
        env = {**spec.env, **values.env}
        container = spec.task.container
        if not values.volumes or container is None:
            return dataclasses.replace(spec, env=env)
        uid, gid = file_owner(spec, task.cp.containerizer)
        loop = asyncio.get_running_loop()
        volumes = await loop.run_in_executor(
            self.io, secret_files.setup, Path(spec.sandbox), list(container.volumes),
            values.volumes, task.cp.containerizer, uid, gid)
        info = msgspec.structs.replace(
            spec.task, container=msgspec.structs.replace(container, volumes=volumes))
        return dataclasses.replace(spec, env=env, task=info)

    async def release(self, task: AgentTaskState) -> None:
        """Unmount the task's secret files (a task that ended; no-op without any)."""
        container = task.info.container
        if container is None or not any(is_secret_volume(v) for v in container.volumes):
            return
        sandbox = self.cp.sandbox(task.framework_id, task.task_id)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.io, secret_files.release, sandbox)

    async def sweep(self, live: list[Path]) -> list[Path]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.io, secret_files.sweep, self.cp.sandboxes, live)


def file_owner(spec: LaunchSpec, containerizer: str) -> tuple[int, int]:
    """Who the files belong to: the task's user (process: ``command.user`` by name;
    Docker: a numeric ``user``), else the agent's own user (root in containers)."""
    command = spec.task.command
    user = command.user if command is not None else None
    if containerizer == "docker":
        docker = spec.task.container.docker if spec.task.container else None
        for param in docker.parameters if docker is not None else []:
            if param.key.lstrip("-") == "user":
                user = param.value
        uid, _, gid = (user or "").partition(":")
        if uid.isdigit():
            return int(uid), int(gid) if gid.isdigit() else int(uid)
        return 0 if os.geteuid() == 0 else os.geteuid(), os.getegid()
    if user:
        try:
            pw = pwd.getpwnam(user)
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            pass  # the containerizer refuses the user with its own message
    return os.geteuid(), os.getegid()
