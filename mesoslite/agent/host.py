"""What the agent's host has: resources (unless given) and its attributes.

Defaults follow Mesos: all CPUs; memory minus min(1 GB, half); disk of the work dir's
filesystem minus min(5 GB, half); ports [31000-32000].
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil

from mesoslite.resources import ResourceError, Resources

DEFAULT_PORTS = (31000, 32000)


def detect_resources(work_dir: Path) -> Resources:
    cpus = float(os.cpu_count() or 1)
    mem_mb = psutil.virtual_memory().total / 2**20
    mem_mb -= min(1024.0, mem_mb / 2)
    work_dir.mkdir(parents=True, exist_ok=True)
    disk_mb = shutil.disk_usage(work_dir).total / 2**20
    disk_mb -= min(5120.0, disk_mb / 2)
    return Resources(
        scalars={"cpus": cpus, "mem": float(int(mem_mb)), "disk": float(int(disk_mb))},
        ranges={"ports": [DEFAULT_PORTS]},
    )


def agent_resources(text: str | None, work_dir: Path) -> Resources:
    """``--resources`` text, with undetected kinds filled in from the host."""
    detected = detect_resources(work_dir)
    if not text:
        return detected
    given = Resources.parse(text)
    scalars = dict(detected.scalars)
    scalars.update(given.scalars)
    ranges = dict(detected.ranges)
    ranges.update(given.ranges)
    sets = dict(detected.sets)
    sets.update(given.sets)
    return Resources(scalars, ranges, sets)


def parse_attributes(text: str | None) -> dict[str, str]:
    """``rack:r1;zone:a`` -> {"rack": "r1", "zone": "a"}."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(";"))):
        if ":" not in item:
            raise ResourceError(f"attribute {item!r} must be name:value", item)
        name, value = (s.strip() for s in item.split(":", 1))
        if not name or not value:
            raise ResourceError(f"attribute {item!r} must be name:value", item)
        out[name] = value
    return out
