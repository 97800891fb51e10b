"""Exceptions raised by the executor driver.

They share ``DriverError`` with the scheduler driver's, so one ``except`` catches
either family; ``CallError`` (the agent refused a call: its HTTP status and message)
and ``NotSubscribedError`` are the scheduler driver's own classes.
"""

from __future__ import annotations

from mesoslite.scheduler.errors import CallError, DriverError, NotSubscribedError


class AgentConnectionError(DriverError, ConnectionError):
    """A call could not reach the agent (refused, reset, timed out)."""


class AgentLostError(DriverError):
    """The driver gave up on the agent: no subscription for the recovery timeout, or
    the stream broke while framework checkpointing is off.  ``ExecutorDriver.run``
    raises it after the executor's ``shutdown`` callback ran."""


__all__ = ["AgentConnectionError", "AgentLostError", "CallError", "DriverError",
           "NotSubscribedError"]
