"""Crash points for the fault suite: ``MESOSLITE_CRASH_AT=<name>`` makes the process
die (``os._exit``, no cleanup, like ``kill -9``) when it reaches that point.

Points are named ``component.operation.where``; the fault suite uses them to prove
that a crash anywhere inside a launch or a commit loses nothing and duplicates
nothing.  Unset (the default), a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os

ENV = "MESOSLITE_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os._exit(137)
