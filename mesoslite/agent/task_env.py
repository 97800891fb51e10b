"""The environment a task starts with (pure).

Mesos' variables (MESOS_TASK_ID, MESOS_SANDBOX, ...) plus Marathon's (HOST, PORT0..N,
PORTS, PORT), then the task's own ``command.environment`` on top, so a task can
override anything but cannot lose its ports.  A task group's task also gets
``MESOSLITE_GROUP_SANDBOX``, its group's shared sandbox.
"""

from __future__ import annotations

from pathlib import Path

from mesoslite.messages.mesos import TaskInfo

BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
GROUP_SANDBOX_ENV = "MESOSLITE_GROUP_SANDBOX"


def task_environment(
    task: TaskInfo,
    framework_id: str,
    agent_id: str,
    hostname: str,
    address: str,
    agent_port: int,
    sandbox: str,
    ports: tuple[int, ...],
    executor_id: str | None = None,
    group_sandbox: Path | None = None,
) -> dict[str, str]:
    """``executor_id``: the task's executor (default: its own, named after it);
    ``group_sandbox``: its task group's shared sandbox, if it belongs to one."""
    env = {
        "PATH": BASE_PATH,
        "LANG": "C.UTF-8",
        "HOME": sandbox,
        "MESOS_TASK_ID": task.task_id.value,
        "MESOS_EXECUTOR_ID": executor_id or task.task_id.value,
        "MESOS_FRAMEWORK_ID": framework_id,
        "MESOS_AGENT_ID": agent_id,
        "MESOS_SLAVE_ID": agent_id,
        "MESOS_AGENT_ENDPOINT": f"{address}:{agent_port}",
        "MESOS_SANDBOX": sandbox,
        "MESOS_DIRECTORY": sandbox,
        "HOST": address,
        "MESOSLITE_HOSTNAME": hostname,
    }
    if group_sandbox is not None:
        env[GROUP_SANDBOX_ENV] = str(group_sandbox)
    for i, port in enumerate(ports):
        env[f"PORT{i}"] = str(port)
    if ports:
        env["PORT"] = str(ports[0])
        env["PORTS"] = ",".join(str(p) for p in ports)
    if task.command is not None and task.command.environment is not None:
        for var in task.command.environment.variables:
            if var.value is not None:
                env[var.name] = var.value
    return env
