"""Finding a writable cgroup hierarchy and laying out per-container cgroups.

v1 is used when its memory or cpu controller is mounted read-write (hybrid hosts
keep those on v1); otherwise the v2 unified hierarchy, with whichever of the memory
and cpu controllers it can delegate.  Without either, tasks run without limits and a
single warning is logged per process.
"""

from __future__ import annotations

import logging
import os
from typing import Literal

from mesoslite.agent.containerizers.cgroups import (
    V1_CONTROLLERS,
    V2_CONTROLLERS,
    Cgroup,
    safe_name,
)

log = logging.getLogger(__name__)

CgroupMode = Literal["auto", "v1", "v2", "none"]
_warned: set[str] = set()


def warn_once(key: str, message: str, *args: object) -> None:
    """Log a warning the first time ``key`` is seen in this process."""
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)


def _mount_table(path: str) -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) for every mount."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 4:
                    point = parts[1].replace("\\040", " ")
                    rows.append((point, parts[2], set(parts[3].split(","))))
    except OSError:
        pass
    return rows


def _enable_v2(directory: str, controllers: tuple[str, ...]) -> None:
    """Delegate controllers to the children of ``directory`` (best effort, one by one)."""
    for name in controllers:
        try:
            with open(os.path.join(directory, "cgroup.subtree_control"), "w") as f:
                f.write(f"+{name}")
        except OSError as e:
            log.debug("cannot enable %s in %s: %s", name, directory, e)


class CgroupManager:
    """Creates ``<hierarchy>/<root>/<agent_id>/<container_id>`` cgroups.

    ``mode`` forces a version ("v1"/"v2") or disables cgroups ("none"); "auto" picks
    as described in the module docstring.  ``available`` says whether cgroups are used.
    """

    def __init__(
        self,
        root: str = "mesoslite",
        mode: CgroupMode = "auto",
        mounts_file: str = "/proc/self/mounts",
    ) -> None:
        self.root = "/".join(safe_name(p) for p in root.strip("/").split("/") if p)
        self.version: int | None = None
        self.mounts: dict[str, str] = {}
        self.problem = "disabled by configuration" if mode == "none" else ""
        if mode != "none":
            self._discover(mode, _mount_table(mounts_file))
        if mode == "auto" and self.version is None:
            warn_once(
                "no-cgroups",
                "no writable cgroup hierarchy (%s): tasks run without cpu/memory limits",
                self.problem,
            )

    @property
    def available(self) -> bool:
        return self.version is not None

    def describe(self) -> str:
        if self.version is None:
            return f"cgroups unavailable: {self.problem}"
        return f"cgroup v{self.version} at {self.mounts} (root {self.root!r})"

    def _discover(self, mode: str, table: list[tuple[str, str, set[str]]]) -> None:
        if mode in ("auto", "v1"):
            found = {}
            for point, fstype, opts in table:
                if fstype == "cgroup" and "rw" in opts:
                    found.update({c: point for c in V1_CONTROLLERS if c in opts})
            usable = {c: p for c, p in found.items() if self._make_root(p)}
            if "memory" in usable or "cpu" in usable:
                self.version, self.mounts = 1, usable
                return
            self.problem = "no read-write cgroup v1 memory/cpu controller"
        if mode in ("auto", "v2"):
            for point, fstype, opts in table:
                if fstype == "cgroup2" and "rw" in opts and self._make_root(point):
                    _enable_v2(point, V2_CONTROLLERS)
                    _enable_v2(os.path.join(point, self.root), V2_CONTROLLERS)
                    self.version, self.mounts = 2, {"unified": point}
                    return
            self.problem += "; no writable cgroup v2 hierarchy"

    def _make_root(self, mount: str) -> bool:
        try:
            os.makedirs(os.path.join(mount, self.root), exist_ok=True)
        except OSError as e:
            log.debug("cgroup mount %s not usable: %s", mount, e)
            return False
        return os.access(os.path.join(mount, self.root), os.W_OK)

    def _agent_dirs(self, agent_id: str) -> dict[str, str]:
        return {
            key: os.path.join(mount, self.root, safe_name(agent_id))
            for key, mount in self.mounts.items()
        }

    def container(self, agent_id: str, container_id: str) -> Cgroup | None:
        """The (possibly not yet created) cgroup for a container; None without cgroups."""
        if self.version is None:
            return None
        dirs = {
            key: os.path.join(d, safe_name(container_id))
            for key, d in self._agent_dirs(agent_id).items()
        }
        return Cgroup(self.version, dirs)

    def create(
        self, agent_id: str, container_id: str, cpus: float, mem_bytes: int,
        cpu_limit: float | None = None,
    ) -> Cgroup | None:
        """Create the container's cgroup and apply limits; None without cgroups.

        Raises FileExistsError when it already exists with processes inside (the
        container id is in use), OSError when the hierarchy refuses.
        """
        cgroup = self.container(agent_id, container_id)
        if cgroup is None:
            return None
        if cgroup.pids():
            raise FileExistsError(f"cgroup of container {container_id} already has processes")
        for d in cgroup.dirs.values():
            parent = os.path.dirname(d)
            os.makedirs(parent, exist_ok=True)
            if self.version == 2:
                _enable_v2(parent, V2_CONTROLLERS)
            os.makedirs(d, exist_ok=True)
        for skipped in cgroup.set_limits(cpus, mem_bytes, cpu_limit):
            warn_once(
                f"no-{skipped}-limit",
                "cgroup v%s hierarchy has no usable %s controller: %s limits not enforced",
                self.version,
                skipped,
                skipped,
            )
        return cgroup

    def list_containers(self, agent_id: str) -> set[str]:
        """Directory names (``safe_name(container_id)``) of this agent's cgroups."""
        names: set[str] = set()
        for d in self._agent_dirs(agent_id).values():
            try:
                names.update(e.name for e in os.scandir(d) if e.is_dir())
            except OSError:
                continue
        return names

    def remove_agent_namespace(self, agent_id: str) -> None:
        """rmdir this agent's (empty) namespace directories; best effort."""
        for d in set(self._agent_dirs(agent_id).values()):
            try:
                os.rmdir(d)
            except OSError:
                pass
