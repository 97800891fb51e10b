"""What the agent tells an executor through its environment, as Mesos does.

``ExecutorEnv.from_environ()`` reads the variables an agent (mesoslite's or Mesos')
sets for a custom executor; ``ExecutorEnv(...)`` builds the same thing by hand, for
tests and for executors started some other way.  Durations are written the way
Mesos' ``Duration`` prints them (``5secs``, ``15mins``, ``500ms``) and read with
``parse_duration``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# The units of Mesos' Duration::parse, in seconds.
_UNITS = {
    "ns": 1e-9, "us": 1e-6, "ms": 1e-3, "secs": 1.0, "mins": 60.0, "hrs": 3600.0,
    "days": 86400.0, "weeks": 604800.0,
}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([a-z]+)")

# Defaults for variables an agent may leave out: Mesos' own defaults
# (--executor_shutdown_grace_period, --recovery_timeout) and mesoslite's backoff.
DEFAULT_SHUTDOWN_GRACE_PERIOD = 5.0
DEFAULT_RECOVERY_TIMEOUT = 15 * 60.0
DEFAULT_SUBSCRIPTION_BACKOFF_MAX = 2.0


def parse_duration(text: str) -> float:
    """Seconds in a Mesos duration: a non-negative number and one of the units
    ``ns us ms secs mins hrs days weeks`` (``"5secs"`` -> 5.0, ``"1.5mins"`` -> 90.0).
    Raises ``ValueError`` naming the text otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"{text!r} is not a duration: expected a number and one of "
                         f"{', '.join(_UNITS)} (e.g. '5secs')")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class ExecutorEnv:
    """Where the agent is and who this executor is.

    ``agent_endpoint`` is ``host:port`` (``MESOS_AGENT_ENDPOINT``) or a URL with its
    scheme (``https://host:port``); durations are in seconds.  ``checkpoint`` is
    Mesos' framework checkpointing: with it, a lost agent is waited for (re-subscribing
    for up to ``recovery_timeout``); without it, the executor shuts down.
    """

    agent_endpoint: str
    framework_id: str
    executor_id: str
    agent_id: str | None = None
    directory: str | None = None
    sandbox: str | None = None
    checkpoint: bool = True
    shutdown_grace_period: float = DEFAULT_SHUTDOWN_GRACE_PERIOD
    recovery_timeout: float = DEFAULT_RECOVERY_TIMEOUT
    subscription_backoff_max: float = DEFAULT_SUBSCRIPTION_BACKOFF_MAX
    authentication_token: str | None = None

    @property
    def url(self) -> str:
        """The agent's executor API endpoint."""
        base = self.agent_endpoint.rstrip("/")
        if "://" not in base:
            base = "http://" + base
        return base + "/api/v1/executor"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ExecutorEnv:
        """Read the executor's environment (pass ``os.environ``).

        ``MESOS_AGENT_ENDPOINT``, ``MESOS_FRAMEWORK_ID`` and ``MESOS_EXECUTOR_ID`` are
        required; the rest fall back to Mesos' defaults when absent.  Raises
        ``ValueError`` naming the variable that is missing or malformed.
        """
        def required(name: str) -> str:
            value = environ.get(name, "").strip()
            if not value:
                raise ValueError(f"{name} is not set: is this process started by an agent "
                                 "as a framework's executor?")
            return value

        def duration(name: str, default: float) -> float:
            text = environ.get(name)
            if text is None or not text.strip():
                return default
            try:
                return parse_duration(text)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None

        return cls(
            agent_endpoint=required("MESOS_AGENT_ENDPOINT"),
            framework_id=required("MESOS_FRAMEWORK_ID"),
            executor_id=required("MESOS_EXECUTOR_ID"),
            agent_id=environ.get("MESOS_AGENT_ID") or environ.get("MESOS_SLAVE_ID") or None,
            directory=environ.get("MESOS_DIRECTORY") or None,
            sandbox=environ.get("MESOS_SANDBOX") or environ.get("MESOS_DIRECTORY") or None,
            # As Mesos' executor library reads it: only "1" turns checkpointing on.
            checkpoint=environ.get("MESOS_CHECKPOINT") == "1",
            shutdown_grace_period=duration("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                                           DEFAULT_SHUTDOWN_GRACE_PERIOD),
            recovery_timeout=duration("MESOS_RECOVERY_TIMEOUT", DEFAULT_RECOVERY_TIMEOUT),
            subscription_backoff_max=duration("MESOS_SUBSCRIPTION_BACKOFF_MAX",
                                              DEFAULT_SUBSCRIPTION_BACKOFF_MAX),
            authentication_token=environ.get("MESOS_EXECUTOR_AUTHENTICATION_TOKEN") or None,
        )
