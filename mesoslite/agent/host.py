"""What the agent's host has: resources (unless given) and its attributes.

Defaults follow Mesos: all CPUs; memory minus min(1 GB, half); disk of the work dir's
filesystem minus min(5 GB, half); ports [31000-32000].

Task ports must stay out of the kernel's ephemeral range (Linux: 32768-60999): the
kernel gives those to outgoing connections, and a client socket on a port, even one
closed a minute ago and still in TIME_WAIT, makes a task's listen on it fail with
"address in use" while SO_REUSEADDR cannot help.  Mesos' default range sits below it
for that reason; ``ephemeral_overlap`` tells the agent when a given range does not.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil

from mesoslite.resources import ResourceError, Resources

DEFAULT_PORTS = (31000, 32000)
LOCAL_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def local_port_range(path: Path = LOCAL_PORT_RANGE) -> tuple[int, int] | None:
    """The kernel's ephemeral port range; None where it cannot be read (not Linux)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return None
    return low, high


def ephemeral_overlap(resources: Resources, ephemeral: tuple[int, int] | None
                      ) -> list[tuple[int, int]]:
    """The parts of ``resources``' ports inside ``ephemeral`` (inclusive bounds)."""
    if ephemeral is None:
        return []
    low, high = ephemeral
    return [(max(lo, low), min(hi, high)) for lo, hi in resources.ports()
            if lo <= high and hi >= low]


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
