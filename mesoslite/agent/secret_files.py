"""Secret files on a per-task tmpfs (blocking helpers; the agent calls them in its I/O
thread).

For a task with secret/config *volumes* the agent mounts a tmpfs at
``<sandbox>/.secrets`` (``nosuid,nodev,noexec``, sized to fit), writes volume ``i`` as
``.secrets/<i>`` (a file when the reference names a key, else a directory with one
file per key), gives the files to the task's user with mode 0400 (directories
0500), then remounts the tmpfs read-only.  The values never touch a disk.  When the
task ends the tmpfs is unmounted (``release``); after an agent crash ``sweep`` does it
for every task that is no longer running.

Where the task sees a volume (Mesos' rules: a relative ``container_path`` is inside
the sandbox):

* process tasks: a symlink ``<sandbox>/<container_path>`` to the tmpfs entry (the
  path must be relative: there is no mount namespace);
* Docker tasks: a read-only bind mount of the tmpfs entry at ``container_path``
  (relative: under ``/mnt/mesos/sandbox``), i.e. only a path in the container's
  recorded config, never the value.

Mounting needs ``CAP_SYS_ADMIN`` (agents run as root); without it a launch that needs
secret files fails with a message saying so.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable
from pathlib import Path

from mesoslite.agent.containerizers.base import LaunchError
from mesoslite.agent.containerizers.docker_spec import SANDBOX_MOUNT
from mesoslite.messages.agent import SecretVolumeValues
from mesoslite.messages.mesos import Volume, VolumeMode

MOUNT_DIR = ".secrets"
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MNT_DETACH = 2
_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC
_libc = ctypes.CDLL(None, use_errno=True)


def _mount(target: Path, flags: int, options: str) -> None:
    if _libc.mount(b"tmpfs", str(target).encode(), b"tmpfs", flags, options.encode()) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(target))


def secrets_dir(sandbox: Path) -> Path:
    return sandbox / MOUNT_DIR


def setup(sandbox: Path, volumes: list[Volume], values: list[SecretVolumeValues],
          containerizer: str, uid: int, gid: int) -> list[Volume]:
    """Mount and fill the task's tmpfs; returns ``volumes`` with each secret volume
    replaced by what the containerizer needs (nothing for process tasks, a read-only
    host-path volume for Docker).  Raises ``LaunchError`` naming the volume."""
    by_index = {v.index: v for v in values}
    for index, vol in enumerate(volumes):
        if index in by_index and containerizer != "docker" and vol.container_path.startswith("/"):
            raise LaunchError(f"Volume {vol.container_path}: process tasks get secret files "
                              "inside their sandbox; use a relative container path")
    root = secrets_dir(sandbox)
    release(sandbox)
    root.mkdir(mode=0o700, exist_ok=True)
    size = 64 * 1024 + sum(4096 * (1 + len(v.files)) + sum(len(f.data) for f in v.files)
                           for v in values)
    try:
        _mount(root, _FLAGS, f"size={size},mode=0700")
    except OSError as exc:
        hint = " (the agent needs CAP_SYS_ADMIN: run it as root)" if exc.errno == errno.EPERM \
            else ""
        raise LaunchError(f"Cannot mount a tmpfs for the task's secret files: "
                          f"{exc.strerror}{hint}") from None
    try:
        for item in values:
            _write_volume(root / str(item.index), item, uid, gid)
        os.chown(root, uid, gid)
        os.chmod(root, 0o500)
        _mount(root, _FLAGS | MS_REMOUNT | MS_RDONLY, "")
    except OSError as exc:
        release(sandbox)
        raise LaunchError(f"Cannot write the task's secret files: {exc.strerror}") from None
    out: list[Volume] = []
    for index, vol in enumerate(volumes):
        if index not in by_index:
            out.append(vol)
        elif containerizer == "docker":
            target = vol.container_path
            if not target.startswith("/"):
                target = f"{SANDBOX_MOUNT}/{_relative(target)}"
            out.append(Volume(container_path=target, mode=VolumeMode.RO,
                              host_path=f"{MOUNT_DIR}/{index}"))
        else:
            _link(sandbox, vol.container_path, root / str(index))
    return out


def _write_volume(path: Path, item: SecretVolumeValues, uid: int, gid: int) -> None:
    if len(item.files) == 1 and item.files[0].name == "":
        _write_file(path, item.files[0].data, uid, gid)
        return
    path.mkdir(mode=0o700)
    for f in item.files:
        if not f.name or "/" in f.name or f.name in (".", ".."):
            raise OSError(errno.EINVAL, f"invalid file name for key '{f.name[:80]}'")
        _write_file(path / f.name, f.data, uid, gid)
    os.chown(path, uid, gid)
    os.chmod(path, 0o500)


def _write_file(path: Path, data: bytes, uid: int, gid: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o400)
    try:
        os.write(fd, data)
        os.fchown(fd, uid, gid)
        os.fchmod(fd, 0o400)
    finally:
        os.close(fd)


def _relative(path: str) -> str:
    return os.path.normpath(path).lstrip("/")


def _link(sandbox: Path, container_path: str, target: Path) -> None:
    link = sandbox / _relative(container_path)
    if os.path.commonpath([sandbox, link]) != str(sandbox) or link == sandbox:
        raise LaunchError(f"Volume {container_path}: leaves the sandbox")
    if link.is_symlink() or link.exists():
        raise LaunchError(f"Volume {container_path}: the sandbox already has {container_path}")
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


def release(sandbox: Path) -> None:
    """Unmount the task's tmpfs (its values are gone with it) and remove the mount
    point.  Idempotent; never raises for a tmpfs that is not there."""
    root = secrets_dir(sandbox)
    while os.path.ismount(root):
        if _libc.umount2(str(root).encode(), MNT_DETACH) != 0:
            break
    try:
        root.rmdir()
    except OSError:
        pass


def mounted_under(root: Path) -> list[Path]:
    """Sandboxes under ``root`` with a secrets tmpfs mounted (from /proc/self/mountinfo)."""
    prefix = str(root.resolve()) + "/"
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point.startswith(prefix) and point.endswith("/" + MOUNT_DIR):
                out.append(Path(point).parent)
    return out


def sweep(root: Path, keep: Iterable[Path]) -> list[Path]:
    """Release every secrets tmpfs under ``root`` whose sandbox is not in ``keep``
    (tasks that ended while the agent was down); returns the sandboxes released."""
    live = {p.resolve() for p in keep}
    gone = [s for s in mounted_under(root) if s.resolve() not in live]
    for sandbox in gone:
        release(sandbox)
    return gone
