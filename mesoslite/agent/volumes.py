"""Task volumes on the agent: host paths, named Docker volumes, local persistent volumes.

A task's volumes are ``TaskInfo.container.volumes`` (a ``MESOS`` container for process
tasks, ``DOCKER`` for Docker).  ``VolumeManager.prepare`` checks them before the
containerizer runs, and returns the ``LaunchSpec`` the containerizer should use:

* **host paths** (absolute) must lie under one of the agent's ``--allowed-host-paths``
  prefixes (after resolving symlinks and ``..``); the default allows none.  Relative
  host paths are inside the task's sandbox and always allowed.
* **sandbox paths** (``source.sandbox_path``): a directory of the task's own sandbox
  (``SELF``) or of its task group's shared one (``PARENT``, where every task of the
  group mounts the same directory: a pod's shared volume), created on first use.
* **named Docker volumes** are passed to the engine (Docker tasks only).
* **local persistent volumes** (``source.persistent``) are directories under
  ``WORK_DIR/volumes/<id>/data``, created on first use with a ``volume.json`` beside
  the data (role, size asked for, creation time), kept across task ends, agent
  restarts and new tasks, and removed only by ``destroy`` (a framework's DESTROY
  operation).  A volume belongs to the role that created it; one live task uses it
  at a time.  For Docker they become bind mounts of that directory; a relative
  container path is inside the sandbox mount (``/mnt/mesos/sandbox/<path>``).
* for **process tasks** every volume becomes a symlink ``SANDBOX/<container_path>``
  to its source: the container path must be relative (there is no mount namespace
  to place it elsewhere), and ``RO`` is not enforced (process tasks are not isolated
  from the agent's filesystem; see docs/storage.md).

Anything refused raises ``LaunchError`` with a sentence naming the volume, which the
agent reports as TASK_FAILED (``REASON_CONTAINER_LAUNCH_FAILED``).
``usage`` measures every persistent volume's disk use (blocking: call it in a thread).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import msgspec

from mesoslite.agent.containerizers.base import LaunchError, LaunchSpec
from mesoslite.agent.containerizers.docker_spec import SANDBOX_MOUNT
from mesoslite.messages.agent import VolumeUsage
from mesoslite.messages.mesos import SandboxPathSource, SandboxPathType, TaskInfo, Volume

VOLUME_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
META = "volume.json"
DATA = "data"


def persistent_ids(info: TaskInfo) -> list[str]:
    """Ids of the local persistent volumes a task uses."""
    container = info.container
    if container is None:
        return []
    return [v.source.persistent.id for v in container.volumes
            if v.source is not None and v.source.persistent is not None]


def normalize_prefixes(prefixes: Iterable[str]) -> list[str]:
    """Absolute, resolved prefixes; raises ``ValueError`` for a relative one."""
    out = []
    for prefix in prefixes:
        prefix = prefix.strip()
        if not prefix:
            continue
        if not prefix.startswith("/"):
            raise ValueError(f"allowed host path '{prefix}' must be absolute")
        out.append(os.path.realpath(prefix))
    return out


class VolumeManager:
    """The agent's volumes.  ``allowed_host_paths``: prefixes host-path volumes may use."""

    def __init__(self, work_dir: Path, allowed_host_paths: Iterable[str] = ()) -> None:
        self.root = work_dir / "volumes"
        self.allowed = normalize_prefixes(allowed_host_paths)

    # ---------------------------------------------------------------- launch

    def prepare(self, spec: LaunchSpec, containerizer: str, role: str,
                users: Mapping[str, str]) -> LaunchSpec:
        """Check and set up ``spec``'s volumes (blocking file operations).

        ``role``: the task's framework role (owner of the persistent volumes it
        creates); ``users``: persistent volume id -> the live task using it (other
        than this one).  Returns the spec to launch; raises ``LaunchError``."""
        container = spec.task.container
        if container is None or not container.volumes:
            return spec
        resolved = [self._resolve(vol, spec, containerizer, role, users)
                    for vol in container.volumes]
        if containerizer != "docker":
            for vol in resolved:
                self._link(vol, spec)
            resolved = []  # the sandbox holds them now; nothing for the containerizer
        task = msgspec.structs.replace(
            spec.task, container=msgspec.structs.replace(container, volumes=resolved))
        return dataclasses.replace(spec, task=task)

    def _resolve(self, vol: Volume, spec: LaunchSpec, containerizer: str, role: str,
                 users: Mapping[str, str]) -> Volume:
        """The volume with its source made concrete: persistent -> a host path."""
        target = vol.container_path
        source = vol.source
        if containerizer != "docker":
            _check_relative_target(target)
        if source is not None and source.persistent is not None:
            path = self._persistent(source.persistent.id, source.persistent.size_mb, role,
                                    users, target)
            if containerizer == "docker" and not target.startswith("/"):
                target = f"{SANDBOX_MOUNT}/{_clean_relative(target)}"
            return Volume(container_path=target, mode=vol.mode, host_path=str(path))
        if source is not None and source.docker_volume is not None:
            if containerizer != "docker":
                raise LaunchError(f"Volume {target}: named Docker volumes "
                                  f"('{source.docker_volume.name}') need a Docker container")
            return vol
        if source is not None and source.sandbox_path is not None:
            return Volume(container_path=target, mode=vol.mode,
                          host_path=str(_sandbox_dir(spec, source.sandbox_path, target)))
        host = vol.host_path or (source.host_path.path if source and source.host_path else None)
        if not host:
            raise LaunchError(f"Volume {target}: needs a host path, a Docker volume or a "
                              "persistent volume source")
        if host.startswith("/"):
            self._check_allowed(host, target)
        else:
            _inside(spec.sandbox, host, f"Volume {target}: host path '{host}'")
        return Volume(container_path=target, mode=vol.mode, host_path=host)

    def _check_allowed(self, host: str, target: str) -> None:
        real = os.path.realpath(host)
        for prefix in self.allowed:
            if os.path.commonpath([prefix, real]) == prefix:
                return
        allowed = ", ".join(self.allowed) if self.allowed else "none"
        raise LaunchError(f"Volume {target}: host path {host} is not allowed on this agent "
                          f"(allowed prefixes: {allowed}; see --allowed-host-paths)")

    def _persistent(self, volume_id: str, size_mb: float, role: str,
                    users: Mapping[str, str], target: str) -> Path:
        if not VOLUME_ID.match(volume_id):
            raise LaunchError(f"Volume {target}: persistent volume id '{volume_id}' is "
                              "invalid (letters, digits, '.', '_', '-')")
        user = users.get(volume_id)
        if user is not None:
            raise LaunchError(f"Volume {target}: persistent volume {volume_id} is in use by "
                              f"task {user}")
        home = self.root / volume_id
        meta = self.read_meta(volume_id)
        if meta is not None and meta.get("role", "*") != role:
            raise LaunchError(f"Volume {target}: persistent volume {volume_id} belongs to "
                              f"role '{meta.get('role')}', not '{role}'")
        if meta is None:
            (home / DATA).mkdir(parents=True, exist_ok=True)
            _write_json(home / META, {"id": volume_id, "role": role, "size_mb": size_mb,
                                      "created_at": time.time()})
        return home / DATA

    def _link(self, vol: Volume, spec: LaunchSpec) -> None:
        """A symlink in the sandbox to the volume's source (process tasks)."""
        assert vol.host_path is not None
        link = _inside(spec.sandbox, _clean_relative(vol.container_path),
                       f"Volume {vol.container_path}")
        if vol.host_path.startswith("/"):
            source = Path(vol.host_path)
        else:  # a directory of the sandbox itself
            source = _inside(spec.sandbox, vol.host_path, f"Volume {vol.container_path}")
            source.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            raise LaunchError(f"Volume {vol.container_path}: the sandbox already has "
                              f"{vol.container_path}")
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(source, link, target_is_directory=True)

    # ---------------------------------------------------------------- records

    def read_meta(self, volume_id: str) -> dict[str, object] | None:
        try:
            return json.loads((self.root / volume_id / META).read_text())
        except (OSError, ValueError):
            return None

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / META).exists())

    def usage(self, users: Mapping[str, str]) -> list[VolumeUsage]:
        """Every persistent volume with its disk use (blocking)."""
        out = []
        for volume_id in self.ids():
            meta = self.read_meta(volume_id) or {}
            out.append(VolumeUsage(
                volume_id=volume_id, disk_used_mb=round(disk_usage(
                    self.root / volume_id / DATA) / 2**20, 3),
                size_mb=float(meta.get("size_mb") or 0.0),  # type: ignore[arg-type]
                role=str(meta.get("role", "*")), task_id=users.get(volume_id),
                timestamp=time.time()))
        return out

    def destroy(self, volume_ids: Iterable[str], role: str, users: Mapping[str, str]
                ) -> tuple[list[str], dict[str, str]]:
        """Remove volumes with their data (blocking).  Returns (destroyed, refused ->
        why); unknown ids count as destroyed (DESTROY is idempotent)."""
        done, refused = [], {}
        for volume_id in volume_ids:
            if not VOLUME_ID.match(volume_id):
                refused[volume_id] = "invalid id"
                continue
            meta = self.read_meta(volume_id)
            if meta is None:
                done.append(volume_id)
                continue
            if meta.get("role", "*") != role:
                refused[volume_id] = f"belongs to role '{meta.get('role')}'"
            elif volume_id in users:
                refused[volume_id] = f"in use by task {users[volume_id]}"
            else:
                (self.root / volume_id / META).unlink(missing_ok=True)
                shutil.rmtree(self.root / volume_id, ignore_errors=True)
                done.append(volume_id)
        return done, refused


def disk_usage(path: Path) -> int:
    """Bytes allocated to the files under ``path`` (like ``du -s``: blocks, not sizes;
    hard links counted once; symlinks not followed)."""
    total, seen = 0, set()
    stack = [str(path)]
    while stack:
        current = stack.pop()
        try:
            entries = os.scandir(current)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1:
                    if key in seen:
                        continue
                    seen.add(key)
                total += st.st_blocks * 512
    return total


def _check_relative_target(target: str) -> None:
    if target.startswith("/"):
        raise LaunchError(f"Volume {target}: process tasks mount volumes inside their "
                          "sandbox; use a relative container path")


def _clean_relative(path: str) -> str:
    clean = os.path.normpath(path).lstrip("/")
    if clean in ("", ".") or clean.startswith(".."):
        raise LaunchError(f"Volume {path}: the container path leaves the sandbox")
    return clean


def _sandbox_dir(spec: LaunchSpec, source: SandboxPathSource, target: str) -> Path:
    """The directory a SANDBOX_PATH volume names, created if missing: in the task's own
    sandbox (SELF) or its group's shared one (PARENT: the group's tasks see the same
    directory, as under Mesos' default executor)."""
    if source.type == SandboxPathType.PARENT:
        if spec.group_sandbox is None:
            raise LaunchError(f"Volume {target}: a PARENT sandbox path needs a task group "
                              "(LAUNCH_GROUP)")
        base = spec.group_sandbox
    elif source.type == SandboxPathType.SELF:
        base = spec.sandbox
    else:
        raise LaunchError(f"Volume {target}: sandbox_path.type must be SELF or PARENT")
    path = _inside(base, _clean_relative(source.path), f"Volume {target}: sandbox path "
                   f"'{source.path}'")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _inside(sandbox: Path, relative: str, what: str) -> Path:
    base = os.path.normpath(str(sandbox))
    full = os.path.normpath(os.path.join(base, relative))
    if os.path.commonpath([base, full]) != base or full == base:
        raise LaunchError(f"{what} leaves the sandbox")
    return Path(full)


def _write_json(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
