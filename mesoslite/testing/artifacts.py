"""Artifacts for fetcher tests: a real HTTP server on loopback serving files from
memory, counting the requests per path, and archives built in memory."""

from __future__ import annotations

import asyncio
import io
import tarfile
import zipfile
from collections import Counter

from aiohttp import web


class ArtifactServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; ``requests`` counts the GETs of
    each path (404s too).  While ``hold`` is set (an ``asyncio.Event`` not yet set),
    every answer waits for it: downloads stay in flight until the test lets them go."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()
        self.hold: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> ArtifactServer:
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``/path``; returns its URL."""
        self.files["/" + path.lstrip("/")] = data
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path] += 1
        if self.hold is not None:
            await self.hold.wait()
        data = self.files.get(request.path)
        if data is None:
            raise web.HTTPNotFound()
        return web.Response(body=data, content_type="application/octet-stream")


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz", *, executable: tuple[str, ...] = (),
              symlinks: dict[str, str] | None = None) -> bytes:
    """A tar archive (``mode``: ``w``, ``w:gz``, ``w:bz2``, ``w:xz``) of ``files``
    (name -> content; names are written as given, ``../x`` included), ``executable``
    ones with mode 755, plus ``symlinks`` (name -> target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:  # type: ignore[call-overload]
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o755 if name in executable else 0o644
            tar.addfile(info, io.BytesIO(content))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes], *, executable: tuple[str, ...] = ()) -> bytes:
    """A zip archive of ``files`` (Unix modes recorded: 755 for ``executable``)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o100755 if name in executable else 0o100644) << 16
            zf.writestr(info, content)
    return buf.getvalue()
