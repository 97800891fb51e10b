"""An executor written with pymesos' ``MesosExecutorDriver`` (a third-party Mesos
client library), run unchanged by the compatibility tests: each task goes RUNNING
then FINISHED with its ``data`` echoed; each framework message comes back prefixed
with ``echo:``; a KILL answers TASK_KILLED."""

from __future__ import annotations

import threading

from pymesos import Executor, MesosExecutorDriver, decode_data, encode_data


class EchoExecutor(Executor):
    def launchTask(self, driver, task):
        def run() -> None:
            driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_RUNNING"})
            if decode_data(task.get("data", "")) != b"run":
                driver.sendStatusUpdate({"task_id": task["task_id"], "state": "TASK_FINISHED",
                                         "data": task.get("data", "")})

        threading.Thread(target=run, daemon=True).start()

    def killTask(self, driver, task_id):
        driver.sendStatusUpdate({"task_id": task_id, "state": "TASK_KILLED"})

    def frameworkMessage(self, driver, message):
        driver.sendFrameworkMessage(encode_data(b"echo:" + decode_data(message)))


if __name__ == "__main__":
    MesosExecutorDriver(EchoExecutor()).run()
