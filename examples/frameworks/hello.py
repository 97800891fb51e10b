"""hello: run N shell tasks on a mesoslite cluster and report how each one ended.

    python examples/frameworks/hello.py --master http://127.0.0.1:5050 --tasks 5 \\
        --cmd 'echo hello from $MESOS_TASK_ID'

Exits 0 when every task finished, 1 if any ended otherwise, 2 if the master
aborted the framework.  docs/framework-api.md walks through this file.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from mesoslite.messages.mesos import FrameworkInfo, Offer, TaskStatus
from mesoslite.resources import Resources
from mesoslite.scheduler import (
    CallError,
    Driver,
    DriverError,
    Scheduler,
    offer_resources,
    task_info,
)


class Hello(Scheduler):
    def __init__(self, count: int, cmd: str, cpus: float, mem: float) -> None:
        self.pending = [f"hello-{i}" for i in range(count)]  # not yet launched
        self.count, self.cmd, self.cpus, self.mem = count, cmd, cpus, mem
        self.final: dict[str, str] = {}  # task id -> terminal state
        self.suppressed = False

    async def offers(self, driver: Driver, offers: list[Offer]) -> None:
        need = Resources.of(cpus=self.cpus, mem=self.mem)
        for offer in offers:
            free, tasks = offer_resources(offer), []
            while self.pending and need <= free:  # as many as fit into this offer
                name = self.pending.pop(0)
                task = task_info(
                    name, name, offer.agent_id, cmd=self.cmd, cpus=self.cpus, mem=self.mem
                )
                tasks.append(task)
                free -= need
            if not tasks:
                await driver.decline([offer], refuse_seconds=30)
                continue
            try:
                await driver.launch([offer], tasks)
            except CallError as exc:  # e.g. the offer was rescinded: try again later
                print(f"launch refused: {exc}", file=sys.stderr)
                self.pending[:0] = [t.task_id.value for t in tasks]
        if not self.pending and not self.suppressed:
            await driver.suppress()  # nothing left to place: stop sending offers
            self.suppressed = True

    async def update(self, driver: Driver, status: TaskStatus) -> None:
        if status.state.terminal:
            self.final[status.task_id.value] = status.state.value
            print(f"{status.task_id.value}: {status.state.value} {status.message or ''}".rstrip())
            if len(self.final) == self.count:
                driver.stop()  # the driver acknowledges this last update, then returns


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run N shell tasks on mesoslite.")
    parser.add_argument(
        "--master", default="http://127.0.0.1:5050", help="master URL; several separated by commas"
    )
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--cmd", default="echo hello from $MESOS_TASK_ID")
    parser.add_argument("--cpus", type=float, default=0.1)
    parser.add_argument("--mem", type=float, default=32.0, help="MB per task")
    args = parser.parse_args(argv)
    if args.tasks < 1:
        parser.error("--tasks must be at least 1")
    hello = Hello(args.tasks, args.cmd, args.cpus, args.mem)
    info = FrameworkInfo(user=getpass.getuser(), name="hello")
    driver = Driver(hello, info, args.master.split(","))
    try:
        asyncio.run(driver.run())
    except DriverError as exc:
        print(f"hello: {exc}", file=sys.stderr)
        return 2
    return 0 if all(s == "TASK_FINISHED" for s in hello.final.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
