"""Framework-author API: subclass ``Scheduler``, hand it to a ``Driver``, ``await run()``.

See ``docs/framework-api.md`` and ``examples/frameworks/hello.py``.
"""

from mesoslite.scheduler import calls
from mesoslite.scheduler.backoff import Backoff
from mesoslite.scheduler.callbacks import Scheduler
from mesoslite.scheduler.driver import Driver
from mesoslite.scheduler.errors import (
    CallError,
    DriverAborted,
    DriverError,
    MasterConnectionError,
    MasterUnreachableError,
    NotSubscribedError,
)
from mesoslite.scheduler.helpers import (
    offer_attributes,
    offer_resources,
    offer_text_attributes,
    resource_list,
    task_info,
    task_resources,
)
from mesoslite.scheduler.recordio import RecordIOError, RecordIOParser

__all__ = [
    "Backoff",
    "CallError",
    "Driver",
    "DriverAborted",
    "DriverError",
    "MasterConnectionError",
    "MasterUnreachableError",
    "NotSubscribedError",
    "RecordIOError",
    "RecordIOParser",
    "Scheduler",
    "calls",
    "offer_attributes",
    "offer_resources",
    "offer_text_attributes",
    "resource_list",
    "task_info",
    "task_resources",
]
