"""Exceptions raised by the scheduler driver.

All derive from ``DriverError`` so a framework can catch the family at once.
``CallError`` here is the *client's* view of a rejected call (an HTTP status and the
master's message); it is unrelated to ``mesoslite.messages.scheduler.CallError``,
which the master raises while validating a request body.
"""

from __future__ import annotations


class DriverError(Exception):
    """Base class of every exception the driver raises."""


class CallError(DriverError):
    """The master answered a call with a non-2xx status.

    ``status`` is the HTTP status (400 bad call, 403 not subscribed, 307 not the
    leader, 5xx master trouble), ``message`` the master's plain-text explanation,
    ``call_type`` the Mesos call name (``"DECLINE"``) and ``location`` the
    ``Location`` header of a redirect, if any.
    """

    def __init__(
        self, status: int, message: str, call_type: str = "", location: str | None = None
    ) -> None:
        self.status = status
        self.message = message
        self.call_type = call_type
        self.location = location
        what = f"{call_type} " if call_type else ""
        super().__init__(f"{what}rejected with HTTP {status}: {message or '(no message)'}")


class MasterConnectionError(DriverError, ConnectionError):
    """A call could not reach the master (refused, reset, timed out)."""


class MasterUnreachableError(MasterConnectionError):
    """No master in the list accepted a SUBSCRIBE (each one's failure is in the text)."""


class NotSubscribedError(DriverError):
    """A call was made while the driver holds no subscription (before SUBSCRIBED,
    or between a dropped stream and the next successful re-subscription)."""


class DriverAborted(DriverError):
    """The master told the framework to abort (an ERROR event, or a SUBSCRIBE it
    refused with a 4xx); ``Driver.run`` raises this after ``Scheduler.error`` ran."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)
