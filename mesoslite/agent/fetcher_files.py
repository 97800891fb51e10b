"""The fetcher's file work: copy, extract, chmod (blocking: the fetcher runs these in
its threads, never on the event loop).

Archives are unpacked with the standard library (``tarfile``, ``zipfile``, ``gzip``)
into the sandbox.  Every member is checked before anything is written: a member with
an absolute name, one whose path leaves the sandbox (``..``), a link pointing out of
it, or a device file refuses the whole archive (``Refused``).  Tar members are
then extracted with ``tarfile``'s ``data`` filter, which checks again against the
files as they land (a symlink extracted earlier cannot carry a later member out),
drops the archive's owners (the agent may run as root) and clears set-id bits.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from mesoslite.messages.mesos import CommandURI
from mesoslite.uris import archive_kind

EXECUTABLE = 0o755  # rwxr-xr-x, as Mesos' fetcher sets it
_COPY_CHUNK = 1 << 20


class Refused(Exception):
    """A damaged archive, or something that would be written outside the sandbox."""


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symlinks resolved) lies in ``root``."""
    real_root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), real_root]) == real_root


def temp_path(directory: Path, name: str) -> Path:
    """A fresh, unused file name in ``directory`` for a download on its way."""
    fd, path = tempfile.mkstemp(prefix=f".{name[:64]}.", suffix=".fetching", dir=directory)
    os.close(fd)
    return Path(path)


def target_in(sandbox: Path, name: str) -> Path:
    """``sandbox / name`` with its directories created; raises ``Refused`` when it
    would lie outside the sandbox (``name`` is checked already: this is the last
    line of defence, against symlinks)."""
    target = sandbox / name
    if not inside(target.parent, sandbox):
        raise Refused(f"'{name}' would be written outside the sandbox")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def copy_file(source: Path, target: Path) -> int:
    """Copy ``source`` to ``target`` through a temporary file renamed at the end (a
    reader never sees half a file); returns the bytes copied.  Raises ``OSError``."""
    tmp = temp_path(target.parent, target.name)
    try:
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, _COPY_CHUNK)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target.stat().st_size


def deliver(source: Path, target: Path, sandbox: Path, uri: CommandURI) -> str:
    """Put ``source`` into the sandbox as ``uri`` asks, ``target`` being the name it
    gets there.  ``source`` is either ``target`` itself (downloaded into the sandbox)
    or a cache file: executables and plain files are then copied, archives extracted
    straight from it (only their contents reach the sandbox, as in Mesos).  Returns
    what was done, for the fetch log.  Raises ``OSError`` or ``Refused``."""
    kind = None if uri.executable or uri.extract is False else archive_kind(target.name)
    if source != target and kind is None:
        copy_file(source, target)
    if uri.executable:
        os.chmod(target, EXECUTABLE)
        return f"{_relative(target, sandbox)} (executable)"
    if kind is not None:
        count = extract(source, kind, sandbox, target.name)
        return f"{count} entries of {target.name} extracted into the sandbox"
    return _relative(target, sandbox)


def extract(archive: Path, kind: str, dest: Path, name: str) -> int:
    """Unpack ``archive`` (``kind``: tar, zip or gz; ``name`` its name in the
    sandbox) into ``dest``; returns the number of entries written."""
    try:
        if kind == "tar":
            return _extract_tar(archive, dest)
        if kind == "zip":
            return _extract_zip(archive, dest)
        plain = dest / Path(name).name[: -len(".gz")]  # into the sandbox, as in Mesos
        with gzip.open(archive, "rb") as src, open(plain, "wb") as out:
            shutil.copyfileobj(src, out, _COPY_CHUNK)
        return 1
    except Refused as exc:
        raise Refused(f"refusing to extract {name}: {exc}") from None
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError) as exc:
        raise Refused(f"cannot extract {name}: {exc}") from None


def _extract_tar(archive: Path, dest: Path) -> int:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member(member.name, dest)
            try:
                tarfile.data_filter(member, str(dest))
            except tarfile.FilterError as exc:
                raise Refused(str(exc)) from None
        tar.extractall(dest, filter="data")
    return len(members)


def _extract_zip(archive: Path, dest: Path) -> int:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_member(info.filename.replace("\\", "/"), dest)
        zf.extractall(dest)
        for info in infos:
            mode = (info.external_attr >> 16) & 0o777
            if info.create_system == 3 and mode and not info.is_dir():
                # zipfile drops Unix modes: keep the executable bits scripts need.
                os.chmod(dest / info.filename, (mode & 0o755) | 0o600)
    return len(infos)


def _check_member(name: str, dest: Path) -> None:
    if name.startswith("/") or os.path.isabs(name):
        raise Refused(f"member '{name}' has an absolute path")
    if not inside(dest / name, dest):  # ``..``, or a symlink already in the sandbox
        raise Refused(f"member '{name}' would be written outside the sandbox")


def chown_tree(root: Path, uid: int, gid: int) -> None:
    """``root`` and everything in it to ``uid:gid`` (symlinks themselves, not their
    targets): the task's user owns its sandbox, as Mesos' fetcher leaves it."""
    os.lchown(root, uid, gid)
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.lchown(os.path.join(directory, name), uid, gid)


def _relative(path: Path, sandbox: Path) -> str:
    try:
        return str(path.relative_to(sandbox))
    except ValueError:
        return str(path)
