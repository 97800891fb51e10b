"""Which user a task (or a custom executor) runs as, as Mesos' agent decides it.

With ``--switch-user`` (the default, as Mesos' ``--switch_user``) the task runs as
``CommandInfo.user``, else as ``FrameworkInfo.user``.  The agent can do that only as
root, or when the user is its own; a user it cannot switch to, or one that does not
exist on the agent, fails the launch with a message naming the field and the user.
With ``--no-switch-user`` every task runs as the agent's own user (Mesos' behaviour
for ``--switch_user=false``, an operator's explicit choice).

An empty ``FrameworkInfo.user`` names no user: the task runs as the agent's.
"""

from __future__ import annotations

import os
import pwd

from mesoslite.agent.containerizers.base import LaunchError
from mesoslite.messages.mesos import CommandInfo, FrameworkInfo

AGENT_USER = ""  # LaunchSpec.user for "the agent's own user"


def task_user(framework: FrameworkInfo | None, command: CommandInfo | None,
              switch_user: bool = True) -> str:
    """The user to run as (``AGENT_USER``: the agent's own); LaunchError naming the
    field when the agent may not run the task as the user it asks for."""
    if command is not None and command.user:
        user, field = command.user, "command.user"
    elif framework is not None and framework.user:
        user, field = framework.user, "framework_info.user"
    else:
        return AGENT_USER
    if not switch_user:
        return AGENT_USER
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise LaunchError(f"Cannot run the task as {field} '{user}': no such user on this "
                          "agent") from None
    if entry.pw_uid == os.geteuid():
        return user
    if os.geteuid() != 0:
        raise LaunchError(f"Cannot run the task as {field} '{user}': the agent is not root "
                          "and cannot switch users (an agent started with "
                          "--no-switch-user runs tasks as its own user)")
    return user
