"""Executor-author API: subclass ``Executor``, hand it to an ``ExecutorDriver``,
``await run()`` (or call ``run(executor)`` from a ``python -m`` entry point).

The executor half of a Mesos framework, over the v1 executor HTTP API
(docs/executors.md, docs/framework-api.md "Executors").
"""

from mesoslite.executor.callbacks import Executor
from mesoslite.executor.driver import ExecutorDriver, run
from mesoslite.executor.env import ExecutorEnv, parse_duration
from mesoslite.executor.errors import (
    AgentConnectionError,
    AgentLostError,
    CallError,
    DriverError,
    NotSubscribedError,
)
from mesoslite.executor.outstanding import Outstanding

__all__ = [
    "AgentConnectionError",
    "AgentLostError",
    "CallError",
    "DriverError",
    "Executor",
    "ExecutorDriver",
    "ExecutorEnv",
    "NotSubscribedError",
    "Outstanding",
    "parse_duration",
    "run",
]
