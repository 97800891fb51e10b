"""The agent's fetcher: ``CommandInfo.uris`` into the sandbox before a task (or an
executor) starts, as Mesos' fetcher does (docs/fetcher.md).

``Fetcher.fetch(uris, sandbox)`` takes the URIs one after the other (as Mesos does:
one task's downloads do not compete with each other) and raises ``FetchError``
naming the URI and the cause at the first that fails; the caller fails the launch
with it.  Every URI is checked before anything is downloaded (``mesoslite.uris``),
so an unsupported scheme costs nothing.

* ``http(s)://`` URLs are downloaded with aiohttp (``*_proxy`` variables are
  honoured), streamed to a temporary file beside the target and renamed at the end;
  anything but 200 (after redirects) fails.  Each download is bounded by a timeout
  and a size (the agent's ``--fetcher-timeout`` and ``--fetcher-max-size``).
* ``file:///path`` and bare absolute paths are copied from the agent's filesystem.
* ``cache: true`` goes through the agent's cache (``fetcher_cache.py``); the rest
  is downloaded straight into the sandbox.
* then ``executable`` (chmod 755), extraction (``extract`` unset or true, by the
  name's extension) or nothing (``fetcher_files.py``).

The fetch log (one line per URI: what, from where, the cache's part, bytes, where
it went, or why it failed) is appended to the sandbox's ``stderr``, where the task's
own error output follows.  File work (copies, extraction, chmod, the log) runs in
the fetcher's threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from mesoslite.agent.containerizers.base import LaunchError
from mesoslite.agent.fetcher_cache import FetcherCache
from mesoslite.agent.fetcher_files import (
    Refused,
    chown_tree,
    copy_file,
    deliver,
    target_in,
    temp_path,
)
from mesoslite.messages.mesos import CommandURI
from mesoslite.uris import Source, UriError, sandbox_name, source_of

log = logging.getLogger(__name__)

MB = 1 << 20
DEFAULT_MAX_DOWNLOAD_MB = 4096.0
_CHUNK = 1 << 20  # bytes written to disk at a time
LOG_PREFIX = "mesoslite-fetcher: "


class FetchError(LaunchError):
    """A URI could not be fetched; ``str(exc)`` names the URI and the cause.  A
    ``LaunchError``: the launch it was for fails with this text."""

    def __init__(self, uri: str, cause: str) -> None:
        super().__init__(f"Failed to fetch '{uri}': {cause}")
        self.uri = uri
        self.cause = cause


class _TooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


@dataclass(frozen=True)
class _Item:
    """One URI, checked: where from, and its name in the sandbox."""

    uri: CommandURI
    source: Source
    name: str


class Fetcher:
    """One per agent.  ``cache_size_mb`` 0 disables the cache; ``timeout_s`` bounds
    each download; ``max_download_mb`` each file's size.  ``io`` runs the file work
    (default: two threads of the fetcher's own, so a long extraction never holds up
    the agent's checkpoint writes)."""

    def __init__(self, cache_dir: Path, cache_size_mb: float, timeout_s: float = 300.0,
                 io: Executor | None = None, *,
                 max_download_mb: float = DEFAULT_MAX_DOWNLOAD_MB) -> None:
        self._own_io = io is None
        self._io: Executor = io or ThreadPoolExecutor(max_workers=2,
                                                      thread_name_prefix="fetcher")
        self.timeout_s = timeout_s
        self.max_bytes = int(max_download_mb * MB)
        self.cache = FetcherCache(cache_dir, int(cache_size_mb * MB), self._io)
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self, uris: Sequence[CommandURI], sandbox: Path, *,
                    owner: tuple[int, int] | None = None) -> None:
        """Fetch ``uris`` into ``sandbox`` one after the other; raises ``FetchError``
        at the first that fails (nothing is downloaded when one is unsupported).  Each
        URI's outcome, or the failure, is logged to the sandbox's stderr.  ``owner``
        (uid, gid): who the sandbox and everything fetched belong to afterwards (the
        task's user; None: the agent's)."""
        try:
            items = [_check(uri) for uri in uris]
            for item in items:
                started = time.monotonic()
                outcome = await self._fetch_one(item, sandbox)
                await self._log(sandbox, f"{item.uri.value}: {outcome} in "
                                         f"{time.monotonic() - started:.2f}s")
            if owner is not None and items:
                try:
                    await self._in_io(chown_tree, sandbox, *owner)
                except OSError as exc:
                    raise FetchError(items[-1].uri.value, "cannot give the sandbox to uid "
                                     f"{owner[0]}: {_os_error(exc)}") from None
        except FetchError as exc:
            log.warning("%s (sandbox %s)", exc, sandbox)
            await self._log(sandbox, str(exc))
            raise

    async def close(self) -> None:
        await self.cache.close()
        if self._session is not None:
            await self._session.close()
        if self._own_io:
            self._io.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ one URI

    async def _fetch_one(self, item: _Item, sandbox: Path) -> str:
        """Fetch one URI; returns the log line's account of it."""
        try:
            target = await self._in_io(target_in, sandbox, item.name)
            if item.uri.cache and self.cache.enabled:
                return await self._through_cache(item, target, sandbox)
            size = await self._download(item, target)
            placed = await self._in_io(deliver, target, target, sandbox, item.uri)
            how = "cache disabled" if item.uri.cache else "not cached"
            return f"{how}, {size} bytes -> {placed}"
        except FetchError:
            raise
        except _TooLarge as exc:
            size = f" ({exc.size} bytes)" if exc.size is not None else ""
            raise FetchError(item.uri.value, f"larger{size} than the agent's limit of "
                                             f"{self.max_bytes / MB:g} MB "
                                             "(--fetcher-max-size)") from None
        except Refused as exc:
            raise FetchError(item.uri.value, str(exc)) from None
        except OSError as exc:
            raise FetchError(item.uri.value, _os_error(exc)) from None

    async def _through_cache(self, item: _Item, target: Path, sandbox: Path) -> str:
        entry, hit = await self.cache.acquire(
            item.uri.value, item.name, lambda path: self._download(item, path))
        try:
            placed = await self._in_io(deliver, entry.path, target, sandbox, item.uri)
        finally:
            await self.cache.release(entry)
        kept = "" if entry.kept else " (too large to keep in the cache)"
        return f"cache {'hit' if hit else 'miss'}{kept}, {entry.size} bytes -> {placed}"

    async def _download(self, item: _Item, dest: Path) -> int:
        """``item``'s content into ``dest`` (through a temporary file beside it);
        returns its size in bytes."""
        if item.source.kind == "file":
            return await self._in_io(self._copy_local, Path(item.source.location), dest)
        tmp = await self._in_io(temp_path, dest.parent, dest.name)
        try:
            async with asyncio.timeout(self.timeout_s):
                size = await self._get(item, tmp)
            await self._in_io(os.replace, tmp, dest)
            return size
        except TimeoutError:
            raise FetchError(item.uri.value, f"not complete within {self.timeout_s:g}s "
                                             "(the agent's --fetcher-timeout)") from None
        except aiohttp.ClientConnectorError as exc:
            raise FetchError(item.uri.value, f"cannot connect to {exc.host}:{exc.port}: "
                                             f"{_os_error(exc.os_error)}") from None
        except aiohttp.ClientError as exc:
            raise FetchError(item.uri.value, f"download failed: {exc or type(exc).__name__}"
                             ) from None
        finally:
            await self._in_io(_unlink, tmp)

    async def _get(self, item: _Item, dest: Path) -> int:
        """Stream ``item``'s URL into ``dest``; returns the bytes written."""
        response = await self._http().get(item.source.location)
        async with response:
            if response.status != 200:
                raise FetchError(item.uri.value, f"HTTP {response.status} "
                                                 f"{response.reason or ''}".rstrip())
            length = response.content_length
            if length is not None and length > self.max_bytes:
                raise _TooLarge(length)
            out = await self._in_io(open, dest, "wb")
            try:
                return await self._stream(response, out)
            finally:
                await self._in_io(out.close)

    async def _stream(self, response: aiohttp.ClientResponse, out: Any) -> int:
        written = 0
        buffer = bytearray()
        async for chunk in response.content.iter_any():
            buffer += chunk
            written += len(chunk)
            if written > self.max_bytes:
                raise _TooLarge(None)
            if len(buffer) >= _CHUNK:
                await self._in_io(out.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await self._in_io(out.write, bytes(buffer))
        return written

    def _copy_local(self, source: Path, dest: Path) -> int:
        """Runs in a thread: a file of the agent's into ``dest``."""
        size = source.stat().st_size
        if size > self.max_bytes:
            raise _TooLarge(size)
        return copy_file(source, dest)

    # ------------------------------------------------------------ edges

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            # trust_env: http_proxy / https_proxy / no_proxy, as Mesos' libcurl does.
            # No aiohttp time limit: each download has the fetcher's own.
            self._session = aiohttp.ClientSession(
                trust_env=True, timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def _log(self, sandbox: Path, line: str) -> None:
        try:
            await self._in_io(_append, sandbox / "stderr", LOG_PREFIX + line + "\n")
        except OSError as exc:
            log.warning("cannot write the fetch log in %s: %s", sandbox, exc)

    async def _in_io(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)


def _check(uri: CommandURI) -> _Item:
    try:
        return _Item(uri, source_of(uri.value), sandbox_name(uri))
    except UriError as exc:
        raise FetchError(uri.value, str(exc)) from None


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


def _os_error(exc: OSError | None) -> str:
    if exc is None:
        return "unknown error"
    where = f": {exc.filename}" if exc.filename else ""
    # errno's text: asyncio's refused connect says "Connect call failed (...)"; name
    # resolution errors have negative codes and their own text.
    text = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else exc.strerror or exc
    return f"{text}{where}"
