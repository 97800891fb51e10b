"""``volumes`` of batch jobs and steps: host paths and named Docker volumes.

    volumes:
      - {container_path: /in, host_path: /srv/data, mode: RO}     # agent allow-list
      - {container_path: /cache, docker_volume: build-cache}       # Docker jobs only
      - {container_path: scratch, host_path: scratch}              # inside the sandbox

A step inherits the job's ``volumes`` unless it sets its own (like every task
field).  Absolute host paths must lie under a prefix the agent allows
(``--allowed-host-paths``); the agent fails the task with a sentence naming the
volume otherwise.  Local persistent volumes are for long-running apps
(docs/storage.md), not jobs.  Pure: parsing and the Mesos ``Volume`` of each entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from frameworks.batch.fields import Reader, join_path
from mesoslite.messages.mesos import DockerVolumeSource, Volume, VolumeMode, VolumeSource

FIELDS = ("container_path", "host_path", "docker_volume", "mode")
_DOCKER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class JobVolume:
    container_path: str
    host_path: str | None = None
    docker_volume: str | None = None
    mode: str = "RW"

    def to_json(self) -> dict[str, str]:
        out = {"container_path": self.container_path, "mode": self.mode}
        if self.host_path is not None:
            out["host_path"] = self.host_path
        if self.docker_volume is not None:
            out["docker_volume"] = self.docker_volume
        return out

    def to_mesos(self) -> Volume:
        mode = VolumeMode.RO if self.mode == "RO" else VolumeMode.RW
        if self.docker_volume is not None:
            return Volume(container_path=self.container_path, mode=mode, source=VolumeSource(
                type="DOCKER_VOLUME", docker_volume=DockerVolumeSource(name=self.docker_volume)))
        return Volume(container_path=self.container_path, mode=mode, host_path=self.host_path)


def job_volumes(reader: Reader) -> tuple[JobVolume, ...] | None:
    """``volumes`` as ``JobVolume``s (errors added with their paths); None when absent."""
    raw = reader.data.get("volumes")
    if raw is None:
        return None
    where = reader.at("volumes")
    if not isinstance(raw, list):
        reader.errors.add(where, "must be a list of {container_path, host_path|docker_volume}")
        return None
    out: list[JobVolume] = []
    for i, item in enumerate(raw):
        at = join_path(where, i)
        if not isinstance(item, Mapping):
            reader.errors.add(at, "must be {container_path, host_path|docker_volume, mode}")
            continue
        sub = Reader(item, at, reader.errors)
        sub.unknown(FIELDS)
        target = sub.string("container_path")
        host = sub.string("host_path")
        named = sub.string("docker_volume")
        mode = (sub.string("mode") or "RW").upper()
        if not target or ".." in target.split("/"):
            reader.errors.add(join_path(at, "container_path"), "must be a path without '..'")
            continue
        if (host is None) == (named is None):
            reader.errors.add(at, "give exactly one of host_path or docker_volume")
            continue
        if named is not None and not _DOCKER_NAME.match(named):
            reader.errors.add(join_path(at, "docker_volume"), "must be a Docker volume name")
            continue
        if mode not in ("RO", "RW"):
            reader.errors.add(join_path(at, "mode"), "must be RO or RW")
            continue
        out.append(JobVolume(target, host, named, mode))
    return tuple(out)
