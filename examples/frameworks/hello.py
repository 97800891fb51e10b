"""hello: run N shell tasks on mesoslite with the framework kit; print how each ended.
``python examples/frameworks/hello.py --master http://127.0.0.1:5050 --tasks 5`` exits 0
when every task finished, 1 if any ended otherwise (docs/framework-api.md walks it)."""

import argparse
import asyncio
import getpass

from mesoslite.framework import AgentLaunch, FrameworkRunner, Outcome, Plan, Round, Workload
from mesoslite.messages.mesos import FrameworkInfo
from mesoslite.resources import Resources
from mesoslite.scheduler import calls, task_info


class Hello(Workload):
    def __init__(self, count: int, cmd: str, cpus: float, mem: float) -> None:
        self.todo = [f"hello-{i}" for i in range(count)]  # not launched yet
        self.count, self.cmd, self.need = count, cmd, Resources.of(cpus=cpus, mem=mem)
        self.final: dict[str, str] = {}  # task id -> how it ended

    def plan(self, now, ready, backoff):  # what waits; done: tear down
        return Plan(demand=len(self.todo), done=len(self.final) == self.count)

    def question(self, offers, now):  # first fit, in offer order: no solver needed
        return Round(problem=None, context=offers)

    def placed(self, round, answer, now):
        launches, cpus, mem = [], self.need.scalar("cpus"), self.need.scalar("mem")
        for agent in round.context:
            free, tasks = agent.resources, []
            while self.todo and self.need <= free:
                name = self.todo.pop(0)
                tasks.append(task_info(name, name, agent.agent_id, cmd=self.cmd, cpus=cpus, mem=mem))
                free -= self.need
            if tasks:
                launches.append(AgentLaunch(agent.agent_id, (calls.launch_operation(tasks),)))
        return launches

    def launch_refused(self, launch, message, now):  # e.g. a rescinded offer
        self.todo[:0] = launch.task_ids

    def on_update(self, status, now):
        if status.state.terminal:
            self.final[status.task_id.value] = status.state.value
            print(f"{status.task_id.value}: {status.state.value} {status.message or ''}".rstrip())
        return Outcome()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run N shell tasks on mesoslite.")
    parser.add_argument("--master", default="http://127.0.0.1:5050", help="URL(s): a,b")
    parser.add_argument("--tasks", type=int, default=3, choices=range(1, 10_001), metavar="N")
    parser.add_argument("--cmd", default="echo hello from $MESOS_TASK_ID")
    parser.add_argument("--cpus", type=float, default=0.1)
    parser.add_argument("--mem", type=float, default=32.0, help="MB per task")
    args = parser.parse_args()
    hello = Hello(args.tasks, args.cmd, args.cpus, args.mem)
    info = FrameworkInfo(user=getpass.getuser(), name="hello")
    asyncio.run(FrameworkRunner(hello, info, args.master).run())
    raise SystemExit(0 if all(s == "TASK_FINISHED" for s in hello.final.values()) else 1)
