"""Shared plumbing for long-running commands: logging and signal-driven shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable

import click


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def log_options(f: Callable) -> Callable:
    f = click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]),
                     default="info", show_default=True, help="Least severe level logged.")(f)
    f = click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                     show_default=True, help="'json' writes one JSON object a line.")(f)
    return f


def run_until_signalled(start: Callable[[], Awaitable[object]],
                        stop: Callable[[], Awaitable[object]],
                        ended: Callable[[], Awaitable[object]] | None = None) -> None:
    """Run ``start``, wait for SIGINT/SIGTERM (or for ``ended`` to return: the
    component stopped by itself, e.g. a deposed master), then run ``stop`` once.
    Exits with status 1 when it ended by itself."""

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        signalled = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, signalled.set)
        await start()
        waits = {asyncio.create_task(signalled.wait())}
        if ended is not None:
            waits.add(asyncio.create_task(ended()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        await stop()
        return signalled.is_set()

    try:
        by_signal = asyncio.run(main())
    except OSError as exc:
        raise click.ClickException(str(exc)) from None
    if not by_signal:
        sys.exit(1)
