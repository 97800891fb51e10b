"""``mesoslite logs TASK_ID``: a task's stdout or stderr, from its agent's sandbox."""

from __future__ import annotations

import sys
import time
import urllib.parse

import click

from mesoslite.cli.client import master_get, request
from mesoslite.cli.state_cmd import MASTER_OPTION

TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
            "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"}


def find_task(master: str, task_id: str) -> tuple[dict, dict]:
    """(task, agent) for ``task_id``, searching running then completed tasks."""
    state = master_get(master, "/master/state")
    agents = {a["id"]: a for a in state["slaves"]}
    for fw in state["frameworks"] + state["completed_frameworks"]:
        for task in fw["tasks"] + fw["unreachable_tasks"] + fw["completed_tasks"]:
            if task["id"] == task_id:
                agent = agents.get(task["slave_id"])
                if agent is None:
                    raise click.ClickException(f"task {task_id} ran on agent "
                                               f"{task['slave_id']}, which is gone")
                return task, agent
    raise click.ClickException(f"no task {task_id!r} is known to the master")


@click.command("logs")
@click.argument("task_id")
@MASTER_OPTION
@click.option("--stderr", "stream", flag_value="stderr", help="Show stderr instead of stdout.")
@click.option("--stdout", "stream", flag_value="stdout", default=True, hidden=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the task ends.")
def logs(task_id: str, master: str, stream: str, follow: bool) -> None:
    """Print a task's stdout (or --stderr), optionally following it."""
    task, agent = find_task(master, task_id)
    base = (f"http://{agent['address']}:{agent['port']}/sandbox/"
            f"{urllib.parse.quote(task['framework_id'], safe='')}/"
            f"{urllib.parse.quote(task_id, safe='')}/{stream}")
    offset = 0
    while True:
        data, _ = request("GET", f"{base}?offset={offset}", raw=True)
        if data:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
            offset += len(data)
        if not follow:
            return
        if not data:
            if task["state"] in TERMINAL:
                return
            time.sleep(0.5)
            task, _ = find_task(master, task_id)
