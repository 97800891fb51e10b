"""The fetcher's cache: URIs marked ``cache: true`` are downloaded once per agent and
copied (or extracted) from here into each sandbox (docs/fetcher.md).

* One entry per URI (``CommandInfo.URI.value``), each a file under the cache
  directory with a unique name (``c<serial>-<name>``): a URI evicted and fetched
  again gets a new file, so nothing in use is ever overwritten.
* Concurrent fetches of one URI share one download: the first starts it as a task of
  its own (a launch killed meanwhile does not cancel it for the others), the others
  wait for the same task.  A failed download fails every waiter with the same error
  and leaves no entry, so the next fetch tries again.
* Size: after each download the cache evicts the least recently used entries not in
  use until it is within its limit.  A download that cannot fit even then (larger
  than the cache, or the rest is in use) is delivered and then deleted, not kept:
  Mesos' "bypass the cache" fallback.  Downloads in flight are not counted, so the
  directory may briefly hold more than the limit.
* Nothing about the cache is durable: the directory is emptied when the agent starts
  (as Mesos' fetcher does), and the entries are rebuilt as URIs are fetched.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

Download = Callable[[Path], Awaitable[int]]  # fills the path given, returns its size
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(eq=False)
class CacheEntry:
    """One URI's cache file.  ``users``: fetches holding it (not evictable while > 0);
    ``kept``: in the cache (False: the file goes once its last user is done);
    ``counted``: its size is in the cache's total."""

    key: str
    path: Path
    job: asyncio.Task[int] = field(init=False)  # the download; its result is the size
    size: int = 0
    users: int = 0
    kept: bool = True
    counted: bool = False


class FetcherCache:
    """See the module docstring.  ``limit_bytes`` 0 disables the cache (the fetcher
    then downloads straight into the sandbox)."""

    def __init__(self, directory: Path, limit_bytes: int, io: Executor) -> None:
        self.directory = directory
        self.limit_bytes = limit_bytes
        self._io = io
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()  # least recent first
        self._serial = itertools.count(1)
        self._used = 0  # bytes of the entries kept (downloads in flight not counted)
        self._emptied: asyncio.Future[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.limit_bytes > 0

    @property
    def used_bytes(self) -> int:
        return self._used

    def users(self, key: str) -> int:
        """How many fetches hold, or wait for, ``key``'s entry (0: none, or no entry)."""
        entry = self._entries.get(key)
        return entry.users if entry is not None else 0

    def cached(self) -> list[str]:
        """The URIs with a file in the cache, least recently used first."""
        return [k for k, e in self._entries.items() if e.counted]

    async def acquire(self, key: str, name: str, download: Download) -> tuple[CacheEntry, bool]:
        """The entry of ``key`` with its file in place, and whether it was there (or on
        its way) already; downloads it with ``download`` if not.  Raises what the
        download raised.  Pair with ``release``."""
        await self._ensure_empty_dir()
        entry = self._entries.get(key)
        hit = entry is not None
        if entry is None:
            entry = self._start(key, name, download)
        else:
            self._entries.move_to_end(key)
        entry.users += 1
        try:
            await asyncio.shield(entry.job)
        except BaseException:
            await self.release(entry)
            raise
        return entry, hit

    async def release(self, entry: CacheEntry) -> None:
        """A fetch is done with ``entry``: an entry dropped meanwhile loses its file."""
        entry.users -= 1
        await self._delete_if_unused(entry)

    async def close(self) -> None:
        """Stop downloads in flight (their waiters get ``CancelledError``)."""
        jobs = [e.job for e in self._entries.values() if not e.job.done()]
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)

    # ------------------------------------------------------------ internals

    def _start(self, key: str, name: str, download: Download) -> CacheEntry:
        entry = CacheEntry(key, self.directory / f"c{next(self._serial)}-{_safe(name)}")
        entry.job = asyncio.create_task(self._fill(entry, download), name=f"fetch {key}")
        self._entries[key] = entry
        return entry

    async def _fill(self, entry: CacheEntry, download: Download) -> int:
        try:
            entry.size = await download(entry.path)
        except BaseException:
            self._drop(entry)
            raise
        if entry.kept:
            entry.counted = True
            self._used += entry.size
            await self._make_room(entry)
        if not entry.kept and entry.users == 0:  # every fetch waiting for it went away
            await self._remove_file(entry.path)
        return entry.size

    async def _make_room(self, newest: CacheEntry) -> None:
        """Evict least recently used entries not in use until within the limit; if
        that is not enough, ``newest`` is not kept."""
        while self._used > self.limit_bytes:
            victim = next((e for e in self._entries.values()
                           if e is not newest and e.users == 0 and e.counted), None)
            if victim is None:
                self._drop(newest)
                return
            self._drop(victim)
            await self._remove_file(victim.path)

    def _drop(self, entry: CacheEntry) -> None:
        """Forget ``entry``: the next fetch of its URI downloads again."""
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        if entry.counted:
            self._used -= entry.size
        entry.kept = entry.counted = False

    async def _delete_if_unused(self, entry: CacheEntry) -> None:
        if entry.users == 0 and not entry.kept and entry.job.done():
            await self._remove_file(entry.path)

    async def _remove_file(self, path: Path) -> None:
        await asyncio.get_running_loop().run_in_executor(
            self._io, lambda: path.unlink(missing_ok=True))

    async def _ensure_empty_dir(self) -> None:
        """Once per agent run: whatever an earlier run left is unaccounted for."""
        if self._emptied is None:
            self._emptied = asyncio.get_running_loop().run_in_executor(
                self._io, _empty_dir, self.directory)
        await asyncio.shield(self._emptied)


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name.rsplit("/", 1)[-1])[:100]


def _empty_dir(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
