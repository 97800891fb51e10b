"""Sandbox files over HTTP.

* ``GET /sandbox/{framework_id}/{task_id}/{file}?offset=N&length=M``: raw bytes, with
  ``X-File-Size`` so ``mesoslite logs --follow`` can poll from where it stopped;
* Mesos' ``GET /files/read?path=&offset=&length=`` (``{"data", "offset"}``; offset -1
  answers the size) and ``GET /files/browse?path=``, for existing tooling.

Only files under the agent's sandboxes directory are served: paths are resolved and
anything escaping it (``..``, symlinks out) is refused with 403.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aiohttp import web

from mesoslite.agent.checkpoint import Checkpoints
from mesoslite.httpapi import HTTPError, json_response

MAX_READ = 4 * 1024 * 1024


class SandboxHTTP:
    def __init__(self, checkpoints: Checkpoints) -> None:
        self.cp = checkpoints

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/sandbox/{framework_id}/{task_id}/{name:.+}", self.raw)
        app.router.add_get("/files/read", self.files_read)
        app.router.add_get("/files/read.json", self.files_read)
        app.router.add_get("/files/browse", self.files_browse)
        app.router.add_get("/files/browse.json", self.files_browse)

    def resolve(self, path: str) -> Path:
        """``path`` (absolute, or relative to the sandboxes directory) resolved; 400
        when it cannot be, 403 when it is outside the sandboxes."""
        root = self.cp.sandboxes.resolve()
        if "\0" in path:
            raise HTTPError(400, "A path cannot contain a NUL byte", [("path", ["has NUL"])])
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = root / candidate
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):  # a symlink loop, a name too long
            raise HTTPError(400, f"Path {path[:200]!r} cannot be resolved") from None
        if resolved != root and root not in resolved.parents:
            raise HTTPError(403, f"Path {path!r} is outside the agent's sandboxes")
        return resolved

    async def raw(self, request: web.Request) -> web.Response:
        fid = request.match_info["framework_id"]
        tid = request.match_info["task_id"]
        path = self.resolve(str(self.cp.sandbox(fid, tid) / request.match_info["name"]))
        offset, length = _range(request)
        data, size = read_range(path, offset, length)
        return web.Response(body=data, content_type="application/octet-stream",
                            headers={"X-File-Size": str(size)})

    async def files_read(self, request: web.Request) -> web.Response:
        path = self.resolve(_required(request, "path"))
        offset = _int(request, "offset", -1)
        if offset == -1:
            size = _size(path)
            return json_response({"data": "", "offset": size})
        _, length = _range(request)
        data, _ = read_range(path, offset, length)
        return json_response({"data": data.decode("utf-8", "replace"), "offset": offset})

    async def files_browse(self, request: web.Request) -> web.Response:
        path = self.resolve(_required(request, "path"))
        if not path.is_dir():
            raise HTTPError(404, f"No such directory: {path}")
        entries = []
        for child in sorted(path.iterdir()):
            st = child.lstat()
            entries.append({
                "path": str(child), "size": st.st_size, "mtime": st.st_mtime,
                "mode": stat.filemode(st.st_mode), "nlink": st.st_nlink,
                "uid": str(st.st_uid), "gid": str(st.st_gid),
            })
        return json_response(entries)


def _required(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise HTTPError(400, f"Missing query parameter '{name}'", [(name, ["is required"])])
    return value


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise HTTPError(400, f"Query parameter '{name}' must be an integer",
                        [(name, ["must be an integer"])]) from None


def _range(request: web.Request) -> tuple[int, int]:
    offset = _int(request, "offset", 0)
    length = _int(request, "length", MAX_READ)
    if offset < 0 or length < 0:
        raise HTTPError(400, "'offset' and 'length' must not be negative")
    return offset, min(length, MAX_READ)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        raise HTTPError(404, f"No such file: {path.name}") from None
    except OSError as exc:
        raise HTTPError(400, f"{path.name} cannot be read: {exc.strerror}") from None


def read_range(path: Path, offset: int, length: int) -> tuple[bytes, int]:
    """Up to ``length`` bytes of ``path`` from ``offset``, and the file's size; 404 for
    a missing file, 400 for a directory or an unreadable one."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(offset)
            return f.read(length), size
    except FileNotFoundError:
        raise HTTPError(404, f"No such file: {path.name}") from None
    except IsADirectoryError:
        raise HTTPError(400, f"{path.name} is a directory") from None
    except OSError as exc:
        raise HTTPError(400, f"{path.name} cannot be read: {exc.strerror}") from None
