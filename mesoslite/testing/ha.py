"""Several ``mesoslite master`` processes on one store, and which of them leads."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp

from mesoslite.testing.http import request
from mesoslite.testing.poll import wait_for
from mesoslite.testing.processes import Process, master_process


class Masters:
    """Several ``mesoslite master`` processes on one store; one of them leads."""

    def __init__(self, procs: list[Process]) -> None:
        self.procs = procs

    @property
    def urls(self) -> list[str]:
        return [p.url for p in self.procs]

    async def start(self) -> Masters:
        await asyncio.gather(*(p.start() for p in self.procs))
        return self

    async def leader(self, among: list[Process] | None = None, timeout: float = 30.0
                     ) -> tuple[Process, dict[str, Any]]:
        """The master that answers ``/master/state`` itself (200, not 307 or 503),
        and that state."""
        candidates = among or self.procs

        async def serving() -> tuple[Process, dict[str, Any]] | None:
            for proc in candidates:
                if proc.proc is not None and proc.proc.poll() is not None:
                    continue
                with contextlib.suppress(aiohttp.ClientError, ValueError):
                    status, _, body = await request("GET", proc.url + "/master/state",
                                                    allow_redirects=False)
                    if status == 200:
                        return proc, json.loads(body)
            return None

        return await wait_for(serving, timeout, interval=0.01, message="a leading master")

    async def stop(self) -> None:
        for proc in self.procs:
            await proc.stop()


def ha_masters(tmp_path: Path, store_url: str, count: int) -> Masters:
    return Masters([master_process(tmp_path / f"master{i}", None, "--store", store_url)
                    for i in range(count)])
